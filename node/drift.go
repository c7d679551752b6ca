package node

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// DriftFunc computes what a container changed on top of its image, from its upper dir and its image view. The
// daemon and the one-shot Scanner take the same DriftFunc; each opens the two views its own way (the daemon shares
// the image view with its image analysis). mounts are the container's volumes from the CRI: their mount points are
// the runtime's doing, not drift.
type DriftFunc func(ctx context.Context, upper, image scan.FS, mounts []report.Mount) ([]report.DriftEntry, []report.FileError, error)

// ScanDrift is the DriftFunc of scan.Drift with opts, whose mount points get each container's volume mount points
// added: runc creates them (and their missing parents) in the upper dir to mount onto, as it does /etc/hosts.
func ScanDrift(opts scan.DriftOptions) DriftFunc {
	base := opts.MountPoints
	if base == nil {
		base = scan.DefaultDriftMountPoints
	}
	return func(ctx context.Context, upper, image scan.FS, mounts []report.Mount) ([]report.DriftEntry, []report.FileError, error) {
		o := opts
		o.MountPoints = driftMountPoints(base, mounts)
		return scan.Drift(ctx, upper, image, o)
	}
}

// driftMountPoints is base plus the container paths of mounts, relative to the root as drift names entries (a ".."
// stops at the root, as it does for the runtime). A mount on the root itself names no entry and is left out.
func driftMountPoints(base []string, mounts []report.Mount) []string {
	out := slices.Clip(base)
	for _, m := range mounts {
		p := strings.TrimPrefix(path.Clean("/"+m.ContainerPath), "/")
		if p == "" || slices.Contains(out, p) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// containerDrift opens c's upper dir in place and mounts its image's layers, read-only (fsaccess.ViewUpper and
// ViewImage: the live overlay is never mounted again, so the running container's copy-ups keep working), compares
// them with s.Drift and releases both whatever happens. It works for created, running and exited containers alike:
// the snapshot outlives the task. Snapshotters whose layers cannot be told apart (native, devmapper) give
// fsaccess.ErrUnsupportedMount: drift needs overlayfs.
func (s *Scanner) containerDrift(ctx context.Context, c cri.Container, mounts []report.Mount) (_ []report.DriftEntry, _ []report.FileError, retErr error) {
	upper, err := s.Views.OpenView(ctx, c, fsaccess.ViewUpper)
	if err != nil {
		return nil, nil, fmt.Errorf("drift of %s: %w", c.ID, err)
	}
	defer func() {
		if err := upper.Close(); err != nil {
			retErr = errors.Join(retErr, fmt.Errorf("drift of %s: release upper dir: %w", c.ID, err))
		}
	}()
	image, err := s.Views.OpenView(ctx, c, fsaccess.ViewImage)
	if err != nil {
		return nil, nil, fmt.Errorf("drift of %s: %w", c.ID, err)
	}
	defer func() {
		if err := image.Close(); err != nil {
			retErr = errors.Join(retErr, fmt.Errorf("drift of %s: release image view: %w", c.ID, err))
		}
	}()
	entries, ferrs, err := s.Drift(ctx, upper, image, mounts)
	if err != nil {
		return nil, ferrs, fmt.Errorf("drift of %s: %w", c.ID, err)
	}
	return entries, ferrs, nil
}
