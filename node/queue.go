package node

import (
	"context"
	"sync"
)

// workQueue hands container IDs to workers with de-duplication: an ID queued twice before a worker takes it is
// checked once, and an ID queued while it is being checked is checked again afterwards (never by two workers at
// once). A burst of events for one container (create, start, update) thus costs one or two checks, not one per event.
type workQueue struct {
	mu      sync.Mutex
	cond    *sync.Cond
	order   []string
	queued  map[string]bool
	running map[string]bool
	again   map[string]bool
	closed  bool
}

func newWorkQueue() *workQueue {
	q := &workQueue{queued: map[string]bool{}, running: map[string]bool{}, again: map[string]bool{}}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// add queues id unless it is queued already.
func (q *workQueue) add(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	if q.running[id] {
		q.again[id] = true
		return
	}
	if q.queued[id] {
		return
	}
	q.queued[id] = true
	q.order = append(q.order, id)
	q.cond.Broadcast()
}

// get blocks for the next id; false once the queue is closed or ctx ends.
func (q *workQueue) get(ctx context.Context) (string, bool) {
	defer q.wakeOnDone(ctx)()
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.order) == 0 && !q.closed && ctx.Err() == nil {
		q.cond.Wait()
	}
	if q.closed || ctx.Err() != nil {
		return "", false
	}
	id := q.order[0]
	q.order[0] = ""
	q.order = q.order[1:]
	delete(q.queued, id)
	q.running[id] = true
	return id, true
}

// done marks id's check finished, re-queueing it if it changed meanwhile.
func (q *workQueue) done(id string) {
	q.mu.Lock()
	delete(q.running, id)
	again := q.again[id]
	delete(q.again, id)
	q.cond.Broadcast()
	q.mu.Unlock()
	if again {
		q.add(id)
	}
}

// len is the number of IDs waiting (not running), for the queue depth metric.
func (q *workQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.order)
}

// waitIdle blocks until nothing is queued or running; false if ctx ended first.
func (q *workQueue) waitIdle(ctx context.Context) bool {
	defer q.wakeOnDone(ctx)()
	q.mu.Lock()
	defer q.mu.Unlock()
	for (len(q.order) > 0 || len(q.running) > 0) && !q.closed && ctx.Err() == nil {
		q.cond.Wait()
	}
	return ctx.Err() == nil && !q.closed
}

// close wakes every waiter; workers stop taking work.
func (q *workQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.mu.Unlock()
}

// wakeOnDone wakes the waiters when ctx ends, so that a wait loop checking ctx.Err() returns; call the result to stop.
func (q *workQueue) wakeOnDone(ctx context.Context) (stop func() bool) {
	return context.AfterFunc(ctx, func() {
		q.mu.Lock()
		q.cond.Broadcast()
		q.mu.Unlock()
	})
}
