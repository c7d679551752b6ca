package deploy

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// mirrorValues are the Helm values equal to the kustomize/vulndb-mirror example.
var mirrorValues = []string{
	"--set", "vulnerabilityDatabase.urls={https://10.96.0.50/osv/Debian/all.zip,https://10.96.0.50/osv/Go/all.zip}",
	"--set", "vulnerabilityDatabase.caConfigMap=osv-mirror-ca",
}

// TestVulnDBMirror: the kustomize example of an in-cluster mirror and the chart's vulnerabilityDatabase values render
// the same DaemonSet, both keep the safety properties, and the CA file the daemon is told to read is the one the
// volume mounts. Without urls the chart renders no database flag at all (the defaults test compares it to the base).
func TestVulnDBMirror(t *testing.T) {
	kust := renderKustomize(t, "kustomize/vulndb-mirror")
	checkSafety(t, kust, 9090)
	helm := renderHelm(t, mirrorValues...)
	checkSafety(t, helm, 9090)
	a, b := normalize(t, find(t, kust, "DaemonSet")), normalize(t, find(t, helm, "DaemonSet"))
	if !reflect.DeepEqual(a, b) {
		ay, _ := yaml.Marshal(a)
		by, _ := yaml.Marshal(b)
		t.Errorf("vulndb-mirror DaemonSet differs.\nkustomize:\n%s\nhelm:\n%s", ay, by)
	}

	for name, objs := range map[string][]object{
		"kustomize":   kust,
		"helm secret": renderHelm(t, "--set", "vulnerabilityDatabase.urls={https://mirror.example/Debian/all.zip}", "--set", "vulnerabilityDatabase.caSecret=osv-ca", "--set", "vulnerabilityDatabase.caKey=bundle.pem"),
	} {
		var ds appsv1.DaemonSet
		strict(t, find(t, objs, "DaemonSet"), &ds)
		c := ds.Spec.Template.Spec.Containers[0]
		i := slices.IndexFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--db-ca-file=") })
		if i < 0 {
			t.Errorf("%s: no --db-ca-file in %v", name, c.Args)
			continue
		}
		caFile := strings.TrimPrefix(c.Args[i], "--db-ca-file=")
		m := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return strings.HasPrefix(caFile, m.MountPath+"/") })
		if m < 0 || c.VolumeMounts[m].Name != "db-ca" || !c.VolumeMounts[m].ReadOnly {
			t.Errorf("%s: %s is not in the read-only db-ca volume: %+v", name, caFile, c.VolumeMounts)
		}
		if !slices.ContainsFunc(ds.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool {
			return v.Name == "db-ca" && (v.Secret != nil || v.ConfigMap != nil)
		}) {
			t.Errorf("%s: no db-ca volume from a Secret or ConfigMap", name)
		}
	}

	var ds appsv1.DaemonSet
	strict(t, find(t, renderHelm(t, "--set", "vulnerabilityDatabase.urls={http://10.0.0.5:8080/Debian/all.zip}",
		"--set", "vulnerabilityDatabase.insecureHTTP=true", "--set", "vulnerabilityDatabase.refresh=0s",
		"--set", "stateDir=/var/lib/rootscan-x"), "DaemonSet"), &ds)
	args := ds.Spec.Template.Spec.Containers[0].Args
	for _, want := range []string{"--db=/var/lib/rootscan-x/db", "--db-url=http://10.0.0.5:8080/Debian/all.zip", "--db-refresh=0s", "--db-insecure-http"} {
		if !slices.Contains(args, want) {
			t.Errorf("args %v lack %s", args, want)
		}
	}
	if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--db-ca-file") }) ||
		slices.ContainsFunc(ds.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == "db-ca" }) {
		t.Errorf("a CA file without caSecret or caConfigMap: %v", args)
	}
}
