package testbed

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/rootscan/rootscan/internal/testbed/ociimage"
)

func TestRenderConfig(t *testing.T) {
	l := newLayout("/tmp/rstb-1")
	cfg, err := renderConfig(l, configParams{SandboxImage: "rootscan.test/pause:1", RuncBinary: "/usr/sbin/runc"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`version = 2`,
		`root = "/tmp/rstb-1/root"`,
		`state = "/tmp/rstb-1/state"`,
		`address = "/tmp/rstb-1/containerd.sock"`,
		`socket_dir = "/tmp/rstb-1/s"`,
		`sandbox_image = "rootscan.test/pause:1"`,
		`restrict_oom_score_adj = true`,
		`snapshotter = "overlayfs"`,
		`Root = "/tmp/rstb-1/runc"`,
		`BinaryName = "/usr/sbin/runc"`,
		`SystemdCgroup = false`,
		`"io.containerd.nri.v1.nri"`,
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %s:\n%s", want, cfg)
		}
	}
	// Every path in the config is under the work dir, except the runc binary.
	for _, m := range regexp.MustCompile(`"(/[^"]*)"`).FindAllStringSubmatch(cfg, -1) {
		if p := m[1]; !strings.HasPrefix(p, l.Dir+"/") && p != "/usr/sbin/runc" {
			t.Errorf("config path %s is outside the work dir", p)
		}
	}

	long := newLayout("/tmp/" + strings.Repeat("d", 40))
	cfg, err = renderConfig(long, configParams{SandboxImage: "p:1", RuncBinary: "/usr/sbin/runc"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(cfg, "socket_dir") {
		t.Errorf("socket_dir longer than containerd accepts was written:\n%s", cfg)
	}
	if _, err := renderConfig(l, configParams{SandboxImage: `a"b`, RuncBinary: "/r"}); err == nil {
		t.Error("renderConfig accepted a value it cannot quote")
	}
}

func TestLayoutCheck(t *testing.T) {
	if err := newLayout("/tmp/rstb-1").check(); err != nil {
		t.Errorf("short dir: %v", err)
	}
	if err := newLayout("/tmp/" + strings.Repeat("x", 100)).check(); err == nil {
		t.Error("dir too long for a socket path was accepted")
	}
}

func TestDeepestFirst(t *testing.T) {
	const table = `100 1 0:1 / /tmp/rstb rw - tmpfs tmpfs rw
101 100 0:2 / /tmp/rstb/state/a/rootfs rw - overlay overlay rw
102 100 0:3 / /tmp/rstb/state/b/shm rw - tmpfs shm rw
103 101 0:4 / /tmp/rstb/state/a/rootfs/proc rw - proc proc rw
104 102 0:5 / /tmp/rstb/state/b/shm rw - tmpfs shm rw
105 1 0:6 / /tmp/rstb2/x rw - tmpfs tmpfs rw
`
	infos, err := mountinfo.GetMountsFromReader(strings.NewReader(table), mountinfo.PrefixFilter("/tmp/rstb"))
	if err != nil {
		t.Fatal(err)
	}
	got := deepestFirst(infos)
	want := []string{
		"/tmp/rstb/state/a/rootfs/proc",
		"/tmp/rstb/state/b/shm", // stacked: the newer mount first
		"/tmp/rstb/state/b/shm",
		"/tmp/rstb/state/a/rootfs",
		"/tmp/rstb",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("deepestFirst = %q, want %q", got, want)
	}
	if infos[1].ID != 104 {
		t.Errorf("stacked mounts not newest first: %v", infos[1])
	}
}

func TestCmdlineHasArg(t *testing.T) {
	sock := "/tmp/rstb-1/containerd.sock"
	for _, tc := range []struct {
		cmdline string
		want    bool
	}{
		{"containerd-shim-runc-v2\x00-namespace\x00k8s.io\x00-id\x00abc\x00-address\x00" + sock + "\x00", true},
		{"shim\x00-address=" + sock + "\x00", true},
		{"shim\x00-address\x00" + sock + "2\x00", false},
		{"cat\x00/tmp/rstb-1/containerd.sock.log\x00", false},
		{"", false},
	} {
		if got := cmdlineHasArg([]byte(tc.cmdline), []string{sock}); got != tc.want {
			t.Errorf("cmdlineHasArg(%q) = %v, want %v", tc.cmdline, got, tc.want)
		}
	}
}

func TestWithPathFirst(t *testing.T) {
	got := withPathFirst([]string{"A=1", "PATH=/usr/bin:/bin"}, "/opt/ctd")
	if got[1] != "PATH=/opt/ctd:/usr/bin:/bin" || got[0] != "A=1" {
		t.Errorf("withPathFirst = %q", got)
	}
	got = withPathFirst([]string{"A=1"}, "/opt/ctd")
	if !strings.HasPrefix(got[1], "PATH=/opt/ctd:") {
		t.Errorf("withPathFirst without PATH = %q", got)
	}
}

func TestNewUUID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a, b := newUUID(), newUUID()
	if !re.MatchString(a) || a == b {
		t.Errorf("newUUID = %s, %s", a, b)
	}
}

// A containerd that dies at start-up is reported with its log, and leaves
// nothing behind.
func TestStartFailureCleansUp(t *testing.T) {
	Require(t)
	bin := filepath.Join(t.TempDir(), "containerd")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho 'simulated start-up failure' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	shimBin, err := resolveShim("/nonexistent/containerd")
	if err != nil {
		t.Skip(err)
	}
	if err := os.Symlink(shimBin, filepath.Join(filepath.Dir(bin), "containerd-shim-runc-v2")); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where Start makes its work dir
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{Bin: bin, StartTimeout: 20 * time.Second})
	if err == nil {
		c.Stop()
		t.Fatal("Start succeeded with a containerd that exits")
	}
	t.Logf("Start error: %v", err)
	if !strings.Contains(err.Error(), "simulated start-up failure") || !strings.Contains(err.Error(), "exited") {
		t.Errorf("Start error does not say containerd exited and quote its log: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "rstb-*")); len(left) > 0 {
		t.Errorf("work dir left behind: %v", left)
	}
}

// TestPodLifecycle is the testbed's contract: a pod with a container from an
// imported image runs, can be exec'd into, and Stop leaves no process, mount
// or cgroup. Run it against another containerd with ROOTSCAN_CONTAINERD.
func TestPodLifecycle(t *testing.T) {
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	t0 := time.Now()
	c := StartT(t, Options{})
	t.Logf("containerd %s ready with pause imported in %v (dir %s)", c.Version(), time.Since(t0), c.Dir())
	dir, sock, parent := c.Dir(), c.Address(), c.CgroupParent()
	containerdPid := c.current().cmd.Process.Pid

	st, err := c.Images().ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: c.PauseImage().Name}})
	if err != nil || st.Image == nil {
		t.Fatalf("CRI ImageStatus of the pause image: %v %v", st, err)
	}
	if st.Image.Id != c.PauseImage().ID {
		t.Errorf("CRI image ID %s, Import said %s", st.Image.Id, c.PauseImage().ID)
	}
	if !contains(st.Image.RepoDigests, c.PauseImage().RepoDigest) {
		t.Errorf("CRI repo digests %v lack %s", st.Image.RepoDigests, c.PauseImage().RepoDigest)
	}
	if !contains(st.Image.RepoTags, c.PauseImage().Name) {
		t.Errorf("CRI repo tags %v lack %s", st.Image.RepoTags, c.PauseImage().Name)
	}
	if _, err := c.Client().SnapshotService(Snapshotter).Stat(ctx, c.PauseImage().ChainID.String()); err != nil {
		t.Errorf("pause image not unpacked into %s under its chain ID: %v", Snapshotter, err)
	}

	t1 := time.Now()
	pod, err := c.RunPod(ctx, PodSpec{Name: "lifecycle", Namespace: "testbed", Labels: map[string]string{"app": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.RunContainer(ctx, pod, ContainerSpec{Name: "pause", Image: c.PauseImage().Name})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pod + container running in %v", time.Since(t1))

	cs, err := c.Runtime().ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	if cs.Status.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("container state %v, want running", cs.Status.State)
	}
	for k, v := range map[string]string{LabelPodName: "lifecycle", LabelPodNamespace: "testbed", LabelContainerName: "pause"} {
		if cs.Status.Labels[k] != v {
			t.Errorf("container label %s = %q, want %q", k, cs.Status.Labels[k], v)
		}
	}
	t.Logf("ContainerStatus image=%q imageRef=%q", cs.Status.Image.GetImage(), cs.Status.ImageRef)
	if cs.Status.ImageRef != c.PauseImage().RepoDigest && cs.Status.ImageRef != c.PauseImage().ID {
		t.Errorf("container image ref %s is neither the repo digest nor the ID of the pause image", cs.Status.ImageRef)
	}
	if !hasCgroupUnder(t, id, parent) {
		t.Errorf("container %s not in a cgroup under %s", id, parent)
	}

	// The pause image has no shell: the exec must fail to start, not hang.
	stdout, stderr, code, err := c.ExecSync(ctx, id, []string{"/bin/sh", "-c", "true"})
	t.Logf("exec /bin/sh in pause: code=%d stdout=%q stderr=%q err=%v", code, stdout, stderr, err)
	text := string(stderr) + string(stdout)
	if err != nil {
		text += err.Error()
	}
	if err == nil && code == 0 {
		t.Errorf("exec of /bin/sh in the shell-less pause image succeeded")
	}
	if !strings.Contains(text, "/bin/sh") || !strings.Contains(text, "no such file or directory") {
		t.Errorf("exec error does not say /bin/sh is missing: %s", text)
	}

	if err := c.StopContainer(ctx, id, 5*time.Second); err != nil {
		t.Error(err)
	}
	if err := c.RemoveContainer(ctx, id); err != nil {
		t.Error(err)
	}
	if err := c.RemovePod(ctx, pod); err != nil {
		t.Error(err)
	}

	// A second pod is left running on purpose: Stop must clean it up.
	pod2, err := c.RunPod(ctx, PodSpec{Name: "left-running"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RunContainer(ctx, pod2, ContainerSpec{Name: "pause", Image: c.PauseImage().Name}); err != nil {
		t.Fatal(err)
	}
	// Stop removes the sockets of killed shims by name: the name must be the
	// one containerd derives (in /run/containerd/s without socket_dir, else in ours).
	legacy := shimSocketPath(legacyShimSocketDir, sock, Namespace, pod2)
	own := shimSocketPath(c.l.ShimSocket, sock, Namespace, pod2)
	if !isSocket(legacy) && !isSocket(own) {
		t.Errorf("shim socket of pod %s is neither %s nor %s", pod2, legacy, own)
	}
	if n := len(mustMounts(t, dir)); n == 0 {
		t.Errorf("no mounts under %s while a pod runs: the check below would prove nothing", dir)
	}

	t2 := time.Now()
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("Stop took %v", time.Since(t2))
	assertGone(t, dir, sock, parent, containerdPid)
	if isSocket(legacy) {
		t.Errorf("shim socket %s left behind", legacy)
	}
}

func isSocket(p string) bool {
	st, err := os.Lstat(p)
	return err == nil && st.Mode().Type() == os.ModeSocket
}

// When containerd dies (a crash, an OOM kill), Stop still removes its shims,
// the containers they ran, their mounts and cgroups.
func TestStopAfterContainerdCrash(t *testing.T) {
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := StartT(t, Options{})
	pod, err := c.RunPod(ctx, PodSpec{Name: "orphaned"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RunContainer(ctx, pod, ContainerSpec{Name: "pause", Image: c.PauseImage().Name}); err != nil {
		t.Fatal(err)
	}
	dir, sock, parent, pid := c.Dir(), c.Address(), c.CgroupParent(), c.current().cmd.Process.Pid
	shims, err := processesUsing(sock)
	if err != nil || len(shims) == 0 {
		t.Fatalf("no shim of this testbed found (%v): the check below would prove nothing", err)
	}
	workload := cgroupProcs(mustCgroupDirs(t, parent))
	if len(workload) == 0 {
		t.Fatal("no container process in the pod cgroups: the check below would prove nothing")
	}
	if err := c.current().cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-c.current().exited
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop after crash: %v", err)
	}
	assertGone(t, dir, sock, parent, pid)
	for _, p := range workload {
		if alive(p) {
			t.Errorf("container process %d survived Stop", p)
		}
	}
	if p := shimSocketPath(legacyShimSocketDir, sock, Namespace, pod); isSocket(p) {
		t.Errorf("shim socket %s left behind", p)
	}
}

func mustCgroupDirs(t *testing.T, parent string) []string {
	t.Helper()
	d, err := cgroupDirs(parent)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDistroless runs the distroless-like image: a real workload with no shell.
func TestDistroless(t *testing.T) {
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	img, err := ociimage.Distroless(ctx, "")
	if err != nil {
		t.Fatalf("build distroless image: %v", err)
	}
	c := StartT(t, Options{})
	t0 := time.Now()
	ref, err := c.Import(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("imported %s (%s) in %v", ref.Name, ref.ID, time.Since(t0))
	pod, err := c.RunPod(ctx, PodSpec{Name: "distroless"})
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.RunContainer(ctx, pod, ContainerSpec{Name: "app", Image: ref.Name})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := c.Runtime().ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		t.Fatal(err)
	}
	if cs.Status.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("distroless container state %v (exit %d, %s)", cs.Status.State, cs.Status.ExitCode, cs.Status.Message)
	}
	_, stderr, code, err := c.ExecSync(ctx, id, []string{"/bin/sh", "-c", "true"})
	if err == nil && code == 0 {
		t.Errorf("exec of /bin/sh in distroless succeeded (stderr %q)", stderr)
	}
	dir, sock, parent, pid := c.Dir(), c.Address(), c.CgroupParent(), c.current().cmd.Process.Pid
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	assertGone(t, dir, sock, parent, pid)
}

// assertGone checks that a stopped testbed left no mount, process or cgroup.
func assertGone(t *testing.T, dir, sock, cgroupParent string, containerdPid int) {
	t.Helper()
	if m := mustMounts(t, dir); len(m) > 0 {
		t.Errorf("mounts left under %s: %v", dir, m)
	}
	if alive(containerdPid) {
		t.Errorf("containerd (pid %d) still runs", containerdPid)
	}
	pids, err := processesUsing(sock)
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) > 0 {
		t.Errorf("processes of this testbed still run: %v", pids)
	}
	dirs, err := cgroupDirs(cgroupParent)
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) > 0 {
		t.Errorf("cgroups left: %v", dirs)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("work dir %s not removed: %v", dir, err)
	}
}

func mustMounts(t *testing.T, dir string) []string {
	t.Helper()
	m, err := mountsUnder(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// hasCgroupUnder reports whether some cgroup hierarchy has a directory named
// id under parent (cgroupfs: <parent>/pod<uid>/<id>).
func hasCgroupUnder(t *testing.T, id, parent string) bool {
	t.Helper()
	dirs, err := cgroupDirs(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if m, _ := filepath.Glob(filepath.Join(d, "pod*", id)); len(m) > 0 {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
