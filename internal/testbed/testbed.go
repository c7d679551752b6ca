// Package testbed runs a private containerd with its CRI plugin, so that
// integration tests, `make demo` and benchmarks can create real pods and
// containers and scan them the way rootscan does on a node.
//
// Everything an instance writes lives under its work dir (root, state, sockets,
// runc root, CNI dirs, logs), and its pods go into a cgroup of their own, so
// that several instances (go test runs packages in parallel) and a containerd
// the machine may run never meet. Stop leaves no process, mount or cgroup.
// The one exception is a containerd without socket_dir (1.6, 1.7, 2.2), which
// puts shim sockets in /run/containerd/s whatever its config says; Stop
// removes ours from there.
//
// Tests call StartT (or Require, then Start). Another containerd version is
// tested by pointing ROOTSCAN_CONTAINERD at it, e.g.
//
//	ROOTSCAN_CONTAINERD=$(internal/testbed/build-containerd.sh v2.4.2) go test ./...
//
// Known to work: Debian's 1.6.20, 1.7.35 and 2.4.2, with Debian's runc 1.1.5,
// on cgroup v1 (cgroupfs).
package testbed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/rootscan/rootscan/internal/testbed/ociimage"
)

// Namespace is the containerd namespace the CRI plugin keeps its pods,
// containers and images in; Client uses it by default.
const Namespace = "k8s.io"

// EnvContainerd names the containerd binary to test against when
// Options.Bin is empty, so one test suite covers several containerd versions.
const EnvContainerd = "ROOTSCAN_CONTAINERD"

// Options configures a testbed containerd. The zero value is usable.
type Options struct {
	// Bin is the containerd binary. Default: $ROOTSCAN_CONTAINERD, else
	// "containerd" from PATH. Its shim, containerd-shim-runc-v2, is taken from
	// Bin's directory first, then PATH, so a containerd built into its own
	// directory brings its own shim.
	Bin string
	// Runc is the runc binary. Default: "runc" from PATH, /usr/sbin or /sbin.
	Runc string
	// Dir is the work dir. Default: a new temporary dir, removed by Stop. A
	// given Dir is kept (its contents too), for post-mortems.
	Dir string
	// PauseImage is the sandbox image reference. The testbed's pause image
	// (ociimage.Pause) is imported under this name. Default: ociimage.PauseName.
	PauseImage string
	// CacheDir is ociimage's build cache. Default: ociimage.DefaultCacheDir().
	CacheDir string
	// CgroupParent is the cgroupfs path under which pods are put, one
	// "pod<uid>" child each, like kubelet's /kubepods/besteffort/pod<uid>.
	// Default: "/rootscan-testbed-<random>". Stop removes it.
	CgroupParent string
	// Log receives containerd's output too. It is always written to
	// <Dir>/containerd.log, whose tail start errors quote.
	Log io.Writer
	// StartTimeout bounds the wait for the CRI to answer. Default: 60s.
	StartTimeout time.Duration
}

// Containerd is a running testbed containerd. Its methods are safe for
// concurrent use.
type Containerd struct {
	l            layout
	bin          string
	ownDir       bool
	cgroupParent string
	version      string
	startTimeout time.Duration

	shimDir  string    // put first in containerd's PATH, for every (re)start
	extraLog io.Writer // Options.Log

	procMu sync.Mutex // guards proc and logFile, which Restart replaces
	proc   *process   // the running (or last) containerd process
	// logFile is containerd's log, opened once and kept across restarts.
	logFile *os.File

	conn   *grpc.ClientConn
	client *containerd.Client
	rt     runtimeapi.RuntimeServiceClient
	is     runtimeapi.ImageServiceClient

	pause ImageRef

	mu   sync.Mutex
	pods map[string]*runtimeapi.PodSandboxConfig

	stopOnce sync.Once
	stopErr  error
}

