package integration

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/internal/testbed"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
	"github.com/rootscan/rootscan/node"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// recorder is a node.Publisher that keeps what the daemon published, for assertions.
type recorder struct {
	mu       sync.Mutex
	reports  map[string][]report.Report
	removed  map[string]bool
	outcomes map[string]int
	changed  chan struct{}
}

func newRecorder() *recorder {
	return &recorder{reports: map[string][]report.Report{}, removed: map[string]bool{}, outcomes: map[string]int{}, changed: make(chan struct{}, 1)}
}

func (r *recorder) Publish(_ context.Context, rep report.Report) {
	r.mu.Lock()
	r.reports[rep.Target.ContainerID] = append(r.reports[rep.Target.ContainerID], rep)
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) Remove(_ context.Context, t report.Target) {
	r.mu.Lock()
	r.removed[t.ContainerID] = true
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) observe(outcome string, _ time.Duration) {
	r.mu.Lock()
	r.outcomes[outcome]++
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) poke() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// waitFor polls cond (under the recorder's lock) until it holds or the deadline passes.
func (r *recorder) waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.changed:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

func (r *recorder) lastReport(id string) (report.Report, int) {
	reps := r.reports[id]
	if len(reps) == 0 {
		return report.Report{}, 0
	}
	return reps[len(reps)-1], len(reps)
}

type daemonRig struct {
	d      *node.Daemon
	rec    *recorder
	mounts string
	m      *fsaccess.Mounter
	cancel context.CancelFunc
	done   chan error
}

// startDaemon runs a daemon against bed with a one-hour resync, so anything it notices within the test's timeouts
// came from containerd's events (or a Nudge), not from polling.
func startDaemon(t *testing.T, bed *testbed.Containerd, cacheDir string) *daemonRig {
	t.Helper()
	ctx := context.Background()
	mountDir := filepath.Join(t.TempDir(), "mounts")
	client, snaps, m := nodeAccess(t, bed, mountDir)
	cache, err := node.NewImageCache(cacheDir, "test")
	if err != nil {
		t.Fatal(err)
	}
	roots := &node.ContainerRoots{Snapshots: snaps, Mounter: m}
	rec := newRecorder()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d := &node.Daemon{
		Containers: client,
		Events:     &cri.Watcher{Address: bed.Address(), Namespace: fsaccess.CRINamespace, Log: log},
		Views:      roots,
		Roots:      roots,
		Digests:    snaps,
		Analyzers:  scan.DefaultAnalyzers(),
		Cache:      cache,
		Publisher:  rec,
		Node:       "node-1",
		Resync:     time.Hour,
		OnScan:     rec.observe,
		Log:        log,
	}
	runCtx, cancel := context.WithCancel(ctx)
	rig := &daemonRig{d: d, rec: rec, mounts: mountDir, m: m, cancel: cancel, done: make(chan error, 1)}
	go func() { rig.done <- d.Run(runCtx) }()
	t.Cleanup(rig.stop)
	return rig
}

func (r *daemonRig) stop() {
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
	}
	r.m.Close()
}

