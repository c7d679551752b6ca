package kube

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"sigs.k8s.io/yaml"

	"github.com/rootscan/rootscan/exporter"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/internal/imagebuild"
)

// appProfile is the compliance profile the chart's profiles value ships: two
// controls that pass only where the ConfigMap and the Secret are mounted
// (the image has neither file), so they prove that compliance reads the pod's
// volumes through the kubelet's pods dir.
const appProfile = `name: app-config
version: 0.1.0
controls:
  - id: app-config-01
    title: the app's configuration turns debug off
    impact: 0.5
    checks:
      - expr: file("/etc/app/app.conf").exists && file("/etc/app/app.conf").content.contains("debug=false")
  - id: app-config-02
    title: the app's token comes from a Secret
    impact: 0.5
    checks:
      - expr: file("/etc/secret/token").exists && file("/etc/secret/token").content.startsWith("s3cret-")
`

// e2e is one Helm release of the chart on one cluster, shared by the
// subtests of TestHelmChartEndToEnd.
type e2e struct {
	c        *Cluster
	helm     string
	dir      string // helm's homes, the values file, the scanner's hostPath dirs
	stateDir string
	mountDir string
	recv     *siemReceiver
	mirror   *osvMirror
	appImage string
	jobImage string
}

// TestHelmChartEndToEnd installs deploy/helm/rootscan with the image `make
// image` builds on a single-node cluster and follows the product through its
// life: the DaemonSet becomes Ready, distroless workloads in two namespaces
// appear on /metrics and at a SIEM receiver with their real names,
// compliance reads their ConfigMap and Secret, pods come and go, an upgrade
// rolls the pod and keeps the state dir, the daemon fetches its vulnerability
// database from a mirror pod, a bad sink shows in the pod's status,
// uninstall leaves nothing behind but the state dir, and with
// persistState=false nothing at all.
func TestHelmChartEndToEnd(t *testing.T) {
	Require(t, Options{})
	helm := deployTool(t, "ROOTSCAN_HELM")
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	img, err := imagebuild.Build(ctx, imagebuild.Options{
		Source:     imagebuild.Source{Dir: "../../..", Version: "kube-e2e"},
		Repository: "rootscan.test/rootscan", Tag: "kube-e2e",
	})
	if err != nil {
		t.Fatal(err)
	}
	c := StartT(t, Options{})
	if _, err := c.Containerd().Import(ctx, img); err != nil {
		t.Fatal(err)
	}
	jobRef, err := c.Containerd().Import(ctx, jobImage(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	e := &e2e{c: c, helm: helm, dir: dir, stateDir: filepath.Join(dir, "state"), mountDir: filepath.Join(dir, "run"),
		recv: startReceiver(t, c.p.nodeIP), appImage: importDistroless(t, ctx, c).Name, jobImage: jobRef.Name}
	e.mirror = startMirror(t, ctx, e)

	if !t.Run("install", func(t *testing.T) { e.install(t, ctx) }) {
		t.FailNow()
	}
	t.Run("workloads", func(t *testing.T) { e.workloads(t, ctx) })
	t.Run("vulnerabilities from the in-cluster mirror", func(t *testing.T) { e.mirrorVulns(t, ctx) })
	t.Run("pod lifecycle", func(t *testing.T) { e.podLifecycle(t, ctx) })
	t.Run("usage", func(t *testing.T) { e.usage(t, ctx) })
	t.Run("upgrade", func(t *testing.T) { e.upgrade(t, ctx) })
	t.Run("config errors", func(t *testing.T) { e.configErrors(t, ctx) })
	t.Run("least privilege", func(t *testing.T) { e.leastPrivilege(t, ctx) })
	t.Run("uninstall", func(t *testing.T) { e.uninstall(t, ctx) })
	t.Run("uninstall without node state", func(t *testing.T) { e.uninstallNoState(t, ctx) })
}

func (e *e2e) kubectl(t *testing.T, ctx context.Context, stdin string, args ...string) string {
	t.Helper()
	var out string
	var err error
	if stdin != "" {
		out, err = e.c.KubectlStdin(ctx, strings.NewReader(stdin), args...)
	} else {
		out, err = e.c.Kubectl(ctx, args...)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// values are the chart's values as a k3s user changes them (the containerd
// and kubelet paths of this node), the scanner's hostPath dirs under the
// test's dir instead of the machine's /run and /var/lib, the image built
// here, the test's SIEM receiver, the profile and the test's OSV mirror.
func (e *e2e) values(sinks ...string) map[string]any {
	sock := e.c.Containerd().Address()
	return map[string]any{
		"image":                 map[string]any{"repository": "rootscan.test/rootscan", "tag": "kube-e2e", "digest": "", "pullPolicy": "Never"},
		"containerd":            map[string]any{"runDir": filepath.Dir(sock), "socket": filepath.Base(sock), "rootDir": e.c.Containerd().Root()},
		"kubelet":               map[string]any{"podsDir": filepath.Join(e.c.p.kubeletRoot, "pods")},
		"stateDir":              e.stateDir,
		"mountDir":              e.mountDir,
		"config":                map[string]any{"sinks": sinks},
		"profiles":              map[string]any{"app-config.yaml": appProfile},
		"vulnerabilityDatabase": e.mirror.values(),
	}
}

func (e *e2e) writeValues(t *testing.T, name string, v map[string]any) string {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// scannerPod is the name of the scanner's pod that is Ready.
func (e *e2e) scannerPod(t *testing.T, ctx context.Context) string {
	t.Helper()
	out := e.kubectl(t, ctx, "", "-n", "rootscan", "get", "pods", "-l", "app.kubernetes.io/instance=rootscan",
		"-o", `jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[1] == "True" {
			return f[0]
		}
	}
	t.Fatalf("no Ready scanner pod: %q", out)
	return ""
}

// metrics reads the scanner's /metrics through the API server's pod proxy.
func (e *e2e) metrics(ctx context.Context, pod string) (string, bool) {
	body, ok := e.c.get(ctx, e.c.p.apiURL()+"/api/v1/namespaces/rootscan/pods/"+pod+":9090/proxy/metrics")
	return string(body), ok
}

// waitMetrics polls /metrics until ok accepts it, and returns the last read.
func (e *e2e) waitMetrics(ctx context.Context, pod string, timeout time.Duration, ok func(string) bool) (string, bool) {
	deadline := time.Now().Add(timeout)
	var m string
	for time.Now().Before(deadline) {
		var got bool
		if m, got = e.metrics(ctx, pod); got && ok(m) {
			return m, true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return m, false
}

func (e *e2e) rollout(t *testing.T, ctx context.Context) {
	t.Helper()
	if _, err := e.c.Kubectl(ctx, "-n", "rootscan", "rollout", "status", "daemonset/rootscan", "--timeout=240s"); err != nil {
		desc, _ := e.c.Kubectl(ctx, "-n", "rootscan", "describe", "pods")
		logs, _ := e.c.Kubectl(ctx, "-n", "rootscan", "logs", "daemonset/rootscan", "--tail=50")
		t.Fatalf("DaemonSet not Ready: %v\n%s\nlogs:\n%s", err, desc, logs)
	}
}

// install creates the namespace as deploy/README.md says (labelled for Pod
// Security admission) and installs the chart.
func (e *e2e) install(t *testing.T, ctx context.Context) {
	e.kubectl(t, ctx, "", "create", "namespace", "rootscan")
	e.kubectl(t, ctx, "", "label", "namespace", "rootscan", "pod-security.kubernetes.io/enforce=privileged")
	e.mirror.createCASecret(t, ctx, e)
	values := e.writeValues(t, "values.yaml", e.values("stdout", e.recv.url))
	began := time.Now()
	if _, err := helmCmd(ctx, e.c, e.helm, e.dir, "install", "rootscan", "../../../deploy/helm/rootscan",
		"-n", "rootscan", "-f", values); err != nil {
		t.Fatal(err)
	}
	e.rollout(t, ctx)
	t.Logf("MEASURE DaemonSet Ready %v after helm install", time.Since(began).Round(time.Millisecond))
}

// workloadsYAML: a running pod with a writable root, a pod with a ConfigMap
// and a Secret volume and a read-only root, and a Job that completes, in two
// namespaces.
func workloadsYAML(appImage, jobImage string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: rstb-web}
---
apiVersion: v1
kind: Namespace
metadata: {name: rstb-batch}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: app-config, namespace: rstb-web}
data: {app.conf: "debug=false\n"}
---
apiVersion: v1
kind: Secret
metadata: {name: app-secret, namespace: rstb-web}
stringData: {token: "s3cret-token\n"}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: rstb-web}
spec:
  containers: [{name: app, image: %[1]s, imagePullPolicy: Never}]
---
apiVersion: v1
kind: Pod
metadata: {name: cfg, namespace: rstb-web}
spec:
  securityContext: {runAsUser: 65532, runAsNonRoot: true}
  containers:
  - name: app
    image: %[1]s
    imagePullPolicy: Never
    securityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false}
    volumeMounts:
    - {name: config, mountPath: /etc/app, readOnly: true}
    - {name: secret, mountPath: /etc/secret, readOnly: true}
  volumes:
  - {name: config, configMap: {name: app-config}}
  - {name: secret, secret: {secretName: app-secret}}
---
apiVersion: batch/v1
kind: Job
metadata: {name: once, namespace: rstb-batch}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: once, image: %[2]s, imagePullPolicy: Never, env: [{name: MSG, value: hello}]}]
`, appImage, jobImage)
}

// workloads checks the findings of the three workloads on /metrics and at
// the receiver.
func (e *e2e) workloads(t *testing.T, ctx context.Context) {
	began := time.Now()
	e.kubectl(t, ctx, workloadsYAML(e.appImage, e.jobImage), "apply", "-f", "-")
	e.kubectl(t, ctx, "", "-n", "rstb-batch", "wait", "--for=condition=complete", "job/once", "--timeout=180s")
	jobPod := strings.TrimSpace(e.kubectl(t, ctx, "", "-n", "rstb-batch", "get", "pods", "-l", "job-name=once", "-o", "jsonpath={.items[0].metadata.name}"))
	pod := e.scannerPod(t, ctx)
	want := [][]string{podLabels("rstb-web", "web", "app"), podLabels("rstb-web", "cfg", "app"), podLabels("rstb-batch", jobPod, "once")}
	m, ok := e.waitMetrics(ctx, pod, 2*time.Minute, func(m string) bool {
		for _, l := range want {
			// Compliance results are the last part of a scan to be published.
			if len(series(m, exporter.MetricComplianceControls, l...)) == 0 {
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("the workloads' series did not all appear within 2m of apply:\n%.4000s", m)
	}
	t.Logf("MEASURE running pod, completed Job and volume pod on /metrics %v after apply", time.Since(began).Round(time.Millisecond))
	for _, l := range want {
		if v := sum(series(m, exporter.MetricLastScanSuccess, l...)); v != 1 {
			t.Errorf("%s%v = %v, want 1", exporter.MetricLastScanSuccess, l, v)
		}
	}
	if own := series(m, exporter.MetricLastScanTimestamp, `namespace="rootscan"`); len(own) > 0 {
		t.Errorf("the scanner reports its own pod: %v", own)
	}

	// Compliance reads the ConfigMap and the Secret of the cfg pod: every
	// control passes there (the baseline on a distroless non-root read-only
	// container, and both app-config controls), while on the web pod, which
	// mounts neither, the two app-config controls do not pass.
	cfg := podLabels("rstb-web", "cfg", "app")
	passed := sum(series(m, exporter.MetricComplianceControls, append(cfg, `status="passed"`)...))
	notPassed := sum(series(m, exporter.MetricComplianceControls, cfg...)) - passed
	if passed != 14 || notPassed != 0 {
		t.Errorf("cfg pod: %v controls passed, %v did not; want the 12 baseline and 2 app-config controls passed:\n%s",
			passed, notPassed, strings.Join(series(m, exporter.MetricComplianceControls, cfg...), "\n"))
	}
	e.checkEvents(t, ctx, jobPod)
	logs := e.kubectl(t, ctx, "", "-n", "rootscan", "logs", pod)
	if w := volumeWarnings(logs); w != "" {
		t.Errorf("the daemon could not read a pod volume:\n%s", w)
	}
}

// checkEvents waits for the workloads' events at the receiver and checks the
// compliance and drift findings in them.
func (e *e2e) checkEvents(t *testing.T, ctx context.Context, jobPod string) {
	t.Helper()
	controlFailed := func(pod, id string) func(exporter.Event) bool {
		return func(ev exporter.Event) bool {
			return ev.Type == exporter.EventFindingOpened && ev.Namespace == "rstb-web" && ev.Pod == pod &&
				ev.Finding != nil && ev.Finding.Control != nil && ev.Finding.Control.ID == id
		}
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) && len(e.recv.matching(controlFailed("web", "app-config-02"))) == 0 {
		time.Sleep(200 * time.Millisecond)
	}
	for _, id := range []string{"app-config-01", "app-config-02"} {
		if len(e.recv.matching(controlFailed("web", id))) == 0 {
			t.Errorf("no finding.opened for %s on rstb-web/web (which mounts no ConfigMap or Secret) at the receiver", id)
		}
		if got := e.recv.matching(controlFailed("cfg", id)); len(got) > 0 {
			t.Errorf("%s failed on rstb-web/cfg, whose volumes hold the files: %s", id, got[0].Finding.Control.Message)
		}
	}
	if n := len(e.recv.matching(func(ev exporter.Event) bool { return ev.Namespace == "rstb-batch" && ev.Pod == jobPod })); n == 0 {
		t.Errorf("no event about the completed Job's pod %s at the receiver", jobPod)
	}
	if own := e.recv.matching(func(ev exporter.Event) bool { return ev.Namespace == "rootscan" }); len(own) > 0 {
		t.Errorf("%d events about the scanner's own pod, e.g. %+v", len(own), own[0])
	}
	// No drift finding names a mount point of the pods' volumes (or one of
	// its parents, which the runtime creates for it) or anything in the
	// service account token's dir.
	mountPoints := []string{"etc/app", "etc/secret", "var/run/secrets/kubernetes.io/serviceaccount", "etc/hosts",
		"etc/hostname", "etc/resolv.conf", "dev/termination-log"}
	// The runtime made the token's mount point in a writable container's
	// upper dir, so the check below has something to leave out.
	uppers, _ := filepath.Glob(filepath.Join(e.c.Containerd().Root(), "io.containerd.snapshotter.v1.overlayfs", "snapshots",
		"*", "fs", "var", "run", "secrets", "kubernetes.io", "serviceaccount"))
	if len(uppers) == 0 {
		t.Errorf("no container's upper dir holds the token's mount point: the drift check below checks nothing")
	}
	drift := e.recv.matching(func(ev exporter.Event) bool {
		return ev.Type == exporter.EventFindingOpened && ev.Finding != nil && ev.Finding.Drift != nil
	})
	for _, ev := range drift {
		p := strings.Trim(ev.Finding.Drift.Path, "/")
		for _, mp := range mountPoints {
			if p == mp || strings.HasPrefix(mp, p+"/") || strings.HasPrefix(p, mp+"/") {
				t.Errorf("drift finding on %s/%s/%s names the volume mount point %s: %s %s", ev.Namespace, ev.Pod, ev.Container,
					mp, ev.Finding.Drift.Change, ev.Finding.Drift.Path)
			}
		}
	}
	t.Logf("%d events at the receiver, %d drift findings", e.recv.count(), len(drift))
	if t.Failed() {
		for _, ev := range e.recv.matching(func(exporter.Event) bool { return true }) {
			var what string
			if f := ev.Finding; f != nil {
				what = string(f.Kind) + " " + f.Title
				if f.Control != nil {
					what += " " + f.Control.Status + " " + f.Control.Message
				}
			}
			t.Logf("event %s %s/%s/%s %s", ev.Type, ev.Namespace, ev.Pod, ev.Container, what)
		}
	}
}

// volumeWarnings are the daemon's warnings that a pod volume could not be
// read for compliance controls.
func volumeWarnings(logs string) string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "level=WARN") && strings.Contains(l, "volume not readable") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// criHas says whether the runtime still lists a container of the pod.
func (e *e2e) criHas(t *testing.T, ctx context.Context, ns, pod string) bool {
	t.Helper()
	resp, err := e.c.Containerd().Runtime().ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		LabelSelector: map[string]string{"io.kubernetes.pod.namespace": ns, "io.kubernetes.pod.name": pod}}})
	if err != nil {
		t.Fatalf("list containers: %v", err)
	}
	return len(resp.Containers) > 0
}

// latencyPods is how many pods podLifecycle starts one after another to
// measure pod creation to its series on /metrics.
const latencyPods = 20

// podLifecycle deletes a pod (its series go, container.removed arrives) and
// starts new ones (each is scanned within seconds), measuring the latency.
func (e *e2e) podLifecycle(t *testing.T, ctx context.Context) {
	pod := e.scannerPod(t, ctx)
	web := podLabels("rstb-web", "web", "app")
	removed := func(ev exporter.Event) bool {
		return ev.Type == exporter.EventContainerRemoved && ev.Namespace == "rstb-web" && ev.Pod == "web" && ev.Container == "app"
	}
	began := time.Now()
	e.kubectl(t, ctx, "", "-n", "rstb-web", "delete", "pod", "web", "--grace-period=1", "--wait=true")
	deleted := time.Since(began)
	// The kubelet removes a deleted pod's containers from the runtime when
	// it gets to it (its container GC runs every minute); the scanner's
	// series and event follow the runtime.
	var inCRI, onMetrics, eventAt time.Duration
	for time.Since(began) < 3*time.Minute && (inCRI == 0 || onMetrics == 0 || eventAt == 0) {
		if inCRI == 0 && !e.criHas(t, ctx, "rstb-web", "web") {
			inCRI = time.Since(began)
		}
		if m, ok := e.metrics(ctx, pod); ok && onMetrics == 0 && len(series(m, exporter.MetricLastScanTimestamp, web...)) == 0 {
			onMetrics = time.Since(began)
		}
		if eventAt == 0 && len(e.recv.matching(removed)) > 0 {
			eventAt = time.Since(began)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if onMetrics == 0 {
		t.Errorf("the deleted pod's series are still on /metrics after 3 minutes (container removed from the runtime after %v)", inCRI)
	}
	if eventAt == 0 {
		t.Errorf("no container.removed event for rstb-web/web/app at the receiver (container removed from the runtime after %v)", inCRI)
	}
	t.Logf("MEASURE deleted pod, after kubectl delete: gone from the API %v, its container removed from the runtime %v, "+
		"its series gone %v, container.removed received %v", deleted.Round(time.Millisecond), inCRI.Round(time.Millisecond),
		onMetrics.Round(time.Millisecond), eventAt.Round(time.Millisecond))

	var lat []time.Duration
	for i := range latencyPods {
		name := fmt.Sprintf("lat-%02d", i)
		start := time.Now()
		e.kubectl(t, ctx, "", "-n", "rstb-web", "run", name, "--image="+e.appImage, "--image-pull-policy=Never")
		l := podLabels("rstb-web", name, name)
		if _, ok := e.waitMetrics(ctx, pod, time.Minute, func(m string) bool {
			return len(series(m, exporter.MetricLastScanTimestamp, l...)) > 0
		}); !ok {
			t.Fatalf("pod %s never appeared on /metrics", name)
		}
		lat = append(lat, time.Since(start))
	}
	median, worst := durations(lat)
	t.Logf("MEASURE pod create to its series on /metrics through the kubelet, %d pods one after another: median %v, worst %v (all %v)",
		len(lat), median.Round(time.Millisecond), worst.Round(time.Millisecond), lat)
}

// nodePods is how many pods usage measures the scanner with, its own
// included.
const nodePods = 30

// usage fills the node up to nodePods pods and logs the scanner's memory
// and CPU once it has reported them all.
func (e *e2e) usage(t *testing.T, ctx context.Context) {
	pods := strings.Count(e.kubectl(t, ctx, "", "get", "pods", "-A", "--no-headers"), "\n")
	var fill []string
	for i := 0; pods+i < nodePods; i++ {
		name := fmt.Sprintf("fill-%02d", i)
		e.kubectl(t, ctx, "", "-n", "rstb-batch", "run", name, "--image="+e.appImage, "--image-pull-policy=Never")
		fill = append(fill, name)
	}
	pods += len(fill)
	if m, ok := e.waitMetrics(ctx, e.scannerPod(t, ctx), 2*time.Minute, func(m string) bool {
		for _, name := range fill {
			if len(series(m, exporter.MetricLastScanTimestamp, podLabels("rstb-batch", name, name)...)) == 0 {
				return false
			}
		}
		return true
	}); !ok {
		t.Fatalf("the scanner did not report all of %v:\n%s", fill, grepLines(m, exporter.MetricLastScanTimestamp))
	}
	u, err := scannerProcess(e.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MEASURE scanner process with %d pods on the node: RSS %.1f MiB, %.1f s CPU in %v (%.0f millicores on average)",
		pods, u.rssMiB, u.cpuSeconds, u.age.Round(time.Second), 1000*u.cpuSeconds/u.age.Seconds())
	if s, err := summaryUsage(ctx, e.c, "rootscan"); err != nil {
		t.Logf("kubelet summary API: %v", err)
	} else {
		t.Logf("MEASURE kubelet summary API: %s", s)
	}
}

// upgrade changes a value; the DaemonSet rolls its pod, and the new pod
// finds the state dir (image cache, spool, finding state) as the old left it.
func (e *e2e) upgrade(t *testing.T, ctx context.Context) {
	old := e.scannerPod(t, ctx)
	before := listFiles(t, e.stateDir)
	if len(before) == 0 {
		t.Fatalf("the scanner wrote nothing to its state dir %s", e.stateDir)
	}
	v := e.values("stdout", e.recv.url)
	v["extraArgs"] = []string{"--log-level=debug"}
	if _, err := helmCmd(ctx, e.c, e.helm, e.dir, "upgrade", "rootscan", "../../../deploy/helm/rootscan", "-n", "rootscan",
		"-f", e.writeValues(t, "upgrade.yaml", v)); err != nil {
		t.Fatal(err)
	}
	e.rollout(t, ctx)
	pod := e.scannerPod(t, ctx)
	if pod == old {
		t.Fatalf("helm upgrade with a changed value left the pod %s in place", pod)
	}
	after := map[string]bool{}
	for _, f := range listFiles(t, e.stateDir) {
		after[f] = true
	}
	for _, f := range before {
		if strings.Contains(f, "/images/") && !after[f] {
			t.Errorf("image cache entry %s lost across the upgrade", f)
		}
	}
	// The new pod reads the images from the cache, not the snapshots again.
	m, ok := e.waitMetrics(ctx, pod, time.Minute, func(m string) bool {
		return len(series(m, exporter.MetricLastScanTimestamp, podLabels("rstb-web", "cfg", "app")...)) > 0
	})
	if !ok {
		t.Fatalf("the upgraded scanner never reported rstb-web/cfg")
	}
	if hits := total(m, exporter.MetricCacheHitsTotal); hits == 0 {
		t.Errorf("the upgraded scanner had no image cache hit:\n%s", grepLines(m, "rootscan_cache_"))
	}
	e.noScannerPods(t, m)
}

// total adds up every sample of a metric, labelled or not.
func total(metrics, name string) float64 {
	var lines []string
	for _, l := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(l, name+" ") || strings.HasPrefix(l, name+"{") {
			lines = append(lines, l)
		}
	}
	return sum(lines)
}

// configError upgrades to values the daemon cannot start with: the pod
// fails, and the reason, which names want, is in its status (the terminated
// message) and its log.
func (e *e2e) configError(t *testing.T, ctx context.Context, what string, v map[string]any, want string) {
	if _, err := helmCmd(ctx, e.c, e.helm, e.dir, "upgrade", "rootscan", "../../../deploy/helm/rootscan", "-n", "rootscan",
		"-f", e.writeValues(t, "bad.yaml", v)); err != nil {
		t.Fatal(err)
	}
	var msg string
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) && !strings.Contains(msg, want) {
		time.Sleep(time.Second)
		msg, _ = e.c.Kubectl(ctx, "-n", "rootscan", "get", "pods", "-l", "app.kubernetes.io/instance=rootscan", "-o",
			`jsonpath={range .items[*].status.containerStatuses[*]}{.state.terminated.message}{.lastState.terminated.message}{end}`)
	}
	if !strings.Contains(msg, want) {
		desc, _ := e.c.Kubectl(ctx, "-n", "rootscan", "describe", "pods")
		t.Errorf("the pod's status does not say what is wrong with the %s (%q): terminated message %q\n%s", what, want, msg, desc)
	} else {
		t.Logf("pod status after a %s: %s", what, strings.TrimSpace(msg))
	}
	pods := e.kubectl(t, ctx, "", "-n", "rootscan", "get", "pods", "-l", "app.kubernetes.io/instance=rootscan",
		"-o", `jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}`)
	var logs string
	for _, pod := range strings.Fields(pods) {
		prev, _ := e.c.Kubectl(ctx, "-n", "rootscan", "logs", pod, "--previous")
		cur, _ := e.c.Kubectl(ctx, "-n", "rootscan", "logs", pod)
		logs += prev + cur
	}
	if !strings.Contains(logs, want) {
		t.Errorf("the pod's log does not name the %s (%q):\n%s", what, want, logs)
	}
}

// configErrors are a sink URL of an unknown kind and a profile whose check
// does not compile; then the good values bring the scanner back.
func (e *e2e) configErrors(t *testing.T, ctx context.Context) {
	t.Run("bad sink", func(t *testing.T) {
		e.configError(t, ctx, "bad sink URL", e.values("htp://siem.invalid/events"), `sink "htp://siem.invalid/events": unknown kind`)
	})
	t.Run("broken profile", func(t *testing.T) {
		v := e.values("stdout", e.recv.url)
		v["profiles"] = map[string]any{"broken.yaml": "name: broken\ncontrols:\n  - id: broken-01\n    title: t\n    impact: 0.5\n" +
			"    checks:\n      - expr: file(\"/etc/app/app.conf\").size > \"big\"\n"}
		e.configError(t, ctx, "broken profile", v, "/etc/rootscan-profiles/broken.yaml:")
	})
	if _, err := helmCmd(ctx, e.c, e.helm, e.dir, "upgrade", "rootscan", "../../../deploy/helm/rootscan", "-n", "rootscan",
		"-f", filepath.Join(e.dir, "values.yaml")); err != nil {
		t.Fatal(err)
	}
	e.rollout(t, ctx)
}

// noScannerPods checks that no scanner pod, neither the running one nor an
// older revision's or a crashed one's the kubelet still keeps, is on /metrics
// or was ever sent to the receiver.
func (e *e2e) noScannerPods(t *testing.T, metrics string) {
	t.Helper()
	if own := series(metrics, exporter.MetricLastScanTimestamp, `namespace="rootscan"`); len(own) > 0 {
		t.Errorf("the scanner reports scanner pods: %v", own)
	}
	if own := e.recv.matching(func(ev exporter.Event) bool { return ev.Namespace == "rootscan" }); len(own) > 0 {
		t.Errorf("%d events about scanner pods, e.g. %s %s/%s", len(own), own[0].Type, own[0].Namespace, own[0].Pod)
		// Which daemon sent them, and when, is what tells one cause from another: name every one, and say which
		// scanner pods there were and what they logged.
		for _, ev := range own {
			t.Logf("event about a scanner pod: %s at %s node %s pod %s container %s (%s) error %q", ev.Type,
				ev.Time.Format(time.RFC3339Nano), ev.Node, ev.Pod, ev.Container, ev.ContainerID, ev.Error)
		}
		pods, _ := e.c.Kubectl(context.Background(), "-n", "rootscan", "get", "pods", "-o", "wide", "--show-labels")
		t.Logf("scanner pods now:\n%s", pods)
		names, _ := e.c.Kubectl(context.Background(), "-n", "rootscan", "get", "pods", "-o",
			`jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}`)
		for _, pod := range strings.Fields(names) {
			logs, _ := e.c.Kubectl(context.Background(), "-n", "rootscan", "logs", pod, "--tail=40")
			t.Logf("log of %s:\n%s", pod, logs)
		}
	}
}

// leastPrivilege upgrades to leastPrivilege=true (two capabilities instead
// of privileged, the runtime's seccomp profile, AppArmor unconfined) on the
// same kubelet. deploy/README.md says it works where the nodes' security
// modules allow it; this node enforces no LSM on containers, so the pod must
// become Ready and scan (mount its overlays) as the privileged one does.
func (e *e2e) leastPrivilege(t *testing.T, ctx context.Context) {
	v := e.values("stdout", e.recv.url)
	v["leastPrivilege"] = true
	if _, err := helmCmd(ctx, e.c, e.helm, e.dir, "upgrade", "rootscan", "../../../deploy/helm/rootscan", "-n", "rootscan",
		"-f", e.writeValues(t, "least.yaml", v)); err != nil {
		t.Fatal(err)
	}
	e.rollout(t, ctx)
	pod := e.scannerPod(t, ctx)
	if priv := e.kubectl(t, ctx, "", "-n", "rootscan", "get", "pod", pod, "-o", "jsonpath={.spec.containers[0].securityContext.privileged}"); priv != "false" {
		t.Fatalf("leastPrivilege=true pod has privileged=%q", priv)
	}
	// A pod started now is read from its snapshot (the image cache has its
	// image, but a container's own upper dir is mounted for drift).
	e.kubectl(t, ctx, "", "-n", "rstb-web", "run", "least", "--image="+e.appImage, "--image-pull-policy=Never")
	l := podLabels("rstb-web", "least", "least")
	if m, ok := e.waitMetrics(ctx, pod, time.Minute, func(m string) bool {
		return len(series(m, exporter.MetricLastScanSuccess, l...)) > 0
	}); !ok || sum(series(m, exporter.MetricLastScanSuccess, l...)) != 1 {
		logs, _ := e.c.Kubectl(ctx, "-n", "rootscan", "logs", pod, "--tail=30")
		t.Errorf("the least-privilege scanner did not scan rstb-web/least: %v\n%s", series(m, exporter.MetricLastScanSuccess, l...), logs)
	} else {
		e.noScannerPods(t, m)
	}
	if logs, _ := e.c.Kubectl(ctx, "-n", "rootscan", "logs", pod); volumeWarnings(logs) != "" {
		t.Errorf("the least-privilege scanner cannot read pod volumes:\n%s", volumeWarnings(logs))
	}
}

// uninstall removes the release: no scanner process or mount is left on the
// node, and of the scanner's dirs only the state dir holds files (the chart
// keeps it so a reinstall neither rescans every image nor loses spooled
// events).
func (e *e2e) uninstall(t *testing.T, ctx context.Context) {
	e.helmUninstall(t, ctx)
	if len(listFiles(t, e.stateDir)) == 0 {
		t.Errorf("the state dir %s the chart keeps is empty", e.stateDir)
	}
}

// uninstallNoState installs the chart again with persistState=false, lets it
// scan (so it writes its image cache), and uninstalls it: no file of the
// scanner's is left on the node, neither at stateDir (never created: the
// state is an emptyDir) nor in the pod's own kubelet dir, which holds that
// emptyDir, nor in the mount dir.
func (e *e2e) uninstallNoState(t *testing.T, ctx context.Context) {
	stateDir := e.stateDir
	e.stateDir = filepath.Join(e.dir, "state-ephemeral")
	defer func() { e.stateDir = stateDir }()
	v := e.values("stdout")
	v["persistState"] = false
	if _, err := helmCmd(ctx, e.c, e.helm, e.dir, "install", "rootscan", "../../../deploy/helm/rootscan",
		"-n", "rootscan", "-f", e.writeValues(t, "no-state.yaml", v)); err != nil {
		t.Fatal(err)
	}
	e.rollout(t, ctx)
	pod := e.scannerPod(t, ctx)
	if _, ok := e.waitMetrics(ctx, pod, time.Minute, func(m string) bool {
		return len(series(m, exporter.MetricLastScanTimestamp, podLabels("rstb-web", "cfg", "app")...)) > 0
	}); !ok {
		t.Fatalf("the scanner without node state never reported rstb-web/cfg")
	}
	uid := strings.TrimSpace(e.kubectl(t, ctx, "", "-n", "rootscan", "get", "pod", pod, "-o", "jsonpath={.metadata.uid}"))
	podDir := filepath.Join(e.c.p.kubeletRoot, "pods", uid)
	if len(listFiles(t, filepath.Join(podDir, "volumes", "kubernetes.io~empty-dir", "state"))) == 0 {
		t.Errorf("the scanner wrote nothing to its emptyDir state in %s", podDir)
	}
	e.helmUninstall(t, ctx)
	if left := listFiles(t, e.stateDir); len(left) > 0 {
		t.Errorf("files left at the state dir %s with persistState=false: %v", e.stateDir, left)
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(podDir); os.IsNotExist(err) {
			return
		}
		time.Sleep(time.Second)
	}
	t.Errorf("the kubelet left the scanner pod's dir %s: %v", podDir, listFiles(t, podDir))
}

// helmUninstall uninstalls the release and checks that no object, scanner
// process, mount or file in the mount dir is left.
func (e *e2e) helmUninstall(t *testing.T, ctx context.Context) {
	t.Helper()
	if _, err := helmCmd(ctx, e.c, e.helm, e.dir, "uninstall", "rootscan", "-n", "rootscan", "--wait", "--timeout=3m"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if out, _ := e.c.Kubectl(ctx, "-n", "rootscan", "get", "pods", "--no-headers"); strings.TrimSpace(out) == "" {
			break
		}
		time.Sleep(time.Second)
	}
	if out := e.kubectl(t, ctx, "", "get", "all,configmaps,serviceaccounts,priorityclasses", "-A", "-l", "app.kubernetes.io/instance=rootscan", "--no-headers"); strings.TrimSpace(out) != "" {
		t.Errorf("objects of the release left:\n%s", out)
	}
	if u, err := scannerProcess(e.stateDir); err == nil {
		t.Errorf("scanner process %d still runs", u.pid)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mi), "\n") {
		if strings.Contains(line, e.mountDir) || strings.Contains(line, e.stateDir) {
			t.Errorf("mount left on the node: %s", line)
		}
	}
	points, err := fsaccess.MountPointsUnder(e.mountDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(points) > 0 {
		t.Errorf("mount points left under the scanner's mount dir: %v", points)
	}
	if left := listFiles(t, e.mountDir); len(left) > 0 {
		t.Errorf("files left in the scanner's mount dir: %v", left)
	}
	// The daemon removes each container's mount point dir when it unmounts it; only the dirs the chart names
	// (the hostPath and the daemon's mounts/ in it) may stay.
	if err := filepath.WalkDir(e.mountDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && p != e.mountDir && p != filepath.Join(e.mountDir, "mounts") {
			t.Errorf("left in the scanner's mount dir: %s", p)
		}
		return err
	}); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
}

// listFiles lists the non-directories under dir, relative to it.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && p == dir {
				return filepath.SkipDir
			}
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, "/"+rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
