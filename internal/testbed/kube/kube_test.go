package kube

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rootscan/rootscan/internal/testbed"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
)

// jobSrc is the Job's program: it prints the message the Job's spec gives it
// and exits 0, so the test sees the spec reach the container and the log
// come back through the kubelet.
const jobSrc = `package main

import (
	"fmt"
	"os"
)

func main() { fmt.Println("rootscan kube job says", os.Getenv("MSG")) }
`

// TestClusterRunsPodsAndStopsClean starts the cluster, runs a long-lived pod
// and a Job from images imported into the node's containerd, reads a log
// through the API server, then stops the cluster and checks that the host is
// as it was.
func TestClusterRunsPodsAndStopsClean(t *testing.T) {
	Require(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// The host as it is without clusters: first undo what a killed earlier
	// run may have left (Start would, after the snapshot below).
	sweepNow(t, ctx)
	hostBefore := Sysctls()
	logsBefore := listDir(t, "/var/log/containers")
	existed := map[string]bool{}
	for _, d := range hostDirs {
		_, err := os.Lstat(d)
		existed[d] = err == nil
	}

	began := time.Now()
	c, err := Start(ctx, Options{})
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Logf("cluster start to node Ready: %v", time.Since(began).Round(time.Millisecond))
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			if t.Failed() {
				t.Logf("logs:%s", c.LogTails(6144))
			}
			_ = c.Stop()
		}
	})
	root, bridge, netName, pids := c.Root(), c.Bridge(), c.netName, c.Pids()

	appRef := importDistroless(t, ctx, c)
	jobRef, err := c.Containerd().Import(ctx, jobImage(t))
	if err != nil {
		t.Fatal(err)
	}

	kubectl := func(stdin string, args ...string) string {
		t.Helper()
		var in io.Reader
		if stdin != "" {
			in = strings.NewReader(stdin)
		}
		out, err := c.KubectlStdin(ctx, in, args...)
		if err != nil {
			t.Fatalf("%v\nlogs:%s", err, c.LogTails(4096))
		}
		return out
	}
	kubectl("", "create", "namespace", "rstb-test")
	msg := "token-" + randomHex(4)
	podStart := time.Now()
	kubectl(workloads(appRef.Name, jobRef.Name, msg), "apply", "-f", "-")
	kubectl("", "-n", "rstb-test", "wait", "--for=jsonpath={.status.phase}=Running", "pod/app", "--timeout=180s")
	t.Logf("first pod Running: %v after apply", time.Since(podStart).Round(time.Millisecond))

	podIP := net.ParseIP(strings.TrimSpace(kubectl("", "-n", "rstb-test", "get", "pod", "app", "-o", "jsonpath={.status.podIP}")))
	if podIP == nil || !c.PodSubnet().Contains(podIP) {
		t.Errorf("pod IP %v is not in the pod subnet %v", podIP, c.PodSubnet())
	}
	kubectl("", "-n", "rstb-test", "wait", "--for=condition=complete", "job/say", "--timeout=180s")
	if out := kubectl("", "-n", "rstb-test", "logs", "job/say"); !strings.Contains(out, "rootscan kube job says "+msg) {
		t.Errorf("job log = %q, want the message %q", out, msg)
	}
	if out := kubectl("", "-n", "rstb-test", "logs", "app"); !strings.Contains(out, "rootscan testbed app started") {
		t.Errorf("app log = %q, want its start line", out)
	}
	all, byName := rss(root)
	t.Logf("RSS of the cluster's processes (control plane, kubelet, containerd, shims): %d MiB %v", all, byName)

	stopped = true
	if err := c.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	assertHostClean(t, hostBefore, logsBefore, root, bridge, netName, pids)
	for _, d := range hostDirs {
		if _, err := os.Lstat(d); (err == nil) != existed[d] {
			t.Errorf("%s: existed before start %v, exists after stop %v", d, existed[d], err == nil)
		}
	}
}

