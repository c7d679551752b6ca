package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// DriftFunc computes what a container changed on top of its image, from its upper dir and its image view. The
// daemon and the one-shot Scanner take the same DriftFunc; each opens the two views its own way (the daemon shares
// the image view with its image analysis).
type DriftFunc func(ctx context.Context, upper, image scan.FS) ([]report.DriftEntry, []report.FileError, error)

// ScanDrift is the DriftFunc of scan.Drift with opts.
func ScanDrift(opts scan.DriftOptions) DriftFunc {
	return func(ctx context.Context, upper, image scan.FS) ([]report.DriftEntry, []report.FileError, error) {
		return scan.Drift(ctx, upper, image, opts)
	}
}

// containerDrift opens c's upper dir in place and mounts its image's layers, read-only (fsaccess.ViewUpper and
// ViewImage: the live overlay is never mounted again, so the running container's copy-ups keep working), compares
// them with s.Drift and releases both whatever happens. It works for created, running and exited containers alike:
// the snapshot outlives the task. Snapshotters whose layers cannot be told apart (native, devmapper) give
// fsaccess.ErrUnsupportedMount: drift needs overlayfs.
func (s *Scanner) containerDrift(ctx context.Context, c cri.Container) (_ []report.DriftEntry, _ []report.FileError, retErr error) {
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
	entries, ferrs, err := s.Drift(ctx, upper, image)
	if err != nil {
		return nil, ferrs, fmt.Errorf("drift of %s: %w", c.ID, err)
	}
	return entries, ferrs, nil
}
