package integration

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rootscan/rootscan/bpf"
	"github.com/rootscan/rootscan/bpf/bpftest"
	"github.com/rootscan/rootscan/bpf/cgroupid"
	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/internal/testbed"
	"github.com/rootscan/rootscan/node"
	"github.com/rootscan/rootscan/scan"
)

// teeMonitor passes the real monitor's events on and counts the new-cgroup reports per cgroup.
type teeMonitor struct {
	*bpf.Monitor
	out chan bpf.Event
	mu  sync.Mutex
	new map[uint64]int
}

func newTeeMonitor(m *bpf.Monitor) *teeMonitor {
	t := &teeMonitor{Monitor: m, out: make(chan bpf.Event, 1024), new: map[uint64]int{}}
	go func() {
		defer close(t.out)
		for ev := range m.Events() {
			if ev.Kind == bpf.NewCgroup {
				t.mu.Lock()
				t.new[ev.CgroupID]++
				t.mu.Unlock()
			}
			t.out <- ev
		}
	}()
	return t
}

func (t *teeMonitor) Events() <-chan bpf.Event { return t.out }

func (t *teeMonitor) reports(cg uint64) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.new[cg]
}

// countingDiscoverer counts the daemon's discoveries (CRI lists) the runtime asks for.
type countingDiscoverer struct {
	d *node.Daemon
	n atomic.Int64
}

func (c *countingDiscoverer) Discover(ctx context.Context, watching func(string) bool) (int, error) {
	c.n.Add(1)
	return c.d.Discover(ctx, watching)
}

// TestDaemonNoticesFirstExec runs the daemon with no containerd event stream at all and a one-hour resync, on the
// real kernel programs: a container started after the daemon is ready is checked and watched within seconds, found
// from the kernel's report of its first exec (rootscan_ebpf_new_containers_total's count). A host cgroup whose
// processes execute twenty times is reported once, and discoveries stay within one per DefaultDiscoverGap.
func TestDaemonNoticesFirstExec(t *testing.T) {
	bed := testbed.StartT(t, testbed.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ref, err := bed.Import(ctx, driftImage(t, ctx))
	if err != nil {
		t.Fatal(err)
	}
	acc, err := node.Dial(ctx, node.AccessOptions{RuntimeEndpoint: bed.Address(), MountDir: filepath.Join(t.TempDir(), "mounts")})
	if err != nil {
		t.Fatal(err)
	}
	defer acc.Close()
	bpftest.EnsureTracefs(t)
	m, err := bpf.Open(ctx, bpf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	mnt, err := cgroupid.Mount()
	if err != nil {
		t.Fatal(err)
	}
	mon := newTeeMonitor(m)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	rec := newRecorder()
	d := &node.Daemon{Containers: acc.Client, Views: acc.Roots, Roots: acc.Roots, Digests: acc.Snapshots,
		Analyzers: scan.DefaultAnalyzers(), Publisher: rec, Node: "node-1", Resync: time.Hour, OnScan: rec.observe, Log: log}
	disc := &countingDiscoverer{d: d}
	r := &node.Runtime{Monitor: mon, CgroupMount: mnt, ProcRoot: "/proc", MappingsSeen: m.MapErr() == nil, Discover: disc, Log: log}
	d.Runtime = r
	stopRuntime := runRuntime(ctx, r)
	defer stopRuntime()
	runCtx, stopDaemon := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	defer func() { stopDaemon(); <-done }()
	rec.waitFor(t, "daemon ready", 30*time.Second, d.Ready)

	pod, err := bed.RunPod(ctx, testbed.PodSpec{Name: "late", Namespace: "ebpf"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	id, err := bed.RunContainer(ctx, pod, testbed.ContainerSpec{Name: "app", Image: ref.Name, Command: []string{"/bin/sleep", "infinity"}})
	if err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "the new container checked, with no event stream and no resync", 15*time.Second, func() bool {
		rep, _ := rec.lastReport(id)
		return rep.Result != nil && rep.Target.State == string(cri.StateRunning)
	})
	took := time.Since(start)
	waitUntil(t, "the new container watched", 5*time.Second, func() bool { return r.Watching(id) })
	if n := r.NewContainers(); n != 1 {
		t.Errorf("NewContainers = %d, want 1 (found from its first exec)", n)
	}
	t.Logf("container started to checked, found from its first exec: %v; %d discoveries", took, disc.n.Load())

	// A host cgroup: its first exec is reported, the next nineteen are not; its discoveries end.
	dir, err := os.MkdirTemp(mnt, "rootscan-host-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(dir)
	cg, err := cgroupid.OfDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	before, burst := disc.n.Load(), time.Now()
	for range 20 {
		cmd := exec.Command("/bin/true")
		cmd.SysProcAttr = &unix.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "the host cgroup's report", 5*time.Second, func() bool { return mon.reports(cg) > 0 })
	time.Sleep(5 * time.Second) // the discovery rounds (3.5 s) end
	if n := mon.reports(cg); n != 1 {
		t.Errorf("%d new-cgroup reports for a host cgroup that executed 20 times, want 1", n)
	}
	// Other cgroups of the machine (other tests' processes) may ask for discoveries too: what holds is the bound.
	if n, most := disc.n.Load()-before, int64(time.Since(burst)/node.DefaultDiscoverGap)+1; n < 1 || n > most {
		t.Errorf("%d discoveries since the host cgroup's executions, want 1 to %d", n, most)
	}
	if n := r.NewContainers(); n != 1 {
		t.Errorf("NewContainers = %d after host executions, want still 1", n)
	}
}
