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

// DriftSource computes what a container changed on top of its image. ContainerRoots is the real one; the Scanner
// asks it only when drift was requested, since it costs one more mount per container.
type DriftSource interface {
	ContainerDrift(ctx context.Context, c cri.Container, opts scan.DriftOptions) ([]report.DriftEntry, []report.FileError, error)
}

// ContainerDrift opens c's upper dir in place and mounts its image's layers, read-only (fsaccess.ViewUpper and
// ViewImage: the live overlay is never mounted again, so the running container's copy-ups keep working), compares
// them with scan.Drift and releases both whatever happens. It works for created, running and exited containers alike:
// the snapshot outlives the task. Snapshotters whose layers cannot be told apart (native, devmapper) give
// fsaccess.ErrUnsupportedMount: drift needs overlayfs.
func (r *ContainerRoots) ContainerDrift(ctx context.Context, c cri.Container, opts scan.DriftOptions) (_ []report.DriftEntry, _ []report.FileError, retErr error) {
	mounts, err := r.Snapshots.Mounts(ctx, c.Snapshotter, c.SnapshotKey)
	if err != nil {
		return nil, nil, fmt.Errorf("drift of %s: %w", c.ID, err)
	}
	upper, err := r.openUpper(ctx, c, mounts)
	if err != nil {
		return nil, nil, fmt.Errorf("drift of %s: %w", c.ID, err)
	}
	defer func() {
		if err := upper.Close(); err != nil {
			retErr = errors.Join(retErr, fmt.Errorf("drift of %s: release upper dir: %w", c.ID, err))
		}
	}()
	image, err := r.Mounter.Mount(ctx, c.ID+"-image", mounts, fsaccess.ViewImage, r.Options)
	if err != nil {
		return nil, nil, fmt.Errorf("drift of %s: %w", c.ID, err)
	}
	defer func() {
		if err := image.Close(); err != nil {
			retErr = errors.Join(retErr, fmt.Errorf("drift of %s: release image view: %w", c.ID, err))
		}
	}()
	entries, ferrs, err := scan.Drift(ctx, upper, image, opts)
	if err != nil {
		return nil, ferrs, fmt.Errorf("drift of %s: %w", c.ID, err)
	}
	return entries, ferrs, nil
}