// Start starts a private containerd, waits until its CRI answers, and imports
// the pause image so that pods can run. On error nothing is left running.
func Start(ctx context.Context, opts Options) (_ *Containerd, retErr error) {
	bin, err := resolveContainerd(opts.Bin)
	if err != nil {
		return nil, err
	}
	shim, err := resolveShim(bin)
	if err != nil {
		return nil, err
	}
	runc, err := resolveRunc(opts.Runc)
	if err != nil {
		return nil, err
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 60 * time.Second
	}
	if opts.PauseImage == "" {
		opts.PauseImage = ociimage.PauseName
	}
	// Build the pause image first: it may compile, and containerd need not
	// wait for that.
	pauseImg, err := ociimage.Pause(ctx, opts.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("build pause image: %w", err)
	}
	pauseImg.Name = opts.PauseImage

	c := &Containerd{bin: bin, cgroupParent: opts.CgroupParent, pods: map[string]*runtimeapi.PodSandboxConfig{},
		shimDir: filepath.Dir(shim), extraLog: opts.Log, startTimeout: opts.StartTimeout}
	if c.cgroupParent == "" {
		c.cgroupParent = "/rootscan-testbed-" + randomHex(6)
	}
	if !filepath.IsAbs(c.cgroupParent) {
		return nil, fmt.Errorf("cgroup parent %q is not absolute", c.cgroupParent)
	}
	dir := opts.Dir
	if dir == "" {
		// Short: socket paths under it are limited to 107 bytes.
		if dir, err = os.MkdirTemp("", "rstb-"); err != nil {
			return nil, fmt.Errorf("create work dir: %w", err)
		}
		c.ownDir = true
	}
	if dir, err = filepath.Abs(dir); err == nil {
		if err = os.MkdirAll(dir, 0o711); err == nil {
			// The mount table shows resolved paths; so must we.
			dir, err = filepath.EvalSymlinks(dir)
		}
	}
	if err != nil {
		if c.ownDir {
			os.RemoveAll(dir)
		}
		return nil, fmt.Errorf("prepare work dir: %w", err)
	}
	c.l = newLayout(dir)
	defer func() {
		if retErr != nil {
			tail := c.logTail(4096)
			if err := c.Stop(); err != nil {
				retErr = errors.Join(retErr, fmt.Errorf("clean up after failed start: %w", err))
			}
			if tail != "" {
				retErr = fmt.Errorf("%w\ncontainerd log (tail):\n%s", retErr, tail)
			}
		}
	}()
	if err := c.l.check(); err != nil {
		return nil, err
	}
	for _, d := range c.l.dirs() {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("prepare work dir: %w", err)
		}
	}
	cfg, err := renderConfig(c.l, configParams{SandboxImage: opts.PauseImage, RuncBinary: runc})
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(c.l.Config, []byte(cfg), 0o644); err != nil {
		return nil, fmt.Errorf("write containerd config: %w", err)
	}

	began := time.Now()
	if err := c.startProcess(); err != nil {
		return nil, err
	}
	if err := c.connect(ctx, opts.StartTimeout); err != nil {
		return nil, err
	}
	slog.DebugContext(ctx, "testbed containerd ready", "version", c.version, "dir", dir, "took", time.Since(began))

	c.pause, err = c.importImage(ctx, pauseImg, true)
	if err != nil {
		return nil, fmt.Errorf("import pause image: %w", err)
	}
	return c, nil
}

// process is one run of the containerd binary; Restart replaces it.
type process struct {
	cmd     *exec.Cmd
	exited  chan struct{} // closed once cmd has been waited for
	waitErr error         // set before exited is closed
}

// current returns the containerd process last started.
func (c *Containerd) current() *process {
	c.procMu.Lock()
	defer c.procMu.Unlock()
	return c.proc
}

