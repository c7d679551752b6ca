package exporter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"time"
)

// DispatcherOptions tune delivery; zero values take the defaults.
type DispatcherOptions struct {
	// Spool bounds each sink's spool (Name and Logger are set per sink).
	Spool SpoolOptions
	// BatchEvents and BatchBytes bound one Send (default 500 events, 4 MiB).
	BatchEvents int
	BatchBytes  int
	// SendTimeout bounds one Send (default 30s).
	SendTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait between failed sends, doubling with jitter (default 500ms, 1m).
	BackoffMin, BackoffMax time.Duration
	Logger                 *slog.Logger
}

func (o *DispatcherOptions) defaults() {
	if o.BatchEvents <= 0 {
		o.BatchEvents = 500
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = 4 << 20
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 30 * time.Second
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = 500 * time.Millisecond
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = time.Minute
	}
	o.BackoffMax = max(o.BackoffMax, o.BackoffMin)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// SinkStats are one sink's delivery counters, for metrics and /readyz-style checks.
type SinkStats struct {
	Sink string
	// Sent events were accepted by the sink; Failed counts failed Send attempts (each retried); Rejected events were
	// refused for good by the destination and skipped; Dropped events were discarded by a full (or damaged) spool.
	Sent, Failed, Rejected, Dropped uint64
	// Pending events wait in the spool, taking SpoolBytes on disk.
	Pending    uint64
	SpoolBytes int64
	// Up is false while the last Send failed.
	Up bool
}

// Dispatcher fans events out to every sink: Publish appends each event once per sink to that sink's disk spool in
// stateDir/spool/, and one goroutine per sink delivers from its spool in order, retrying with backoff while the sink
// is down. A sink that is down for an hour gets every event when it is back, unless its spool filled up (then the
// oldest were dropped and counted).
type Dispatcher struct {
	log     *slog.Logger
	senders []*sender
	cancel  context.CancelFunc
	drain   chan struct{}
	wg      sync.WaitGroup

	mu     sync.RWMutex
	closed bool
}

// NewDispatcher opens a spool per sink under stateDir and starts delivering. It takes ownership of the sinks (Close
// closes them).
func NewDispatcher(stateDir string, sinks []Sink, opts DispatcherOptions) (*Dispatcher, error) {
	opts.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	d := &Dispatcher{log: opts.Logger, cancel: cancel, drain: make(chan struct{})}
	seen := map[string]bool{}
	for _, sk := range sinks {
		if seen[sk.Name()] {
			d.abort(sinks)
			return nil, fmt.Errorf("sink %s given twice", sk.Name())
		}
		seen[sk.Name()] = true
		so := opts.Spool
		so.Name, so.Logger = sk.Name(), opts.Logger
		sp, err := OpenSpool(filepath.Join(stateDir, "spool", spoolDirName(sk.Name())), so)
		if err != nil {
			d.abort(sinks)
			return nil, err
		}
		d.senders = append(d.senders, &sender{sink: sk, spool: sp, opts: opts, log: opts.Logger.With("sink", sk.Name()), drain: d.drain})
	}
	for _, s := range d.senders {
		s.up.Store(true)
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			s.run(ctx)
		}()
	}
	return d, nil
}

func (d *Dispatcher) abort(sinks []Sink) {
	for _, s := range d.senders {
		s.spool.Close()
	}
	for _, s := range sinks {
		s.Close()
	}
	d.cancel()
}

// spoolDirName is a readable, path-safe prefix of the sink name plus a hash of all of it: changing a sink's URL or
// options gives it a new spool (the old one stays on disk until removed).
func spoolDirName(name string) string {
	safe := regexp.MustCompile(`[^A-Za-z0-9._-]+`).ReplaceAllString(name, "_")
	if len(safe) > 48 {
		safe = safe[:48]
	}
	return safe + "-" + stableID(name)[:12]
}

