package kube

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"github.com/rootscan/rootscan/internal/testbed"
	"golang.org/x/sys/unix"
)

// recordFile, in the cluster's dir, holds what Stop needs to undo on the
// host, so that the next Start can undo it when a test binary died without
// Stop (SIGKILL, or the panic of `go test -timeout`).
const recordFile = "cluster.json"

type record struct {
	Bridge      string
	NetName     string
	CgroupRoot  string
	Sysctls     map[string]string
	HostExisted map[string]bool
}

func (c *Cluster) record() record {
	return record{Bridge: c.bridge, NetName: c.netName, CgroupRoot: c.p.cgroupRoot, Sysctls: c.sysctls, HostExisted: c.host.existed}
}

func writeRecord(root string, r record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode cluster record: %w", err)
	}
	if err := os.WriteFile(filepath.Join(root, recordFile), b, 0o600); err != nil {
		return fmt.Errorf("write cluster record: %w", err)
	}
	return nil
}

// undoHost undoes on the host what a cluster rooted at root did, once its
// components are gone: the processes left in its cgroups (pods), mounts
// under root, the bridge, sysctls, files in the kubelet's and libcni's host
// paths, and root itself.
func undoHost(root string, r record) error {
	var errs []error
	if r.CgroupRoot != "" {
		if err := testbed.KillCgroup(r.CgroupRoot); err != nil {
			errs = append(errs, fmt.Errorf("remove cgroups: %w", err))
		}
	}
	if err := testbed.UnmountAll(root); err != nil {
		errs = append(errs, fmt.Errorf("unmount the cluster's mounts: %w", err))
	}
	if err := deleteBridge(r.Bridge); err != nil {
		errs = append(errs, fmt.Errorf("delete pod bridge: %w", err))
	}
	if err := restoreSysctls(r.Sysctls); err != nil {
		errs = append(errs, err)
	}
	host := hostState{paths: defaultHostPaths(), existed: r.HostExisted}
	if err := host.clean(root, r.NetName); err != nil {
		errs = append(errs, fmt.Errorf("clean host paths: %w", err))
	}
	if mps, _ := testbed.MountsUnder(root); len(mps) == 0 {
		// Only with nothing mounted: RemoveAll would reach into a mount.
		if err := os.RemoveAll(root); err != nil {
			errs = append(errs, fmt.Errorf("remove cluster dir: %w", err))
		}
	}
	return errors.Join(errs...)
}

// sweepStale undoes the host changes of clusters whose test binary died:
// dirs rskube-* of the temp dir that hold a record and whose components no
// longer run. The components themselves died with the test binary (parent
// death signal); the shims, which containerd daemonizes, did not.
// Called with the host lock held, so no other cluster is starting.
func sweepStale() error {
	roots, _ := filepath.Glob(filepath.Join(os.TempDir(), "rskube-*"))
	var errs []error
	for _, root := range roots {
		b, err := os.ReadFile(filepath.Join(root, recordFile))
		if err != nil || componentsRunning(root) {
			continue
		}
		var r record
		if err := json.Unmarshal(b, &r); err != nil {
			continue
		}
		slog.Warn("kube testbed: cleaning up after a cluster whose test died", "dir", root)
		if err := testbed.KillProcessesUsing(filepath.Join(root, "c", "containerd.sock")); err != nil {
			errs = append(errs, err)
		}
		if err := releaseNetns(defaultHostPaths().cniCache, r.NetName); err != nil {
			errs = append(errs, err)
		}
		if err := undoHost(root, r); err != nil {
			errs = append(errs, fmt.Errorf("clean up stale cluster %s: %w", root, err))
		}
	}
	return errors.Join(errs...)
}

// componentsRunning reports whether a cluster component or containerd with
// root in its command line runs.
func componentsRunning(root string) bool {
	names := map[string]bool{"containerd": true}
	for _, n := range components {
		names[n] = true
	}
	for _, pid := range processesMentioning(root) {
		comm, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
		if err == nil && names[string(bytes.TrimSpace(comm))] {
			return true
		}
	}
	return false
}

// processesMentioning lists the processes (but this one) whose command line
// contains s.
func processesMentioning(s string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(s)) {
			out = append(out, pid)
		}
	}
	return out
}

// releaseNetns removes the network namespaces of the pods of network
// netName that no CNI DEL released (their runtime died), as libcni's
// result cache names them, and the runtime's loopback results of the same
// sandboxes. Without it the namespaces stay mounted under /run/netns.
func releaseNetns(cniCache, netName string) error {
	results := filepath.Join(cniCache, "results")
	files, _ := filepath.Glob(filepath.Join(results, netName+"-*"))
	var errs []error
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var cached struct {
			ContainerID string `json:"containerId"`
			Result      struct {
				Interfaces []struct {
					Sandbox string `json:"sandbox"`
				} `json:"interfaces"`
			} `json:"result"`
		}
		if json.Unmarshal(b, &cached) != nil {
			continue
		}
		for _, i := range cached.Result.Interfaces {
			if dir := filepath.Dir(i.Sandbox); dir != "/var/run/netns" && dir != "/run/netns" {
				continue
			}
			if err := unix.Unmount(i.Sandbox, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("unmount netns %s: %w", i.Sandbox, err))
				continue
			}
			if err := os.Remove(i.Sandbox); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		if cached.ContainerID != "" {
			lo := filepath.Join(results, "cni-loopback-"+cached.ContainerID+"-lo")
			if err := os.Remove(lo); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