// startProcess starts containerd with the instance's config, appending to its
// log, and records it as the current process.
func (c *Containerd) startProcess() error {
	c.procMu.Lock()
	defer c.procMu.Unlock()
	if c.logFile == nil {
		f, err := os.OpenFile(c.l.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("open containerd log: %w", err)
		}
		c.logFile = f
	}
	f := c.logFile
	cmd := exec.Command(c.bin, "--config", c.l.Config)
	cmd.Dir = c.l.Dir
	cmd.Env = withPathFirst(os.Environ(), c.shimDir)
	cmd.Stdout, cmd.Stderr = f, f
	var copyDone chan struct{}
	if c.extraLog != nil {
		pr, pw, err := os.Pipe()
		if err != nil {
			return fmt.Errorf("containerd log pipe: %w", err)
		}
		cmd.Stdout, cmd.Stderr = pw, pw
		copyDone = make(chan struct{})
		extraLog := c.extraLog
		go func() {
			defer close(copyDone)
			_, _ = io.Copy(io.MultiWriter(f, extraLog), pr)
			pr.Close()
		}()
		defer pw.Close()
	}
	// Own process group: a ^C meant for the test does not skip Stop's orderly
	// shutdown. Pdeathsig: a crashed test does not leave containerd behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	// Pdeathsig fires when the starting OS thread exits, not the process: start
	// and wait from a goroutine that keeps its thread locked for containerd's
	// lifetime, so no other goroutine can lock that thread and end it.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.waitErr = cmd.Wait()
		if copyDone != nil {
			// Shims may inherit the pipe; do not wait on them forever.
			select {
			case <-copyDone:
			case <-time.After(2 * time.Second):
			}
		}
		close(p.exited)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start %s: %w", c.bin, err)
	}
	c.proc = p
	return nil
}

// connect waits for the CRI to answer Version, then opens the containerd client.
func (c *Containerd) connect(ctx context.Context, timeout time.Duration) error {
	conn, err := grpc.NewClient("unix://"+c.l.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("dial containerd: %w", err)
	}
	c.conn = conn
	c.rt = runtimeapi.NewRuntimeServiceClient(conn)
	c.is = runtimeapi.NewImageServiceClient(conn)

	return c.waitReady(ctx, timeout)
}

// waitReady waits until the current process's CRI answers Version, then opens
// the containerd client if there is none yet and records the server version.
func (c *Containerd) waitReady(ctx context.Context, timeout time.Duration) error {
	p := c.current()
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		cctx, ccancel := context.WithTimeout(wctx, time.Second)
		_, err := c.rt.Version(cctx, &runtimeapi.VersionRequest{})
		ccancel()
		if err == nil {
			break
		}
		lastErr = err
		// After a restart the connection may sit in gRPC's reconnect backoff
		// (up to 2 minutes): ask it to dial again now.
		c.conn.ResetConnectBackoff()
		select {
		case <-p.exited:
			return fmt.Errorf("containerd exited during start-up: %v", p.waitErr)
		case <-wctx.Done():
			return fmt.Errorf("wait for containerd CRI on %s: %w (last error: %v)", c.l.Socket, wctx.Err(), lastErr)
		case <-tick.C:
		}
	}
	if c.client != nil {
		// A restart: the client's connection redials by itself; only its
		// backoff needs cutting short, and the version is known.
		if cc, ok := c.client.Conn().(*grpc.ClientConn); ok {
			cc.ResetConnectBackoff()
		}
		if _, err := c.client.Version(ctx); err != nil {
			return fmt.Errorf("containerd version after restart: %w", err)
		}
		return nil
	}
	client, err := containerd.New(c.l.Socket, containerd.WithDefaultNamespace(Namespace))
	if err != nil {
		return fmt.Errorf("containerd client: %w", err)
	}
	c.client = client
	v, err := c.client.Version(ctx)
	if err != nil {
		return fmt.Errorf("containerd version: %w", err)
	}
	c.version = v.Version
	return nil
}

// StopProcess stops the containerd process only, as a node's service manager
// does on a containerd restart or upgrade: SIGTERM, then SIGKILL after 10s.
// Shims, containers, mounts and state stay; the CRI and the containerd API
// are unreachable until StartProcess. Call it only on a running instance.
func (c *Containerd) StopProcess(ctx context.Context) error {
	p := c.current()
	if p == nil || p.hasExited() {
		return errors.New("containerd is not running")
	}
	done := make(chan struct{})
	go func() { p.terminate(10 * time.Second); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("stop containerd: %w", ctx.Err())
	}
	var ee *exec.ExitError
	if p.waitErr != nil && !errors.As(p.waitErr, &ee) {
		return fmt.Errorf("stop containerd: %w", p.waitErr)
	}
	return nil
}

