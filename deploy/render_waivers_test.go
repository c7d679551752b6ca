package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/rootscan/rootscan/compliance"
	"github.com/rootscan/rootscan/vuln"
)

// TestHelmWaiversAndVEX: the waivers and vex values reach the daemon as files it accepts, at the paths its flags
// name, and a change to either rolls the pods (checksum annotations).
func TestHelmWaiversAndVEX(t *testing.T) {
	const waivers = "baseline.no-root:\n  justification: batch jobs run as root until Q3\n  expiration_date: 2099-01-01\n  run: false\n"
	const vex = `{"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.com/vex/1", "author": "platform",
 "timestamp": "2026-01-01T00:00:00Z", "version": 1, "statements": [{"vulnerability": {"name": "CVE-2010-4756"},
 "products": [{"@id": "pkg:deb/debian/libc6"}], "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"}]}`
	values, err := yaml.Marshal(map[string]any{"waivers": waivers, "vex": map[string]string{"libc.openvex.json": vex}})
	if err != nil {
		t.Fatal(err)
	}
	vf := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(vf, values, 0o600); err != nil {
		t.Fatal(err)
	}
	objs := renderHelm(t, "-f", vf)
	checkSafety(t, objs, 9090)

	var ds appsv1.DaemonSet
	strict(t, find(t, objs, "DaemonSet"), &ds)
	pod := ds.Spec.Template
	args := pod.Spec.Containers[0].Args
	for _, want := range []string{"--waivers=/etc/rootscan-waivers/waivers.yaml", "--vex=/etc/rootscan-vex"} {
		if !slices.Contains(args, want) {
			t.Errorf("args %v lack %s", args, want)
		}
	}
	for _, a := range []string{"checksum/waivers", "checksum/vex"} {
		if pod.Annotations[a] == "" {
			t.Errorf("pod template has no %s annotation: a changed value would not roll the pods", a)
		}
	}
	cms := map[string]corev1.ConfigMap{}
	for _, o := range objs {
		if o.Kind == "ConfigMap" {
			var cm corev1.ConfigMap
			strict(t, o, &cm)
			cms[cm.Name] = cm
		}
	}
	// The files as the daemon reads them: the waiver parser and the VEX loader must accept what the chart mounts.
	if _, err := compliance.ParseWaivers("waivers.yaml", []byte(cms["rootscan-waivers"].Data["waivers.yaml"])); err != nil {
		t.Errorf("the daemon refuses the rendered waivers: %v", err)
	}
	dir := t.TempDir()
	for name, data := range cms["rootscan-vex"].Data {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	v, err := vuln.LoadVEX(dir)
	if err != nil || v.Len() != 1 {
		t.Errorf("the daemon's VEX loader on the rendered ConfigMap: %v statements, err %v", v.Len(), err)
	}
	mounts := map[string]string{}
	for _, m := range pod.Spec.Containers[0].VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	if mounts["waivers"] != "/etc/rootscan-waivers" || mounts["vex"] != "/etc/rootscan-vex" {
		t.Errorf("volume mounts %v", mounts)
	}
}
