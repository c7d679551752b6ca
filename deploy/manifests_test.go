package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// object is one rendered manifest: its kind and name, and the document itself.
type object struct {
	Kind, Name string
	Doc        []byte
}

// splitDocs parses a multi-document YAML stream into objects, skipping empty documents.
func splitDocs(t *testing.T, data []byte) []object {
	t.Helper()
	r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("split manifests: %v", err)
		}
		var meta struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatalf("parse manifest: %v\n%s", err, doc)
		}
		if meta.Kind == "" {
			continue
		}
		out = append(out, object{Kind: meta.Kind, Name: meta.Metadata.Name, Doc: doc})
	}
}

// baseFiles reads the kustomize base's resources as they are on disk: the safety checks then run on every `go test`,
// with no tool needed.
func baseFiles(t *testing.T, dir string) []object {
	t.Helper()
	var k struct {
		Resources []string `json:"resources"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatalf("parse %s/kustomization.yaml: %v", dir, err)
	}
	var out []object
	for _, r := range k.Resources {
		data, err := os.ReadFile(filepath.Join(dir, r))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, splitDocs(t, data)...)
	}
	return out
}

// reporter is the part of testing.T the checks use, so TestSafetyCatchesEdits can run them on a recorder.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// recorder notes whether a check failed; Fatalf stops the check by panicking with the recorder itself.
type recorder struct{ failed bool }

func (r *recorder) Helper()               {}
func (r *recorder) Errorf(string, ...any) { r.failed = true }
func (r *recorder) Fatalf(string, ...any) { r.failed = true; panic(r) }

// failsSafety says whether checkSafety rejects objs.
func failsSafety(objs []object) bool {
	r := &recorder{}
	func() {
		defer func() {
			if p := recover(); p != nil && p != r {
				panic(p)
			}
		}()
		checkSafety(r, objs, 9090)
	}()
	return r.failed
}

// find returns the single object of a kind, failing when there is none or several.
func find(t reporter, objs []object, kind string) object {
	t.Helper()
	var found []object
	for _, o := range objs {
		if o.Kind == kind {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s objects, want exactly 1", len(found), kind)
	}
	return found[0]
}

// strict decodes doc into v the way the API server does (case-sensitive field names), failing on unknown or
// duplicate fields: a misspelt `readonly` would otherwise be dropped and the mount would be writable.
func strict(t reporter, o object, v any) {
	t.Helper()
	data, err := yaml.YAMLToJSON(o.Doc)
	if err != nil {
		t.Fatalf("%s %s: %v", o.Kind, o.Name, err)
	}
	strictErrs, err := kjson.UnmarshalStrict(data, v)
	if err = errors.Join(append(strictErrs, err)...); err != nil {
		t.Fatalf("%s %s: %v", o.Kind, o.Name, err)
	}
}

// checkSafety asserts the properties a careless edit of the manifests must not lose.
func checkSafety(t reporter, objs []object, port int32) {
	t.Helper()
	// The scanner's own hostPath volumes may be written; everything else of the node is read-only.
	writableHostPaths := map[string]bool{"mounts": true, "state": true}
	var ds appsv1.DaemonSet
	strict(t, find(t, objs, "DaemonSet"), &ds)
	pod := ds.Spec.Template.Spec

	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Errorf("host namespaces: hostNetwork=%v hostPID=%v hostIPC=%v, want none", pod.HostNetwork, pod.HostPID, pod.HostIPC)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("pod mounts a service account token; rootscan needs no API access")
	}
	if len(pod.InitContainers) != 0 || len(pod.EphemeralContainers) != 0 || len(pod.Containers) != 1 {
		t.Fatalf("%d init, %d ephemeral, %d containers; want only the scanner", len(pod.InitContainers),
			len(pod.EphemeralContainers), len(pod.Containers))
	}
	if pod.PriorityClassName == "" {
		t.Errorf("no priorityClassName: on a full node the scanner would not be scheduled")
	}
	if !slices.ContainsFunc(pod.Tolerations, func(tl corev1.Toleration) bool {
		return tl.Operator == corev1.TolerationOpExists && tl.Key == "" && tl.Effect == ""
	}) {
		t.Errorf("tolerations %v do not tolerate every taint: tainted nodes would go unscanned", pod.Tolerations)
	}

	c := pod.Containers[0]
	checkPorts(t, c, port)
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("the scanner's root file system is writable")
	}
	if sc != nil && sc.Privileged != nil && *sc.Privileged {
		if sc.Capabilities != nil && len(sc.Capabilities.Add) > 0 {
			t.Errorf("capabilities added %v on top of privileged", sc.Capabilities.Add)
		}
	} else if sc != nil {
		// The least-privilege variant: only the capabilities the scanner uses (mounts, reads, eBPF), nothing of the defaults, and
		// the runtime's seccomp profile kept.
		allowed := []corev1.Capability{"SYS_ADMIN", "DAC_READ_SEARCH", "BPF", "PERFMON"}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("unprivileged scanner keeps the runtime's default capabilities: drop ALL")
		}
		for _, c := range sc.Capabilities.Add {
			if !slices.Contains(allowed, c) {
				t.Errorf("capability %s added; the scanner uses only %v", c, allowed)
			}
		}
		if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("seccomp profile %v, want RuntimeDefault", sc.SeccompProfile)
		}
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			t.Errorf("no %s request", r)
		}
		if _, ok := c.Resources.Limits[r]; !ok {
			t.Errorf("no %s limit", r)
		}
	}

	hostPaths := make(map[string]*corev1.HostPathVolumeSource)
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath
		}
	}
	for name := range writableHostPaths {
		if hostPaths[name] == nil {
			t.Errorf("hostPath volume %q missing", name)
		}
	}
	mounted := make(map[string]bool)
	for _, m := range c.VolumeMounts {
		mounted[m.Name] = true
		if m.MountPropagation != nil && *m.MountPropagation == corev1.MountPropagationBidirectional {
			t.Errorf("volume %q mounted with Bidirectional propagation: the scanner's mounts would leak to the node", m.Name)
		}
		hp := hostPaths[m.Name]
		if hp == nil {
			continue
		}
		switch {
		case writableHostPaths[m.Name]:
			if !strings.Contains(hp.Path, "rootscan") {
				t.Errorf("writable hostPath %q is %s, want a directory of rootscan's own", m.Name, hp.Path)
			}
		case !m.ReadOnly:
			t.Errorf("hostPath %q (%s) mounted writable; only %v may be", m.Name, hp.Path, writableHostPaths)
		}
		if m.Name == "mounts" && m.MountPropagation != nil && *m.MountPropagation != corev1.MountPropagationNone {
			t.Errorf("the scanner's mount dir has propagation %s, want None (private)", *m.MountPropagation)
		}
		// containerd and the CRI answer with node paths: their dirs must appear at the same path inside the pod.
		if (m.Name == "containerd-root" || m.Name == "containerd-run" || m.Name == "kubelet-pods") && m.MountPath != hp.Path {
			t.Errorf("%s mounted at %s, want the node path %s", m.Name, m.MountPath, hp.Path)
		}
	}
	for name := range hostPaths {
		if !mounted[name] {
			t.Errorf("hostPath volume %q declared but not mounted", name)
		}
	}
	if !slices.Contains(c.Args, "--runtime-endpoint=unix://"+hostPaths["containerd-run"].Path+"/containerd.sock") {
		t.Errorf("args %v: runtime endpoint not in the mounted %s", c.Args, hostPaths["containerd-run"].Path)
	}

	var sa corev1.ServiceAccount
	strict(t, find(t, objs, "ServiceAccount"), &sa)
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Errorf("service account automounts its token")
	}

	for _, o := range objs {
		if o.Kind != "Service" {
			continue
		}
		var svc corev1.Service
		strict(t, o, &svc)
		want := []corev1.ServicePort{{Name: "metrics", Port: port, TargetPort: intOrName("metrics"), Protocol: corev1.ProtocolTCP}}
		if !reflect.DeepEqual(svc.Spec.Ports, want) {
			t.Errorf("service ports %+v, want only %+v", svc.Spec.Ports, want)
		}
		if svc.Spec.Type != "" && svc.Spec.Type != corev1.ServiceTypeClusterIP {
			t.Errorf("service type %s exposes the scanner outside the cluster", svc.Spec.Type)
		}
	}

	checkNetworkPolicies(t, objs, ds)

	for _, o := range objs {
		if o.Kind != "PodMonitor" {
			continue
		}
		var pm struct {
			Spec struct {
				PodMetricsEndpoints []struct {
					Port        string `json:"port"`
					HonorLabels bool   `json:"honorLabels"`
				} `json:"podMetricsEndpoints"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(o.Doc, &pm); err != nil {
			t.Fatalf("PodMonitor %s: %v", o.Name, err)
		}
		if len(pm.Spec.PodMetricsEndpoints) != 1 || pm.Spec.PodMetricsEndpoints[0].Port != "metrics" ||
			!pm.Spec.PodMetricsEndpoints[0].HonorLabels {
			t.Errorf("PodMonitor endpoints %+v, want one on port metrics with honorLabels (our namespace/pod/container labels win)",
				pm.Spec.PodMetricsEndpoints)
		}
	}
}

