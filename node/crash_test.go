package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"golang.org/x/sys/unix"

	"github.com/rootscan/rootscan/exporter"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// crashChildEnv makes the test binary a daemon child (crashChild) instead of running tests: the crash test needs a
// process that really dies, with the test-only panicking analyzer wired in, which the rootscan binary must not have.
const crashChildEnv = "ROOTSCAN_TEST_CRASH_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		if err := crashChild(dir, os.Getenv("ROOTSCAN_TEST_CONTAINERD")); err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashChild runs a daemon over the test bed's containerd with a poison analyzer (ROOTSCAN_TEST_CRASH_MODE: "panic",
// or "hog" under an address-space limit, so the process dies of running out of memory as an OOM-killed pod would,
// with no memory budget to stop the check first), one worker, its state in dir/checks; it writes each published report to dir/reports.jsonl, each SIEM event to dir/events.jsonl and, once
// the first full reconcile is checked, the metrics to dir/metrics.txt, and returns.
func crashChild(dir, address string) error {
	mode := os.Getenv("ROOTSCAN_TEST_CRASH_MODE")
	if mode == "hog" {
		if err := limitAddressSpace(768 << 20); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client, roots, closeParts, err := daemonParts(ctx, address, filepath.Join(dir, "mounts"))
	if err != nil {
		return err
	}
	defer closeParts()
	events, err := os.OpenFile(filepath.Join(dir, "events.jsonl"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer events.Close()
	reports, err := os.OpenFile(filepath.Join(dir, "reports.jsonl"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer reports.Close()
	tracker, err := exporter.NewTracker(filepath.Join(dir, "findings"), jsonLines{w: events}, nil)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	metrics, err := exporter.NewFleetMetrics("node-1", exporter.MetricsOptions{})
	if err != nil {
		return err
	}
	inc, err := exporter.NewIncompleteMetrics("node-1", exporter.MetricsOptions{})
	if err != nil {
		return err
	}
	if err := errors.Join(metrics.Register(reg), inc.Register(reg)); err != nil {
		return err
	}
	d := &Daemon{
		Containers: client, Views: roots, Roots: roots, Node: "node-1", Workers: 1, Resync: time.Hour,
		Publisher: &filePublisher{inner: &exporter.DaemonPublisher{Metrics: metrics, Tracker: tracker, Incomplete: inc},
			out: jsonLines{w: reports}},
		Analyzers: append(scan.DefaultAnalyzers(), poisonAnalyzer{mode: mode}),
		StateDir:  filepath.Join(dir, "checks"),
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	for !d.Ready() {
		select {
		case err := <-done:
			return fmt.Errorf("daemon ended before it was ready: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		return err
	}
	var text bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&text, mf); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "metrics.txt"), text.Bytes(), 0o600); err != nil {
		return err
	}
	cancel()
	return <-done
}

// limitAddressSpace sets RLIMIT_AS to the process's current size plus extra, so a Go heap that grows by more dies
// with the runtime's fatal "out of memory".
func limitAddressSpace(extra uint64) error {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return err
	}
	var kib uint64
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmSize:"); ok {
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kib)
		}
	}
	if kib == 0 {
		return errors.New("no VmSize in /proc/self/status")
	}
	lim := kib<<10 + extra
	return unix.Setrlimit(unix.RLIMIT_AS, &unix.Rlimit{Cur: lim, Max: lim})
}

// jsonLines writes values as JSON lines; as an exporter.Publisher it writes events.
type jsonLines struct{ w *os.File }

func (j jsonLines) write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = j.w.Write(append(b, '\n'))
	return err
}

func (j jsonLines) Publish(_ context.Context, events []exporter.Event) error {
	for _, e := range events {
		if err := j.write(e); err != nil {
			return err
		}
	}
	return nil
}

// filePublisher is the child's node.Publisher: the exporter's, plus every report as a JSON line.
type filePublisher struct {
	inner *exporter.DaemonPublisher
	mu    sync.Mutex
	out   jsonLines
}

func (p *filePublisher) Publish(ctx context.Context, rep report.Report) {
	p.inner.Publish(ctx, rep)
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.out.write(rep)
}

func (p *filePublisher) Remove(ctx context.Context, t report.Target) { p.inner.Remove(ctx, t) }

// readLines decodes a JSON-lines file.
func readLines[T any](t *testing.T, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, v)
	}
	return out
}

// A container whose check kills the scanner process does not hold the daemon in a crash loop. A child daemon with a
// test-only analyzer that, on poisonPath, panics outside any recover (or holds memory until the process runs out of
// it) dies; each next start finds the check records the dead one left and quarantines what it was reading, so the
// daemon dies once per poison, not once per start: once for the poisoned image (both of its containers are then
// quarantined, the second never read) and once for the container whose own upper dir holds the poison. Then it runs:
// the quarantined containers are reported (scan.crashed: report, one SIEM event each, metrics), the clean one is
// scanned. A quarantined container that changes is read again, unless its image is the poison.
func TestDaemonCrashQuarantine(t *testing.T) {
	pb := startPoisonBed(t)
	for _, tc := range []struct{ mode, death string }{
		{"panic", "poison: a parser crashed the process"},
		{"hog", "out of memory"},
	} {
		t.Run(tc.mode, func(t *testing.T) { crashAndQuarantine(t, pb, tc.mode, tc.death) })
	}
}

