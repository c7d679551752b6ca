package exporter

import (
	"context"
	"log/slog"

	"github.com/rootscan/rootscan/report"
)

// DaemonPublisher is the daemon's node.Publisher: each report goes to the metrics (current state) and the tracker (change
// events for the SIEM sinks).
type DaemonPublisher struct {
	Metrics *Metrics
	Tracker *Tracker
	// Incomplete, when set, counts checks stopped at a budget and quarantined containers.
	Incomplete *IncompleteMetrics
	Log        *slog.Logger
}

// Publish implements node.Publisher.
func (p *DaemonPublisher) Publish(ctx context.Context, rep report.Report) {
	p.Metrics.Update(rep)
	if p.Incomplete != nil {
		p.Incomplete.Observe(rep)
	}
	if _, err := p.Tracker.Observe(ctx, rep); err != nil {
		p.logger().Warn("record finding changes", "container", rep.Target.ContainerID, "err", err)
	}
}

// Remove implements node.Publisher.
func (p *DaemonPublisher) Remove(ctx context.Context, t report.Target) {
	p.Metrics.Delete(t.ContainerID)
	if p.Incomplete != nil {
		p.Incomplete.Delete(t.ContainerID)
	}
	if _, err := p.Tracker.Forget(ctx, t.ContainerID); err != nil {
		p.logger().Warn("record container removal", "container", t.ContainerID, "err", err)
	}
}

// Known lists the containers the tracker holds findings of, from this run or an earlier one.
func (p *DaemonPublisher) Known() ([]string, error) { return p.Tracker.Known() }

// Forget resolves the findings of a container that is gone (node.Daemon.ForgetVanished).
func (p *DaemonPublisher) Forget(ctx context.Context, containerID string) error {
	_, err := p.Tracker.Forget(ctx, containerID)
	return err
}

func (p *DaemonPublisher) logger() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}