// checkPorts: the metrics port and, with --health-listen (the probes' plain port when /metrics needs a client
// certificate), a health port, none on the host; the probes on one of them, on health when it is there.
func checkPorts(t reporter, c corev1.Container, port int32) {
	t.Helper()
	wantPorts := []corev1.ContainerPort{{Name: "metrics", ContainerPort: port, Protocol: corev1.ProtocolTCP}}
	probePort := "metrics"
	for _, a := range c.Args {
		if hp, ok := strings.CutPrefix(a, "--health-listen=:"); ok {
			var n int32
			if _, err := fmt.Sscan(hp, &n); err != nil || n == port {
				t.Errorf("%s: want a port of its own", a)
			}
			wantPorts = append(wantPorts, corev1.ContainerPort{Name: "health", ContainerPort: n, Protocol: corev1.ProtocolTCP})
			probePort = "health"
		}
	}
	if !reflect.DeepEqual(c.Ports, wantPorts) {
		t.Errorf("container ports %+v, want only %+v (no hostPort)", c.Ports, wantPorts)
	}
	if !slices.Contains(c.Args, fmt.Sprintf("--listen=:%d", port)) {
		t.Errorf("args %v do not listen on the declared port %d", c.Args, port)
	}
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.String() != probePort || p.HTTPGet.Scheme == corev1.URISchemeHTTPS {
			t.Errorf("probe %+v: want a plain HTTP probe on the %s port", p, probePort)
		}
	}
}

