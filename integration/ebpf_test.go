package integration

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/rootscan/rootscan/bpf"
	"github.com/rootscan/rootscan/bpf/bpftest"
	"github.com/rootscan/rootscan/bpf/cgroupid"
	"github.com/rootscan/rootscan/internal/testbed"
)

// TestEBPFContainer loads the real programs and watches a container of the test bed's containerd: a binary the
// container copies into its root and runs is reported from the upper layer, the image's own binaries from a lower
// one; the libraries its processes map are reported once per container (libc by every process, one event) and a
// library nothing loads is not; a host process is not reported. It also checks, on this host's cgroup layout, that
// the container's cgroup id resolves the same from its pid and from its runtime spec's cgroupsPath.
func TestEBPFContainer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bed, id := shellContainer(t, ctx, "ebpf")
	cg, ctrPID := containerCgroupID(t, ctx, bed, id)

	bpftest.EnsureTracefs(t)
	m, err := bpf.Open(ctx, bpf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.MapErr(); err != nil {
		t.Fatal(err)
	}
	if err := m.Watch(cg); err != nil {
		t.Fatal(err)
	}

	host := exec.Command("/bin/true")
	if err := host.Run(); err != nil {
		t.Fatal(err)
	}
	script := "set -e; mkdir -p /usr/local/bin; cp /bin/true /usr/local/bin/dropped; /usr/local/bin/dropped; /bin/true; exec /bin/uname"
	if stdout, stderr, code, err := bed.ExecSync(ctx, id, []string{"/bin/sh", "-c", script}); err != nil || code != 0 {
		t.Fatalf("exec: exit %d, %v\n%s%s", code, err, stdout, stderr)
	}
	events := eventsUntil(t, m, cg, "/usr/bin/uname", "/bin/uname")

	var dropped, image []bpf.Event
	maps := map[string]int{}
	for _, ev := range events {
		if ev.PID == uint32(host.Process.Pid) {
			t.Errorf("host process reported: %+v", ev)
		}
		switch {
		case ev.Kind == bpf.Exec && ev.Path == "/usr/local/bin/dropped":
			dropped = append(dropped, ev)
		case ev.Kind == bpf.Exec && (ev.Path == "/bin/true" || ev.Path == "/usr/bin/true"):
			image = append(image, ev)
		case ev.Kind == bpf.Map:
			maps[filepath.Base(ev.Path)]++
		}
	}
	if len(dropped) != 1 || !dropped[0].Upper || !dropped[0].Overlay || dropped[0].Filename != "/usr/local/bin/dropped" {
		t.Errorf("exec of the dropped binary: %+v, want one event from the upper layer", dropped)
	}
	if len(image) != 1 || image[0].Upper || !image[0].Overlay {
		t.Errorf("exec of the image's /bin/true: %+v, want one event from a lower layer", image)
	}
	if len(dropped) == 1 {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join("/proc", strconv.Itoa(ctrPID), "root/usr/local/bin/dropped"), &st); err != nil {
			t.Fatal(err)
		}
		if st.Ino != dropped[0].Inode || st.Dev != dropped[0].Dev {
			t.Errorf("dropped binary ino %d dev %d, stat in the container says %d %d", dropped[0].Inode, dropped[0].Dev, st.Ino, st.Dev)
		}
	}
	// The kernel reports the file mapped, after symlinks: libacl.so.1 is libacl.so.1.1.<version>.
	soname := func(name string) int {
		n := 0
		for base, count := range maps {
			if base == name || strings.HasPrefix(base, name+".") {
				n += count
			}
		}
		return n
	}
	if n := soname("libc.so.6"); n != 1 {
		t.Errorf("libc.so.6 reported %d times, want once for the container (mapped by sh, mkdir, cp, true, uname): %v", n, maps)
	}
	if n := soname("libacl.so.1"); n != 1 {
		t.Errorf("libacl.so.1 (cp's) reported %d times, want 1: %v", n, maps)
	}
	if n := soname("libgmp.so.10"); n != 0 {
		t.Errorf("libgmp.so.10, which nothing run here loads, reported %d times", n)
	}
	if n, err := m.Lost(); err != nil || n != 0 {
		t.Errorf("Lost() = %d, %v", n, err)
	}
}

// containerCgroupID resolves the container's cgroup id from its pid and from its cgroupsPath and checks they
// agree.
func containerCgroupID(t *testing.T, ctx context.Context, bed *testbed.Containerd, id string) (cg uint64, pid int) {
	t.Helper()
	st, err := bed.Runtime().ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Pid         int `json:"pid"`
		RuntimeSpec struct {
			Linux struct {
				CgroupsPath string `json:"cgroupsPath"`
			} `json:"linux"`
		} `json:"runtimeSpec"`
	}
	if err := json.Unmarshal([]byte(st.Info["info"]), &info); err != nil || info.Pid == 0 {
		t.Fatalf("container %s: no pid in verbose info (%v)", id, err)
	}
	mnt, err := cgroupid.Mount()
	if err != nil {
		t.Fatal(err)
	}
	byPID, err := cgroupid.OfPID("/proc", mnt, info.Pid)
	if err != nil {
		t.Fatal(err)
	}
	byPath, err := cgroupid.OfPath(mnt, info.RuntimeSpec.Linux.CgroupsPath)
	if err != nil {
		t.Fatalf("cgroupsPath %q: %v", info.RuntimeSpec.Linux.CgroupsPath, err)
	}
	rel, _ := cgroupid.PathOfPID("/proc", info.Pid)
	t.Logf("container cgroup: cgroupsPath %q, v2 path %s under %s, id %d", info.RuntimeSpec.Linux.CgroupsPath, rel, mnt, byPID)
	if byPID != byPath {
		t.Fatalf("cgroup id from pid %d, from cgroupsPath %d", byPID, byPath)
	}
	return byPID, info.Pid
}

// eventsUntil collects the cgroup's events up to the exec of one of the sentinel paths.
func eventsUntil(t *testing.T, m *bpf.Monitor, cg uint64, sentinels ...string) []bpf.Event {
	t.Helper()
	var got []bpf.Event
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-m.Events():
			if !ok {
				t.Fatal("events closed")
			}
			if ev.CgroupID != cg {
				continue
			}
			for _, s := range sentinels {
				if ev.Kind == bpf.Exec && ev.Path == s {
					return got
				}
			}
			got = append(got, ev)
		case <-timeout:
			t.Fatalf("no exec of %v after 30s; got %+v", sentinels, got)
		}
	}
}

// shellContainer starts a test bed with a running Debian shell container (pod <pod>, namespace ebpf) that sleeps.
func shellContainer(t *testing.T, ctx context.Context, pod string) (*testbed.Containerd, string) {
	t.Helper()
	bed := testbed.StartT(t, testbed.Options{})
	ref, err := bed.Import(ctx, driftImage(t, ctx))
	if err != nil {
		t.Fatalf("import image: %v", err)
	}
	_, id := runPodWith(t, ctx, bed, testbed.PodSpec{Name: pod, Namespace: "ebpf"},
		testbed.ContainerSpec{Name: "shell", Image: ref.Name, Command: []string{"/bin/sleep", "infinity"}})
	return bed, id
}
