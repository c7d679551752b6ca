package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/fsaccess"
)

// ContainerRoots reaches a container's root filesystem from outside it: the snapshotter's mounts, re-mounted as a
// read-only lower-only overlay, or for snapshotters whose mounts cannot be re-mounted safely, the running
// container's /proc/<pid>/root (confined reads work the same way there).
type ContainerRoots struct {
	Snapshots *fsaccess.Snapshots
	Mounter   *fsaccess.Mounter
	// ProcRoot is where the host's /proc is visible ("/proc", or "/host/proc" in a pod); empty disables the fallback.
	ProcRoot string
	Options  fsaccess.Options
}

// OpenContainer implements RootOpener.
func (r *ContainerRoots) OpenContainer(ctx context.Context, c cri.Container) (Root, string, error) {
	mounts, err := r.Snapshots.Mounts(ctx, c.Snapshotter, c.SnapshotKey)
	if err != nil {
		return nil, "", err
	}
	root, err := r.Mounter.Mount(ctx, c.ID, mounts, fsaccess.ViewContainer, r.Options)
	if err == nil {
		access := "overlay-lowerdir"
		if len(mounts) == 1 && mounts[0].Type != "overlay" {
			access = "bind"
		}
		return root, access, nil
	}
	return r.procRootFallback(c, err)
}

// procRootFallback reads a running container through its init's /proc/<pid>/root when its snapshot mounts cannot
// be re-mounted (err is ErrUnsupportedMount) and the fallback is on (ProcRoot set); otherwise the error says
// why the container could not be read.
func (r *ContainerRoots) procRootFallback(c cri.Container, err error) (Root, string, error) {
	if !errors.Is(err, fsaccess.ErrUnsupportedMount) {
		return nil, "", err
	}
	if r.ProcRoot == "" {
		return nil, "", fmt.Errorf("%w; the /proc/<pid>/root fallback is off (--proc-root-fallback turns it on)", err)
	}
	if c.Pid <= 0 || c.State != cri.StateRunning {
		return nil, "", fmt.Errorf("%w; no /proc/<pid>/root fallback: the container is not running", err)
	}
	// A running container's root through its init process: a moving target (the pid may exit), but readable.
	// NoXDev: that view is the container's live mount namespace, with /proc, /sys and volumes (a hostPath can be the
	// host's own /) mounted inside; none of it is the container's filesystem.
	opts := r.Options
	opts.NoXDev = true
	proot, perr := openProcRoot(r.ProcRoot, c, opts)
	if perr != nil {
		return nil, "", fmt.Errorf("%w; fallback to /proc/%d/root: %v", err, c.Pid, perr)
	}
	return proot, "proc-root", nil
}

// Views reaches the parts of a container the daemon checks separately: its image (lower layers only, shared by
// every container of the image) and its own upper dir. The chain ID names the image part for caching.
type Views interface {
	ChainID(ctx context.Context, c cri.Container) (string, error)
	OpenView(ctx context.Context, c cri.Container, view fsaccess.View) (Root, error)
}

// ChainID implements Views: the parent of the container's snapshot is its image's top layer.
func (r *ContainerRoots) ChainID(ctx context.Context, c cri.Container) (string, error) {
	p, err := r.Snapshots.Parent(ctx, c.Snapshotter, c.SnapshotKey)
	if err != nil {
		return "", err
	}
	if p == "" {
		return "", fmt.Errorf("snapshot %s/%s has no parent: %w", c.Snapshotter, c.SnapshotKey, fsaccess.ErrUnsupportedMount)
	}
	return c.Snapshotter + "/" + p, nil
}

// OpenView implements Views. There is no /proc fallback here: the image and upper views exist only for snapshots
// the scanner can split itself; the caller falls back to scanning the whole container.
func (r *ContainerRoots) OpenView(ctx context.Context, c cri.Container, view fsaccess.View) (Root, error) {
	mounts, err := r.Snapshots.Mounts(ctx, c.Snapshotter, c.SnapshotKey)
	if err != nil {
		return nil, err
	}
	if view == fsaccess.ViewUpper {
		return r.openUpper(ctx, c, mounts)
	}
	return r.Mounter.Mount(ctx, c.ID+"-"+view.String(), mounts, view, r.Options)
}

// openUpper opens a container's upper dir where the snapshotter keeps it, without mounting it. The upper view is a
// single directory: a read-only bind of it shows the same inodes the directory itself does, so the mount bought
// nothing but a syscall, a mountinfo entry and a teardown on every check, including the checks that find a container
// unchanged (the daemon's most frequent kind). Reads stay confined the same way (openat2 RESOLVE_IN_ROOT on the
// directory), only regular files are ever opened and nothing is written; NoXDev keeps the walk on the directory's
// own filesystem, as the bind (not rbind) did.
func (r *ContainerRoots) openUpper(ctx context.Context, c cri.Container, mounts []mount.Mount) (Root, error) {
	dir, err := upperDir(mounts)
	if err != nil {
		return nil, fmt.Errorf("upper dir of %s: %w", c.ID, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	opts := r.Options
	opts.NoXDev = true
	root, err := fsaccess.OpenDir(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("upper dir of %s: %w", c.ID, err)
	}
	return root, nil
}

// upperDir is the upperdir of a snapshot's single overlay mount. Other shapes have no separate upper dir and give
// fsaccess.ErrUnsupportedMount, as the mounted upper view does (fsaccess readOnlyMounts).
func upperDir(mounts []mount.Mount) (string, error) {
	if len(mounts) != 1 {
		return "", fmt.Errorf("%w: %d mounts (want exactly 1)", fsaccess.ErrUnsupportedMount, len(mounts))
	}
	m := mounts[0]
	if m.Type != "overlay" {
		return "", fmt.Errorf("%w: upper view of a %s mount: layers are not separable", fsaccess.ErrUnsupportedMount, m.Type)
	}
	var dir string
	for _, o := range m.Options {
		if v, ok := strings.CutPrefix(o, "upperdir="); ok {
			dir = v
		}
	}
	if dir == "" || !filepath.IsAbs(dir) {
		return "", fmt.Errorf("%w: snapshot has no usable upper dir (%q)", fsaccess.ErrUnsupportedMount, dir)
	}
	return dir, nil
}
