//go:build !linux

package cgroupid

import (
	"errors"
	"fmt"
)

// Cgroup ids are a Linux notion: elsewhere every lookup says so, and the daemon (Linux only) never gets here.

// Mount returns ErrNoUnified: there is no cgroup hierarchy on this system.
func Mount() (string, error) { return "", fmt.Errorf("%w: %w", ErrNoUnified, errors.ErrUnsupported) }

// MountUnder returns ErrNoUnified: there is no cgroup hierarchy on this system.
func MountUnder(root string) (string, error) {
	return "", fmt.Errorf("%s: %w: %w", root, ErrNoUnified, errors.ErrUnsupported)
}

// OfDir fails: cgroup ids exist only on Linux.
func OfDir(dir string) (uint64, error) {
	return 0, fmt.Errorf("cgroup id of %s: %w", dir, errors.ErrUnsupported)
}
