package deploy

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/rootscan/rootscan/bpf/bpftest"
	"github.com/rootscan/rootscan/exporter"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/internal/imagebuild"
	"github.com/rootscan/rootscan/internal/servertls/testpki"
	"github.com/rootscan/rootscan/internal/testbed"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
)

// TestDaemonSetPodScans runs the scanner the way the kustomize base's DaemonSet does, in the project's private
// containerd: the pod spec's security context, volumes, read-only flags and propagation are translated to CRI
// config as kubelet would, with the node paths moved to the testbed's. The scanner, inside its pod, must then scan
// a distroless container next to it completely and leave no mount on the node, both as the base deploys it
// (privileged), as the least-privilege overlay does (two capabilities, seccomp RuntimeDefault) and as the metrics-tls
// overlay does (its Secret mounted, ready on the plain health port, /metrics only over TLS with a client
// certificate); with neither the privilege nor the capabilities it must fail, which is why the manifests ask for them.
//
// The pod runs the project's image (as `make image` builds it) with the manifest's args and ConfigMap; the only difference from a cluster,
// forced by the testbed, is the node network (no CNI), so --listen moves to a free loopback port.
func TestDaemonSetPodScans(t *testing.T) {
	bed := testbed.StartT(t, testbed.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bpftest.EnsureTracefs(t)

	img, err := ociimage.Distroless(ctx, ociimage.DefaultCacheDir())
	if err != nil {
		t.Fatal(err)
	}
	target, err := bed.Import(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	appPod, err := bed.RunPod(ctx, testbed.PodSpec{Name: "web-0", Namespace: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	app, err := bed.RunContainer(ctx, appPod, testbed.ContainerSpec{Name: "app", Image: target.Name})
	if err != nil {
		t.Fatal(err)
	}
	scanner, err := bed.Import(ctx, scannerImage(t, ctx))
	if err != nil {
		t.Fatal(err)
	}

	var ds appsv1.DaemonSet
	base := baseFiles(t, "kustomize/base")
	strict(t, find(t, base, "DaemonSet"), &ds)
	var cm corev1.ConfigMap
	strict(t, find(t, base, "ConfigMap"), &cm)

	for _, variant := range []string{"base", "least-privilege", "metrics-tls"} {
		t.Run(variant, func(t *testing.T) {
			spec := ds.Spec.Template.Spec
			if variant != "base" {
				var lp appsv1.DaemonSet
				strict(t, find(t, renderKustomize(t, "kustomize/"+variant), "DaemonSet"), &lp)
				spec = lp.Spec.Template.Spec
			}
			env := podEnv{cm: cm}
			if variant == "metrics-tls" {
				env = metricsTLSEnv(t, cm)
			}
			checkScannerPod(t, ctx, bed, scanner, spec, env, "rootscan-"+variant, img, app)
		})
	}
	t.Run("no privilege", func(t *testing.T) {
		spec := *ds.Spec.Template.Spec.DeepCopy()
		f := false
		spec.Containers[0].SecurityContext.Privileged = &f
		_, stderr, code, _, metrics := runScannerPod(t, ctx, bed, scanner, spec, podEnv{cm: cm}, "rootscan-b")
		if metrics != "" {
			t.Fatalf("without privileged the daemon still came up (exit %d): the manifest asks for more than it "+
				"needs; drop the privilege and update the comment", code)
		}
		// Its first mount (making its mount dir a private bind) is refused: mount(2) needs CAP_SYS_ADMIN.
		if code == 0 || !bytes.Contains(stderr, []byte("operation not permitted")) {
			t.Errorf("unprivileged scanner: exit %d, stderr %q; want a failure with EPERM", code, stderr)
		}
	})
}

// podEnv is what the pod spec refers to besides the node: the ConfigMap, the files of its Secret volume (the
// metrics TLS Secret), and the client /metrics is scraped with (nil: plain HTTP).
type podEnv struct {
	cm     corev1.ConfigMap
	secret map[string][]byte
	client *http.Client
}

// metricsTLSEnv is the metrics-tls overlay's Secret, as cert-manager would write it, and a client with a
// certificate of its ca.crt.
func metricsTLSEnv(t *testing.T, cm corev1.ConfigMap) podEnv {
	t.Helper()
	serverCA, clientCA := testpki.NewCA(t, "server CA"), testpki.NewCA(t, "prometheus CA")
	server := serverCA.Server(t, "rootscan")
	conf := &tls.Config{RootCAs: serverCA.Pool(), Certificates: []tls.Certificate{clientCA.Client(t, "prometheus").TLS(t)}}
	return podEnv{cm: cm,
		secret: map[string][]byte{"tls.crt": server.CertPEM, "tls.key": server.KeyPEM, "ca.crt": clientCA.PEM},
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: conf}}}
}

// checkScannerPod runs the scanner with the pod spec and checks it scanned the app container completely, left no
// mount on the node and left the app running.
func checkScannerPod(t *testing.T, ctx context.Context, bed *testbed.Containerd, scanner testbed.ImageRef,
	spec corev1.PodSpec, env podEnv, name string, img *ociimage.Image, app string) {
	t.Helper()
	out, _, code, mountsDir, metrics := runScannerPod(t, ctx, bed, scanner, spec, env, name)
	if code != 0 {
		t.Fatalf("scanner exited %d after SIGTERM\n%.3000s", code, out)
	}
	if metrics == "" {
		t.Fatal("the daemon never became ready")
	}
	labels := []string{`namespace="shop"`, `pod="web-0"`, `container="app"`, `node="node-under-test"`}
	if v, ok := seriesValue(metrics, exporter.MetricPackages, append(labels, `ecosystem="Debian"`)...); !ok || int(v) != len(img.Packages()) {
		t.Errorf("%s{ecosystem=Debian} for shop/web-0/app = %v (found %v), want the image's %d packages (NODE_NAME from the pod spec)",
			exporter.MetricPackages, v, ok, len(img.Packages()))
	}
	if v, ok := seriesValue(metrics, exporter.MetricLastScanSuccess, labels...); !ok || v != 1 {
		t.Errorf("%s for the app container = %v (found %v), want 1", exporter.MetricLastScanSuccess, v, ok)
	}
	// eBPF runs in the pod (privileged, or CAP_BPF and CAP_PERFMON) and attributes the app container through the
	// node's /proc and cgroup hierarchy the manifest mounts; tracefs (mounted on the node by the test) gives the
	// mapping tracepoint.
	node := `node="node-under-test"`
	for _, m := range [][]string{{exporter.MetricEBPFAvailable, node}, {exporter.MetricEBPFWatched, node},
		{exporter.MetricEBPFStatus, node, `reason="loaded"`}} {
		if v, ok := seriesValue(metrics, m[0], m[1:]...); !ok || v != 1 {
			t.Errorf("%s%v = %v (found %v), want 1; the series: %s", m[0], m[1:], v, ok, grepLines(metrics, "rootscan_ebpf"))
		}
	}
	// Its own pod (POD_NAME and POD_NAMESPACE from the downward API) is left out.
	if own := `pod="` + name + `"`; strings.Contains(metrics, own) {
		t.Errorf("the scanner reports its own pod (%s) on /metrics", own)
	}
	// The ConfigMap's stdout sink: the app container's findings as ECS JSON lines.
	if !bytes.Contains(out, []byte(app)) {
		t.Errorf("no SIEM event about the app container on the daemon's stdout:\n%.2000s", out)
	}
	points, err := fsaccess.MountPointsUnder(mountsDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(points) != 0 {
		t.Errorf("the scanner's mounts reached the node: %v", points)
	}
	st, err := bed.Runtime().ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: app})
	if err != nil || st.Status.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("app container after the scan: %v %v, want still running", st.GetStatus().GetState(), err)
	}
}

