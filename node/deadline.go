package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// CheckBudget bounds one container's check, so one hostile container costs a bounded share of the daemon and the
// others keep being checked. A check past a bound is stopped and reported incomplete (report.Incomplete), naming
// the budget and the analyzer and file it was at.
type CheckBudget struct {
	// Timeout is the check's deadline (0 = none).
	Timeout time.Duration
	// Memory bounds how far the live heap may grow while the check runs, in bytes (0 = none). It is watched, not
	// reserved (see memWatch): a check is stopped after the garbage collector has seen the growth, at the next point
	// where it looks at its context. The readers' own byte caps bound what a single allocation can take.
	Memory int64
}

// DefaultCheckBudget is the daemon's default: two minutes and 64 MiB per container check.
var DefaultCheckBudget = CheckBudget{Timeout: 2 * time.Minute, Memory: 64 << 20}

// retryIncompleteAfter is how long a container whose check stopped at a budget is left alone while it does not
// change: a hostile container costs one budget per hour, not one per resync; a slow check on a busy node is tried
// again.
const retryIncompleteAfter = time.Hour

// budgetError is the cancel cause of a check stopped at a budget.
type budgetError struct {
	reason string // report.IncompleteDeadline or report.IncompleteMemory
	detail string
}

func (e *budgetError) Error() string { return "check stopped: " + e.reason + " budget: " + e.detail }

// checkRun is one container check in flight: its progress (where it is), how to stop it, and what the memory watch
// measured at its start.
type checkRun struct {
	id       string
	progress scan.Progress
	cancel   context.CancelCauseFunc
	started  time.Time
	// startLive is the live heap when the check started (memWatch).
	startLive uint64
	done      atomic.Bool
	// waits counts the steps in which the check is blocked on another (the image analysis of its image): the
	// memory watch charges a waiting check nothing, so the check it waits for is the one stopped.
	waits atomic.Int32

	mu        sync.Mutex
	stopWhere [2]string // analyzer, path when the check was stopped
	chain     string    // the check's fingerprint once known (admit)
	upper     string
	recorded  bool // an in-flight record was written for it
}

// beginCheck gives a daemon check its context (beginRun); end also removes the check's in-flight record.
func (d *Daemon) beginCheck(ctx context.Context, id string) (_ context.Context, _ *checkRun, end func()) {
	cctx, run, endRun := beginRun(ctx, id, d.CheckBudget, d.mem)
	return cctx, run, func() {
		endRun()
		if run.recorded {
			d.quar.end(run.id, d.logger())
		}
	}
}

// beginRun gives a check its context: the deadline, a cancel the memory watch (mem, if any) can fire, and the
// progress the analyzers keep. end releases them; call it when the check returns.
func beginRun(ctx context.Context, id string, b CheckBudget, mem *memWatch) (_ context.Context, _ *checkRun, end func()) {
	run := &checkRun{id: id, started: time.Now()}
	cctx, cancel := context.WithCancelCause(ctx)
	run.cancel = cancel
	stopTimer := func() {}
	if t := b.Timeout; t > 0 {
		var c context.CancelFunc
		cctx, c = context.WithTimeoutCause(cctx, t, &budgetError{reason: report.IncompleteDeadline, detail: "ran longer than " + t.String()})
		stopTimer = c
	}
	// Where the check was when it was stopped: analyzers go on to their next context check, and later steps move
	// the progress on.
	stopWhere := context.AfterFunc(cctx, func() {
		a, p := run.progress.Where()
		run.mu.Lock()
		run.stopWhere = [2]string{a, p}
		run.mu.Unlock()
	})
	cctx = scan.WithProgress(context.WithValue(cctx, runKey{}, run), &run.progress)
	if mem != nil {
		mem.enter(run)
	}
	return cctx, run, func() {
		stopWhere()
		stopTimer()
		run.done.Store(true)
		if mem != nil {
			mem.leave(run)
		}
		cancel(nil)
	}
}

// stoppedBy is the budget that stopped the check, or nil if none did (it finished, failed or the daemon stopped).
func (r *checkRun) stoppedBy(ctx context.Context) *report.Incomplete {
	var be *budgetError
	if !errors.As(context.Cause(ctx), &be) {
		return nil
	}
	r.mu.Lock()
	where := r.stopWhere
	r.mu.Unlock()
	if where == [2]string{} {
		where[0], where[1] = r.progress.Where() // the check returned before the stop was noted
	}
	return &report.Incomplete{Reason: be.reason, Detail: be.detail, Analyzer: where[0], Path: where[1]}
}

