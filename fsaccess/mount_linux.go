package fsaccess

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// unmountFlags detaches: a reader still holding a file keeps its inode, the mount point is gone at once.
const unmountFlags = unix.MNT_DETACH

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
