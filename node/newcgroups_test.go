package node

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rootscan/rootscan/bpf"
	"github.com/rootscan/rootscan/report"
)

// chanMonitor is a KernelMonitor whose events the test sends.
type chanMonitor struct{ events chan bpf.Event }

func (m *chanMonitor) Watch(uint64) error            { return nil }
func (m *chanMonitor) Unwatch(uint64) error          { return nil }
func (m *chanMonitor) Events() <-chan bpf.Event      { return m.events }
func newChanMonitor() *chanMonitor                   { return &chanMonitor{events: make(chan bpf.Event)} }
func (m *chanMonitor) send(kind bpf.Kind, cg uint64) { m.events <- bpf.Event{Kind: kind, CgroupID: cg} }

// fakeDiscoverer stands for the daemon: each call is recorded, and the containers it "finds" (cgroup -> id) are
// watched as Track would watch them.
type fakeDiscoverer struct {
	r     *Runtime
	mu    sync.Mutex
	calls []time.Time
	finds map[uint64]string
}

func (f *fakeDiscoverer) Discover(_ context.Context, watching func(string) bool) (int, error) {
	f.mu.Lock()
	f.calls = append(f.calls, time.Now())
	finds := f.finds
	f.finds = nil
	f.mu.Unlock()
	for cg, id := range finds {
		if watching(id) {
			continue
		}
		f.r.mu.Lock()
		rc := &runtimeContainer{id: id, cgroup: cg, target: report.Target{ContainerID: id}, used: map[string]struct{}{}}
		f.r.byID[id], f.r.byCgroup[cg] = rc, rc
		f.r.noticed(cg, id)
		f.r.mu.Unlock()
	}
	return len(finds), nil
}

func (f *fakeDiscoverer) callTimes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.calls...)
}

func startDiscovering(t *testing.T, gap time.Duration, finds map[uint64]string) (*Runtime, *chanMonitor, *fakeDiscoverer) {
	t.Helper()
	mon := newChanMonitor()
	r := &Runtime{Monitor: mon, DiscoverGap: gap}
	d := &fakeDiscoverer{r: r, finds: finds}
	r.Discover = d
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r, mon, d
}

// waitCalls waits until the discoverer was called n times (or fails after 10 s).
func waitCalls(t *testing.T, d *fakeDiscoverer, n int) []time.Time {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		calls := d.callTimes()
		if len(calls) >= n {
			return calls
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d discoveries after 10s, want %d", len(calls), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestNewCgroupFindsContainer: the first exec in an unknown cgroup has the daemon discover at once; the container
// found for that cgroup is counted, and a cgroup watched already (found by containerd's event first) asks nothing.
func TestNewCgroupFindsContainer(t *testing.T) {
	r, mon, d := startDiscovering(t, 20*time.Millisecond, map[uint64]string{42: "c42"})
	mon.send(bpf.NewCgroup, 42)
	waitCalls(t, d, 1)
	mon.send(bpf.Exec, 42) // a synchronous send: the runtime took the previous event too
	if n := r.NewContainers(); n != 1 || !r.Watching("c42") {
		t.Fatalf("NewContainers = %d, watching c42 %v; want 1, true", n, r.Watching("c42"))
	}
	r.mu.Lock()
	pending := len(r.pending)
	r.mu.Unlock()
	if pending != 0 {
		t.Errorf("%d cgroups pending after their container was found", pending)
	}
	mon.send(bpf.NewCgroup, 42) // reported again (the kernel's LRU evicted it): watched, nothing to find
	time.Sleep(100 * time.Millisecond)
	if n := len(d.callTimes()); n != 1 {
		t.Errorf("%d discoveries, want 1: a watched cgroup's report asks for none", n)
	}
}

// TestNewCgroupStorm: however many new cgroups arrive, discoveries are at least a gap apart, and cgroups no
// container owns (host services) get at most discoverRounds of them each and then no more.
func TestNewCgroupStorm(t *testing.T) {
	const gap = 20 * time.Millisecond
	r, mon, d := startDiscovering(t, gap, nil)
	for cg := range uint64(500) {
		mon.send(bpf.NewCgroup, 1000+cg)
	}
	sent := time.Now()
	waitCalls(t, d, discoverRounds)
	var calls []time.Time
	for n := -1; n != len(calls); time.Sleep(30 * gap) { // until the rounds stop
		n = len(calls)
		calls = d.callTimes()
	}
	after := 0
	for _, c := range calls {
		if c.After(sent) {
			after++
		}
	}
	// The last cgroup gets its discoverRounds rounds; one more may be the round already under way when it arrived
	// (the sends are synchronous, but a round can start between the runtime taking the last event and the send
	// returning, on a loaded machine).
	if after > discoverRounds+1 {
		t.Errorf("%d discoveries after the last new cgroup, want at most %d", after, discoverRounds+1)
	}
	for i := 1; i < len(calls); i++ {
		if dt := calls[i].Sub(calls[i-1]); dt < gap {
			t.Errorf("discoveries %d and %d %v apart, want at least %v", i-1, i, dt, gap)
		}
	}
	r.mu.Lock()
	pending := len(r.pending)
	r.mu.Unlock()
	if pending != 0 || r.NewContainers() != 0 {
		t.Errorf("after the rounds: %d pending, %d new containers; want 0, 0", pending, r.NewContainers())
	}
	t.Logf("500 new cgroups: %d discoveries over %v", len(calls), calls[len(calls)-1].Sub(calls[0]))
}

// TestNewCgroupPendingBounded: past maxPendingCgroups the set stops growing.
func TestNewCgroupPendingBounded(t *testing.T) {
	r := &Runtime{Discover: &fakeDiscoverer{}}
	r.init()
	for cg := range uint64(maxPendingCgroups + 10) {
		r.newCgroup(bpf.Event{Kind: bpf.NewCgroup, CgroupID: cg})
	}
	if n := len(r.pending); n != maxPendingCgroups {
		t.Errorf("%d pending, want the bound %d", n, maxPendingCgroups)
	}
	if len(r.discoverNow) != 1 {
		t.Error("no discovery asked for")
	}
}
