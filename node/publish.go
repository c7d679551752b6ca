package node

import (
	"context"
	"log/slog"
	"time"

	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/exporter"
	"github.com/rootscan/rootscan/report"
)

// ExportPublisher is the daemon's Publisher: each report goes to the metrics (current state) and the tracker (change
// events for the SIEM sinks).
type ExportPublisher struct {
	Metrics *exporter.Metrics
	Tracker *exporter.Tracker
	Log     *slog.Logger
}

// Publish implements Publisher.
func (p *ExportPublisher) Publish(ctx context.Context, rep report.Report) {
	p.Metrics.Update(rep)
	if _, err := p.Tracker.Observe(ctx, rep); err != nil {
		p.logger().Warn("record finding changes", "container", rep.Target.ContainerID, "err", err)
	}
}

// Remove implements Publisher.
func (p *ExportPublisher) Remove(ctx context.Context, t report.Target) {
	p.Metrics.Delete(t.ContainerID)
	if _, err := p.Tracker.Forget(ctx, t.ContainerID); err != nil {
		p.logger().Warn("record container removal", "container", t.ContainerID, "err", err)
	}
}

// ForgetVanished resolves the findings of containers that were removed while the daemon was down: once d's first
// reconcile is done, every container the tracker knows but the runtime no longer lists is forgotten. The daemon's
// own Remove covers containers that go while it runs.
func (p *ExportPublisher) ForgetVanished(ctx context.Context, d *Daemon) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for !d.Ready() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	known, err := p.Tracker.Known()
	if err != nil {
		p.logger().Warn("list tracked containers", "err", err)
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
			if _, err := p.Tracker.Forget(ctx, id); err != nil {
				p.logger().Warn("forget vanished container", "container", id, "err", err)
			}
		}
	}
}

func (p *ExportPublisher) logger() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}