// StartProcess starts containerd again after StopProcess, with the same
// binary, config, root, state and address, and waits until its CRI answers.
// The clients (Client, Runtime, Images) keep working: their connections
// redial the same socket. Containers that were running still run: containerd
// reconnects to their shims.
func (c *Containerd) StartProcess(ctx context.Context) error {
	if p := c.current(); p != nil && !p.hasExited() {
		return errors.New("containerd is still running")
	}
	if err := c.startProcess(); err != nil {
		return err
	}
	if err := c.waitReady(ctx, c.startTimeout); err != nil {
		return fmt.Errorf("restart containerd: %w", err)
	}
	return nil
}

// Restart is StopProcess then StartProcess: containerd restarts in place under
// whatever talks to it, the way a node's containerd does on an upgrade.
func (c *Containerd) Restart(ctx context.Context) error {
	if err := c.StopProcess(ctx); err != nil {
		return err
	}
	return c.StartProcess(ctx)
}

// Address is the containerd socket; the CRI is served on it too.
func (c *Containerd) Address() string { return c.l.Socket }

// Dir is the work dir everything of this instance lives under.
func (c *Containerd) Dir() string { return c.l.Dir }

// Root is containerd's root dir (content, metadata, snapshots).
func (c *Containerd) Root() string { return c.l.Root }

// State is containerd's state dir (bundles, rootfs mounts, pod shm).
func (c *Containerd) State() string { return c.l.State }

// RuncRoot is the runc state dir of this instance's containers.
func (c *Containerd) RuncRoot() string { return c.l.RuncRoot }

// LogPath is the file containerd's output goes to.
func (c *Containerd) LogPath() string { return c.l.Log }

// CgroupParent is the cgroupfs path all pods of this instance are under.
func (c *Containerd) CgroupParent() string { return c.cgroupParent }

// Version is the containerd server version, e.g. "1.6.20~ds1" or "v2.4.2",
// for tests whose expectations differ between versions.
func (c *Containerd) Version() string { return c.version }

// Client is a containerd client whose default namespace is the CRI's.
func (c *Containerd) Client() *containerd.Client { return c.client }

// Runtime is the CRI runtime service.
func (c *Containerd) Runtime() runtimeapi.RuntimeServiceClient { return c.rt }

// Images is the CRI image service.
func (c *Containerd) Images() runtimeapi.ImageServiceClient { return c.is }

// PauseImage is the sandbox image as imported.
func (c *Containerd) PauseImage() ImageRef { return c.pause }

// Stop removes every pod, stops containerd, kills what survives of this
// instance (containerd, shims, container processes), unmounts everything under
// the work dir, removes the pod cgroups and, if Start created it, the work
// dir. It is safe to call more than once; later calls return the first
// result.
func (c *Containerd) Stop() error {
	c.stopOnce.Do(func() { c.stopErr = c.stop() })
	return c.stopErr
}

func (c *Containerd) stop() error {
	var errs []error
	sandboxes := c.knownSandboxes()
	p := c.current()
	if p != nil && c.rt != nil && !p.hasExited() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		ids, err := c.removeAllPods(ctx)
		cancel()
		sandboxes = append(sandboxes, ids...)
		if err != nil {
			// Not fatal: the kills below still clean up.
			slog.Warn("testbed: orderly pod removal failed", "err", err)
		}
	}
	if c.client != nil {
		_ = c.client.Close()
	}
	if c.conn != nil {
		_ = c.conn.Close()
	}
	if p != nil {
		p.terminate(10 * time.Second)
	}
	if c.l.Dir != "" {
		// Whatever of this instance still runs: shims (their command line holds
		// our socket), then anything in our pod cgroups.
		pids, err := processesUsing(c.l.Socket, c.l.Config)
		if err != nil {
			errs = append(errs, err)
		}
		if err := killAndWait(pids, 10*time.Second); err != nil {
			errs = append(errs, err)
		}
		if err := removeStaleShimSockets(c.l.Socket, Namespace, sandboxes); err != nil {
			errs = append(errs, err)
		}
	}
	cgDirs, err := cgroupDirs(c.cgroupParent)
	if err != nil {
		errs = append(errs, err)
	}
	if err := killAndWait(cgroupProcs(cgDirs), 10*time.Second); err != nil {
		errs = append(errs, err)
	}
	if err := removeCgroupTrees(cgDirs); err != nil {
		errs = append(errs, err)
	}
	if c.l.Dir != "" {
		if err := unmountAll(c.l.Dir); err != nil {
			errs = append(errs, err)
		} else if c.ownDir {
			// Only with nothing mounted: RemoveAll would reach into a mount.
			if err := os.RemoveAll(c.l.Dir); err != nil {
				errs = append(errs, fmt.Errorf("remove work dir: %w", err))
			}
		}
	}
	c.procMu.Lock()
	if c.logFile != nil {
		_ = c.logFile.Close()
	}
	c.procMu.Unlock()
	return errors.Join(errs...)
}

