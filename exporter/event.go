// Package exporter presents scan reports to the outside world. This part (event*.go, format_*.go, sink_*.go,
// spool*.go) turns reports into SIEM change events and delivers them at least once through a bounded disk spool per
// sink: a finding that opens or resolves becomes one event with a stable ID, so a consumer that sees an event twice
// (after a retry or a crash) de-duplicates it by ID.
package exporter

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/rootscan/rootscan/report"
)

// EventType says what changed. Events are changes, not state: a finding that stays open produces no further events.
type EventType string

// Event types.
const (
	// EventFindingOpened: a finding appeared (first scan of a container, new advisory, new drift, ...).
	EventFindingOpened EventType = "finding.opened"
	// EventFindingResolved: a finding that was open is gone; Reason says why.
	EventFindingResolved EventType = "finding.resolved"
	// EventFindingInUse: an open vulnerability finding's package was seen in use at run time (InUse turned true), so
	// it deserves attention before the findings nothing loads. Once per opening of the finding: its ID is stable,
	// so a package unloaded and loaded again repeats the same event, which a consumer de-duplicates.
	EventFindingInUse EventType = "finding.in_use"
	// EventScanFailed: a scan of the target failed. Sent once per failure episode (the first failed scan after a
	// successful one), so a broken target does not flood the SIEM on every resync. Open findings stay open.
	EventScanFailed EventType = "scan.failed"
	// EventScanIncomplete: a check stopped at one of its budgets (deadline, memory); Incomplete says which and
	// where. Like scan.failed, once per episode, and open findings stay open.
	EventScanIncomplete EventType = "scan.incomplete"
	// EventScanCrashed: the scanner process died during a check of the container, which is now quarantined (not read)
	// until its image or upper dir changes. Once per quarantine.
	EventScanCrashed EventType = "scan.crashed"
	// EventContainerRemoved: the container is gone; it follows the finding.resolved events (Reason
	// ReasonContainerRemoved) for every finding it still had open, so every opened finding is closed in the SIEM.
	EventContainerRemoved EventType = "container.removed"
	// EventExecDrift: a container executed a file its image does not have (see event_exec.go). Sent the moment the
	// kernel reports the first execution, not at a scan. It reports something that happened, not a state the tracker
	// keeps open: no finding.resolved follows it, container.removed closes the container.
	EventExecDrift EventType = "container.exec_drift"
)

// scanProblem says the event is about a scan that gave no full result (failed, incomplete, crashed), not about a
// finding.
func (t EventType) scanProblem() bool {
	return t == EventScanFailed || t == EventScanIncomplete || t == EventScanCrashed
}

// FindingKind names the analyzer side a finding comes from; it is part of the finding ID.
type FindingKind string

// Finding kinds.
const (
	KindVulnerability FindingKind = "vulnerability"
	KindCompliance    FindingKind = "compliance"
	KindDrift         FindingKind = "drift"
	KindIntegrity     FindingKind = "integrity"
	KindUnownedFile   FindingKind = "unowned_file"
	KindExecDrift     FindingKind = "exec_drift"
)

// Reasons a finding resolved, so a consumer can tell a fix from a VEX decision or a container going away.
const (
	ReasonAbsent           = "absent"
	ReasonSuppressed       = "suppressed"
	ReasonContainerRemoved = "container_removed"
)

// Event is one change about one target, in rootscan's own schema. Formats (ECS, OCSF, CEF) are renderings of it; the
// spool stores this form, so a sink's format can change between restarts without losing spooled events.
type Event struct {
	// ID is stable: the same change derived again (after a crash before the tracker persisted its state) or re-sent
	// (after a retry) has the same ID.
	ID   string    `json:"id"`
	Type EventType `json:"type"`
	// Time is when the scan that saw the change started.
	Time time.Time `json:"time"`

	Node        string `json:"node,omitempty"`
	Namespace   string `json:"namespace,omitempty"`
	Pod         string `json:"pod,omitempty"`
	Container   string `json:"container,omitempty"`
	ContainerID string `json:"containerId,omitempty"`
	Image       string `json:"image,omitempty"`
	ImageDigest string `json:"imageDigest,omitempty"`
	// Path is the scanned directory or OCI layout for targets that are not containers.
	Path string `json:"path,omitempty"`

	// Finding is set for finding.opened and finding.resolved (for resolved: the finding as it was last seen).
	Finding *Finding `json:"finding,omitempty"`
	// Reason is set for finding.resolved (ReasonAbsent, ReasonSuppressed, ReasonContainerRemoved).
	Reason string `json:"reason,omitempty"`
	// Error is set for scan.failed, scan.incomplete and scan.crashed.
	Error string `json:"error,omitempty"`
	// Incomplete is set for scan.incomplete and scan.crashed: which budget stopped the check, and where.
	Incomplete *report.Incomplete `json:"incomplete,omitempty"`
}

// Finding is one open issue on one target. Exactly one of the detail pointers is set, matching Kind.
type Finding struct {
	// ID is a hash of the target key (container ID), the kind and the subject (advisory + package, profile +
	// control, path + change, ...): the same issue on the same container always has the same ID.
	ID       string          `json:"id"`
	Kind     FindingKind     `json:"kind"`
	Title    string          `json:"title"`
	Severity report.Severity `json:"severity"`

	Vulnerability *report.Vulnerability    `json:"vulnerability,omitempty"`
	Control       *report.ControlResult    `json:"control,omitempty"`
	Drift         *report.DriftEntry       `json:"drift,omitempty"`
	Integrity     *report.IntegrityFinding `json:"integrity,omitempty"`
	File          *report.File             `json:"file,omitempty"`
	Exec          *ExecDrift               `json:"exec,omitempty"`
}

// stableID hashes its parts (NUL-separated, so "a"+"bc" and "ab"+"c" differ) into 128 bits of hex: short enough for
// syslog structured data and CEF, long enough that collisions do not happen in practice.
func stableID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// targetKey identifies a target across scans: the container ID for containers, else kind and path or digest.
func targetKey(t report.Target) string {
	switch {
	case t.ContainerID != "":
		return t.ContainerID
	case t.Path != "":
		return t.Kind + ":" + t.Path
	case t.ImageDigest != "":
		return t.Kind + ":" + t.ImageDigest
	}
	return t.Kind + ":" + t.Image
}

// eventID derives an event ID from what the event is about and the tracker generation at which the finding opened:
// a finding that resolves and later opens again gets new event IDs, a re-derived event the same ones.
func eventID(subject string, typ EventType, generation uint64) string {
	return stableID(subject, string(typ), strconv.FormatUint(generation, 10))
}

// newEvent fills the target fields every event carries.
func newEvent(t report.Target, typ EventType, at time.Time) Event {
	return Event{
		Type: typ, Time: at.UTC(),
		Node: t.Node, Namespace: t.Namespace, Pod: t.Pod, Container: t.Container, ContainerID: t.ContainerID,
		Image: t.Image, ImageDigest: t.ImageDigest, Path: t.Path,
	}
}
