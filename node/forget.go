package node

import (
	"context"
	"time"

	"github.com/rootscan/rootscan/cri"
)

// Remembered is what keeps state about containers across restarts: the SIEM finding tracker (exporter.DaemonPublisher).
type Remembered interface {
	Known() ([]string, error)
	Forget(ctx context.Context, containerID string) error
}

// ForgetVanished resolves the findings of containers that were removed while the daemon was down: once the first
// reconcile is done, every container r knows but the runtime no longer lists is forgotten. Containers that go while
// the daemon runs are the Publisher's Remove.
func (d *Daemon) ForgetVanished(ctx context.Context, r Remembered) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for !d.Ready() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	known, err := r.Known()
	if err != nil {
		d.logger().Warn("list tracked containers", "err", err)
		return
	}
	live, err := d.Containers.List(ctx, cri.Filter{PodNamespace: d.Namespace})
	if err != nil {
		return
	}
	ids := map[string]bool{}
	for _, c := range live {
		ids[c.ID] = true
	}
	for _, id := range known {
		if !ids[id] {
			if err := r.Forget(ctx, id); err != nil {
				d.logger().Warn("forget vanished container", "container", id, "err", err)
			}
		}
	}
}
