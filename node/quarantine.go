package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rootscan/rootscan/report"
)

// DefaultQuarantineFor is how long a container stays quarantined while it does not change. Long enough that a
// poisoned container costs the node one crash a day rather than a crash loop; short enough that a container that
// was only in flight next to the one that crashed the process is read again the next day.
const DefaultQuarantineFor = 24 * time.Hour

// quarantine keeps the crash records. Before a check reads more of a container than its fingerprint, a small
// fsync'd file under <state>/checking names it; the file goes when the check returns. A file still there at start
// means the process died during that check (a panic, an OOM kill, SIGKILL): the record moves to
// <state>/quarantine, and the container is not read again until its image or upper dir changes or the quarantine
// expires. With several checks in flight at the crash, each of them is quarantined, since nothing tells which one
// did it (--workers 1 makes it exact).
//
// An image analysis (a cache miss) has a record of its own, keyed by the image's chain ID: a process that died
// while reading an image quarantines that image too, so the other containers of the image (a Deployment's replicas)
// are not read one crash at a time; they are reported quarantined while the image has no cached analysis.
type quarantine struct {
	dir string
	ttl time.Duration

	mu   sync.Mutex
	held map[string]crashRecord // by recordKey
}

// crashRecord is one check in flight, and once the process died in it, one quarantined container.
type crashRecord struct {
	ContainerID string `json:"containerId,omitempty"`
	// Image marks the record of an image analysis (no container ID; Chain names the image).
	Image   bool      `json:"image,omitempty"`
	Chain   string    `json:"chain,omitempty"`
	Upper   string    `json:"upper,omitempty"`
	Started time.Time `json:"started"`
	// InFlight is how many checks were in flight when the process died (set when the record is quarantined).
	InFlight int `json:"inFlight,omitempty"`
	// Since is when the quarantine began (the start after the crash).
	Since time.Time `json:"since,omitzero"`
}

// maxRecord bounds what is read back of one record (the daemon writes a few hundred bytes).
const maxRecord = 64 << 10

// openQuarantine turns the in-flight records a dead process left into quarantines and loads the quarantines that
// have not expired.
func openQuarantine(stateDir string, ttl time.Duration, log *slog.Logger) (*quarantine, error) {
	if ttl <= 0 {
		ttl = DefaultQuarantineFor
	}
	q := &quarantine{dir: stateDir, ttl: ttl, held: map[string]crashRecord{}}
	for _, sub := range []string{"checking", "quarantine"} {
		if err := os.MkdirAll(filepath.Join(stateDir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	left, err := q.readDir("checking")
	if err != nil {
		return nil, err
	}
	now := time.Now()
	checks := 0
	for _, rec := range left {
		if !rec.Image {
			checks++
		}
	}
	for name, rec := range left {
		rec.InFlight, rec.Since = checks, now
		if err := writeRecord(filepath.Join(stateDir, "quarantine", name), rec); err != nil {
			return nil, err
		}
		if err := os.Remove(filepath.Join(stateDir, "checking", name)); err != nil {
			return nil, err
		}
		log.Warn("the scanner died during a check: quarantined", "container", rec.ContainerID, "image", rec.Image,
			"chain", rec.Chain, "checkStarted", rec.Started, "checksInFlight", rec.InFlight)
	}
	held, err := q.readDir("quarantine")
	if err != nil {
		return nil, err
	}
	for name, rec := range held {
		if now.Sub(rec.Since) > ttl {
			_ = os.Remove(filepath.Join(stateDir, "quarantine", name))
			continue
		}
		q.held[recordKey(rec)] = rec
	}
	return q, nil
}

// readDir reads every record in one of the two directories, by file name; files that are not records are removed
// (a torn write of a temporary file).
func (q *quarantine) readDir(sub string) (map[string]crashRecord, error) {
	dir := filepath.Join(q.dir, sub)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]crashRecord{}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		rec, err := readRecord(p)
		if err != nil || !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".json") {
			_ = os.Remove(p)
			continue
		}
		out[e.Name()] = rec
	}
	return out, nil
}