// scannerImage is the image `make image` builds, from this work tree, named by the pinned repository: the pod runs
// it as kubelet would run the manifests' image (its entrypoint, the manifests' args).
func scannerImage(t *testing.T, ctx context.Context) *ociimage.Image {
	t.Helper()
	img, err := imagebuild.Build(ctx, imagebuild.Options{
		Source:     imagebuild.Source{Dir: "..", Version: "deploy-test"},
		Repository: pinned(t).Repository,
	})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// runScannerPod translates a DaemonSet pod spec into a CRI pod and container, as kubelet would, runs it to
// completion and returns the scanner's stdout and stderr, its exit code and the node directory behind its mount dir.
func runScannerPod(t *testing.T, ctx context.Context, bed *testbed.Containerd, image testbed.ImageRef,
	pod corev1.PodSpec, env podEnv, name string) (stdout, stderr []byte, code int32, mountsDir string, metrics string) {
	t.Helper()
	var listen, health string
	cm := env.cm
	// Node paths of the manifest, moved to the testbed's.
	scratch := t.TempDir()
	mountsDir = filepath.Join(scratch, "run-rootscan")
	nodePath := map[string]string{
		"/run/containerd":     bed.Dir(),
		"/var/lib/containerd": bed.Root(),
		"/run/rootscan":       mountsDir,
		"/var/lib/rootscan":   filepath.Join(scratch, "state"),
		"/var/lib/kubelet":    sharedDir(t, filepath.Join(scratch, "kubelet")),
	}
	moved := func(s string) string {
		for from, to := range nodePath {
			if s == from || strings.HasPrefix(s, from+"/") {
				return to + strings.TrimPrefix(s, from)
			}
		}
		return s
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	privileged := sc != nil && sc.Privileged != nil && *sc.Privileged

	var mounts []*runtimeapi.Mount
	for _, vm := range c.VolumeMounts {
		var vol *corev1.Volume
		for i := range pod.Volumes {
			if pod.Volumes[i].Name == vm.Name {
				vol = &pod.Volumes[i]
			}
		}
		if vol == nil {
			t.Fatalf("volume %s not declared", vm.Name)
		}
		var host string
		containerPath := vm.MountPath
		switch {
		case vol.HostPath != nil:
			if vm.MountPath == "/run/containerd" || vm.MountPath == "/var/lib/containerd" || vm.MountPath == "/var/lib/kubelet/pods" {
				// containerd and the CRI answer with node paths, so their dirs are mounted at the node path: in the
				// testbed too.
				containerPath = moved(vm.MountPath)
			}
			host = moved(vol.HostPath.Path)
			if vol.HostPath.Type != nil && (*vol.HostPath.Type == corev1.HostPathDirectoryOrCreate || vm.Name == "kubelet-pods") {
				if err := os.MkdirAll(host, 0o755); err != nil {
					t.Fatal(err)
				}
			}
		case vol.ConfigMap != nil:
			host = filepath.Join(scratch, "configmap-"+vol.Name)
			if err := os.MkdirAll(host, 0o755); err != nil {
				t.Fatal(err)
			}
			for k, v := range cm.Data {
				if err := os.WriteFile(filepath.Join(host, k), []byte(v), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		case vol.Secret != nil:
			host = filepath.Join(scratch, "secret-"+vol.Name)
			if err := os.MkdirAll(host, 0o755); err != nil {
				t.Fatal(err)
			}
			for k, v := range env.secret {
				if err := os.WriteFile(filepath.Join(host, k), v, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		case vol.EmptyDir != nil:
			host = filepath.Join(scratch, "emptydir-"+vol.Name)
			if err := os.MkdirAll(host, 0o777); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("volume %s: unsupported source", vol.Name)
		}
		propagation := runtimeapi.MountPropagation_PROPAGATION_PRIVATE
		if vm.MountPropagation != nil {
			switch *vm.MountPropagation {
			case corev1.MountPropagationHostToContainer:
				propagation = runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER
			case corev1.MountPropagationBidirectional:
				propagation = runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL
			}
		}
		mounts = append(mounts, &runtimeapi.Mount{ContainerPath: containerPath, HostPath: host,
			Readonly: vm.ReadOnly, Propagation: propagation})
	}

	freePort := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	var args []string
	for _, a := range c.Args {
		switch {
		case strings.HasPrefix(a, "--listen="):
			// The pod shares the node network here (no CNI): free ports instead of the manifest's :9090 and :9091.
			listen = freePort()
			args = append(args, "--listen="+listen)
		case strings.HasPrefix(a, "--health-listen="):
			health = freePort()
			args = append(args, "--health-listen="+health)
		case strings.HasPrefix(a, "--runtime-endpoint=unix://"):
			args = append(args, "--runtime-endpoint=unix://"+moved(strings.TrimPrefix(a, "--runtime-endpoint=unix://")))
		default:
			args = append(args, a)
		}
	}
	var envs []*runtimeapi.KeyValue
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			field := map[string]string{"spec.nodeName": "node-under-test", "metadata.name": name, "metadata.namespace": "rootscan"}
			v, ok := field[e.ValueFrom.FieldRef.FieldPath]
			if !ok {
				t.Fatalf("env %s: unsupported fieldRef %s", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
			envs = append(envs, &runtimeapi.KeyValue{Key: e.Name, Value: []byte(v)})
		case e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil:
			q := c.Resources.Limits[corev1.ResourceName(e.ValueFrom.ResourceFieldRef.Resource[len("limits."):])]
			envs = append(envs, &runtimeapi.KeyValue{Key: e.Name, Value: []byte(fmt.Sprint(q.Value()))})
		case e.ValueFrom == nil:
			envs = append(envs, &runtimeapi.KeyValue{Key: e.Name, Value: []byte(e.Value)})
		}
	}

	uid := fmt.Sprintf("%s-%d", name, time.Now().UnixNano())
	ns := &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_POD,
		Ipc: runtimeapi.NamespaceMode_POD}
	if pod.HostPID || pod.HostIPC {
		t.Fatal("host PID or IPC namespace in the pod spec")
	}
	logDir := filepath.Join(scratch, "pod-logs")
	if err := os.MkdirAll(filepath.Join(logDir, c.Name), 0o755); err != nil {
		t.Fatal(err)
	}
	sandbox := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "rootscan", Uid: uid},
		LogDirectory: logDir,
		Labels: map[string]string{testbed.LabelPodName: name, testbed.LabelPodNamespace: "rootscan",
			testbed.LabelPodUID: uid},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent:    bed.CgroupParent() + "/pod" + uid,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: ns, Privileged: privileged},
		},
	}
	rt := bed.Runtime()
	ps, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sandbox})
	if err != nil {
		t.Fatalf("run scanner pod: %v", err)
	}
	t.Cleanup(func() {
		if err := bed.RemovePod(context.Background(), ps.PodSandboxId); err != nil {
			t.Errorf("remove scanner pod: %v", err)
		}
	})
	csc := &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: ns, Privileged: privileged}
	if sc != nil {
		csc.ReadonlyRootfs = sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem
		if sc.RunAsUser != nil {
			csc.RunAsUser = &runtimeapi.Int64Value{Value: *sc.RunAsUser}
		}
		if caps := sc.Capabilities; caps != nil {
			csc.Capabilities = &runtimeapi.Capability{}
			for _, c := range caps.Add {
				csc.Capabilities.AddCapabilities = append(csc.Capabilities.AddCapabilities, string(c))
			}
			for _, c := range caps.Drop {
				csc.Capabilities.DropCapabilities = append(csc.Capabilities.DropCapabilities, string(c))
			}
		}
		profile := func(typ string) *runtimeapi.SecurityProfile {
			switch typ {
			case "RuntimeDefault":
				return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
			case "Unconfined":
				return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}
			}
			t.Fatalf("security profile type %q not translated", typ)
			return nil
		}
		if sc.SeccompProfile != nil {
			csc.Seccomp = profile(string(sc.SeccompProfile.Type))
		}
		if sc.AppArmorProfile != nil {
			csc.Apparmor = profile(string(sc.AppArmorProfile.Type))
		}
		if o := sc.SELinuxOptions; o != nil {
			csc.SelinuxOptions = &runtimeapi.SELinuxOption{User: o.User, Role: o.Role, Type: o.Type, Level: o.Level}
		}
	}
	cc, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: ps.PodSandboxId,
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: c.Name},
			Image:    &runtimeapi.ImageSpec{Image: image.ID, UserSpecifiedImage: image.Name},
			Args:     args, // no command: the image's entrypoint, as the manifests leave it
			Envs:     envs,
			Mounts:   mounts,
			Labels: map[string]string{testbed.LabelPodName: name, testbed.LabelPodNamespace: "rootscan",
				testbed.LabelPodUID: uid, testbed.LabelContainerName: c.Name},
			LogPath: filepath.Join(c.Name, "0.log"),
			Linux:   &runtimeapi.LinuxContainerConfig{SecurityContext: csc},
		},
		SandboxConfig: sandbox,
	})
	if err != nil {
		t.Fatalf("create scanner container: %v", err)
	}
	if err := bed.StartContainer(ctx, cc.ContainerId); err != nil {
		t.Fatalf("start scanner container: %v", err)
	}
	for {
		st, err := rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: cc.ContainerId})
		if err != nil {
			t.Fatalf("scanner status: %v", err)
		}
		if st.Status.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			code = st.Status.ExitCode
			break
		}
		// The daemon runs until stopped: once its first node check is done (asked where the probes ask), keep what
		// /metrics says and stop it as kubelet does (SIGTERM, then the grace period).
		if metrics == "" && listen != "" && httpOK("http://"+cmp.Or(health, listen)+"/readyz") {
			metrics = scrapeMetrics(t, env.client, listen)
			if err := bed.StopContainer(ctx, cc.ContainerId, 30*time.Second); err != nil {
				t.Fatalf("stop scanner: %v", err)
			}
			continue
		}
		select {
		case <-ctx.Done():
			t.Fatalf("scanner did not finish: %v", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	stdout, stderr = criLog(t, filepath.Join(logDir, c.Name, "0.log"))
	if code != 0 || testing.Verbose() {
		t.Logf("scanner %s stderr:\n%.4000s", name, stderr)
	}
	return stdout, stderr, code, mountsDir, metrics
}

func httpOK(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// scrapeMetrics reads /metrics at addr: over plain HTTP without a client, else over HTTPS with it, after checking
// that plain HTTP and a client without a certificate get nothing.
func scrapeMetrics(t *testing.T, client *http.Client, addr string) string {
	t.Helper()
	if client == nil {
		return httpBody(t, http.DefaultClient, "http://"+addr+"/metrics")
	}
	if body := httpBody(t, http.DefaultClient, "http://"+addr+"/metrics"); strings.Contains(body, exporter.MetricScansTotal) {
		t.Error("/metrics answered plain HTTP on the TLS port")
	}
	anonymous := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: client.Transport.(*http.Transport).TLSClientConfig.RootCAs}}}
	if resp, err := anonymous.Get("https://" + addr + "/metrics"); err == nil {
		resp.Body.Close()
		t.Error("a client without a certificate got /metrics")
	}
	return httpBody(t, client, "https://"+addr+"/metrics")
}

