package node

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// The memory watch charges each check with the heap growth since it started and stops the newest one over budget,
// then charges no one until that check has returned.
func TestMemWatchJudge(t *testing.T) {
	w := newMemWatch(64 << 20)
	now := time.Now()
	mk := func(id string, startLive uint64, age time.Duration) (*checkRun, context.Context) {
		ctx, cancel := context.WithCancelCause(context.Background())
		r := &checkRun{id: id, started: now.Add(-age), startLive: startLive, cancel: cancel}
		w.runs[r] = struct{}{}
		return r, ctx
	}
	_, oldCtx := mk("old", 10<<20, time.Minute)
	young, youngCtx := mk("young", 40<<20, time.Second)
	// The newest check is blocked on another (the image analysis it shares): never charged.
	waiter, waiterCtx := mk("waiter", 0, 0)
	waiter.waits.Add(1)

	w.judge(60 << 20) // growth 50 and 20 MiB: nobody is over
	if oldCtx.Err() != nil || youngCtx.Err() != nil || w.pending != nil {
		t.Fatal("a check was stopped under budget")
	}
	w.judge(120 << 20) // growth 110 and 80 MiB: both over; the newer one goes
	if youngCtx.Err() == nil || oldCtx.Err() != nil || waiterCtx.Err() != nil || w.pending != young {
		t.Fatalf("stopped: old %v, young %v, waiter %v; want the younger running one only", oldCtx.Err(), youngCtx.Err(), waiterCtx.Err())
	}
	var be *budgetError
	if !errors.As(context.Cause(youngCtx), &be) || be.reason != report.IncompleteMemory {
		t.Fatalf("cause %v; want the memory budget", context.Cause(youngCtx))
	}
	w.tick() // the stopped check has not returned: nothing more is judged
	if oldCtx.Err() != nil || w.pending != young {
		t.Fatal("the watch judged again before the stopped check returned")
	}
	young.done.Store(true)
	w.tick() // it returned: collect, then judge again next time
	if w.pending != nil {
		t.Fatal("pending not cleared after the stopped check returned")
	}
	w.judge(80 << 20) // 70 MiB over old's start: old is over on its own
	if oldCtx.Err() == nil || waiterCtx.Err() != nil {
		t.Fatal("the remaining running check over budget was not stopped, or the waiting one was")
	}
	// A stopped check that does not return (blocked where it cannot see its context) holds the watch back only for
	// stopGrace.
	w.stopped = time.Now().Add(-2 * stopGrace)
	w.tick()
	if w.pending != nil {
		t.Fatal("a stopped check that never returns keeps the watch from judging")
	}
	// Memory given back lowers a check's baseline: growth counts from the lowest live heap since it started.
	fresh, freshCtx := mk("fresh", 100<<20, 0)
	w.judge(30 << 20)
	w.judge(100 << 20)
	if freshCtx.Err() == nil || fresh.startLive != 30<<20 {
		t.Errorf("a check that started at 100 MiB, saw 30 MiB and is back at 100 MiB: base %d, stopped %v; want base 30 MiB, stopped", fresh.startLive>>20, freshCtx.Err())
	}
}

// The crash records: a record left by a dead process quarantines its container with that fingerprint, across
// restarts, until the fingerprint changes or the quarantine expires; a record of a check that returned does not.
func TestQuarantineRecords(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	q, err := openQuarantine(dir, time.Hour, log)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "done"} {
		if err := q.begin(id, "chain-"+id, "upper-"+id); err != nil {
			t.Fatal(err)
		}
	}
	q.end("done", log)
	// Garbage beside the records (a torn temporary file) is removed, not trusted.
	if err := os.WriteFile(filepath.Join(dir, "checking", "x.json.tmp"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}

	// The process "died": the next start finds a and b in flight.
	q, err = openQuarantine(dir, time.Hour, log)
	if err != nil {
		t.Fatal(err)
	}
	inc, held := q.holds("a", "chain-a", "upper-a")
	if !held || inc.Reason != report.IncompleteCrashed || inc.Since.IsZero() {
		t.Fatalf("a: %+v, %v; want quarantined (crashed)", inc, held)
	}
	if _, held := q.holds("done", "chain-done", "upper-done"); held {
		t.Error("a container whose check returned is quarantined")
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "checking")); len(ents) != 0 {
		t.Errorf("checking/ after start: %v; want it empty", ents)
	}

	// Another restart keeps the quarantine; a changed upper dir lifts it, for good.
	q, err = openQuarantine(dir, time.Hour, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, held := q.holds("b", "chain-b", "upper-b"); !held {
		t.Error("b's quarantine did not survive a restart")
	}
	if _, held := q.holds("a", "chain-a", "upper-a-changed"); held {
		t.Error("a is still quarantined after its upper dir changed")
	}
	if _, held := q.holds("a", "chain-a", "upper-a"); held {
		t.Error("a lifted quarantine came back")
	}
	// An expired quarantine is dropped at start.
	q, err = openQuarantine(dir, time.Nanosecond, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, held := q.holds("b", "chain-b", "upper-b"); held {
		t.Error("an expired quarantine still holds")
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "quarantine")); len(ents) != 0 {
		t.Errorf("quarantine/ after expiry: %v; want it empty", ents)
	}
}

