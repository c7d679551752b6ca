package deploy

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// renderKustomize runs `kustomize build dir`.
func renderKustomize(t *testing.T, dir string) []object {
	t.Helper()
	return splitDocs(t, run(t, tool(t, "kustomize", "ROOTSCAN_KUSTOMIZE"), "build", dir))
}

// renderHelm runs `helm template rootscan` on the chart in namespace rootscan, with extra args (--set ...).
func renderHelm(t *testing.T, args ...string) []object {
	t.Helper()
	helm := tool(t, "helm", "ROOTSCAN_HELM")
	run(t, helm, "lint", "--strict", "helm/rootscan")
	return splitDocs(t, run(t, helm, append([]string{"template", "rootscan", "helm/rootscan", "--namespace", "rootscan"}, args...)...))
}

func kinds(objs []object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.Kind+"/"+o.Name)
	}
	slices.Sort(out)
	return out
}

func TestKustomizeSafety(t *testing.T) {
	base := renderKustomize(t, "kustomize/base")
	checkSafety(t, base, 9090)
	want := []string{"ConfigMap/rootscan", "DaemonSet/rootscan", "Namespace/rootscan", "PriorityClass/rootscan",
		"Service/rootscan", "ServiceAccount/rootscan"}
	if got := kinds(base); !slices.Equal(got, want) {
		t.Errorf("base renders %v, want %v", got, want)
	}
	checkSafety(t, renderKustomize(t, "kustomize/least-privilege"), 9090)
	monitoring := renderKustomize(t, "kustomize/monitoring")
	checkSafety(t, monitoring, 9090)
	if got := kinds(monitoring); !slices.Contains(got, "PodMonitor/rootscan") || len(got) != len(want)+1 {
		t.Errorf("monitoring overlay renders %v, want the base and a PodMonitor", got)
	}
	for _, o := range monitoring {
		var meta struct {
			Metadata struct {
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(o.Doc, &meta); err != nil {
			t.Fatal(err)
		}
		clusterScoped := o.Kind == "Namespace" || o.Kind == "PriorityClass"
		if !clusterScoped && meta.Metadata.Namespace != "rootscan" {
			t.Errorf("%s/%s in namespace %q, want rootscan", o.Kind, o.Name, meta.Metadata.Namespace)
		}
	}
}

func TestHelmSafety(t *testing.T) {
	for _, tc := range []struct {
		name string
		port int32
		args []string
	}{
		{"defaults", 9090, nil},
		{"operator objects", 9090, []string{"--set", "podMonitor.enabled=true", "--set", "prometheusRule.enabled=true"}},
		{"other port", 9191, []string{"--set", "listenPort=9191", "--set", "podMonitor.enabled=true"}},
		{"k3s", 9090, []string{"--set", "containerd.runDir=/run/k3s/containerd",
			"--set", "containerd.rootDir=/var/lib/rancher/k3s/agent/containerd"}},
		{"least privilege", 9090, []string{"--set", "leastPrivilege=true"}},
		{"no priority class", 9090, []string{"--set", "priorityClass.create=false", "--set", "priorityClass.name=system-node-critical"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkSafety(t, renderHelm(t, tc.args...), tc.port)
		})
	}
}

// normalize turns a manifest into comparable data: without the labels and annotations only Helm adds, and with
// embedded YAML config parsed, so formatting differences do not count.
func normalize(t *testing.T, o object) map[string]any {
	t.Helper()
	var v map[string]any
	if err := yaml.Unmarshal(o.Doc, &v); err != nil {
		t.Fatalf("%s/%s: %v", o.Kind, o.Name, err)
	}
	helmOnly := []string{"app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/managed-by",
		"helm.sh/chart", "checksum/config"}
	var walk func(any)
	walk = func(x any) {
		switch x := x.(type) {
		case map[string]any:
			for k, child := range x {
				if m, ok := child.(map[string]any); ok && (k == "labels" || k == "matchLabels" || k == "selector" || k == "annotations") {
					for _, h := range helmOnly {
						delete(m, h)
					}
					if len(m) == 0 {
						delete(x, k)
						continue
					}
				}
				walk(child)
			}
		case []any:
			for _, child := range x {
				walk(child)
			}
		}
	}
	walk(v)
	if o.Kind == "ConfigMap" {
		data, _ := v["data"].(map[string]any)
		for k, s := range data {
			if str, ok := s.(string); ok && strings.HasSuffix(k, ".yaml") {
				var parsed any
				if err := yaml.Unmarshal([]byte(str), &parsed); err != nil {
					t.Fatalf("ConfigMap %s: %s: %v", o.Name, k, err)
				}
				data[k] = parsed
			}
		}
	}
	return v
}

// TestHelmMatchesKustomize: the chart with its defaults (and the PodMonitor on) renders the same objects as the
// kustomize monitoring overlay, apart from Helm's own labels and the Namespace (Helm installs into one).
func TestHelmMatchesKustomize(t *testing.T) {
	kust := make(map[string]map[string]any)
	for _, o := range renderKustomize(t, "kustomize/monitoring") {
		if o.Kind != "Namespace" {
			kust[o.Kind+"/"+o.Name] = normalize(t, o)
		}
	}
	helm := make(map[string]map[string]any)
	var rule map[string]any
	for _, o := range renderHelm(t, "--set", "podMonitor.enabled=true", "--set", "prometheusRule.enabled=true") {
		if o.Kind == "PrometheusRule" {
			rule = normalize(t, o)
			continue
		}
		helm[o.Kind+"/"+o.Name] = normalize(t, o)
	}
	for k, want := range kust {
		got, ok := helm[k]
		if !ok {
			t.Errorf("%s: rendered by kustomize, not by the chart", k)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			a, _ := yaml.Marshal(want)
			b, _ := yaml.Marshal(got)
			t.Errorf("%s differs.\nkustomize:\n%s\nhelm:\n%s", k, a, b)
		}
	}
	for k := range helm {
		if _, ok := kust[k]; !ok {
			t.Errorf("%s: rendered by the chart, not by kustomize", k)
		}
	}

	// The least-privilege variants match too.
	lp := find(t, renderKustomize(t, "kustomize/least-privilege"), "DaemonSet")
	hlp := find(t, renderHelm(t, "--set", "leastPrivilege=true"), "DaemonSet")
	if a, b := normalize(t, lp), normalize(t, hlp); !reflect.DeepEqual(a, b) {
		ay, _ := yaml.Marshal(a)
		by, _ := yaml.Marshal(b)
		t.Errorf("least-privilege DaemonSet differs.\nkustomize:\n%s\nhelm:\n%s", ay, by)
	}

	// The PrometheusRule carries exactly the rule file's groups.
	data, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var groups map[string]any
	if err := yaml.Unmarshal(data, &groups); err != nil {
		t.Fatal(err)
	}
	if rule == nil || !reflect.DeepEqual(rule["spec"], groups) {
		t.Errorf("PrometheusRule spec %v, want the groups of %s", rule["spec"], alertsFile)
	}
}

// TestHelmAlertsReachableOnly: prometheusRule.reachableOnly=true limits the fixable-critical alert to findings not
// known unreachable, and changes nothing else of the rules.
func TestHelmAlertsReachableOnly(t *testing.T) {
	rules := func(args ...string) string {
		for _, o := range renderHelm(t, append([]string{"--set", "prometheusRule.enabled=true"}, args...)...) {
			if o.Kind == "PrometheusRule" {
				b, err := yaml.Marshal(normalize(t, o)["spec"])
				if err != nil {
					t.Fatal(err)
				}
				return string(b)
			}
		}
		t.Fatal("no PrometheusRule rendered")
		return ""
	}
	plain, limited := rules(), rules("--set", "prometheusRule.reachableOnly=true")
	const sel = `rootscan_container_vulnerabilities{severity="critical", fixable="true"`
	if !strings.Contains(plain, sel+"}") || strings.Contains(plain, "reachable!=") {
		t.Errorf("default rules do not select every fixable critical finding:\n%s", plain)
	}
	if !strings.Contains(limited, sel+`, reachable!="false"}`) {
		t.Errorf("reachableOnly rules lack the reachable selector:\n%s", limited)
	}
	if strings.Replace(limited, `, reachable!="false"`, "", 1) != plain {
		t.Errorf("reachableOnly changes more than the selector:\n%s", limited)
	}
}