func httpBody(t *testing.T, client *http.Client, url string) string {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	return string(b)
}

// seriesValue is the value of the series of name whose label set contains every given label="value" pair.
func seriesValue(body, name string, labels ...string) (float64, bool) {
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(line, l) {
				ok = false
			}
		}
		if ok {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			return v, err == nil
		}
	}
	return 0, false
}

// criLog reads a CRI container log ("<time> <stream> <P|F> <text>" lines; P is a partial line continued by the
// next) back into the container's stdout and stderr.
func criLog(t *testing.T, path string) (stdout, stderr []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("scanner log: %v", err)
	}
	var out, errb bytes.Buffer
	s := bufio.NewScanner(bytes.NewReader(data))
	s.Buffer(make([]byte, 0, 1<<20), 1<<24)
	for s.Scan() {
		parts := strings.SplitN(s.Text(), " ", 4)
		if len(parts) < 3 {
			continue
		}
		w := &out
		if parts[1] == "stderr" {
			w = &errb
		}
		if len(parts) == 4 {
			w.WriteString(parts[3])
		}
		if parts[2] == "F" {
			w.WriteByte('\n')
		}
	}
	if err := s.Err(); err != nil {
		t.Fatalf("scanner log: %v", err)
	}
	return out.Bytes(), errb.Bytes()
}

// grepLines returns the lines of s that contain sub, for failure messages.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// sharedDir makes dir a shared mount, as kubelet makes its root dir (rshared) at start, so that the CRI accepts a
// HostToContainer mount of a dir below it; the mount goes when the test ends.
func sharedDir(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	if err := unix.Mount("", dir, "", unix.MS_SHARED, ""); err != nil {
		t.Fatalf("make %s shared: %v", dir, err)
	}
	return dir
}
