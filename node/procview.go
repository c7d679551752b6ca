package node

import (
	"context"

	"github.com/rootscan/rootscan/compliance"
	"github.com/rootscan/rootscan/cri"
)

// withProcess carries c's init process to the compliance checks, when the node sees it under procRoot: a stopped
// container, or no procRoot, leaves the process resources skipped. Each read first checks the pid is still the
// init the container started (its start time), so a reused pid is never read as the container's.
func withProcess(ctx context.Context, procRoot string, c cri.Container) context.Context {
	if procRoot == "" || c.State != cri.StateRunning || c.Pid <= 0 {
		return ctx
	}
	return compliance.WithProcess(ctx, &compliance.Process{ProcRoot: procRoot, Pid: c.Pid,
		Check: func() error { return checkContainerPid(procRoot, c) }})
}
