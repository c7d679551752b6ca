package fsaccess

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/containerd/containerd/v2/core/mount"
	"golang.org/x/sys/unix"
)

// Mounter owns one private directory under which every mount rootscan makes lives. Keeping them all in one place is
// what makes "never leave a mount behind" checkable: at start-up anything found under the directory is a leftover of
// a crashed run and is removed, and Close removes whatever is still held.
type Mounter struct {
	dir string
	log *slog.Logger

	mu   sync.Mutex
	held map[string]struct{}
	seq  uint64
}

// NewMounter prepares dir (creating it 0700), unmounts anything a previous run left under it, and makes dir a private
// mount point so that nothing mounted below it propagates to the host's other mount namespaces (on systemd hosts "/"
// is shared, and a DaemonSet's hostPath must never carry our mounts elsewhere).
func NewMounter(ctx context.Context, dir string, log *slog.Logger) (*Mounter, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("mount dir %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("create mount dir %s: %w", abs, err)
	}
	// Resolve symlinks: mountinfo reports real paths, and we compare against them.
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, fmt.Errorf("mount dir %s: %w", dir, err)
	}
	m := &Mounter{dir: abs, log: log, held: map[string]struct{}{}}
	n, err := m.removeStale()
	if err != nil {
		return nil, err
	}
	if n > 0 {
		log.Warn("removed stale mounts from an earlier run", "dir", abs, "count", n)
	}
	// Bind the directory onto itself and make it private, so our mounts stay in this mount namespace.
	if err := unix.Mount(abs, abs, "", unix.MS_BIND, ""); err != nil {
		return nil, fmt.Errorf("bind mount dir %s: %w", abs, err)
	}
	if err := unix.Mount("", abs, "", unix.MS_PRIVATE, ""); err != nil {
		_ = unix.Unmount(abs, unix.MNT_DETACH)
		return nil, fmt.Errorf("make mount dir %s private: %w", abs, err)
	}
	return m, nil
}

// Dir is the private mount directory.
func (m *Mounter) Dir() string { return m.dir }

// removeStale unmounts everything at or below dir, deepest first, and removes the empty mount point dirs.
func (m *Mounter) removeStale() (int, error) {
	points, err := MountPointsUnder(m.dir)
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount stale %s: %w", p, err))
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
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	target, err := m.newTarget(name)
	if err != nil {
		return nil, err
	}
	if err := mount.All(ro, target); err != nil {
		_ = os.Remove(target)
		m.release(target)
		return nil, fmt.Errorf("mount %s (%s view) at %s: %w", name, view, target, err)
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
		return nil, errors.Join(fmt.Errorf("open mounted %s: %w", name, err), m.unmount(target))
	}
	return root, nil
}

func (m *Mounter) newTarget(name string) (string, error) {
	m.mu.Lock()
	m.seq++
	seq := m.seq
	m.mu.Unlock()
	base := sanitize(name)
	target := filepath.Join(m.dir, fmt.Sprintf("%s-%d-%d", base, os.Getpid(), seq))
	if err := os.Mkdir(target, 0o700); err != nil {
		return "", fmt.Errorf("create mount point %s: %w", target, err)
	}
	m.mu.Lock()
	m.held[target] = struct{}{}
	m.mu.Unlock()
	return target, nil
}

func (m *Mounter) release(target string) {
	m.mu.Lock()
	delete(m.held, target)
	m.mu.Unlock()
}

// unmount detaches target (MNT_DETACH: a reader still holding a file keeps its inode, the mount point is gone at once)
// and removes the mount point.
func (m *Mounter) unmount(target string) error {
	m.mu.Lock()
	_, ok := m.held[target]
	m.mu.Unlock()
	if !ok {
		return nil
	}
	if err := mount.UnmountAll(target, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	m.release(target)
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove mount point %s: %w", target, err)
	}
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

// MountPointsUnder lists mount points at or below dir from /proc/self/mountinfo, deepest first (the order to unmount
// them in). Tests use it to prove nothing was left behind.
func MountPointsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	defer f.Close()
	return mountPointsUnder(f, dir)
}

func mountPointsUnder(r io.Reader, dir string) ([]string, error) {
	dir = filepath.Clean(dir)
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeMountinfo(fields[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool { return strings.Count(out[i], "/") > strings.Count(out[j], "/") })
	return out, nil
}

// unescapeMountinfo undoes the octal escapes (\040 for space, ...) the kernel uses in mountinfo paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
