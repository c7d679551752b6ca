package exporter

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/rootscan/rootscan/report"
)

// ExecDrift is the detail of an exec_drift finding: a container process executed a file from the container's
// writable layer, one its image never had. Its fields match node.ExecDrift (the daemon converts one into the other).
type ExecDrift struct {
	Path     string   `json:"path"`
	Filename string   `json:"filename,omitempty"`
	Argv     []string `json:"argv,omitempty"`
	Inode    uint64   `json:"inode,omitempty"`
	Dev      uint64   `json:"dev,omitempty"`
	SHA256   string   `json:"sha256,omitempty"`
	Size     int64    `json:"size,omitempty"`
	// HashError says why there is no hash (the file was replaced or deleted before it could be read, too large).
	HashError     string    `json:"hashError,omitempty"`
	PID           uint32    `json:"pid"`
	PPID          uint32    `json:"ppid"`
	ParentName    string    `json:"parentName,omitempty"`
	ParentCmdline string    `json:"parentCmdline,omitempty"`
	UID           uint32    `json:"uid"`
	User          string    `json:"user,omitempty"`
	Comm          string    `json:"comm,omitempty"`
	UpperGuessed  bool      `json:"upperGuessed,omitempty"`
	Count         uint64    `json:"count"`
	FirstSeen     time.Time `json:"firstSeen"`
}

// maxArgv bounds the arguments an exec drift event carries (the kernel already cut them to 1 KiB).
const maxArgv = 64

// ExecDriftEvent is the container.exec_drift event of one drifted executable: a CRITICAL finding whose ID is the
// container, the path and the inode, so a re-sent or re-derived event (a daemon restart) has the same ID.
func ExecDriftEvent(t report.Target, x ExecDrift) Event {
	x.ParentCmdline = truncate(x.ParentCmdline, maxMessage)
	x.ParentName = truncate(x.ParentName, maxSummary)
	x.HashError = truncate(x.HashError, maxSummary)
	if len(x.Argv) > maxArgv {
		x.Argv = x.Argv[:maxArgv]
	}
	key := targetKey(t)
	f := Finding{
		ID: stableID(key, string(KindExecDrift), x.Path, strconv.FormatUint(x.Inode, 10)), Kind: KindExecDrift,
		Title: "executed " + x.Path + ", which is not from the image", Severity: report.SeverityCritical, Exec: &x,
	}
	e := newEvent(t, EventExecDrift, x.FirstSeen)
	e.ID = eventID(f.ID, EventExecDrift, 0)
	e.Finding = &f
	return e
}

// ExecDriftPublisher publishes exec drift as the kernel reports it: every execution counts on the metrics, the
// first of each file goes to the SIEM sinks at once (through the spool, like every event).
type ExecDriftPublisher struct {
	Events  Publisher
	Metrics *RuntimeMetrics
	Log     *slog.Logger
}

// Publish counts the execution and, for the first, sends the event.
func (p *ExecDriftPublisher) Publish(ctx context.Context, t report.Target, x ExecDrift, first bool) {
	if p.Metrics != nil {
		p.Metrics.ExecDrift(t)
	}
	if !first || p.Events == nil {
		return
	}
	if err := p.Events.Publish(ctx, []Event{ExecDriftEvent(t, x)}); err != nil && p.Log != nil {
		p.Log.Warn("publish exec drift event", "container", t.ContainerID, "path", x.Path, "err", err)
	}
}

// Forget drops the metrics series of a container that is gone.
func (p *ExecDriftPublisher) Forget(t report.Target) {
	if p.Metrics != nil {
		p.Metrics.Forget(t)
	}
}
