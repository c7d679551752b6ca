package integration

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/rootscan/rootscan/cri"
)

// The CRI client reuses a container's verbose status while the runtime lists it in the same state: what a long-lived
// client (the daemon) lists must be exactly what a fresh client reads from the runtime, and a container that stops
// must be seen stopped (no pid) at once, not when a cached status ages out.
func TestCRIStatusReuse(t *testing.T) {
	n := startDistrolessNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	long := dialCRI(t, n)
	sameAsFresh := func(what string) []cri.Container {
		t.Helper()
		got, err := long.List(ctx, cri.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		fresh := dialCRI(t, n)
		want, err := fresh.List(ctx, cri.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: the long-lived client lists\n%+v\na fresh one\n%+v", what, got, want)
		}
		return got
	}
	byID := func(cs []cri.Container, id string) cri.Container {
		for _, c := range cs {
			if c.ID == id {
				return c
			}
		}
		t.Fatalf("container %s not listed", id)
		return cri.Container{}
	}

	sameAsFresh("first list")
	before := byID(sameAsFresh("second list, from the reused statuses"), n.running)
	if before.State != cri.StateRunning || before.Pid <= 0 || before.SnapshotKey == "" || before.Security == nil {
		t.Fatalf("running container from reused status: %+v", before)
	}

	if err := n.bed.StartContainer(ctx, n.created); err != nil {
		t.Fatal(err)
	}
	if started := byID(sameAsFresh("after a start"), n.created); started.State != cri.StateRunning || started.Pid <= 0 || started.StartedAt.IsZero() {
		t.Errorf("started container listed as %s, pid %d, started %v", started.State, started.Pid, started.StartedAt)
	}
	if err := n.bed.StopContainer(ctx, n.running, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	after := byID(sameAsFresh("after a stop"), n.running)
	if after.State != cri.StateExited || after.Pid != 0 {
		t.Errorf("stopped container listed as %s with pid %d, want exited without a pid", after.State, after.Pid)
	}
	if err := n.bed.RemoveContainer(ctx, n.stopped); err != nil {
		t.Fatal(err)
	}
	for _, c := range sameAsFresh("after a removal") {
		if c.ID == n.stopped {
			t.Errorf("removed container %s still listed", n.stopped)
		}
	}
}

func dialCRI(t *testing.T, n *distrolessNode) *cri.Client {
	t.Helper()
	c, err := cri.Dial(context.Background(), n.bed.Address())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
