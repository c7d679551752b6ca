package node

import (
	"context"
	"fmt"

	"github.com/rootscan/rootscan/cri"
)

// Discover lists the runtime's containers and queues a check of each running one that watching says is not
// watched yet: what the kernel's first exec in an unknown cgroup asks for (Runtime.Discover), since containerd's
// event for a new container can come late or, on a lost stream, not at all. Unlike a resync it leaves known
// containers alone, so it costs one CRI list and the checks of the new containers only. Before the first resync
// has run it does nothing: that resync lists every container anyway. It returns how many containers it queued.
func (d *Daemon) Discover(ctx context.Context, watching func(id string) bool) (int, error) {
	if !d.ready.Load() {
		return 0, nil
	}
	cs, err := d.Containers.List(ctx, cri.Filter{PodNamespace: d.Namespace})
	if err != nil {
		return 0, fmt.Errorf("listing containers for a new cgroup: %w", err)
	}
	var fresh []cri.Container
	for _, c := range cs {
		if c.State == cri.StateRunning && !watching(c.ID) {
			fresh = append(fresh, c)
		}
	}
	d.mu.Lock()
	for _, c := range fresh {
		d.listed[c.ID] = c
	}
	d.mu.Unlock()
	for _, c := range fresh {
		d.queue.add(c.ID)
	}
	return len(fresh), nil
}
