package fsaccess

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/moby/sys/mountinfo"
)

// ErrNeedsLinux is returned where rootscan needs the Linux kernel: mounting a container's snapshot read-only beside
// it. Scanning a directory or an OCI image works on any OS.
var ErrNeedsLinux = errors.New("needs Linux")

// Mounter owns one private directory under which every mount rootscan makes lives. Keeping them all in one place is
// what makes "never leave a mount behind" checkable: at start-up anything found under the directory is a leftover of
// a crashed run and is removed, and Close removes whatever is still held. NewMounter (mount_linux.go) makes one; on
// other systems it fails with ErrNeedsLinux.
type Mounter struct {
	dir string
	log *slog.Logger

	mu   sync.Mutex
	held map[string]struct{}
	seq  uint64
}

// Dir is the private mount directory.
func (m *Mounter) Dir() string { return m.dir }

// removeStale unmounts everything at or below dir (containerd's UnmountRecursive: deepest first) and removes the
// empty mount point dirs. It reports how many mounts it found, for the start-up warning.
func (m *Mounter) removeStale() (int, error) {
	points, err := MountPointsUnder(m.dir)
	if err != nil {
		return 0, err
	}
	var errs []error
	if len(points) > 0 {
		if err := mount.UnmountRecursive(m.dir, unmountFlags); err != nil {
			errs = append(errs, fmt.Errorf("unmount stale mounts under %s: %w", m.dir, err))
		}
		// UnmountRecursive only reports the last unmount's error: check that nothing is left.
		if left, err := MountPointsUnder(m.dir); err != nil || len(left) > 0 {
			errs = append(errs, fmt.Errorf("stale mounts left under %s: %q %w", m.dir, left, err))
		}
	}
	entries, _ := os.ReadDir(m.dir)
	for _, e := range entries {
		// Only empty dirs: a non-empty one would be a mount we failed to remove, never to be deleted through.
		_ = os.Remove(filepath.Join(m.dir, e.Name()))
	}
	return len(points), errors.Join(errs...)
}

// Mount mounts a snapshot's mounts read-only (see readOnlyMounts) under the private directory and opens the result
// as a confined Root. Closing the Root unmounts it; so does Mounter.Close for any Root still open.
func (m *Mounter) Mount(ctx context.Context, name string, mounts []mount.Mount, view View, opts Options) (*Root, error) {
	ro, err := readOnlyMounts(mounts, view)
	if err != nil {
		return nil, fmt.Errorf("mount %s (%s view): %w", name, view, err)
	}
	return m.mountRoot(ctx, fmt.Sprintf("%s (%s view)", name, view), name, ro, opts)
}

// mountRoot mounts ro (already made read-only) at a new mount point and opens it. As containerd's WithTempMount
// does, the undo is armed before the first mount: if mount.All fails part-way through a set, or the open fails,
// whatever was mounted is unmounted and the mount point stays tracked (so Close retries) until that succeeded.
func (m *Mounter) mountRoot(ctx context.Context, what, name string, ro []mount.Mount, opts Options) (_ *Root, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	target, err := m.newTarget(name)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, m.unmount(target))
		}
	}()
	if err := mount.All(ro, target); err != nil {
		return nil, fmt.Errorf("mount %s at %s: %w", what, target, err)
	}
	prev := opts.OnClose
	opts.OnClose = func() error {
		err := m.unmount(target)
		if prev != nil {
			err = errors.Join(err, prev())
		}
		return err
	}
	root, err := OpenDir(target, opts)
	if err != nil {
		return nil, fmt.Errorf("open mounted %s: %w", what, err)
	}
	return root, nil
}

// newTarget creates a fresh mount point and tracks it before anything is mounted on it.
func (m *Mounter) newTarget(name string) (string, error) {
	m.mu.Lock()
	m.seq++
	seq := m.seq
	m.mu.Unlock()
	target := filepath.Join(m.dir, fmt.Sprintf("%s-%d-%d", sanitize(name), os.Getpid(), seq))
	if err := os.Mkdir(target, 0o700); err != nil {
		return "", fmt.Errorf("create mount point %s: %w", target, err)
	}
	m.mu.Lock()
	m.held[target] = struct{}{}
	m.mu.Unlock()
	return target, nil
}

// unmount detaches everything at or below target, removes the mount point and only then stops tracking it: a mount
// that could not be undone stays held, and Close tries again. containerd's UnmountAll undoes a stack of mounts on
// target, and a lazy unmount (MNT_DETACH: a reader still holding a file keeps its inode, the mount point is gone at
// once) takes mounts below target with it, so there is no need for UnmountRecursive's reading of the mount table,
// about 10 ms per unmount on a node with 3000 mounts.
func (m *Mounter) unmount(target string) error {
	m.mu.Lock()
	_, ok := m.held[target]
	m.mu.Unlock()
	if !ok {
		return nil
	}
	if err := mount.UnmountAll(target, unmountFlags); err != nil {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove mount point %s: %w", target, err)
	}
	m.mu.Lock()
	delete(m.held, target)
	m.mu.Unlock()
	return nil
}

// Held is how many mounts are currently open; exported for the scanner's "mounts held" metric and for tests.
func (m *Mounter) Held() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.held)
}

// Close unmounts everything still held and then the private directory itself. It is safe to call after a cancelled
// scan or on SIGTERM; Roots still open afterwards read nothing (their mounts are detached).
func (m *Mounter) Close() error {
	m.mu.Lock()
	targets := make([]string, 0, len(m.held))
	for t := range m.held {
		targets = append(targets, t)
	}
	m.mu.Unlock()
	var errs []error
	for _, t := range targets {
		errs = append(errs, m.unmount(t))
	}
	if _, err := m.removeStale(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func sanitize(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 64 {
			break
		}
	}
	if b.Len() == 0 {
		return "root"
	}
	return b.String()
}

// MountPointsUnder lists the mount points at or below dir (moby's mountinfo reads the kernel's table), deepest
// first: the order to unmount them in. dir must be absolute with its symlinks resolved, as Mounter.Dir is. Tests
// use it to prove nothing was left behind.
func MountPointsUnder(dir string) ([]string, error) {
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(filepath.Clean(dir)))
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	out := make([]string, 0, len(infos))
	for _, i := range infos {
		out = append(out, i.Mountpoint)
	}
	slices.SortStableFunc(out, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return out, nil
}
