package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/rootscan/rootscan/exporter"
	"github.com/rootscan/rootscan/report"
)

// forwardFlags are `scan`'s one-shot SIEM forwarding: the scan's findings go to each --sink as events.
type forwardFlags struct {
	sinks    stringList
	stateDir string
	timeout  time.Duration
}

func (f *forwardFlags) register(fs *flag.FlagSet) {
	fs.Var(&f.sinks, "sink", "send findings as SIEM events to this sink (repeatable): stdout, file:/path, syslog+udp|tcp|tls://host[:port], http(s)://host/path, with ?format=ecs|ocsf|cef|json and the options in the README")
	fs.StringVar(&f.stateDir, "state-dir", "", "with --sink: keep the last findings and undelivered events here, so the next scan sends only changes (default: a temporary directory, every open finding is sent)")
	fs.DurationVar(&f.timeout, "sink-timeout", 30*time.Second, "with --sink: how long to wait for the sinks to take every event")
}

// check parses every --sink before anything is scanned, so a typo fails at once (exit 2), not after the scan.
func (f *forwardFlags) check() error {
	for _, raw := range f.sinks {
		s, err := exporter.ParseSink(raw)
		if err != nil {
			return usageError{fmt.Sprintf("--sink: %v", err)}
		}
		s.Close()
	}
	if f.stateDir != "" && len(f.sinks) == 0 {
		return usageError{"--state-dir needs --sink"}
	}
	return nil
}

// forwardEvents turns the reports into change events and delivers them. Without --state-dir every open finding is
// sent as finding.opened, with the same event IDs on every run, so a SIEM de-duplicates repeated one-shot scans.
func forwardEvents(ctx context.Context, f forwardFlags, node string, reports []report.Report, log *slog.Logger) error {
	dir := f.stateDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "rootscan-events-")
		if err != nil {
			return fmt.Errorf("create event state dir: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	var sinks []exporter.Sink
	for _, raw := range f.sinks {
		s, err := exporter.ParseSink(raw)
		if err != nil {
			for _, s := range sinks {
				s.Close()
			}
			return usageError{fmt.Sprintf("--sink: %v", err)}
		}
		sinks = append(sinks, s)
	}
	d, err := exporter.NewDispatcher(dir, sinks, exporter.DispatcherOptions{Logger: log})
	if err != nil {
		return err
	}
	tracker, err := exporter.NewTracker(dir+"/findings", d, log)
	if err != nil {
		d.Close(ctx)
		return err
	}
	total := 0
	for _, rep := range reports {
		if rep.Target.Node == "" {
			rep.Target.Node = node
		}
		events, err := tracker.Observe(ctx, rep)
		if err != nil {
			d.Close(ctx)
			return err
		}
		total += len(events)
	}
	cctx, cancel := context.WithTimeout(ctx, f.timeout)
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
		return fmt.Errorf("%d of %d events not delivered within --sink-timeout %v", pending, total, f.timeout)
	}
	return nil
}