// terminate sends SIGTERM and waits for the process to exit, SIGKILLing it
// after grace.
func (p *process) terminate(grace time.Duration) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func (p *process) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

func (c *Containerd) knownSandboxes() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]string, 0, len(c.pods))
	for id := range c.pods {
		ids = append(ids, id)
	}
	return ids
}

// removeAllPods stops and removes every pod the CRI knows, so that
// containerd itself stops the shims and unmounts the rootfs. It returns the
// sandbox IDs it saw.
func (c *Containerd) removeAllPods(ctx context.Context) ([]string, error) {
	resp, err := c.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	var ids []string
	var errs []error
	for _, p := range resp.Items {
		ids = append(ids, p.Id)
		if err := c.RemovePod(ctx, p.Id); err != nil {
			errs = append(errs, err)
		}
	}
	return ids, errors.Join(errs...)
}

// LogTail returns up to n bytes of the end of containerd's log, for test
// failure messages.
func (c *Containerd) LogTail(n int) string { return c.logTail(n) }

func (c *Containerd) logTail(n int) string {
	if c.l.Log == "" {
		return ""
	}
	return TailFile(c.l.Log, n)
}

// resolveContainerd picks the containerd binary: bin, $ROOTSCAN_CONTAINERD, PATH.
func resolveContainerd(bin string) (string, error) {
	if bin == "" {
		bin = os.Getenv(EnvContainerd)
	}
	if bin == "" {
		bin = "containerd"
	}
	p, err := exec.LookPath(bin)
	if err != nil {
		return "", fmt.Errorf("find containerd (set %s or put containerd in PATH): %w", EnvContainerd, err)
	}
	return filepath.Abs(p)
}

// resolveShim finds containerd-shim-runc-v2 next to containerd, else in PATH.
func resolveShim(containerdBin string) (string, error) {
	const name = "containerd-shim-runc-v2"
	p := filepath.Join(filepath.Dir(containerdBin), name)
	if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
		return p, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("find %s next to %s or in PATH: %w", name, containerdBin, err)
	}
	return filepath.Abs(p)
}

// resolveRunc finds runc: bin, PATH, then the sbin dirs a non-login PATH
// may lack.
func resolveRunc(bin string) (string, error) {
	if bin == "" {
		bin = "runc"
	}
	if p, err := exec.LookPath(bin); err == nil {
		return filepath.Abs(p)
	}
	if !strings.Contains(bin, "/") {
		for _, d := range []string{"/usr/local/sbin", "/usr/sbin", "/sbin"} {
			p := filepath.Join(d, bin)
			if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("find runc %q: not in PATH, /usr/local/sbin, /usr/sbin or /sbin", bin)
}

// withPathFirst returns env with dir put first in PATH.
func withPathFirst(env []string, dir string) []string {
	out := make([]string, 0, len(env)+1)
	found := false
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			found = true
			if v == "" {
				kv = "PATH=" + dir
			} else {
				kv = "PATH=" + dir + string(os.PathListSeparator) + v
			}
		}
		out = append(out, kv)
	}
	if !found {
		out = append(out, "PATH="+dir+":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
