package cgroupid

import (
	"fmt"
	"path/filepath"

	"github.com/containerd/cgroups/v3"
	"golang.org/x/sys/unix"
)

// Mount returns where the cgroup v2 hierarchy is mounted on this host.
func Mount() (string, error) {
	switch cgroups.Mode() {
	case cgroups.Unified:
		return "/sys/fs/cgroup", nil
	case cgroups.Hybrid:
		return "/sys/fs/cgroup/unified", nil
	}
	return "", ErrNoUnified
}

// MountUnder returns where the cgroup v2 hierarchy is under root, a host's cgroup mount point seen from here (a pod
// that mounts the node's /sys/fs/cgroup elsewhere, where this process's own /sys/fs/cgroup says nothing of the
// node's layout): root itself on a unified host, root/unified on a hybrid one.
func MountUnder(root string) (string, error) {
	for _, dir := range []string{root, filepath.Join(root, "unified")} {
		var fs unix.Statfs_t
		if unix.Statfs(dir, &fs) == nil && fs.Type == unix.CGROUP2_SUPER_MAGIC {
			return dir, nil
		}
	}
	return "", fmt.Errorf("%s: %w", root, ErrNoUnified)
}

// OfDir returns the cgroup id of a cgroup v2 directory.
func OfDir(dir string) (uint64, error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return 0, fmt.Errorf("cgroup id of %s: %w", dir, err)
	}
	if fs.Type != unix.CGROUP2_SUPER_MAGIC {
		return 0, fmt.Errorf("cgroup id of %s: not on cgroup2fs", dir)
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return 0, fmt.Errorf("cgroup id of %s: %w", dir, err)
	}
	return st.Ino, nil
}
