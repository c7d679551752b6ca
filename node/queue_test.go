package node

import (
	"context"
	"testing"
	"time"
)

// A burst of events for one container costs one check; an event during a check costs exactly one more.
func TestWorkQueueDedupes(t *testing.T) {
	q := newWorkQueue()
	ctx := context.Background()
	q.add("a")
	q.add("b")
	q.add("a")
	if n := q.len(); n != 2 {
		t.Fatalf("len = %d, want 2 (a queued twice counts once)", n)
	}
	id, ok := q.get(ctx)
	if !ok || id != "a" {
		t.Fatalf("get = %q %v, want a (FIFO)", id, ok)
	}
	q.add("a") // changed while being checked
	q.add("a")
	if n := q.len(); n != 1 {
		t.Fatalf("len = %d, want 1: a running must not be queued for a second worker", n)
	}
	q.done("a")
	if n := q.len(); n != 2 {
		t.Fatalf("len after done = %d, want 2: a re-queued once after its check", n)
	}
	for _, want := range []string{"b", "a"} {
		id, _ := q.get(ctx)
		if id != want {
			t.Fatalf("get = %q, want %q", id, want)
		}
		q.done(id)
	}
	idle := make(chan bool, 1)
	go func() { idle <- q.waitIdle(ctx) }()
	select {
	case ok := <-idle:
		if !ok {
			t.Fatal("waitIdle = false on an empty queue")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waitIdle blocked on an empty queue")
	}
}

func TestWorkQueueGetStopsOnCancel(t *testing.T) {
	q := newWorkQueue()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan bool, 1)
	go func() {
		_, ok := q.get(ctx)
		got <- ok
	}()
	cancel()
	select {
	case ok := <-got:
		if ok {
			t.Fatal("get returned an item from an empty, cancelled queue")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("get did not return after cancel")
	}
}
