// Package kube runs a single-node Kubernetes for tests: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and a kubelet whose runtime is the
// test bed's private containerd (internal/testbed), so that the scanner's
// manifests run under a real kubelet.
//
// The binaries are built from the Go module proxy by build/build-kube.sh
// (`make kube`) and found through $ROOTSCAN_KUBE. Everything runs on loopback
// ports chosen at start and on a bridge of the harness's own (rstb<hex>, a
// /24 of 198.18.0.0/15, routed only between the host and the pods), with all
// state under one temp dir. Stop leaves the host as Start found it: no
// process, mount, cgroup, link, changed sysctl, or file outside the temp dir
// that the kubelet or the CNI plugins wrote.
package kube

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rootscan/rootscan/internal/testbed"
)

// EnvKube names the directory of the cluster's binaries, as build-kube.sh
// writes it: etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
// kubelet, kubectl, and the CNI plugins under cni/.
const EnvKube = "ROOTSCAN_KUBE"

// NodeName is the name the kubelet registers its node under.
const NodeName = "rstb-node"

var components = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kubectl"}

var cniPlugins = []string{"bridge", "host-local", "loopback"}

// Options configures a cluster. The zero value is usable.
type Options struct {
	// BinDir holds the binaries. Default: $ROOTSCAN_KUBE.
	BinDir string
	// Containerd configures the test bed's containerd; its Dir and
	// CgroupParent are chosen by the harness.
	Containerd testbed.Options
	// ReadyTimeout bounds the wait for each component and for the node to
	// become Ready. Default: 3 minutes.
	ReadyTimeout time.Duration
}

// Cluster is a running single-node cluster.
type Cluster struct {
	binDir     string
	root       string
	p          params
	bridge     string
	netName    string
	subnet     *net.IPNet
	kubeconfig string
	caPEM      []byte
	admin      keyPair
	http       *http.Client // the admin's, for readiness checks
	sysctls    map[string]string
	lock       *os.File // held while the cluster runs (lockHost)
	host       hostState

	ctrd  *testbed.Containerd
	procs []*proc // in start order

	sigCh    chan os.Signal
	stopOnce sync.Once
	stopErr  error
}

// Start starts the cluster and waits until its node is Ready and the default
// namespace's service account exists, so that a pod can be created at once.
// On error nothing is left running.
func Start(ctx context.Context, opts Options) (_ *Cluster, retErr error) {
	binDir, err := resolveBinDir(opts.BinDir)
	if err != nil {
		return nil, err
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 3 * time.Minute
	}
	lock, err := lockHost(ctx, binDir)
	if err != nil {
		return nil, err
	}
	if err := foreignKubelet(); err != nil {
		lock.Close()
		return nil, err
	}
	if err := sweepStale(); err != nil {
		lock.Close()
		return nil, err
	}
	c := &Cluster{binDir: binDir, lock: lock, sysctls: Sysctls(), host: recordHost(defaultHostPaths())}
	id := randomHex(3)
	c.bridge, c.netName = "rstb"+id, "rstb-"+id
	if c.root, err = os.MkdirTemp("", "rskube-"); err != nil {
		lock.Close()
		return nil, fmt.Errorf("create cluster dir: %w", err)
	}
	if c.root, err = filepath.EvalSymlinks(c.root); err != nil || !nameOK(c.root) {
		os.RemoveAll(c.root)
		lock.Close()
		return nil, fmt.Errorf("cluster dir %q unusable: %v", c.root, err)
	}
	c.watchSignals()
	defer func() {
		if retErr != nil {
			retErr = fmt.Errorf("%w%s", retErr, c.logTails(2048))
			if err := c.Stop(); err != nil {
				retErr = errors.Join(retErr, fmt.Errorf("clean up after failed start: %w", err))
			}
		}
	}()
	if err := c.prepare(opts); err != nil {
		return nil, err
	}
	if err := c.startControlPlane(ctx, opts.ReadyTimeout); err != nil {
		return nil, err
	}
	if err := c.startNode(ctx, opts); err != nil {
		return nil, err
	}
	return c, nil
}

