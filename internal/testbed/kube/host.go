package kube

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
	"github.com/rootscan/rootscan/internal/testbed"
	"golang.org/x/sys/unix"
)

// watchedSysctls are the host settings a kubelet (and CNI plugins) may change
// on start: kubelet sets the first six for its "protect kernel defaults"
// policy, the bridge plugin with isGateway would turn on forwarding. The
// harness records them before starting and puts back any that changed.
var watchedSysctls = []string{
	"vm.overcommit_memory",
	"vm.panic_on_oom",
	"kernel.panic",
	"kernel.panic_on_oops",
	"kernel.keys.root_maxkeys",
	"kernel.keys.root_maxbytes",
	"net.ipv4.ip_forward",
	"net.bridge.bridge-nf-call-iptables",
}

func sysctlPath(name string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/"))
}

// Sysctls reads the watched sysctls the host has (a missing one, e.g. with no
// br_netfilter module, is left out).
func Sysctls() map[string]string {
	out := map[string]string{}
	for _, n := range watchedSysctls {
		if b, err := os.ReadFile(sysctlPath(n)); err == nil {
			out[n] = strings.TrimSpace(string(b))
		}
	}
	return out
}

// restoreSysctls writes back every sysctl of before whose value changed.
func restoreSysctls(before map[string]string) error {
	var errs []error
	now := Sysctls()
	for n, v := range before {
		if now[n] == v {
			continue
		}
		if err := os.WriteFile(sysctlPath(n), []byte(v), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restore sysctl %s=%s: %w", n, v, err))
		}
	}
	return errors.Join(errs...)
}

// pickSubnet returns a /24 of 198.18.0.0/16 (benchmarking range) that no
// interface of the host uses, so that clusters of parallel test processes
// (each with its own bridge) do not route into each other.
func pickSubnet(salt byte) (*net.IPNet, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list host addresses: %w", err)
	}
	used := map[byte]bool{}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip4 := n.IP.To4(); ip4 != nil && ip4[0] == 198 && ip4[1] == 18 {
				used[ip4[2]] = true
			}
		}
	}
	for i := range 256 {
		b := salt + byte(i)
		if !used[b] {
			return &net.IPNet{IP: net.IPv4(198, 18, b, 0).To4(), Mask: net.CIDRMask(24, 32)}, nil
		}
	}
	return nil, errors.New("no free /24 in 198.18.0.0/16")
}

// ip runs the iproute2 command; the harness touches only links it named.
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// createBridge makes the pods' bridge with the gateway address, before the
// kubelet starts: the kubelet serves on that address (a node IP may not be
// loopback), and the bridge CNI plugin, told isGateway=false, then neither
// assigns addresses nor turns on IP forwarding on the host.
func createBridge(name string, gw net.IP) error {
	if err := ip("link", "add", name, "type", "bridge"); err != nil {
		return err
	}
	if err := ip("addr", "add", gw.String()+"/24", "dev", name); err != nil {
		return errors.Join(err, deleteLink(name))
	}
	if err := ip("link", "set", name, "up"); err != nil {
		return errors.Join(err, deleteLink(name))
	}
	return nil
}

