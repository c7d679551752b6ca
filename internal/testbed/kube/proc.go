package kube

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// proc is one cluster component, in a process group of its own so that Stop
// reaches whatever it forked, and with a parent-death signal so that a test
// binary that dies does not leave it running.
type proc struct {
	name    string
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// startProc starts bin with args, its output appended to logFile.
func startProc(name, bin, logFile string, args ...string) (*proc, error) {
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &proc{name: name, cmd: cmd, exited: make(chan struct{})}
	started := make(chan error, 1)
	// Pdeathsig fires when the starting thread exits: keep it locked to a
	// goroutine that lives as long as the process.
	go func() {
		runtime.LockOSThread()
		defer f.Close()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return p, nil
}

func (p *proc) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after grace, and
// waits for the process; the group is SIGKILLed at the end either way, for
// children that outlived their parent.
func (p *proc) stop(grace time.Duration) {
	if p.hasExited() {
		// Its group id may belong to another process by now.
		return
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.exited
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}
