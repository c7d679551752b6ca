package scan

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	rpmdb "github.com/knqyf263/go-rpmdb/pkg"
)

// RPMChildCommand is the hidden first argument that makes a rootscan binary (or a test binary) act as the rpm
// database parser child: its main (or TestMain) must hand such a call to RunRPMChild before doing anything else.
// The dispatch is explicit, not an init() registration, so nothing runs behind the program's back.
const RPMChildCommand = "__parse-rpmdb"

// Default limits of one child. A RHEL server's 200 MiB Berkeley DB parses in about a second and a few hundred MiB of
// address space; the limits only stop a database built to wedge or exhaust the parser.
const (
	rpmChildMaxMemory = 2 << 30   // added to the child's address space at start, for RLIMIT_AS
	rpmChildMaxOutput = 256 << 20 // encoded records: file lists of ~200k files take ~25 MiB
	rpmChildMaxStderr = 64 << 10  // a Go panic's first lines say what went wrong; the rest is stack traces
	rpmChildWaitDelay = 2 * time.Second
)

// RPMSubprocess parses rpm databases in a short-lived child process: the same executable, re-run with
// RPMChildCommand. go-rpmdb reads Berkeley DB and ndb files in goroutines of its own, where a panic ends the process
// and a loop cannot be stopped; in a child, either costs one FileError, and the child is killed (its whole process
// group) on timeout or when ctx ends. The child gets only the path of the analyzer's private copy of the database,
// sets RLIMIT_AS and RLIMIT_CPU on itself before it reads it, and its output is read with a bound.
//
// The zero value is ready to use and re-executes the running binary (on Linux /proc/self/exe, which stays valid when
// the binary on disk is replaced by an upgrade of a running daemon). The process group, Pdeathsig and rlimits are
// Linux's (rpmsubprocess_linux.go, rpmchild_linux.go); elsewhere the child is bounded by the wall-clock timeout and
// the Go memory limit only.
type RPMSubprocess struct {
	// Executable is the binary to run; empty means the running one.
	Executable string
	// Timeout bounds one parse, wall clock; 0 means 2 minutes.
	Timeout time.Duration
	// MaxCPU is the child's RLIMIT_CPU; 0 means Timeout.
	MaxCPU time.Duration
	// MaxMemory bounds the address space the child may add to what the Go runtime reserved at its start (about
	// 1 GiB, never used), through RLIMIT_AS; 0 means 2 GiB.
	MaxMemory int64
	// MaxOutput bounds what the parent reads from the child's stdout; 0 means 256 MiB.
	MaxOutput int64
	// Log, when set, gets one debug line per child (pid, duration) and a warning per failed child.
	Log *slog.Logger

	// Test hooks: preflightOff runs go-rpmdb on whatever the child gets; started sees the child's pid.
	preflightOff bool
	started      func(pid int)
}

// errRPMChild marks a child that did not end with a parse result: crashed, killed, or out of a limit.
var errRPMChild = errors.New("rpm parser process")

// rpmChildResult is what the child writes to stdout: gob, not JSON, because rpm stores names as bytes and JSON
// would turn a file name that is not UTF-8 into U+FFFD, and the integrity check would then look for a file that
// does not exist. Both ends are the same binary, so the encoding needs no versioning.
type rpmChildResult struct {
	Packages []*rpmdb.PackageInfo
	// Err is a parse error of the database itself (damaged, not a database); the child exits 1 with it.
	Err string
}

func (p *RPMSubprocess) limits() (timeout, cpu time.Duration, mem, out int64) {
	timeout, cpu, mem, out = p.Timeout, p.MaxCPU, p.MaxMemory, p.MaxOutput
	if timeout <= 0 {
		timeout = rpmParseTimeout
	}
	if cpu <= 0 {
		cpu = timeout
	}
	if mem <= 0 {
		mem = rpmChildMaxMemory
	}
	if out <= 0 {
		out = rpmChildMaxOutput
	}
	return timeout, cpu, mem, out
}