// The daemon finds containers from containerd's events within seconds, reads each image once, re-reads a
// container only when its own upper dir changed, follows state changes and forgets removed containers; its image
// analyses survive a restart; it leaves no mount behind.
func TestDaemonFollowsContainers(t *testing.T) {
	bed, ctx, img, ref := startBed(t, ociimage.Distroless)
	cacheDir := filepath.Join(t.TempDir(), "images")
	rig := startDaemon(t, bed, cacheDir)
	rec := rig.rec
	rec.waitFor(t, "daemon ready", 30*time.Second, func() bool { return rig.d.Ready() })

	pod, a1 := runPodWith(t, ctx, bed, testbed.PodSpec{Name: "web", Namespace: "shop"}, testbed.ContainerSpec{Name: "a1", Image: ref.Name})
	a2, err := bed.RunContainer(ctx, pod, testbed.ContainerSpec{Name: "a2", Image: ref.Name})
	if err != nil {
		t.Fatal(err)
	}
	want := wantPackages(img)
	rec.waitFor(t, "both containers' reports with their packages", 20*time.Second, func() bool {
		for _, id := range []string{a1, a2} {
			rep, _ := rec.lastReport(id)
			if rep.Result == nil || rep.Target.State != string(cri.StateRunning) {
				return false
			}
		}
		return true
	})
	for _, id := range []string{a1, a2} {
		rep, _ := rec.lastReport(id)
		if got := gotPackages(rep.Result); !slices.Equal(got, want) {
			t.Errorf("%s packages:\n got %v\nwant %v", id, got, want)
		}
		if rep.Target.Pod != "web" || rep.Target.Namespace != "shop" || rep.Target.Node != "node-1" || rep.Target.ImageDigest == "" {
			t.Errorf("%s target = %+v", id, rep.Target)
		}
	}
	if st := rig.d.Stats(); st.CacheMisses != 1 || st.CacheHits < 1 {
		t.Errorf("image cache: %d misses, %d hits; want the shared image read once (1 miss) and reused", st.CacheMisses, st.CacheHits)
	}

	// The container writes a Python package into its own layer: after a nudge its inventory has it, a2's does not.
	upper, _ := snapshotDirs(t, bed, a1)
	distInfo := filepath.Join(upper, "usr/lib/python3/dist-packages/implant-6.6.6.dist-info")
	if err := os.MkdirAll(distInfo, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(distInfo, "METADATA"), []byte("Metadata-Version: 2.1\nName: implant\nVersion: 6.6.6\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	_, n1 := rec.lastReport(a1)
	_, n2 := rec.lastReport(a2)
	unchanged := rec.outcomes["unchanged"]
	rec.mu.Unlock()
	rig.d.Nudge(a1)
	rig.d.Nudge(a2)
	rec.waitFor(t, "a1 re-analyzed and a2 found unchanged", 20*time.Second, func() bool {
		_, m := rec.lastReport(a1)
		return m > n1 && rec.outcomes["unchanged"] > unchanged
	})
	rec.mu.Lock()
	rep1, _ := rec.lastReport(a1)
	_, m2 := rec.lastReport(a2)
	rec.mu.Unlock()
	if !slices.Contains(langPackages(rep1.Result), "PyPI implant 6.6.6") {
		t.Errorf("a1 after writing a dist-info: packages %v lack PyPI implant 6.6.6", langPackages(rep1.Result))
	}
	if m2 != n2 {
		t.Errorf("a2 was republished although nothing in it changed")
	}

	// Stop a2: the exit event updates its state; remove it: its findings go.
	if err := bed.StopContainer(ctx, a2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "a2 reported exited", 20*time.Second, func() bool {
		rep, _ := rec.lastReport(a2)
		return rep.Target.State == string(cri.StateExited)
	})
	if err := bed.RemoveContainer(ctx, a2); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "a2 removed", 20*time.Second, func() bool { return rec.removed[a2] })
	if st := rig.d.Stats(); st.Containers != 1 {
		t.Errorf("containers tracked after removal = %d, want 1", st.Containers)
	}

	rig.stop()
	assertNoMountsUnder(t, rig.mounts)

	// A restarted daemon with the same cache directory reads no image again.
	rig2 := startDaemon(t, bed, cacheDir)
	rig2.rec.waitFor(t, "restarted daemon ready with a1", 30*time.Second, func() bool {
		rep, _ := rig2.rec.lastReport(a1)
		return rig2.d.Ready() && rep.Result != nil
	})
	if st := rig2.d.Stats(); st.CacheMisses != 0 {
		t.Errorf("restarted daemon: %d image cache misses, want 0 (analysis persisted by chain ID)", st.CacheMisses)
	}
	rig2.stop()
	assertNoMountsUnder(t, rig2.mounts)
	if err := bed.RemovePod(ctx, pod); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

// langPackages lists a result's non-OS packages as "Ecosystem name version".
func langPackages(res *report.Result) []string {
	var out []string
	for _, p := range res.Packages {
		if p.Ecosystem != report.EcosystemDebian {
			out = append(out, p.Ecosystem+" "+p.Name+" "+p.Version)
		}
	}
	return out
}
