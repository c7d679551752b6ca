package exporter

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rootscan/rootscan/report"
)

// Publisher takes events for delivery; Dispatcher implements it. Publish returning nil means the events are durable
// (spooled), so the tracker may forget that it still has to send them.
type Publisher interface {
	Publish(ctx context.Context, events []Event) error
}

// Tracker turns a target's successive reports into change events. It keeps the last known open findings of every
// target in a state directory (one JSON file per target), so a daemon restart neither re-opens every finding nor
// loses a resolution that happened while it was down.
//
// Ordering makes delivery at-least-once with stable IDs: Observe first publishes the events, then persists the new
// state. A crash in between re-derives the same events with the same IDs on the next scan (the generation they carry
// was not persisted), and consumers de-duplicate them.
type Tracker struct {
	dir string
	pub Publisher
	log *slog.Logger

	mu     sync.Mutex
	states map[string]*trackState // by target key; loaded lazily from dir
}

// trackState is what the tracker persists per target.
type trackState struct {
	Key    string        `json:"key"`
	Target report.Target `json:"target"`
	// Generation counts the observations that changed something; events of a change carry it in their IDs.
	Generation uint64 `json:"generation"`
	// Failed is set while the target's scans fail (one scan.failed event per episode).
	Failed bool `json:"failed,omitempty"`
	// FailedAs is the event type of the episode (scan.failed, scan.incomplete, scan.crashed): a new kind of failure
	// is a new episode. Empty in states written before it existed, which were scan.failed.
	FailedAs EventType              `json:"failedAs,omitempty"`
	Open     map[string]openFinding `json:"open"`
}

// openFinding is an open finding and the generation at which it opened (its opened and resolved event IDs use it).
type openFinding struct {
	Generation uint64  `json:"generation"`
	Finding    Finding `json:"finding"`
}

// maxStateFile bounds what the tracker reads back for one target (MaxFindingsPerTarget findings of a few KiB).
const maxStateFile = 256 << 20

// NewTracker opens (creating) the tracker state under dir and publishes through pub.
func NewTracker(dir string, pub Publisher, log *slog.Logger) (*Tracker, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create tracker state dir %s: %w", dir, err)
	}
	if log == nil {
		log = slog.Default()
	}
	return &Tracker{dir: dir, pub: pub, log: log, states: make(map[string]*trackState)}, nil
}