// admit is the step between finding the container's fingerprint (image chain and upper-dir state; both "" when the
// snapshot cannot be split) and reading anything else of it. A quarantined container with the same fingerprint is
// not read: its report says so. One whose last check stopped at a budget is left alone for retryIncompleteAfter
// while it does not change. Otherwise the check is recorded as in flight in the state dir, so that if the process
// dies during it, the next start quarantines the container. stop says the check ends here with outcome and rep.
func (d *Daemon) admit(ctx context.Context, c cri.Container, prev *tracked, rep report.Report, chain, upper string) (outcome string, _ report.Report, stop bool) {
	run := runFrom(ctx)
	if run == nil {
		return "", rep, false
	}
	run.mu.Lock()
	run.chain, run.upper = chain, upper
	run.mu.Unlock()
	q, held := d.quar.holds(c.ID, chain, upper)
	if iq, iheld := d.quar.holdsImage(chain); !held && iheld && chain != "" {
		// The image crashed the scanner: its containers are not read while it has no cached analysis.
		if _, cached := d.Cache.Get(chain); !cached {
			q, held = iq, true
		}
	}
	if held {
		if prev != nil && prev.report.Incomplete != nil && prev.report.Incomplete.Reason == report.IncompleteCrashed {
			return "unchanged", prev.report, true
		}
		rep.Incomplete = q
		rep.Error = q.String()
		d.store(rep, &tracked{target: rep.Target, chain: chain, upper: upper, gen: d.gen.Load()})
		d.logger().Warn("container quarantined: the scanner died during an earlier check of it or of its image; not read until it changes",
			"container", c.ID, "name", c.DisplayName(), "since", q.Since, "detail", q.Detail)
		return "quarantined", rep, true
	}
	if prev != nil && prev.report.Incomplete != nil && upper != "" && prev.chain == chain && prev.upper == upper &&
		time.Since(prev.report.StartedAt) < retryIncompleteAfter {
		return "unchanged", prev.report, true
	}
	if d.quar != nil {
		if err := d.quar.begin(c.ID, chain, upper); err != nil {
			d.logger().Warn("record check in flight; a crash in it would not be remembered", "container", c.ID, "err", err)
		} else {
			run.recorded = true
		}
	}
	return "", rep, false
}

type runKey struct{}

// waiting runs wait (a blocking step) with the context's check marked as waiting.
func waiting(ctx context.Context, wait func()) {
	if r := runFrom(ctx); r != nil {
		r.waits.Add(1)
		defer r.waits.Add(-1)
	}
	wait()
}

// runFrom is the check run a context belongs to (beginCheck), or nil outside the daemon's checks.
func runFrom(ctx context.Context) *checkRun {
	r, _ := ctx.Value(runKey{}).(*checkRun)
	return r
}

// incomplete turns a check stopped at a budget into the report to publish: the findings so far are not the
// container's whole state, so none of them replaces the last full result (the metrics keep its series, the SIEM
// keeps its findings open); the report says which budget and where. The container is remembered with its
// fingerprint, so it is not read again until it changes or retryIncompleteAfter passes.
func (d *Daemon) incomplete(run *checkRun, rep report.Report, inc *report.Incomplete, log *slog.Logger) report.Report {
	rep.Result = nil
	rep.Incomplete = inc
	rep.Error = inc.String()
	rep.Duration = time.Since(run.started)
	run.mu.Lock()
	t := &tracked{target: rep.Target, chain: run.chain, upper: run.upper, gen: d.gen.Load()}
	run.mu.Unlock()
	d.store(rep, t)
	log.Warn("container check stopped at its budget", "container", run.id, "budget", inc.Reason, "detail", inc.Detail,
		"analyzer", inc.Analyzer, "path", inc.Path)
	return rep
}

// setupBudgets starts what the check budgets need: the memory watch, and the crash records under StateDir.
func (d *Daemon) setupBudgets(ctx context.Context) error {
	if d.CheckBudget.Memory > 0 {
		d.mem = newMemWatch(uint64(d.CheckBudget.Memory))
		go d.mem.run(ctx, memWatchEvery)
	}
	if d.StateDir == "" {
		return nil
	}
	q, err := openQuarantine(d.StateDir, d.QuarantineFor, d.logger())
	if err != nil {
		return fmt.Errorf("check records: %w", err)
	}
	d.quar = q
	return nil
}

// sizeOf is a byte count for people.
func sizeOf(n uint64) string { return humanize.IBytes(n) }

type memKey struct{}

// withMemWatch starts a memory watch for the checks run under the returned context (the one-shot scanner's), if
// the budget has a memory bound; stop ends it.
func withMemWatch(ctx context.Context, b CheckBudget) (_ context.Context, stop func()) {
	if b.Memory <= 0 {
		return ctx, func() {}
	}
	w := newMemWatch(uint64(b.Memory))
	wctx, cancel := context.WithCancel(ctx)
	go w.run(wctx, memWatchEvery)
	return context.WithValue(ctx, memKey{}, w), cancel
}

// memFrom is the context's memory watch (withMemWatch), or nil.
func memFrom(ctx context.Context) *memWatch {
	w, _ := ctx.Value(memKey{}).(*memWatch)
	return w
}

// withinBudget runs one target's scan (scan) under the scanner's CheckBudget and says which budget stopped it, if
// one did. The scan's partial result stays in the one-shot report, next to the Incomplete that says it is partial.
func (s *Scanner) withinBudget(ctx context.Context, id string, scan func(context.Context)) *report.Incomplete {
	if memFrom(ctx) == nil {
		var stop func()
		ctx, stop = withMemWatch(ctx, s.CheckBudget)
		defer stop()
	}
	cctx, run, end := beginRun(ctx, id, s.CheckBudget, memFrom(ctx))
	scan(cctx)
	end()
	inc := run.stoppedBy(cctx)
	if inc != nil {
		s.logger().Warn("scan stopped at its budget", "target", id, "budget", inc.Reason, "detail", inc.Detail,
			"analyzer", inc.Analyzer, "path", inc.Path)
	}
	return inc
}