// prepare makes the bridge, the certificates, kubeconfigs and config files.
func (c *Cluster) prepare(opts Options) error {
	salt := make([]byte, 1)
	_, _ = rand.Read(salt)
	subnet, err := pickSubnet(salt[0])
	if err != nil {
		return err
	}
	c.subnet = subnet
	c.p.cgroupRoot = "/rskube-" + randomHex(4)
	if err := writeRecord(c.root, c.record()); err != nil {
		return err
	}
	b := subnet.IP.To4()
	gw := net.IPv4(b[0], b[1], b[2], 1)
	if err := createBridge(c.bridge, gw); err != nil {
		return fmt.Errorf("create pod bridge: %w", err)
	}
	ports, err := freePorts("127.0.0.1", 3)
	if err != nil {
		return err
	}
	kport, err := freePorts(gw.String(), 1)
	if err != nil {
		return err
	}
	r, cgroupRoot := c.root, c.p.cgroupRoot
	c.p = params{
		nodeName: NodeName, nodeIP: gw.String(),
		// Services get addresses from the other half of the benchmarking
		// range than pods; without kube-proxy nothing routes them.
		serviceCIDR: "198.19.0.0/24",
		etcdPort:    ports[0], etcdPeerPort: ports[1], apiPort: ports[2], kubeletPort: kport[0],
		etcdDir: filepath.Join(r, "etcd"), kubeletRoot: filepath.Join(r, "kubelet"),
		podLogsDir: filepath.Join(r, "pod-logs"), apiCertDir: filepath.Join(r, "pki", "apiserver"),
		kubeletConfigFile: filepath.Join(r, "kubelet.yaml"),
		volumePluginDir:   filepath.Join(r, "volume-plugins"),
		cgroupRoot:        cgroupRoot,
	}
	for _, d := range []string{"pki", "logs", "etcd", "kubelet", "pod-logs", "cni-ipam", "pki/apiserver"} {
		if err := os.MkdirAll(filepath.Join(r, d), 0o700); err != nil {
			return fmt.Errorf("prepare cluster dir: %w", err)
		}
	}
	if err := makeCgroup(c.p.cgroupRoot); err != nil {
		return err
	}
	return c.writePKI()
}

