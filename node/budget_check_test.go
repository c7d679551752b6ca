package node

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/exporter"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/internal/testbed"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// poisonPath is the file the test-only analyzers misbehave on; only the poisoned image has it.
const poisonPath = "etc/poison"

// poisonAnalyzer is a test-only FileAnalyzer that misbehaves on poisonPath the way a hostile file would make a
// parser misbehave: it hangs (until its context ends), holds memory in 1 MiB pieces (checking its context between
// them, as the walk does between files), or panics outside any recover.
type poisonAnalyzer struct{ mode string }

func (a poisonAnalyzer) Name() string                                         { return "poison-" + a.mode }
func (poisonAnalyzer) Version() int                                           { return 1 }
func (poisonAnalyzer) Requires() []string                                     { return nil }
func (poisonAnalyzer) Paths() []string                                        { return []string{poisonPath} }
func (poisonAnalyzer) Analyze(context.Context, scan.FS, *report.Result) error { return nil }
func (poisonAnalyzer) Wants(name string, _ fs.DirEntry) bool                  { return name == poisonPath }
func (a poisonAnalyzer) AnalyzeFile(ctx context.Context, fsys scan.FS, name string, out *report.Result) error {
	switch a.mode {
	case "hang":
		<-ctx.Done()
	case "hog":
		var held [][]byte
		for len(held) < 4096 && ctx.Err() == nil { // at most 4 GiB: the test fails long before
			b := make([]byte, 1<<20)
			for i := range b {
				b[i] = byte(i)
			}
			held = append(held, b)
			time.Sleep(2 * time.Millisecond)
		}
		out.Errors = append(out.Errors, report.FileError{Analyzer: a.Name(), Path: name, Err: "held " + sizeOf(uint64(len(held))<<20)})
	case "panic":
		go func() { panic("poison: a parser crashed the process") }() // no recover can catch this
		time.Sleep(time.Minute)
	}
	return nil
}

// poisonBed is a test bed with containers holding poisonPath in different places: two running containers of an
// image that has it in a layer of its own (poisoned, poisoned2), a created container of the plain distroless image
// whose upper dir has it (upperPoisoned), and a running clean one.
type poisonBed struct {
	bed                                       *testbed.Containerd
	clean, poisoned, poisoned2, upperPoisoned string // container IDs
}