func readRecord(p string) (crashRecord, error) {
	var rec crashRecord
	f, err := os.Open(p)
	if err != nil {
		return rec, err
	}
	defer f.Close()
	b := make([]byte, maxRecord)
	n, err := f.Read(b)
	if err != nil || n == maxRecord {
		return rec, fmt.Errorf("record %s: unreadable or too large", p)
	}
	if err := json.Unmarshal(b[:n], &rec); err != nil {
		return rec, fmt.Errorf("record %s: not a check record", p)
	}
	if valid := (rec.ContainerID != "" && !rec.Image) || (rec.ContainerID == "" && rec.Image && rec.Chain != ""); !valid {
		return rec, fmt.Errorf("record %s: not a check record", p)
	}
	return rec, nil
}

// writeRecord writes rec durably: a temporary file, fsync'd, renamed over the name.
func writeRecord(p string, rec crashRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// recordKey is what a record is held and stored under: the container ID, or the image's chain ID.
func recordKey(rec crashRecord) string {
	if rec.Image {
		return "image:" + rec.Chain
	}
	return rec.ContainerID
}

// begin records a check of the container as in flight.
func (q *quarantine) begin(containerID, chain, upper string) error {
	return q.write(crashRecord{ContainerID: containerID, Chain: chain, Upper: upper, Started: time.Now().UTC()})
}

// beginImage records an analysis of the image as in flight; nil does nothing.
func (q *quarantine) beginImage(chain string) error {
	if q == nil {
		return nil
	}
	return q.write(crashRecord{Image: true, Chain: chain, Started: time.Now().UTC()})
}

func (q *quarantine) write(rec crashRecord) error {
	return writeRecord(filepath.Join(q.dir, "checking", fileName(recordKey(rec))), rec)
}

// end removes the in-flight record of a check that returned.
func (q *quarantine) end(containerID string, log *slog.Logger) {
	q.remove(containerID, log)
}

// endImage removes the in-flight record of an image analysis that returned.
func (q *quarantine) endImage(chain string, log *slog.Logger) {
	q.remove("image:"+chain, log)
}

func (q *quarantine) remove(key string, log *slog.Logger) {
	if q == nil {
		return
	}
	if err := os.Remove(filepath.Join(q.dir, "checking", fileName(key))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		log.Warn("remove check record", "record", key, "err", err)
	}
}

// held says whether the container is quarantined with this fingerprint, and if so the report's Incomplete. A
// quarantine whose container changed (another image chain or upper-dir state) or that expired is lifted.
func (q *quarantine) holds(containerID, chain, upper string) (*report.Incomplete, bool) {
	if q == nil {
		return nil, false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	rec, ok := q.held[containerID]
	if !ok {
		return nil, false
	}
	if rec.Chain != chain || rec.Upper != upper || time.Since(rec.Since) > q.ttl {
		q.liftLocked(containerID)
		return nil, false
	}
	detail := "the scanner process died during its check that started " + rec.Started.UTC().Format(time.RFC3339)
	if rec.InFlight > 1 {
		detail += fmt.Sprintf(" (one of %d checks in flight)", rec.InFlight)
	}
	return &report.Incomplete{Reason: report.IncompleteCrashed, Detail: detail, Since: rec.Since}, true
}

// holdsImage says whether the image is quarantined (the process died analyzing it), and if so the Incomplete of
// the reports of its containers. An expired one is lifted.
func (q *quarantine) holdsImage(chain string) (*report.Incomplete, bool) {
	if q == nil {
		return nil, false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	key := "image:" + chain
	rec, ok := q.held[key]
	if !ok {
		return nil, false
	}
	if time.Since(rec.Since) > q.ttl {
		q.liftLocked(key)
		return nil, false
	}
	detail := "the scanner process died analyzing its image " + chain + " in a check that started " + rec.Started.UTC().Format(time.RFC3339)
	return &report.Incomplete{Reason: report.IncompleteCrashed, Detail: detail, Since: rec.Since}, true
}

// lift ends a container's quarantine (it changed, or it is gone).
func (q *quarantine) lift(containerID string) {
	if q == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.liftLocked(containerID)
}

func (q *quarantine) liftLocked(key string) {
	if _, ok := q.held[key]; !ok {
		return
	}
	delete(q.held, key)
	_ = os.Remove(filepath.Join(q.dir, "quarantine", fileName(key)))
}