// The one-shot scanner's JSON carries the budget a target's scan stopped at, next to what was found until then.
func TestScanDirDeadline(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{"etc/os-release": "ID=debian\nVERSION_ID=12\n", poisonPath: "x"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := &Scanner{Analyzers: append(scan.DefaultAnalyzers(), poisonAnalyzer{mode: "hang"}), CheckBudget: CheckBudget{Timeout: 300 * time.Millisecond}}
	rep := s.ScanDir(context.Background(), dir)
	inc := rep.Incomplete
	if inc == nil || inc.Reason != report.IncompleteDeadline || inc.Analyzer != "poison-hang" || inc.Path != poisonPath {
		t.Fatalf("incomplete %+v; want the deadline, in poison-hang at %s", inc, poisonPath)
	}
	if rep.Result == nil {
		t.Fatal("no partial result")
	}
	// Without the poison file the same budget is not reached.
	if err := os.Remove(filepath.Join(dir, poisonPath)); err != nil {
		t.Fatal(err)
	}
	if rep := s.ScanDir(context.Background(), dir); rep.Incomplete != nil || rep.Result == nil || rep.Result.OS == nil {
		t.Fatalf("clean dir: incomplete %+v, result %+v", rep.Incomplete, rep.Result)
	}
}

// BenchmarkCheckRecord is what the crash record adds to each container check that reads more than its fingerprint:
// one small file written and fsync'd before, removed after. Unchanged containers (the daemon's most frequent check)
// write none.
func BenchmarkCheckRecord(b *testing.B) {
	log := slog.New(slog.DiscardHandler)
	q, err := openQuarantine(b.TempDir(), time.Hour, log)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := q.begin("4f1c9a7e0b2d", "overlayfs/sha256:0123456789abcdef", "sha256:fedcba9876543210"); err != nil {
			b.Fatal(err)
		}
		q.end("4f1c9a7e0b2d", log)
	}
}

// BenchmarkScanProgress is what keeping Progress costs a Run: the same analyzers over the same tree, with and without
// a Progress in the context (one mutex-guarded store per wanted file and per analyzer) over 2,000 executables each
// analyzer reads.
func BenchmarkScanProgress(b *testing.B) {
	dir := b.TempDir()
	for i := range 2000 {
		p := filepath.Join(dir, "usr/local/bin", "d"+strconv.Itoa(i%50), "tool"+strconv.Itoa(i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil { // executables: the unowned-file analyzer wants each
			b.Fatal(err)
		}
	}
	root, err := fsaccess.OpenDir(dir, fsaccess.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer root.Close()
	analyzers := scan.DefaultAnalyzers()
	for _, progress := range []bool{false, true} {
		b.Run("progress="+strconv.FormatBool(progress), func(b *testing.B) {
			ctx := context.Background()
			if progress {
				ctx = scan.WithProgress(ctx, &scan.Progress{})
			}
			for b.Loop() {
				scan.Run(ctx, root, analyzers)
			}
		})
	}
}

// BenchmarkCheckBudgetOverhead is what the budgets add to every container check, unchanged ones included: the
// deadline and cancel contexts, the progress, the memory watch's entry (one runtime/metrics read) and the verdict.
func BenchmarkCheckBudgetOverhead(b *testing.B) {
	w := newMemWatch(uint64(DefaultCheckBudget.Memory))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.run(ctx, memWatchEvery)
	b.ReportAllocs()
	for b.Loop() {
		cctx, run, end := beginRun(ctx, "c", DefaultCheckBudget, w)
		end()
		if run.stoppedBy(cctx) != nil {
			b.Fatal("stopped")
		}
	}
}