// hostDirs are the host paths the kubelet and libcni write to whatever
// their configuration says.
var hostDirs = []string{"/var/log/containers", "/var/lib/cni", "/var/lib/kubelet",
	"/var/lib/kubelet/device-plugins/kubelet.sock", "/usr/libexec/kubernetes", "/etc/kubernetes",
	filepath.Join(os.Getenv("HOME"), ".kube")}

func sweepNow(t *testing.T, ctx context.Context) {
	t.Helper()
	bin, err := resolveBinDir("")
	if err != nil {
		t.Fatal(err)
	}
	lock, err := lockHost(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := sweepStale(); err != nil {
		t.Fatal(err)
	}
}

// assertHostClean checks that nothing of the stopped cluster is left.
func assertHostClean(t *testing.T, sysctls map[string]string, logsBefore []string, root, bridge, netName string, pids map[string]int) {
	t.Helper()
	for name, pid := range pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(b), root) {
				t.Errorf("%s (pid %d) still runs", name, pid)
			}
		}
	}
	if left := processesMentioning(root); len(left) > 0 {
		t.Errorf("processes still mention %s: %v", root, left)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mi), "\n") {
		if strings.Contains(line, root) {
			t.Errorf("mount left: %s", line)
		}
	}
	after := Sysctls()
	for k, v := range sysctls {
		if after[k] != v {
			t.Errorf("sysctl %s = %s after stop, was %s", k, after[k], v)
		}
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", bridge)); err == nil {
		t.Errorf("bridge %s still exists", bridge)
	}
	if _, err := os.Stat(root); err == nil {
		t.Errorf("cluster dir %s still exists", root)
	}
	if after := listDir(t, "/var/log/containers"); strings.Join(after, ",") != strings.Join(logsBefore, ",") {
		t.Errorf("/var/log/containers = %v after stop, was %v", after, logsBefore)
	}
	for _, e := range listDir(t, "/var/lib/cni/results") {
		if strings.HasPrefix(e, netName+"-") {
			t.Errorf("CNI cache entry left: %s", e)
		}
	}
}

// workloads is a pod running the app image and a Job running the job image.
func workloads(appImage, jobImage, msg string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: app, namespace: rstb-test}
spec:
  containers:
  - name: app
    image: %s
    imagePullPolicy: Never
---
apiVersion: batch/v1
kind: Job
metadata: {name: say, namespace: rstb-test}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: say
        image: %s
        imagePullPolicy: Never
        env: [{name: MSG, value: %q}]
`, appImage, jobImage, msg)
}

// importDistroless imports the test bed's distroless-like image, whose
// /app prints a line and waits for SIGTERM, into the node's runtime.
func importDistroless(t *testing.T, ctx context.Context, c *Cluster) testbed.ImageRef {
	t.Helper()
	app, err := ociimage.Distroless(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	ref, err := c.Containerd().Import(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// jobImage builds the Job's program into a one-file image.
func jobImage(t *testing.T) *ociimage.Image {
	t.Helper()
	return programImage(t, "rootscan.test/kube-job:1", "job", jobSrc, "")
}

// programImage builds the Go program src (one main.go) statically into an
// image named name that holds only /bin and runs it, as user if not empty.
func programImage(t *testing.T, name, bin, src, user string) *ociimage.Image {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module rootscan.test/"+bin+"\n\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s program: %v: %s", bin, err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, bin))
	if err != nil {
		t.Fatal(err)
	}
	return &ociimage.Image{
		Name:   name,
		Layers: []ociimage.Layer{{Files: []ociimage.File{{Path: bin, Mode: 0o755, Data: data}}}},
		Config: ocispec.ImageConfig{Entrypoint: []string{"/" + bin}, User: user},
	}
}

// rss sums VmRSS over the processes whose command line mentions root, in
// MiB, in all and by command name.
func rss(root string) (int, map[string]int) {
	byName := map[string]int{}
	var all int
	for _, pid := range processesMentioning(root) {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
		if err != nil {
			continue
		}
		var name string
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && f[0] == "Name:" {
				name = f[1]
			}
			if len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.Atoi(f[1])
				byName[name] += kb
				all += kb
			}
		}
	}
	for n, kb := range byName {
		byName[n] = kb / 1024
	}
	return all / 1024, byName
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}
