package exporter

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/rootscan/rootscan/report"
)

// Forward is a one-shot scan's SIEM forwarding: the reports' findings go to each sink as change events.
type Forward struct {
	// Sinks are sink URLs as ParseSink reads them.
	Sinks []string
	// StateDir keeps the last findings and undelivered events, so the next scan sends only changes; "" is a
	// temporary directory, and every open finding is sent.
	StateDir string
	// Timeout bounds the wait for the sinks to take every event.
	Timeout time.Duration
	// Node fills in the node of reports that name none.
	Node string
	Log  *slog.Logger
}

// CheckSinks parses every sink URL, so a typo fails before anything is scanned.
func CheckSinks(sinks []string) error {
	for _, raw := range sinks {
		s, err := ParseSink(raw)
		if err != nil {
			return err
		}
		s.Close()
	}
	return nil
}

// Send turns the reports into change events and delivers them. Without StateDir every open finding is sent as
// finding.opened, with the same event IDs on every run, so a SIEM de-duplicates repeated one-shot scans.
func (f *Forward) Send(ctx context.Context, reports []report.Report) error {
	dir := f.StateDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "rootscan-events-")
		if err != nil {
			return fmt.Errorf("create event state dir: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	log := f.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sinks, err := OpenSinks(f.Sinks)
	if err != nil {
		return err
	}
	d, err := NewDispatcher(dir, sinks, DispatcherOptions{Logger: log})
	if err != nil {
		return err
	}
	tracker, err := NewTracker(filepath.Join(dir, "findings"), d, log)
	if err != nil {
		d.Close(ctx)
		return err
	}
	total := 0
	for _, rep := range reports {
		if rep.Target.Node == "" {
			rep.Target.Node = f.Node
		}
		events, err := tracker.Observe(ctx, rep)
		if err != nil {
			d.Close(ctx)
			return err
		}
		total += len(events)
	}
	cctx, cancel := context.WithTimeout(ctx, f.Timeout)
	defer cancel()
	err = d.Close(cctx)
	var pending uint64
	for _, st := range d.Stats() {
		pending += st.Pending
		log.Info("events forwarded", "sink", st.Sink, "sent", st.Sent, "pending", st.Pending, "rejected", st.Rejected)
	}
	if err != nil {
		return err
	}
	if pending > 0 {
		return fmt.Errorf("%d of %d events not delivered within --sink-timeout %v", pending, total, f.Timeout)
	}
	return nil
}

// OpenSinks parses and opens every sink URL; on error the ones already open are closed.
func OpenSinks(raw []string) ([]Sink, error) {
	var sinks []Sink
	for _, r := range raw {
		s, err := ParseSink(r)
		if err != nil {
			for _, s := range sinks {
				s.Close()
			}
			return nil, err
		}
		sinks = append(sinks, s)
	}
	return sinks, nil
}
