package testbed

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"time"
)

// CNIBinDir and CNIConfDir are the CNI plugin and config dirs this instance's
// CRI reads (CRI watches the config dir), for a caller that gives its pods a
// network, as the kube harness does.
func (c *Containerd) CNIBinDir() string { return c.l.CNIBin }

// CNIConfDir is the CNI config dir this instance's CRI watches.
func (c *Containerd) CNIConfDir() string { return c.l.CNIConf }

// UnmountAll detaches every mount at or below dir, deepest first, repeating
// while unmounting uncovers more, and reports the mounts that stay. Harnesses
// that run a kubelet on a testbed use it for the kubelet's root dir.
func UnmountAll(dir string) error { return unmountAll(filepath.Clean(dir)) }

// MountsUnder lists the mount points at or below dir, deepest first.
func MountsUnder(dir string) ([]string, error) { return mountsUnder(filepath.Clean(dir)) }

// TailFile returns up to n bytes of the end of a log file, from a line start,
// for failure messages; "" if it cannot be read.
func TailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-int64(n), 0)
	b := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	if off > 0 {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}

// KillCgroup SIGKILLs every process in cgroup path p, in every hierarchy, and
// removes its cgroup directories, children first: for a harness whose
// kubelet puts pods under the test bed's cgroup parent.
func KillCgroup(p string) error {
	dirs, err := cgroupDirs(p)
	if err != nil {
		return err
	}
	var errs []error
	if err := killAndWait(cgroupProcs(dirs), 10*time.Second); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(append(errs, removeCgroupTrees(dirs))...)
}

// KillProcessesUsing SIGKILLs the processes that have one of args as an
// argument (or -flag=value), e.g. the shims of a test bed whose containerd
// died with its test, found by its socket path.
func KillProcessesUsing(args ...string) error {
	pids, err := processesUsing(args...)
	if err != nil {
		return err
	}
	return killAndWait(pids, 10*time.Second)
}