func crashAndQuarantine(t *testing.T, pb *poisonBed, mode, death string) {
	dir := t.TempDir()
	mountDir := filepath.Join(dir, "mounts")
	// A child that died left its mounts; a new Mounter removes the stale ones, as the next daemon start does.
	t.Cleanup(func() {
		if m, err := fsaccess.NewMounter(context.Background(), mountDir, nil); err == nil {
			m.Close()
		}
	})
	run := func(name string) (exitCode int, stderr string) {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, "ROOTSCAN_TEST_CONTAINERD="+pb.bed.Address(), "ROOTSCAN_TEST_CRASH_MODE="+mode)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: %v", name, cmd.ProcessState)
		return cmd.ProcessState.ExitCode(), errb.String()
	}

	crashes := 0
	for i := 1; ; i++ {
		code, stderr := run(fmt.Sprintf("run %d", i))
		if code == 0 {
			break
		}
		if !strings.Contains(stderr, death) {
			t.Fatalf("run %d: exit %d, want the child to die (%s) or run; stderr:\n%s", i, code, death, tail(stderr, 30))
		}
		if crashes++; crashes > 2 {
			t.Fatalf("%d crashes for two poisons: a crash loop", crashes)
		}
	}
	if crashes != 2 {
		t.Errorf("%d crashes, want one per poison (the image's, the upper dir's)", crashes)
	}
	points, err := fsaccess.MountPointsUnder(mountDir)
	if err != nil || len(points) > 0 {
		t.Errorf("mounts left after a daemon that started over a crashed one's mounts and stopped: %q, %v", points, err)
	}
	checkQuarantined(t, dir, pb)

	// The poisoned image's container changes: still quarantined, since its image crashed the scanner.
	if err := os.WriteFile(filepath.Join(upperDirOf(t, pb.bed.Address(), pb.poisoned), "changed-"+mode), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, stderr := run("after the image's container changed"); code != 0 {
		t.Errorf("a container of the quarantined image was read after it changed: exit %d; stderr:\n%s", code, tail(stderr, 30))
	}
	// The container with the poison in its upper dir changes: its quarantine is lifted, it is read, the child dies.
	if err := os.WriteFile(filepath.Join(upperDirOf(t, pb.bed.Address(), pb.upperPoisoned), "changed-"+mode), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, stderr := run("after the upper-poisoned container changed"); code == 0 || !strings.Contains(stderr, death) {
		t.Errorf("after the container changed: exit %d, want it read again (and the child dead again); stderr:\n%s", code, tail(stderr, 30))
	}
}

// checkQuarantined checks what the first run that lived published: the poisoned containers quarantined (report, one
// scan.crashed event each, metrics), the clean one analyzed.
func checkQuarantined(t *testing.T, dir string, pb *poisonBed) {
	t.Helper()
	byID := map[string]report.Report{}
	for _, r := range readLines[report.Report](t, filepath.Join(dir, "reports.jsonl")) {
		byID[r.Target.ContainerID] = r
	}
	quarantined := []string{pb.poisoned, pb.poisoned2, pb.upperPoisoned}
	for _, id := range quarantined {
		if bad := byID[id]; bad.Incomplete == nil || bad.Incomplete.Reason != report.IncompleteCrashed || bad.Result != nil {
			t.Errorf("%s after the crashes: incomplete %+v, result %v; want quarantined (crashed), not read", bad.Target.Container, bad.Incomplete, bad.Result != nil)
		}
	}
	if clean := byID[pb.clean]; clean.Incomplete != nil || clean.Error != "" || clean.Result == nil || len(clean.Result.Packages) == 0 {
		t.Errorf("clean container: incomplete %+v, error %q; want a full result", clean.Incomplete, clean.Error)
	}
	crashed := map[string]int{}
	for _, e := range readLines[exporter.Event](t, filepath.Join(dir, "events.jsonl")) {
		if e.Type == exporter.EventScanCrashed {
			crashed[e.ContainerID]++
		}
	}
	if len(crashed) != len(quarantined) || crashed[pb.poisoned] != 1 || crashed[pb.poisoned2] != 1 || crashed[pb.upperPoisoned] != 1 {
		t.Errorf("scan.crashed events per container: %v; want one for each quarantined container %v", crashed, quarantined)
	}
	metricsTxt, err := os.ReadFile(filepath.Join(dir, "metrics.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		exporter.MetricScanIncompleteTotal + `{reason="crashed"} 3`,
		exporter.MetricContainerIncomplete + `{container="poisoned2",namespace="shop",node="node-1",pod="web",reason="crashed"} 1`,
		exporter.MetricContainerIncomplete + `{container="upper-poisoned",namespace="shop",node="node-1",pod="web",reason="crashed"} 1`,
	} {
		if !strings.Contains(string(metricsTxt), want) {
			t.Errorf("metrics lack %s:\n%s", want, metricsTxt)
		}
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// upperDirOf is where the snapshotter keeps a container's upper dir.
func upperDirOf(t *testing.T, address, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client, roots, closeParts, err := daemonParts(ctx, address, filepath.Join(t.TempDir(), "mounts"))
	if err != nil {
		t.Fatal(err)
	}
	defer closeParts()
	c, err := client.Container(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := roots.Snapshots.Mounts(ctx, c.Snapshotter, c.SnapshotKey)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := upperDir(ms)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
