package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/inuse"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// UsageSource says which files a container's processes executed or mapped executable, as container-absolute paths
// (the bpf Monitor's record since the daemon began watching, or what the processes map now). known is false when it
// has nothing on the container; the findings are then unknown.
type UsageSource interface {
	Used(ctx context.Context, c cri.Container) (paths []string, known bool, err error)
}

// markInUse ties the root's files to its packages while the root is open; the returned function sets each finding's
// InUse once the enrichers have matched them. Problems are the result's errors, never the scan's failure.
func markInUse(ctx context.Context, src UsageSource, opts inuse.Options, c cri.Container, root scan.FS, res *report.Result) func(*report.Result) {
	paths, known, err := src.Used(ctx, c)
	if err != nil {
		res.Errors = append(res.Errors, report.FileError{Analyzer: "in-use", Err: err.Error()})
	}
	if !known {
		return func(r *report.Result) { inuse.Mark(r, nil, nil, false) }
	}
	x, errs := inuse.Build(ctx, root, res, opts)
	res.Errors = append(res.Errors, errs...)
	return func(r *report.Result) { inuse.Mark(r, x, paths, true) }
}

// ProcUsage reads what a running container's processes map executable now, from /proc under ProcRoot: a snapshot of
// the moment of the scan (a library loaded and unloaded before, or by a process that exited, is not seen), which is
// what a one-shot scan can know without the daemon's eBPF record.
type ProcUsage struct {
	ProcRoot string
}

// cgroupMax bounds the read of /proc/<pid>/cgroup (a few hundred bytes; one line per v1 hierarchy).
const cgroupMax = 64 << 10

// Used gathers the mappings of every process in the container's mount namespace. A container that is not running
// has no processes: nothing is known of it. The init pid is trusted only while its cgroup names the container, so a
// pid reused by another process since the runtime reported it yields nothing.
func (p ProcUsage) Used(ctx context.Context, c cri.Container) ([]string, bool, error) {
	if c.State != cri.StateRunning || c.Pid <= 0 {
		return nil, false, nil
	}
	f, err := os.Open(filepath.Join(p.ProcRoot, strconv.Itoa(c.Pid), "cgroup"))
	if err != nil {
		return nil, false, fmt.Errorf("processes of container %s: %w", c.ID, err)
	}
	cg, err := io.ReadAll(io.LimitReader(f, cgroupMax))
	f.Close()
	if err != nil {
		return nil, false, fmt.Errorf("processes of container %s: %w", c.ID, err)
	}
	if c.ID == "" || !bytes.Contains(cg, []byte(c.ID)) {
		return nil, false, fmt.Errorf("processes of container %s: pid %d is no longer the container's", c.ID, c.Pid)
	}
	paths, err := inuse.NamespaceMaps(ctx, p.ProcRoot, c.Pid)
	if err != nil {
		return nil, false, fmt.Errorf("processes of container %s: %w", c.ID, err)
	}
	return paths, true, nil
}
