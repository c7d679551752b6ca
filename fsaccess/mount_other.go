//go:build !linux

package fsaccess

import (
	"context"
	"fmt"
	"log/slog"
)

// unmountFlags has no meaning here: nothing is ever mounted.
const unmountFlags = 0

// NewMounter fails with ErrNeedsLinux: a container's snapshot is mounted read-only as a lower-only overlay, which only
// the Linux kernel offers.
func NewMounter(_ context.Context, dir string, _ *slog.Logger) (*Mounter, error) {
	return nil, fmt.Errorf("mount container snapshots under %s: %w (scan --dir and --oci work on any OS)", dir, ErrNeedsLinux)
}
