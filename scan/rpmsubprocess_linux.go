package scan

import (
	"os/exec"
	"syscall"
)

// selfExecutable is the running binary through procfs: the path stays valid when the file on disk is replaced by an
// upgrade of a running daemon.
func selfExecutable() (string, error) { return "/proc/self/exe", nil }

// isolateChild gives the child its own process group, so that a kill reaches anything it might start, and Pdeathsig,
// so that it does not outlive a parent that is killed before it can clean up.
func isolateChild(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return killChildGroup(cmd) }
}

// killChildGroup kills the child's whole process group.
func killChildGroup(cmd *exec.Cmd) error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
