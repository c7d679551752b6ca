package testbed

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// mountsUnder lists the mount points at or below dir, deepest first, which is
// the order they can be unmounted in.
func mountsUnder(dir string) ([]string, error) {
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	return deepestFirst(infos), nil
}

// deepestFirst orders mount points so that a mount comes before any mount it
// is stacked on or nested in. Mount order (ID) breaks ties, newest first, for
// mounts stacked on one path.
func deepestFirst(infos []*mountinfo.Info) []string {
	sort.SliceStable(infos, func(i, j int) bool {
		di, dj := strings.Count(infos[i].Mountpoint, "/"), strings.Count(infos[j].Mountpoint, "/")
		if di != dj {
			return di > dj
		}
		return infos[i].ID > infos[j].ID
	})
	out := make([]string, 0, len(infos))
	for _, m := range infos {
		out = append(out, m.Mountpoint)
	}
	return out
}

// unmountAll detaches every mount under dir, repeating while unmounting
// uncovers more (stacked mounts), and reports the ones that stay.
func unmountAll(dir string) error {
	var errs []error
	for range 10 {
		mps, err := mountsUnder(dir)
		if err != nil {
			return err
		}
		if len(mps) == 0 {
			return nil
		}
		errs = errs[:0]
		for _, mp := range mps {
			if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
			}
		}
	}
	mps, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	if len(mps) > 0 {
		errs = append(errs, fmt.Errorf("mounts left under %s: %s", dir, strings.Join(mps, ", ")))
	}
	return errors.Join(errs...)
}

// processesUsing returns the pids whose command line has an argument equal to
// one of args: containerd and its shims are started with the instance's config
// or socket path, so this finds this instance's processes and no other's.
func processesUsing(args ...string) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue // exited meanwhile, or a kernel thread
		}
		if cmdlineHasArg(cmdline, args) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// cmdlineHasArg reports whether a NUL-separated /proc/<pid>/cmdline holds one
// of args as a whole argument, or as the value of a `-flag=value` argument.
func cmdlineHasArg(cmdline []byte, args []string) bool {
	for _, a := range bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0}) {
		s := string(a)
		if i := strings.IndexByte(s, '='); i >= 0 && strings.HasPrefix(s, "-") {
			s = s[i+1:]
		}
		for _, want := range args {
			if s == want {
				return true
			}
		}
	}
	return false
}

// alive reports whether pid still runs; a zombie counts as gone, since a
// shim re-parented to an init that does not reap would otherwise never go.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the ")" that closes the command name.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] != 'Z' && b[i+2] != 'X'
}

// killAndWait SIGKILLs pids and waits up to timeout for them to be gone.
func killAndWait(pids []int, timeout time.Duration) error {
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(timeout)
	for {
		var left []string
		for _, pid := range pids {
			if alive(pid) {
				left = append(left, strconv.Itoa(pid))
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes still running after SIGKILL: %s", strings.Join(left, " "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cgroupDirs returns, for every mounted cgroup hierarchy (v1 controllers and
// the v2 unified one), the directory of cgroup path p that exists.
func cgroupDirs(p string) ([]string, error) {
	infos, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	seen := map[string]bool{}
	var dirs []string
	for _, m := range infos {
		rel := p
		if m.Root != "/" {
			r, ok := strings.CutPrefix(p, m.Root+"/")
			if !ok {
				continue
			}
			rel = r
		}
		d := filepath.Join(m.Mountpoint, rel)
		if seen[d] {
			continue
		}
		seen[d] = true
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			dirs = append(dirs, d)
		}
	}
	return dirs, nil
}

// cgroupProcs lists the processes in the cgroup trees rooted at dirs.
func cgroupProcs(dirs []string) []int {
	seen := map[int]bool{}
	var pids []int
	for _, root := range dirs {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			if err != nil {
				return nil
			}
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && !seen[pid] {
					seen[pid] = true
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	return pids
}

// removeCgroupTrees removes the cgroup directories rooted at dirs, children
// first (a cgroup can only be removed once it has no children and no tasks).
func removeCgroupTrees(dirs []string) error {
	var errs []error
	for _, root := range dirs {
		var all []string
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				all = append(all, p)
			}
			return nil
		})
		for i := len(all) - 1; i >= 0; i-- {
			var err error
			// A cgroup whose last task just died can be busy for a moment.
			for range 50 {
				if err = unix.Rmdir(all[i]); err == nil || errors.Is(err, unix.ENOENT) || !errors.Is(err, unix.EBUSY) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", all[i], err))
			}
		}
	}
	return errors.Join(errs...)
}

// legacyShimSocketDir is where a containerd without the shim manager's
// socket_dir setting (1.6, 1.7 and 2.2 lack it; 2.4 has it) puts shim
// sockets, with no way to move them: /run/containerd/s/<sha256(address/ns/id)>.
const legacyShimSocketDir = "/run/containerd/s"

// shimSocketPath is the socket path containerd's shim derives from the
// containerd address, namespace and shim grouping ID (the sandbox ID for CRI
// pods), as in containerd's pkg/shim SocketAddress.
func shimSocketPath(socketDir, address, namespace, id string) string {
	sum := sha256.Sum256([]byte(filepath.Join(address, namespace, id)))
	return filepath.Join(socketDir, fmt.Sprintf("%x", sum))
}

// removeStaleShimSockets removes the sockets that shims of this instance left
// in the machine-wide legacy socket dir when they were killed instead of
// stopped. Only sockets whose names derive from this instance's address are
// touched; the directory itself stays, another containerd may use it.
func removeStaleShimSockets(address, namespace string, ids []string) error {
	var errs []error
	for _, id := range ids {
		p := shimSocketPath(legacyShimSocketDir, address, namespace, id)
		st, err := os.Lstat(p)
		if err != nil || st.Mode().Type() != fs.ModeSocket {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove shim socket %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
