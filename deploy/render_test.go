package deploy

import (
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"

	"github.com/rootscan/rootscan/exporter"
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
	want := []string{"ConfigMap/rootscan", "DaemonSet/rootscan", "Namespace/rootscan", "NetworkPolicy/rootscan",
		"PriorityClass/rootscan", "Service/rootscan", "ServiceAccount/rootscan"}
	if got := kinds(base); !slices.Equal(got, want) {
		t.Errorf("base renders %v, want %v", got, want)
	}
	checkSafety(t, renderKustomize(t, "kustomize/least-privilege"), 9090)
	checkSafety(t, renderKustomize(t, "kustomize/metrics-tls"), 9090)
	if got := admitted(t, renderKustomize(t, "kustomize/examples/monitoring-namespace")); !slices.Equal(got, []string{"observability"}) {
		t.Errorf("examples/monitoring-namespace admits %v, want observability", got)
	}
	noPolicy := renderKustomize(t, "kustomize/examples/no-networkpolicy")
	checkSafety(t, noPolicy, 9090)
	if got := kinds(noPolicy); slices.Contains(got, "NetworkPolicy/rootscan") || len(got) != len(want)-1 {
		t.Errorf("examples/no-networkpolicy renders %v, want the base without its NetworkPolicy", got)
	}
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
		{"metrics tls", 9090, []string{"--set", "metrics.tls.enabled=true", "--set", "podMonitor.enabled=true",
			"--set", "podMonitor.tlsConfig.serverName=rootscan.rootscan.svc"}},
		{"metrics tls, other ports", 9191, []string{"--set", "metrics.tls.enabled=true", "--set", "listenPort=9191",
			"--set", "metrics.tls.healthPort=8081"}},
		{"no network policy", 9090, []string{"--set", "networkPolicy.enabled=false"}},
		{"fleet metrics", 9090, []string{"--set", "metrics.labels={namespace,container,image}", "--set", "metrics.maxSeries=5000"}},
		{"k0s kubelet", 9090, []string{"--set", "kubelet.podsDir=/var/lib/k0s/kubelet/pods"}},
		{"no kubelet pods dir", 9090, []string{"--set", "kubelet.podsDir="}},
		{"profiles", 9090, []string{"--set-string", "profiles.site\\.yaml=name: site"}},
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
		"helm.sh/chart", "checksum/config", "checksum/waivers", "checksum/vex"}
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

	// The least-privilege, metrics-tls, monitoring-namespace, no-node-state and waivers-vex variants match too.
	for _, tc := range []struct {
		overlay, kind string
		args          []string
	}{
		{"least-privilege", "DaemonSet", []string{"--set", "leastPrivilege=true"}},
		{"metrics-tls", "DaemonSet", []string{"--set", "metrics.tls.enabled=true"}},
		{"metrics-tls", "Service", []string{"--set", "metrics.tls.enabled=true"}},
		{"examples/monitoring-namespace", "NetworkPolicy", []string{"--set", "networkPolicy.monitoringNamespace=observability"}},
		{"examples/no-node-state", "DaemonSet", []string{"--set", "persistState=false"}},
		{"examples/waivers-vex", "DaemonSet", []string{"--set-file", "waivers=kustomize/examples/waivers-vex/waivers.yaml",
			"--set-file", "vex.app\\.openvex\\.json=kustomize/examples/waivers-vex/app.openvex.json"}},
	} {
		k := find(t, renderKustomize(t, "kustomize/"+tc.overlay), tc.kind)
		h := find(t, renderHelm(t, tc.args...), tc.kind)
		if a, b := normalize(t, k), normalize(t, h); !reflect.DeepEqual(a, b) {
			ay, _ := yaml.Marshal(a)
			by, _ := yaml.Marshal(b)
			t.Errorf("%s %s differs.\nkustomize:\n%s\nhelm %v:\n%s", tc.overlay, tc.kind, ay, tc.args, by)
		}
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

// TestHelmNetworkPolicyValues: networkPolicy.enabled=false renders none; a podSelector narrows the admitted
// namespace to those pods, in the same peer (a separate peer would admit the pods of every namespace).
func TestHelmNetworkPolicyValues(t *testing.T) {
	if got := kinds(renderHelm(t, "--set", "networkPolicy.enabled=false")); slices.Contains(got, "NetworkPolicy/rootscan") {
		t.Errorf("networkPolicy.enabled=false renders %v", got)
	}
	objs := renderHelm(t, "--set", "networkPolicy.podSelector.matchLabels.app\\.kubernetes\\.io/name=prometheus")
	var np networkingv1.NetworkPolicy
	strict(t, find(t, objs, "NetworkPolicy"), &np)
	from := np.Spec.Ingress[0].From
	if len(from) != 1 || from[0].PodSelector == nil || from[0].PodSelector.MatchLabels["app.kubernetes.io/name"] != "prometheus" ||
		from[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "monitoring" {
		t.Errorf("ingress from %+v, want one peer: the prometheus pods of namespace monitoring", from)
	}
}

// TestHelmMetricsValues: metrics.labels and metrics.maxSeries become the daemon's flags only when set (the
// defaults render what the kustomize base runs), with values the daemon accepts; [] is node totals, 0 no cap.
func TestHelmMetricsValues(t *testing.T) {
	args := func(set ...string) []string {
		var ds appsv1.DaemonSet
		strict(t, find(t, renderHelm(t, set...), "DaemonSet"), &ds)
		var out []string
		for _, a := range ds.Spec.Template.Spec.Containers[0].Args {
			if strings.HasPrefix(a, "--metrics-") {
				out = append(out, a)
			}
		}
		return out
	}
	for _, tc := range []struct {
		set  []string
		want []string
	}{
		{nil, nil},
		{[]string{"--set", "metrics.labels={namespace,container,image}", "--set", "metrics.maxSeries=5000"},
			[]string{"--metrics-labels=namespace,container,image", "--metrics-max-series=5000"}},
		{[]string{"--set-json", "metrics.labels=[]", "--set", "metrics.maxSeries=0"},
			[]string{"--metrics-labels=", "--metrics-max-series=0"}},
	} {
		got := args(tc.set...)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%v: args %v, want %v", tc.set, got, tc.want)
		}
		for _, a := range got {
			if v, ok := strings.CutPrefix(a, "--metrics-labels="); ok {
				labels := []string{}
				if v != "" {
					labels = strings.Split(v, ",")
				}
				if _, err := exporter.NewFleetMetrics("n", exporter.MetricsOptions{Labels: labels}); err != nil {
					t.Errorf("%s: the daemon refuses it: %v", a, err)
				}
			}
		}
	}
}

// TestHelmTLSNeedsScrapeConfig: a PodMonitor that would scrape the TLS port without a CA or client certificate
// fails the install with the reason, rather than rendering a target that is down from the first scrape.
func TestHelmTLSNeedsScrapeConfig(t *testing.T) {
	helm := tool(t, "helm", "ROOTSCAN_HELM")
	out, err := exec.Command(helm, "template", "rootscan", "helm/rootscan", "--namespace", "rootscan",
		"--set", "metrics.tls.enabled=true", "--set", "podMonitor.enabled=true").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "podMonitor.tlsConfig is required") {
		t.Errorf("metrics.tls with a PodMonitor and no tlsConfig: %v\n%.500s", err, out)
	}
}