// Observe compares rep with the target's last known findings, publishes the changes and persists the new state. It
// returns the events it published. A report with an Error is a failed scan: open findings stay open, and the first
// failure after a success emits scan.failed (scan.incomplete or scan.crashed for a report with Incomplete set, whose
// partial result is not taken as the target's findings).
func (t *Tracker) Observe(ctx context.Context, rep report.Report) ([]Event, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	key := targetKey(rep.Target)
	prev, err := t.load(key)
	if err != nil {
		return nil, err
	}
	next := &trackState{Key: key, Target: identity(rep.Target), Generation: prev.Generation + 1, Open: make(map[string]openFinding)}
	at := rep.StartedAt
	if at.IsZero() {
		at = time.Now()
	}
	var events []Event
	if rep.Error != "" || rep.Result == nil || rep.Incomplete != nil {
		// An incomplete check's findings are partial (the one-shot scanner keeps them in its report): they neither
		// resolve nor open anything.
		typ := failureType(rep)
		if prev.Failed && cmp.Or(prev.FailedAs, EventScanFailed) == typ {
			return nil, nil
		}
		next.Failed, next.FailedAs = true, typ
		next.Open = prev.Open
		e := newEvent(rep.Target, typ, at)
		e.ID = eventID(key, typ, next.Generation)
		e.Error = truncate(cmp.Or(rep.Error, "scan produced no result"), maxMessage)
		e.Incomplete = rep.Incomplete
		events = append(events, e)
	} else {
		detailsChanged := false
		suppressed := suppressedIDs(rep)
		cur := Findings(rep)
		curIDs := make(map[string]bool, len(cur))
		for _, f := range cur {
			curIDs[f.ID] = true
			if o, ok := prev.Open[f.ID]; ok {
				// Keep the latest details (installed version, message) for the resolved event.
				detailsChanged = detailsChanged || !reflect.DeepEqual(o.Finding, f)
				if !inUse(o.Finding) && inUse(f) {
					e := newEvent(rep.Target, EventFindingInUse, at)
					e.ID = eventID(f.ID, EventFindingInUse, o.Generation)
					e.Finding = &f
					events = append(events, e)
				}
				o.Finding = f
				next.Open[f.ID] = o
				continue
			}
			next.Open[f.ID] = openFinding{Generation: next.Generation, Finding: f}
			e := newEvent(rep.Target, EventFindingOpened, at)
			e.ID = eventID(f.ID, EventFindingOpened, next.Generation)
			e.Finding = &f
			events = append(events, e)
		}
		for _, id := range sortedKeys(prev.Open) {
			if curIDs[id] {
				continue
			}
			o := prev.Open[id]
			e := newEvent(rep.Target, EventFindingResolved, at)
			e.ID = eventID(id, EventFindingResolved, o.Generation)
			e.Finding = &o.Finding
			e.Reason = ReasonAbsent
			if suppressed[id] {
				e.Reason = ReasonSuppressed
			}
			events = append(events, e)
		}
		if len(events) == 0 && !detailsChanged && !prev.Failed && prev.Generation > 0 && reflect.DeepEqual(prev.Target, next.Target) {
			return nil, nil // nothing changed: no write, no event
		}
	}
	sortEvents(events)
	if len(events) > 0 {
		if err := t.pub.Publish(ctx, events); err != nil {
			return nil, fmt.Errorf("publish %d events for %s: %w", len(events), rep.Target.Name(), err)
		}
	}
	if len(events) == 0 {
		next.Generation = prev.Generation // only details or the target's identity (pod name, image) changed
	}
	if err := t.save(next); err != nil {
		return events, err
	}
	t.states[key] = next
	return events, nil
}

// Forget is for a container that was removed: it resolves every finding the container still had open (Reason
// ReasonContainerRemoved), then emits container.removed, and deletes the container's state. Closing each finding
// keeps a SIEM's view of open findings exact without it knowing container lifecycles; the container.removed event
// lets it close the asset. Forgetting an unknown container emits nothing.
func (t *Tracker) Forget(ctx context.Context, containerID string) ([]Event, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	prev, err := t.load(containerID)
	if err != nil {
		return nil, err
	}
	if prev.Generation == 0 {
		return nil, nil
	}
	at := time.Now()
	var events []Event
	for _, id := range sortedKeys(prev.Open) {
		o := prev.Open[id]
		e := newEvent(prev.Target, EventFindingResolved, at)
		e.ID = eventID(id, EventFindingResolved, o.Generation)
		e.Finding = &o.Finding
		e.Reason = ReasonContainerRemoved
		events = append(events, e)
	}
	sortEvents(events)
	e := newEvent(prev.Target, EventContainerRemoved, at)
	e.ID = eventID(containerID, EventContainerRemoved, 0)
	events = append(events, e)
	if err := t.pub.Publish(ctx, events); err != nil {
		return nil, fmt.Errorf("publish removal of container %s: %w", containerID, err)
	}
	delete(t.states, containerID)
	if err := os.Remove(t.path(containerID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return events, fmt.Errorf("remove tracker state of container %s: %w", containerID, err)
	}
	return events, nil
}

// Known lists the target keys (container IDs) the tracker has state for, so a daemon that restarts can Forget the
// containers that went away while it was down.
func (t *Tracker) Known() ([]string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ents, err := os.ReadDir(t.dir)
	if err != nil {
		return nil, fmt.Errorf("list tracker state %s: %w", t.dir, err)
	}
	var keys []string
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		st, err := t.read(filepath.Join(t.dir, e.Name()))
		if err != nil {
			t.log.Warn("unreadable tracker state ignored", "file", e.Name(), "err", err)
			continue
		}
		keys = append(keys, st.Key)
	}
	slices.Sort(keys)
	return keys, nil
}