// ParseRPMDB implements RPMParser.
func (p *RPMSubprocess) ParseRPMDB(ctx context.Context, path string) ([]*rpmdb.PackageInfo, error) {
	timeout, cpu, mem, maxOut := p.limits()
	exe := p.Executable
	if exe == "" {
		var err error
		if exe, err = selfExecutable(); err != nil {
			return nil, fmt.Errorf("%w: %w", errRPMChild, err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Whole seconds, rounded up: RLIMIT_CPU counts seconds.
	cpuSecs := int64((cpu + time.Second - 1) / time.Second)
	args := []string{RPMChildCommand,
		"-timeout", timeout.String(),
		"-max-cpu", strconv.FormatInt(cpuSecs, 10),
		"-max-memory", strconv.FormatInt(mem, 10),
	}
	if p.preflightOff {
		args = append(args, "-preflight=false")
	}
	args = append(args, "--", path)
	cmd := exec.CommandContext(cctx, exe, args...)
	cmd.Args[0] = "rootscan-rpmdb"
	cmd.Dir = filepath.Dir(path)
	// The child needs nothing from the environment; two Ps are enough for go-rpmdb (a reader goroutine and its
	// consumer) and keep the runtime from starting a thread per CPU of a large node.
	cmd.Env = []string{"GOMAXPROCS=2"}
	isolateChild(cmd)
	cmd.WaitDelay = rpmChildWaitDelay
	stdout := &cappedBuffer{max: maxOut, stop: true}
	stderr := &cappedBuffer{max: rpmChildMaxStderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: start %s: %w", errRPMChild, exe, err)
	}
	if p.started != nil {
		p.started(cmd.Process.Pid)
	}
	werr := cmd.Wait()
	// Wait has reaped the child; anything left in its group (it starts nothing, but a kill is cheap) goes too.
	_ = killChildGroup(cmd)
	elapsed := time.Since(start)

	res, err := p.result(ctx, cctx, cmd.ProcessState, werr, stdout, stderr, timeout, cpu, mem, maxOut)
	if p.Log != nil {
		if err != nil && errors.Is(err, errRPMChild) {
			p.Log.Warn("rpm parser process failed", "pid", cmd.Process.Pid, "elapsed", elapsed, "err", err)
		} else {
			p.Log.Debug("rpm database parsed in a child process", "pid", cmd.Process.Pid, "elapsed", elapsed, "packages", len(res), "err", err)
		}
	}
	return res, err
}

// result reads what the child left: its exit status, stdout and stderr, and says why it failed when it did.
func (p *RPMSubprocess) result(ctx, cctx context.Context, st *os.ProcessState, werr error, stdout, stderr *cappedBuffer, timeout, cpu time.Duration, mem, maxOut int64) ([]*rpmdb.PackageInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cctx.Err() != nil {
		return nil, fmt.Errorf("%w (%v): %w killed", errRPMTimeout, timeout, errRPMChild)
	}
	if stdout.over {
		return nil, fmt.Errorf("%w: output larger than %d bytes", errRPMChild, maxOut)
	}
	if st == nil {
		return nil, fmt.Errorf("%w: %w", errRPMChild, werr)
	}
	ws, _ := st.Sys().(syscall.WaitStatus)
	switch {
	// The kernel counts CPU time exactly; wait4's user/system split is sampled, so allow it to fall a little short.
	case ws.Signaled() && ws.Signal() == syscall.SIGKILL && st.UserTime()+st.SystemTime() >= cpu*9/10:
		return nil, fmt.Errorf("%w: killed at its CPU time limit (%v)", errRPMChild, cpu)
	case ws.Signaled():
		return nil, fmt.Errorf("%w: killed by signal %v (memory limit %d bytes, or the kernel's OOM killer)", errRPMChild, ws.Signal(), mem)
	case st.ExitCode() == 0 || st.ExitCode() == 1:
		var res rpmChildResult
		if err := gob.NewDecoder(bytes.NewReader(stdout.buf.Bytes())).Decode(&res); err != nil {
			return nil, fmt.Errorf("%w: exit %d with unreadable output: %w", errRPMChild, st.ExitCode(), err)
		}
		if st.ExitCode() == 1 {
			if res.Err == "" {
				res.Err = "exit 1 without an error message"
			}
			return nil, errors.New(res.Err)
		}
		return res.Packages, nil
	}
	msg := childFailure(stderr.buf.String())
	// The Go runtime says "out of memory" or "cannot allocate memory", depending on which mapping failed.
	if strings.Contains(msg, "out of memory") || strings.Contains(msg, "cannot allocate memory") {
		return nil, fmt.Errorf("%w: out of memory (limit %d bytes): %s", errRPMChild, mem, msg)
	}
	return nil, fmt.Errorf("%w: crashed (exit %d): %s", errRPMChild, st.ExitCode(), msg)
}

// childFailure picks what a crashed Go program said about its crash out of its stderr: the "panic:" or
// "fatal error:" line, else the first non-empty line.
func childFailure(stderr string) string {
	var first string
	for line := range strings.Lines(stderr) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ") {
			return line
		}
		if first == "" {
			first = line
		}
	}
	if first == "" {
		return "no message"
	}
	return first
}

// cappedBuffer keeps the first max bytes written to it and says whether more came. With stop, a write past max
// fails, which closes the pipe and ends a child that keeps writing (SIGPIPE); without, the rest is dropped, so a
// chatty stderr does not end the child before its exit status says what happened.
type cappedBuffer struct {
	buf  bytes.Buffer
	max  int64
	stop bool
	over bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	room := b.max - int64(b.buf.Len())
	if int64(len(p)) <= room {
		return b.buf.Write(p)
	}
	b.over = true
	if room > 0 {
		b.buf.Write(p[:room])
	}
	if b.stop {
		return int(max(room, 0)), errRPMOutputLimit
	}
	return len(p), nil
}

var errRPMOutputLimit = errors.New("output limit reached")