// deleteBridge deletes the veths still attached to the bridge (pods whose
// CNI DEL never ran) and the bridge itself.
func deleteBridge(name string) error {
	if _, err := os.Stat(filepath.Join("/sys/class/net", name)); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var errs []error
	ports, _ := os.ReadDir(filepath.Join("/sys/class/net", name, "brif"))
	for _, p := range ports {
		if err := deleteLink(p.Name()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(append(errs, deleteLink(name))...)
}

func deleteLink(name string) error {
	if _, err := os.Stat(filepath.Join("/sys/class/net", name)); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return ip("link", "del", name)
}

// hostPaths are the places outside its root dir that the cluster writes to,
// because the kubelet and libcni hard-code them: the kubelet's container log
// symlinks and device plugin socket, and libcni's result cache.
type hostPaths struct {
	containerLogs string // /var/log/containers
	cniCache      string // /var/lib/cni
	kubeletDir    string // /var/lib/kubelet: the device manager's socket, whatever --root-dir says
}

func defaultHostPaths() hostPaths {
	return hostPaths{containerLogs: "/var/log/containers", cniCache: "/var/lib/cni", kubeletDir: "/var/lib/kubelet"}
}

func (p hostPaths) devicePlugins() string { return filepath.Join(p.kubeletDir, "device-plugins") }

func (p hostPaths) kubeletSocket() string { return filepath.Join(p.devicePlugins(), "kubelet.sock") }

// hostState records which of the host paths existed before the cluster ran.
type hostState struct {
	paths   hostPaths
	existed map[string]bool
}

func recordHost(p hostPaths) hostState {
	s := hostState{paths: p, existed: map[string]bool{}}
	for _, d := range []string{p.containerLogs, p.cniCache, filepath.Join(p.cniCache, "results"),
		p.kubeletDir, p.devicePlugins(), p.kubeletSocket()} {
		_, err := os.Lstat(d)
		s.existed[d] = err == nil
	}
	return s
}

// clean removes what the cluster (root dir root, CNI network netName) left
// in the host paths: the kubelet's log symlinks into root, libcni's cached
// results of netName, and the directories that did not exist before and are
// now empty.
func (s hostState) clean(root, netName string) error {
	var errs []error
	if entries, err := os.ReadDir(s.paths.containerLogs); err == nil {
		for _, e := range entries {
			p := filepath.Join(s.paths.containerLogs, e.Name())
			if target, err := os.Readlink(p); err == nil && strings.HasPrefix(target, root+"/") {
				if err := os.Remove(p); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	results := filepath.Join(s.paths.cniCache, "results")
	if entries, err := os.ReadDir(results); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), netName+"-") {
				if err := os.Remove(filepath.Join(results, e.Name())); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if err := s.cleanKubeletDir(); err != nil {
		errs = append(errs, err)
	}
	for _, d := range []string{s.paths.containerLogs, results, s.paths.cniCache} {
		if !s.existed[d] {
			// Remove fails on a non-empty dir: someone else's files stay.
			if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTEMPTY) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// makeCgroup creates cgroup path p in every mounted hierarchy: the kubelet
// refuses a cgroup root that does not exist. testbed.KillCgroup removes them.
func makeCgroup(p string) error {
	infos, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return fmt.Errorf("read mount table: %w", err)
	}
	for _, m := range infos {
		if m.Root != "/" {
			continue
		}
		d := filepath.Join(m.Mountpoint, p)
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create cgroup %s: %w", d, err)
		}
	}
	return nil
}

// cleanKubeletDir removes the device manager's socket and the directories
// that held nothing before the kubelet ran. A /var/lib/kubelet that existed
// keeps everything but the socket the cluster's kubelet made.
func (s hostState) cleanKubeletDir() error {
	p := s.paths
	if !s.existed[p.kubeletDir] {
		if mps, err := testbed.MountsUnder(p.kubeletDir); err != nil || len(mps) > 0 {
			return fmt.Errorf("not removing %s: mounts under it %v (%v)", p.kubeletDir, mps, err)
		}
		if err := os.RemoveAll(p.kubeletDir); err != nil {
			return fmt.Errorf("remove %s: %w", p.kubeletDir, err)
		}
		return nil
	}
	if !s.existed[p.kubeletSocket()] {
		if err := os.Remove(p.kubeletSocket()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if !s.existed[p.devicePlugins()] {
		if err := os.Remove(p.devicePlugins()); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTEMPTY) {
			return err
		}
	}
	return nil
}

// foreignKubelet names a kubelet process running on the host: the cluster's
// kubelet would take over its device plugin socket, so Start refuses.
func foreignKubelet() error {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return fmt.Errorf("list processes: %w", err)
	}
	for _, e := range entries {
		if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm")); err == nil && strings.TrimSpace(string(b)) == "kubelet" {
			return fmt.Errorf("a kubelet runs on this host (pid %s); the harness does not run beside it", e.Name())
		}
	}
	return nil
}

// lockHost takes an exclusive lock on dir (the binaries' dir) for the
// cluster's lifetime: clusters of parallel test processes would share the
// kubelet's fixed host paths, so they run one at a time. It waits for the
// lock until ctx is done.
func lockHost(ctx context.Context, dir string) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("open %s to lock it: %w", dir, err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", dir, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for another cluster to stop (lock on %s): %w", dir, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}
