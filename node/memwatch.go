package node

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/rootscan/rootscan/report"
)

// memWatchEvery is how often the memory watch samples the heap while checks run (it sleeps while none does).
const memWatchEvery = 50 * time.Millisecond

// memWatch enforces CheckBudget.Memory as well as Go allows: Go has no per-goroutine heap accounting, so it watches
// the live heap the garbage collector measured (runtime/metrics /gc/heap/live:bytes, cheap to read, updated at the
// end of every cycle) and charges each running check with the growth since the check started. When a check's
// growth exceeds the budget, the newest such check is stopped (with two checks in flight, a growth that began after
// both started is charged to both, and the newer one is the likelier cause); the watch then waits until that check
// has returned and a collection has run before it judges again, so the freed memory is not charged to the next one.
//
// What it guarantees: a check that keeps more than the budget live for longer than one GC cycle plus one sample is
// stopped at its next context check, and reported. What it does not: one allocation larger than the budget (the
// readers' byte caps and the parsers' declared-length checks bound those), nor memory held by a parser that never
// looks at its context. The pod's memory limit is the backstop, and the crash record (quarantine.go) keeps an
// OOM kill from repeating.
type memWatch struct {
	budget uint64
	wake   chan struct{}

	mu      sync.Mutex
	runs    map[*checkRun]struct{}
	pending *checkRun // stopped, not yet returned
	stopped time.Time // when pending was stopped
	sample  [1]metrics.Sample
}

// stopGrace is how long the watch waits for a stopped check to return before it judges the others again: a check
// blocked where it cannot see its context must not keep the watch from stopping the next one.
const stopGrace = 500 * time.Millisecond

func newMemWatch(budget uint64) *memWatch {
	w := &memWatch{budget: budget, wake: make(chan struct{}, 1), runs: map[*checkRun]struct{}{}}
	w.sample[0].Name = "/gc/heap/live:bytes"
	return w
}

// live is the heap the last collection found live.
func (w *memWatch) live() uint64 {
	metrics.Read(w.sample[:])
	if w.sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return w.sample[0].Value.Uint64()
}

func (w *memWatch) enter(r *checkRun) {
	w.mu.Lock()
	r.startLive = w.live()
	w.runs[r] = struct{}{}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *memWatch) leave(r *checkRun) {
	w.mu.Lock()
	delete(w.runs, r)
	w.mu.Unlock()
}

// run samples every period while checks are in flight, until ctx ends.
func (w *memWatch) run(ctx context.Context, period time.Duration) {
	t := time.NewTimer(period)
	defer t.Stop()
	for {
		w.mu.Lock()
		idle := len(w.runs) == 0 && w.pending == nil
		w.mu.Unlock()
		if idle {
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
			}
		}
		t.Reset(period)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.tick()
	}
}

// tick judges once: it stops the newest check over budget, or after a stop, waits for it to return and collects.
func (w *memWatch) tick() {
	w.mu.Lock()
	if p := w.pending; p != nil {
		stopped := w.stopped
		w.mu.Unlock()
		if p.done.Load() {
			runtime.GC() // measure without the stopped check's garbage before charging anyone else
		} else if time.Since(stopped) < stopGrace {
			return
		}
		w.mu.Lock()
		w.pending = nil
		w.mu.Unlock()
		return
	}
	defer w.mu.Unlock()
	w.judge(w.live())
}

// judge stops the newest check whose heap growth is over the budget. A check's growth is counted from the lowest
// live heap seen since it started (memory another check held at its start and gave back is not its credit); a check
// waiting for another is not judged. w.mu is held.
func (w *memWatch) judge(live uint64) {
	var pick *checkRun
	for r := range w.runs {
		r.startLive = min(r.startLive, live)
		if r.waits.Load() == 0 && live > r.startLive+w.budget && (pick == nil || r.started.After(pick.started)) {
			pick = r
		}
	}
	if pick == nil {
		return
	}
	pick.cancel(&budgetError{reason: report.IncompleteMemory,
		detail: fmt.Sprintf("live heap grew by %s while it ran; budget %s", sizeOf(live-pick.startLive), sizeOf(w.budget))})
	delete(w.runs, pick)
	w.pending, w.stopped = pick, time.Now()
}