func startPoisonBed(t *testing.T) *poisonBed {
	t.Helper()
	bed := testbed.StartT(t, testbed.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	base, err := ociimage.Distroless(ctx, ociimage.DefaultCacheDir())
	if err != nil {
		t.Fatalf("build distroless image: %v", err)
	}
	poison := *base
	poison.Name = "rootscan.test/poison:1"
	poison.Layers = append(slices.Clone(base.Layers), ociimage.Layer{Files: []ociimage.File{{Path: poisonPath, Mode: 0o644, Data: []byte("x")}}})
	cleanRef, err := bed.Import(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	poisonRef, err := bed.Import(ctx, &poison)
	if err != nil {
		t.Fatal(err)
	}
	pod, err := bed.RunPod(ctx, testbed.PodSpec{Name: "web", Namespace: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	p := &poisonBed{bed: bed}
	if p.clean, err = bed.RunContainer(ctx, pod, testbed.ContainerSpec{Name: "clean", Image: cleanRef.Name}); err != nil {
		t.Fatal(err)
	}
	if p.poisoned, err = bed.RunContainer(ctx, pod, testbed.ContainerSpec{Name: "poisoned", Image: poisonRef.Name}); err != nil {
		t.Fatal(err)
	}
	if p.poisoned2, err = bed.RunContainer(ctx, pod, testbed.ContainerSpec{Name: "poisoned2", Image: poisonRef.Name}); err != nil {
		t.Fatal(err)
	}
	if p.upperPoisoned, err = bed.CreateContainer(ctx, pod, testbed.ContainerSpec{Name: "upper-poisoned", Image: cleanRef.Name}); err != nil {
		t.Fatal(err)
	}
	// Written from the host into the never-started container's upper dir, as its process would have written it.
	upper := upperDirOf(t, bed.Address(), p.upperPoisoned)
	if err := os.MkdirAll(filepath.Join(upper, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(upper, poisonPath), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// daemonParts is the real access a daemon has to the bed's containerd.
func daemonParts(ctx context.Context, address, mountDir string) (*cri.Client, *ContainerRoots, func(), error) {
	client, err := cri.Dial(ctx, address)
	if err != nil {
		return nil, nil, nil, err
	}
	snaps, err := fsaccess.DialSnapshots(ctx, address)
	if err != nil {
		client.Close()
		return nil, nil, nil, err
	}
	m, err := fsaccess.NewMounter(ctx, mountDir, nil)
	if err != nil {
		snaps.Close()
		client.Close()
		return nil, nil, nil, err
	}
	return client, &ContainerRoots{Snapshots: snaps, Mounter: m}, func() { m.Close(); snaps.Close(); client.Close() }, nil
}

// eventLog is an exporter.Publisher that keeps the SIEM events the tracker publishes.
type eventLog struct {
	mu     sync.Mutex
	events []exporter.Event
}

func (l *eventLog) Publish(_ context.Context, events []exporter.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, events...)
	return nil
}

func (l *eventLog) of(typ exporter.EventType, containerID string) []exporter.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []exporter.Event
	for _, e := range l.events {
		if e.Type == typ && e.ContainerID == containerID {
			out = append(out, e)
		}
	}
	return out
}

// reportLog is the daemon's publisher in these tests: the real exporter publisher (metrics, incomplete metrics,
// finding tracker) plus the last report of each container.
type reportLog struct {
	inner *exporter.DaemonPublisher
	mu    sync.Mutex
	last  map[string]report.Report
}

func (p *reportLog) Publish(ctx context.Context, rep report.Report) {
	p.inner.Publish(ctx, rep)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last[rep.Target.ContainerID] = rep
}

func (p *reportLog) Remove(ctx context.Context, t report.Target) { p.inner.Remove(ctx, t) }

func (p *reportLog) get(id string) (report.Report, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.last[id]
	return r, ok
}

// newReportLog wires the exporter's real publisher with its metrics registered in reg and events kept in events.
func newReportLog(t *testing.T, reg *prometheus.Registry, events exporter.Publisher) *reportLog {
	t.Helper()
	tracker, err := exporter.NewTracker(filepath.Join(t.TempDir(), "findings"), events, nil)
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := exporter.NewFleetMetrics("node-1", exporter.MetricsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	inc, err := exporter.NewIncompleteMetrics("node-1", exporter.MetricsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := metrics.Register(reg); err != nil {
		t.Fatal(err)
	}
	if err := inc.Register(reg); err != nil {
		t.Fatal(err)
	}
	return &reportLog{inner: &exporter.DaemonPublisher{Metrics: metrics, Tracker: tracker, Incomplete: inc}, last: map[string]report.Report{}}
}

// metricsText is the registry's exposition.
func metricsText(t *testing.T, reg prometheus.Gatherer) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// A container whose check exceeds a budget is stopped, and only that one: its report says which budget, in which
// analyzer and at which file; the SIEM gets one scan.incomplete event and the metrics count it and mark the
// container; the other container on the node is analyzed as usual, and nothing stays mounted.
func TestDaemonCheckBudgets(t *testing.T) {
	pb := startPoisonBed(t)
	for _, tc := range []struct {
		mode, reason string
		budget       CheckBudget
	}{
		{"hang", report.IncompleteDeadline, CheckBudget{Timeout: 3 * time.Second}},
		{"hog", report.IncompleteMemory, CheckBudget{Timeout: 2 * time.Minute, Memory: 32 << 20}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			mountDir := filepath.Join(t.TempDir(), "mounts")
			client, roots, closeParts, err := daemonParts(ctx, pb.bed.Address(), mountDir)
			if err != nil {
				t.Fatal(err)
			}
			defer closeParts()
			reg, events := prometheus.NewRegistry(), &eventLog{}
			pub := newReportLog(t, reg, events)
			d := &Daemon{
				Containers: client, Views: roots, Roots: roots, Publisher: pub, Node: "node-1",
				Analyzers:   append(scan.DefaultAnalyzers(), poisonAnalyzer{mode: tc.mode}),
				CheckBudget: tc.budget, StateDir: filepath.Join(t.TempDir(), "checks"), Resync: time.Hour,
			}
			done := make(chan error, 1)
			go func() { done <- d.Run(ctx) }()
			waitFor(t, "every container published", 2*time.Minute, func() bool {
				for _, id := range []string{pb.clean, pb.poisoned, pb.poisoned2, pb.upperPoisoned} {
					if _, ok := pub.get(id); !ok {
						return false
					}
				}
				return d.Ready()
			})
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}

			clean, _ := pub.get(pb.clean)
			if clean.Incomplete != nil || clean.Error != "" || clean.Result == nil || len(clean.Result.Packages) == 0 {
				t.Errorf("clean container: incomplete %+v, error %q; want a full result", clean.Incomplete, clean.Error)
			}
			for _, id := range []string{pb.poisoned2, pb.upperPoisoned} {
				if r, _ := pub.get(id); r.Incomplete == nil || r.Incomplete.Reason != tc.reason {
					t.Errorf("container %s (%s): incomplete %+v; want %s", r.Target.Container, id, r.Incomplete, tc.reason)
				}
			}
			bad, _ := pub.get(pb.poisoned)
			inc := bad.Incomplete
			if inc == nil || inc.Reason != tc.reason || inc.Analyzer != "poison-"+tc.mode || inc.Path != poisonPath {
				t.Fatalf("poisoned container: incomplete %+v (error %q); want %s in poison-%s at %s", inc, bad.Error, tc.reason, tc.mode, poisonPath)
			}
			if bad.Result != nil {
				t.Errorf("an incomplete check published a result (%d packages): its partial findings would resolve the full ones", len(bad.Result.Packages))
			}
			if evs := events.of(exporter.EventScanIncomplete, pb.poisoned); len(evs) != 1 || evs[0].Incomplete == nil || evs[0].Incomplete.Reason != tc.reason {
				t.Errorf("scan.incomplete events for the poisoned container: %+v, want one saying %s", evs, tc.reason)
			}
			if evs := events.of(exporter.EventScanIncomplete, pb.clean); len(evs) != 0 {
				t.Errorf("scan.incomplete events for the clean container: %+v", evs)
			}
			text := metricsText(t, reg)
			for _, want := range []string{
				exporter.MetricScanIncompleteTotal + `{reason="` + tc.reason + `"} 3`,
				exporter.MetricContainerIncomplete + `{container="poisoned",namespace="shop",node="node-1",pod="web",reason="` + tc.reason + `"} 1`,
			} {
				if !strings.Contains(text, want) {
					t.Errorf("metrics lack %s", want)
				}
			}
			if strings.Contains(text, `container="clean",namespace="shop",node="node-1",pod="web",reason=`) {
				t.Errorf("the clean container is marked incomplete:\n%s", text)
			}
			if held := roots.Mounter.Held(); held != 0 {
				t.Errorf("%d mounts held after the daemon stopped", held)
			}
			b, _ := json.Marshal(bad)
			if !strings.Contains(string(b), `"incomplete":{"reason":"`+tc.reason+`"`) {
				t.Errorf("JSON of the report lacks its incomplete part: %s", b)
			}
		})
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