// startControlPlane starts etcd, the API server, the controller manager and
// the scheduler, waiting for etcd and the API server to answer.
func (c *Cluster) startControlPlane(ctx context.Context, timeout time.Duration) error {
	if err := c.start("etcd", etcdArgs(c.p)); err != nil {
		return err
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d/health", c.p.etcdPort)
	if err := c.waitHTTP(ctx, "etcd", etcdURL, timeout); err != nil {
		return err
	}
	if err := c.start("kube-apiserver", apiserverArgs(c.p)); err != nil {
		return err
	}
	if err := c.waitHTTP(ctx, "kube-apiserver", c.p.apiURL()+"/readyz", timeout); err != nil {
		return err
	}
	if err := c.start("kube-controller-manager", controllerManagerArgs(c.p)); err != nil {
		return err
	}
	return c.start("kube-scheduler", schedulerArgs(c.p))
}

// startNode starts the test bed's containerd with the pod network, then the
// kubelet, and waits for the node to be Ready.
func (c *Cluster) startNode(ctx context.Context, opts Options) error {
	copts := opts.Containerd
	copts.Dir = filepath.Join(c.root, "c")
	copts.CgroupParent = c.p.cgroupRoot
	ctrd, err := testbed.Start(ctx, copts)
	if err != nil {
		return fmt.Errorf("start containerd: %w", err)
	}
	c.ctrd = ctrd
	c.p.runtimeSocket = ctrd.Address()
	for _, pl := range cniPlugins {
		if err := os.Symlink(filepath.Join(c.binDir, "cni", pl), filepath.Join(ctrd.CNIBinDir(), pl)); err != nil {
			return fmt.Errorf("install CNI plugin: %w", err)
		}
	}
	conf, err := cniConfig(c.netName, c.bridge, c.subnet, filepath.Join(c.root, "cni-ipam"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(ctrd.CNIConfDir(), "10-rstb.conflist"), conf, 0o644); err != nil {
		return fmt.Errorf("write CNI config: %w", err)
	}
	if err := os.WriteFile(c.p.kubeletConfigFile, []byte(kubeletConfig(c.p)), 0o644); err != nil {
		return fmt.Errorf("write kubelet config: %w", err)
	}
	if err := c.start("kubelet", kubeletArgs(c.p)); err != nil {
		return err
	}
	if err := c.waitFor(ctx, "node Ready", opts.ReadyTimeout, c.nodeReady); err != nil {
		return err
	}
	sa := c.p.apiURL() + "/api/v1/namespaces/default/serviceaccounts/default"
	return c.waitHTTP(ctx, "default service account", sa, opts.ReadyTimeout)
}

func (c *Cluster) start(name string, args []string) error {
	p, err := startProc(name, filepath.Join(c.binDir, name), c.logPath(name), args...)
	if err != nil {
		return err
	}
	c.procs = append(c.procs, p)
	return nil
}

func (c *Cluster) logPath(name string) string { return filepath.Join(c.root, "logs", name+".log") }

// Kubeconfig is the path of an admin (system:masters) kubeconfig.
func (c *Cluster) Kubeconfig() string { return c.kubeconfig }

// Containerd is the node's container runtime, to import images into.
func (c *Cluster) Containerd() *testbed.Containerd { return c.ctrd }

// Root is the dir all of the cluster's state is under.
func (c *Cluster) Root() string { return c.root }

// Bridge is the name of the pods' bridge; PodSubnet its /24.
func (c *Cluster) Bridge() string { return c.bridge }

// PodSubnet is the subnet pod IPs come from.
func (c *Cluster) PodSubnet() *net.IPNet { return c.subnet }

// KubectlPath is the kubectl binary of the cluster's version.
func (c *Cluster) KubectlPath() string { return filepath.Join(c.binDir, "kubectl") }

// Pids are the process ids of the cluster's components, for measurements.
func (c *Cluster) Pids() map[string]int {
	out := map[string]int{}
	for _, p := range c.procs {
		out[p.name] = p.cmd.Process.Pid
	}
	return out
}

// Kubectl runs kubectl against the cluster as admin and returns its stdout;
// the error carries stderr.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (string, error) {
	return c.KubectlStdin(ctx, nil, args...)
}

// KubectlStdin is Kubectl with stdin, e.g. for `apply -f -`.
func (c *Cluster) KubectlStdin(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	// Its discovery cache goes under the cluster's dir, not ~/.kube.
	global := []string{"--kubeconfig=" + c.kubeconfig, "--cache-dir=" + filepath.Join(c.root, "kubectl-cache")}
	cmd := exec.CommandContext(ctx, c.KubectlPath(), append(global, args...)...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// LogTails returns the end of every component's log, for failure messages.
func (c *Cluster) LogTails(n int) string { return c.logTails(n) }

func (c *Cluster) logTails(n int) string {
	var b strings.Builder
	for _, p := range c.procs {
		fmt.Fprintf(&b, "\n--- %s log (tail) ---\n%s", p.name, testbed.TailFile(c.logPath(p.name), n))
	}
	if c.ctrd != nil {
		fmt.Fprintf(&b, "\n--- containerd log (tail) ---\n%s", c.ctrd.LogTail(n))
	}
	return b.String()
}

// Stop stops everything Start started and undoes what it and the kubelet
// did to the host; it is safe to call more than once.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() { c.stopErr = c.stop() })
	return c.stopErr
}

func (c *Cluster) stop() error {
	if c.sigCh != nil {
		signal.Stop(c.sigCh)
	}
	if c.http != nil {
		c.http.CloseIdleConnections()
	}
	var errs []error
	// The kubelet first, so that it restarts nothing; then the runtime,
	// which removes the pods (CNI DEL frees their veths and addresses),
	// their shims and cgroups (the kubelet's cgroup root is the test bed's
	// cgroup parent) and its mounts.
	for i := len(c.procs) - 1; i >= 0; i-- {
		if c.procs[i].name == "kubelet" {
			c.procs[i].stop(15 * time.Second)
		}
	}
	if c.ctrd != nil {
		if err := c.ctrd.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop containerd: %w", err))
		}
	}
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].stop(10 * time.Second)
	}
	if err := undoHost(c.root, c.record()); err != nil {
		errs = append(errs, err)
	}
	_ = c.lock.Close() // releases the lock
	return errors.Join(errs...)
}

// watchSignals stops the cluster when the test binary gets SIGTERM or
// SIGINT, then lets the signal take its course: the parent-death signal
// would kill the components anyway, but not undo mounts, sysctls or links.
func (c *Cluster) watchSignals() {
	c.sigCh = make(chan os.Signal, 1)
	signal.Notify(c.sigCh, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		s, ok := <-c.sigCh
		if !ok {
			return
		}
		slog.Warn("kube testbed: stopping the cluster on signal", "signal", s)
		if err := c.Stop(); err != nil {
			slog.Error("kube testbed: stop on signal", "err", err)
		}
		signal.Reset(s)
		_ = syscall.Kill(os.Getpid(), s.(syscall.Signal))
	}()
}

func resolveBinDir(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv(EnvKube)
	}
	if dir == "" {
		return "", fmt.Errorf("no Kubernetes binaries: set %s (make kube builds them)", EnvKube)
	}
	var missing []string
	for _, n := range components {
		if st, err := os.Stat(filepath.Join(dir, n)); err != nil || st.Mode()&0o111 == 0 {
			missing = append(missing, n)
		}
	}
	for _, n := range cniPlugins {
		if st, err := os.Stat(filepath.Join(dir, "cni", n)); err != nil || st.Mode()&0o111 == 0 {
			missing = append(missing, "cni/"+n)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("Kubernetes binaries missing in %s: %s (make kube builds them)", dir, strings.Join(missing, ", "))
	}
	return filepath.Abs(dir)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
