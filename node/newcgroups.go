package node

import (
	"context"
	"time"

	"github.com/rootscan/rootscan/bpf"
)

// ContainerDiscoverer finds the containers the runtime lists that watching says are not watched yet, and has them
// checked (and so tracked); *Daemon is the real one.
type ContainerDiscoverer interface {
	Discover(ctx context.Context, watching func(id string) bool) (int, error)
}

// Bounds on discovering containers from the kernel's new-cgroup events.
const (
	// DefaultDiscoverGap is the least time between two discoveries (CRI lists), however many new cgroups arrive:
	// a storm of them costs at most four lists a second.
	DefaultDiscoverGap = 250 * time.Millisecond
	// discoverRounds is how many discoveries a new cgroup gets before it is taken for a host cgroup (or one the
	// daemon leaves out): the CRI can report a container as running a moment after its first exec. The rounds are
	// two, four and eight gaps apart, so a host cgroup is given up after 14 gaps (3.5 s by default).
	discoverRounds = 4
	// maxPendingCgroups bounds the new cgroups waiting for a discovery; past it new ones still trigger one, but
	// are not counted when their container is found.
	maxPendingCgroups = 1024
)

// pendingCgroup is a cgroup whose first exec the kernel reported and that no tracked container owns yet.
type pendingCgroup struct {
	seen   time.Time
	rounds int
}

// newCgroup takes the kernel's report of a first exec in a cgroup that is not watched: a container the daemon has
// not checked yet, or a host process (whose cgroup the kernel reports once, and which no discovery will match).
func (r *Runtime) newCgroup(ev bpf.Event) {
	if r.Discover == nil {
		return
	}
	r.mu.Lock()
	_, watched := r.byCgroup[ev.CgroupID] // watched between the exec and now: found by the daemon's other paths
	if !watched && len(r.pending) < maxPendingCgroups {
		if _, ok := r.pending[ev.CgroupID]; !ok {
			r.pending[ev.CgroupID] = &pendingCgroup{seen: time.Now()}
		}
	}
	r.mu.Unlock()
	if watched {
		return
	}
	r.logger().Debug("runtime signals: exec in an unknown cgroup; looking for a new container", "cgroup", ev.CgroupID,
		"pid", ev.PID, "comm", ev.Comm)
	select {
	case r.discoverNow <- struct{}{}:
	default: // a discovery is already due: it covers this cgroup too
	}
}

// discoverLoop runs the discoveries new cgroups ask for, coalesced: one at a time, at least DiscoverGap apart, and
// again (with a growing gap) while cgroups remain unmatched, for at most discoverRounds rounds each.
func (r *Runtime) discoverLoop(ctx context.Context) {
	gap := r.DiscoverGap
	if gap <= 0 {
		gap = DefaultDiscoverGap
	}
	timer := time.NewTimer(gap)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-r.discoverNow:
		case <-timer.C:
		}
		n, err := r.Discover.Discover(ctx, r.Watching)
		if err != nil && ctx.Err() == nil {
			r.logger().Warn("runtime signals: discovering new containers", "err", err)
		}
		next := r.afterDiscovery()
		r.logger().Debug("runtime signals: discovered containers after a new cgroup's exec", "queued", n, "unmatched", next)
		// The gap holds even when another new cgroup arrives meanwhile: the storm's bound.
		select {
		case <-ctx.Done():
			return
		case <-time.After(gap):
		}
		if next > 0 {
			timer.Reset(gap * (1<<next - 1))
		}
	}
}

// afterDiscovery counts a round for each unmatched cgroup, drops those out of rounds, and says after how many
// gaps (1, 2, 4, 8: the fewest rounds pending decide) the next round is due; 0 when none is pending.
func (r *Runtime) afterDiscovery() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	least := discoverRounds
	for cg, p := range r.pending {
		p.rounds++
		if p.rounds >= discoverRounds {
			delete(r.pending, cg)
			continue
		}
		least = min(least, p.rounds)
	}
	if len(r.pending) == 0 {
		return 0
	}
	return least
}

// noticed is told, under r.mu, of a cgroup the runtime starts watching: if the kernel had reported its first exec,
// the container was found from that exec.
func (r *Runtime) noticed(cg uint64, id string) {
	p, ok := r.pending[cg]
	if !ok {
		return
	}
	delete(r.pending, cg)
	r.newContainers.Add(1)
	r.logger().Info("runtime signals: new container noticed from its first exec", "container", id, "cgroup", cg,
		"after", time.Since(p.seen))
}

// NewContainers is how many containers were found from the kernel's report of their first exec (not from
// containerd's event or a resync, which had not found them yet).
func (r *Runtime) NewContainers() uint64 { return r.newContainers.Load() }