// Publish spools events for every sink. It returns once they are on disk (per the spool's sync policy); an error
// for one sink does not stop the others, and is returned.
func (d *Dispatcher) Publish(ctx context.Context, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return errors.New("dispatcher closed")
	}
	payloads := make([][]byte, 0, len(events))
	for _, e := range events {
		p, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode event %s: %w", e.ID, err)
		}
		payloads = append(payloads, p)
	}
	var errs []error
	for _, s := range d.senders {
		if err := s.spool.Append(payloads); err != nil {
			errs = append(errs, fmt.Errorf("spool for %s: %w", s.sink.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// Stats returns every sink's counters.
func (d *Dispatcher) Stats() []SinkStats {
	out := make([]SinkStats, 0, len(d.senders))
	for _, s := range d.senders {
		sp := s.spool.Stats()
		out = append(out, SinkStats{Sink: s.sink.Name(), Sent: s.sent.Load(), Failed: s.failed.Load(),
			Rejected: s.rejected.Load(), Dropped: sp.Dropped, Pending: sp.Pending, SpoolBytes: sp.Bytes, Up: s.up.Load()})
	}
	return out
}

// Dropped is the total of events dropped by full spools, for the scanner health metric events_dropped_total.
func (d *Dispatcher) Dropped() uint64 {
	var n uint64
	for _, s := range d.Stats() {
		n += s.Dropped
	}
	return n
}

// Close stops accepting events, keeps delivering until every spool is empty or ctx is done, then stops and closes
// spools and sinks. Undelivered events stay spooled for the next start. Give ctx a deadline: with a sink down and
// no deadline, Close waits for the sink to come back.
func (d *Dispatcher) Close(ctx context.Context) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	close(d.drain)
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		d.cancel()
		<-done
	}
	d.cancel()
	var errs []error
	for _, s := range d.senders {
		if err := s.spool.Close(); err != nil {
			errs = append(errs, err)
		}
		if err := s.sink.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close sink %s: %w", s.sink.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// sender delivers one spool to one sink.
type sender struct {
	sink  Sink
	spool *Spool
	opts  DispatcherOptions
	log   *slog.Logger
	drain <-chan struct{}

	sent, failed, rejected atomic.Uint64
	up                     atomic.Bool
}

func (s *sender) run(ctx context.Context) {
	backoff := s.opts.BackoffMin
	limit := s.opts.BatchEvents
	var downSince time.Time
	for ctx.Err() == nil {
		b, err := s.spool.Peek(limit, s.opts.BatchBytes)
		if err != nil {
			s.log.Error("read spool", "err", err)
			if !sleep(ctx, backoff) {
				return
			}
			continue
		}
		if len(b.Records) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-s.drain:
				return
			case <-s.spool.Ready():
			}
			continue
		}
		events := make([]Event, 0, len(b.Records))
		for _, r := range b.Records {
			var e Event
			if err := json.Unmarshal(r, &e); err != nil {
				s.log.Error("undecodable spooled event skipped", "err", err)
				continue
			}
			events = append(events, e)
		}
		sctx, cancel := context.WithTimeout(ctx, s.opts.SendTimeout)
		err = s.sink.Send(sctx, events)
		cancel()
		var perm *PermanentError
		switch {
		case err == nil:
		case errors.As(err, &perm) && len(b.Records) > 1:
			s.failed.Add(1)
			limit = max(len(b.Records)/2, 1) // find the refused event by halving
			continue
		case errors.As(err, &perm):
			s.failed.Add(1)
			s.rejected.Add(1)
			s.log.Error("destination refused an event, skipping it", "event", firstID(events), "err", err)
		default:
			s.failed.Add(1)
			if s.up.Swap(false) {
				downSince = time.Now()
				s.log.Warn("sink unreachable, events stay spooled until it is back", "err", err)
			} else {
				s.log.Debug("sink still unreachable", "err", err, "retry_in", backoff)
			}
			if ctx.Err() != nil || !sleep(ctx, jitter(backoff)) {
				return
			}
			backoff = min(backoff*2, s.opts.BackoffMax)
			continue
		}
		if err := s.spool.Ack(b.End); err != nil {
			s.log.Error("commit spool offset", "err", err)
		}
		if err == nil {
			s.sent.Add(uint64(len(events)))
		}
		if !s.up.Swap(true) {
			s.log.Info("sink delivering again", "down_for", time.Since(downSince).Round(time.Second), "pending", s.spool.Stats().Pending)
		}
		backoff, limit = s.opts.BackoffMin, s.opts.BatchEvents
	}
}

func firstID(events []Event) string {
	if len(events) == 0 {
		return ""
	}
	return events[0].ID
}

// jitter spreads retries of many nodes over [d/2, d).
func jitter(d time.Duration) time.Duration { return d/2 + rand.N(d/2+1) }

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