// checkNetworkPolicies: a NetworkPolicy, where there is one, limits ingress to the scanner's pods (not hostNetwork,
// so it applies), admits only the metrics port, and only from a named namespace: never every namespace, never an
// IP block.
func checkNetworkPolicies(t reporter, objs []object, ds appsv1.DaemonSet) {
	t.Helper()
	for _, o := range objs {
		if o.Kind != "NetworkPolicy" {
			continue
		}
		var np networkingv1.NetworkPolicy
		strict(t, o, &np)
		for k, v := range np.Spec.PodSelector.MatchLabels {
			if ds.Spec.Template.Labels[k] != v {
				t.Errorf("NetworkPolicy %s selects %s=%s, which the scanner's pods do not carry", np.Name, k, v)
			}
		}
		if len(np.Spec.PodSelector.MatchLabels) == 0 || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			t.Errorf("NetworkPolicy %s: selector %v, types %v; want the scanner's pods, Ingress", np.Name,
				np.Spec.PodSelector, np.Spec.PolicyTypes)
		}
		for _, rule := range np.Spec.Ingress {
			if len(rule.From) == 0 {
				t.Errorf("NetworkPolicy %s admits every source", np.Name)
			}
			for _, peer := range rule.From {
				if peer.IPBlock != nil || peer.NamespaceSelector == nil ||
					peer.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] == "" {
					t.Errorf("NetworkPolicy %s: peer %+v, want a namespace named by kubernetes.io/metadata.name", np.Name, peer)
				}
			}
			want := []networkingv1.NetworkPolicyPort{{Port: ptr(intOrName("metrics")), Protocol: ptr(corev1.ProtocolTCP)}}
			if !reflect.DeepEqual(rule.Ports, want) {
				t.Errorf("NetworkPolicy %s opens ports %+v, want only metrics", np.Name, rule.Ports)
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }

// admitted returns the namespaces the one NetworkPolicy in objs admits, or nil when there is none.
func admitted(t reporter, objs []object) []string {
	t.Helper()
	var out []string
	for _, o := range objs {
		if o.Kind != "NetworkPolicy" {
			continue
		}
		var np networkingv1.NetworkPolicy
		strict(t, o, &np)
		for _, rule := range np.Spec.Ingress {
			for _, peer := range rule.From {
				if peer.NamespaceSelector != nil {
					out = append(out, peer.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"])
				}
			}
		}
	}
	return out
}

func TestBaseSafety(t *testing.T) {
	base := baseFiles(t, "kustomize/base")
	checkSafety(t, base, 9090)
	if failsSafety(base) {
		t.Error("failsSafety rejects the unedited base")
	}
	if got := admitted(t, base); !slices.Equal(got, []string{"monitoring"}) {
		t.Errorf("the base's NetworkPolicy admits %v, want only the monitoring namespace", got)
	}
}

// TestSafetyCatchesEdits: the checks above must fail on the edits they exist for.
func TestSafetyCatchesEdits(t *testing.T) {
	base := baseFiles(t, "kustomize/base")
	for _, tc := range []struct{ name, old, new string }{
		{"hostNetwork", "hostNetwork: false", "hostNetwork: true"},
		{"writable containerd root", "mountPath: /var/lib/containerd\n              readOnly: true", "mountPath: /var/lib/containerd"},
		{"misspelt readOnly", "mountPath: /var/lib/containerd\n              readOnly: true", "mountPath: /var/lib/containerd\n              readonly: true"},
		{"bidirectional", "mountPropagation: None", "mountPropagation: Bidirectional"},
		{"writable kubelet pods", "mountPath: /var/lib/kubelet/pods\n              readOnly: true", "mountPath: /var/lib/kubelet/pods"},
		{"kubelet pods elsewhere", "mountPath: /var/lib/kubelet/pods", "mountPath: /host/kubelet/pods"},
		{"kubelet pods bidirectional", "mountPropagation: HostToContainer", "mountPropagation: Bidirectional"},
		{"second port", "              protocol: TCP\n          livenessProbe", "              protocol: TCP\n            - name: debug\n              containerPort: 6060\n          livenessProbe"},
		{"hostPort", "containerPort: 9090", "containerPort: 9090\n              hostPort: 9090"},
		{"health port without --health-listen", "              protocol: TCP\n          livenessProbe",
			"              protocol: TCP\n            - name: health\n              containerPort: 9091\n          livenessProbe"},
		{"HTTPS probe", "              path: /healthz\n              port: metrics", "              path: /healthz\n              port: metrics\n              scheme: HTTPS"},
		{"policy open to every namespace", "        - namespaceSelector:\n            matchLabels:\n              kubernetes.io/metadata.name: monitoring",
			"        - namespaceSelector: {}"},
		{"policy opens another port", "        - port: metrics", "        - port: 9091"},
		{"policy selects other pods", "  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: rootscan",
			"  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := slices.Clone(base)
			edited := false
			for i, o := range objs {
				if (o.Kind == "DaemonSet" || o.Kind == "NetworkPolicy") && bytes.Contains(o.Doc, []byte(tc.old)) {
					objs[i].Doc = bytes.Replace(o.Doc, []byte(tc.old), []byte(tc.new), 1)
					edited = true
				}
			}
			if !edited {
				t.Fatalf("edit %q does not apply to the DaemonSet or the NetworkPolicy", tc.old)
			}
			if !failsSafety(objs) {
				t.Errorf("checkSafety accepted the edit %q", tc.name)
			}
		})
	}
}

func intOrName(name string) intstr.IntOrString { return intstr.FromString(name) }