// load returns the target's state, from memory or its file; a target never seen has Generation 0.
func (t *Tracker) load(key string) (*trackState, error) {
	if st, ok := t.states[key]; ok {
		return st, nil
	}
	st, err := t.read(t.path(key))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		st = &trackState{Key: key, Open: map[string]openFinding{}}
	case err != nil:
		// A damaged state file must not stop the target's events forever: start over (findings re-open with the
		// same IDs as before, since their generations restart too, so consumers de-duplicate most of them).
		t.log.Warn("tracker state unreadable, starting over", "key", key, "err", err)
		st = &trackState{Key: key, Open: map[string]openFinding{}}
	case st.Key != key:
		return nil, fmt.Errorf("tracker state %s is for %q, not %q", t.path(key), st.Key, key)
	}
	if st.Open == nil {
		st.Open = map[string]openFinding{}
	}
	t.states[key] = st
	return st, nil
}

func (t *Tracker) read(path string) (*trackState, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxStateFile {
		return nil, fmt.Errorf("tracker state %s: not a regular file of at most %d bytes", path, maxStateFile)
	}
	var st trackState
	if err := json.NewDecoder(f).Decode(&st); err != nil {
		return nil, fmt.Errorf("decode tracker state %s: %w", path, err)
	}
	return &st, nil
}

// save writes the state atomically (temporary file, fsync, rename): a crash leaves the old or the new state.
func (t *Tracker) save(st *trackState) error {
	path := t.path(st.Key)
	if err := writeFileAtomic(path, st); err != nil {
		return fmt.Errorf("save tracker state of %s: %w", st.Key, err)
	}
	return nil
}

// path names the state file by a hash of the key: keys come from the CRI and must not shape paths.
func (t *Tracker) path(key string) string { return filepath.Join(t.dir, stableID(key)+".json") }

// inUse reports whether f is a vulnerability whose package was seen in use.
func inUse(f Finding) bool {
	return f.Vulnerability != nil && f.Vulnerability.InUse == report.InUseTrue
}

// identity keeps the target fields events carry; the rest (config, mounts) is not the tracker's business.
func identity(t report.Target) report.Target {
	return report.Target{Kind: t.Kind, Node: t.Node, ContainerID: t.ContainerID, Container: t.Container, Pod: t.Pod,
		Namespace: t.Namespace, Image: t.Image, ImageDigest: t.ImageDigest, Path: t.Path}
}

// sortEvents orders events resolved first, then opened, each by finding kind, most severe first, then title:
// deterministic output, readable in a log, and a consumer applying events in order never sees a subject open twice.
func sortEvents(events []Event) {
	rank := map[EventType]int{EventScanFailed: 0, EventScanIncomplete: 0, EventScanCrashed: 0, EventFindingResolved: 1, EventFindingOpened: 2, EventFindingInUse: 2, EventContainerRemoved: 3}
	slices.SortStableFunc(events, func(a, b Event) int {
		if c := cmp.Compare(rank[a.Type], rank[b.Type]); c != 0 {
			return c
		}
		if a.Finding == nil || b.Finding == nil {
			return 0
		}
		return cmp.Or(cmp.Compare(a.Finding.Kind, b.Finding.Kind), cmp.Compare(b.Finding.Severity.Rank(), a.Finding.Severity.Rank()),
			cmp.Compare(a.Finding.Title, b.Finding.Title), cmp.Compare(a.Finding.ID, b.Finding.ID))
	})
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// writeFileAtomic writes v as JSON to path through a temporary file in the same directory, fsynced before the rename.
func writeFileAtomic(path string, v any) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := json.NewEncoder(tmp).Encode(v); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// failureType is the event a report without a full result makes: scan.crashed for a quarantined container,
// scan.incomplete for a check stopped at a budget, else scan.failed.
func failureType(rep report.Report) EventType {
	switch {
	case rep.Incomplete == nil:
		return EventScanFailed
	case rep.Incomplete.Reason == report.IncompleteCrashed:
		return EventScanCrashed
	}
	return EventScanIncomplete
}
