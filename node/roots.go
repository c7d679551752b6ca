package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

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

	snaps  snapshotMemo
	uppers upperRoots
}

// upperRoots keeps each container's upper dir open from one check to the next, until Forget or Close: opening it
// (the snapshot's path walked, an openat2 probe, a /proc descriptor) was a quarter of reading an unchanged
// ten-entry upper dir (64 against 47 microseconds). Bounded like snapshotMemo: past maxSnapshotMemo open dirs, further ones are opened per check.
type upperRoots struct {
	mu sync.Mutex
	m  map[string]*fsaccess.Root // by container ID
}

// keptRoot is an upper dir ContainerRoots keeps open: the check's Close leaves it open.
type keptRoot struct{ *fsaccess.Root }

func (keptRoot) Close() error { return nil }

// Forget closes the container's upper dir, kept open since its first check; the daemon calls it when the container
// is gone.
func (r *ContainerRoots) Forget(containerID string) {
	r.uppers.mu.Lock()
	root := r.uppers.m[containerID]
	delete(r.uppers.m, containerID)
	r.uppers.mu.Unlock()
	if root != nil {
		root.Close()
	}
}

// Close closes every upper dir kept open.
func (r *ContainerRoots) Close() error {
	r.uppers.mu.Lock()
	m := r.uppers.m
	r.uppers.m = nil
	r.uppers.mu.Unlock()
	var errs []error
	for _, root := range m {
		errs = append(errs, root.Close())
	}
	return errors.Join(errs...)
}

// snapshotMemo keeps what the snapshotter said of a container's active snapshot: its parent and its mounts never
// change while the snapshot exists, and the key is the container's own ID, never reused. Asking again on every check
// was two round trips to containerd per container on each resync, most of an unchanged node's re-check. Bounded:
// past maxSnapshotMemo entries it starts over, so the snapshots of removed containers cannot pile up.
type snapshotMemo struct {
	mu sync.Mutex
	m  map[string]snapshotFacts
}

const maxSnapshotMemo = 4096

type snapshotFacts struct {
	parent    string
	hasParent bool
	mounts    []mount.Mount
}

func (m *snapshotMemo) get(key string) snapshotFacts {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.m[key]
}

func (m *snapshotMemo) update(key string, f func(*snapshotFacts)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil || len(m.m) >= maxSnapshotMemo {
		m.m = map[string]snapshotFacts{}
	}
	e := m.m[key]
	f(&e)
	m.m[key] = e
}

// mounts is the container's snapshot mounts, from the memo when the snapshotter was asked before. A caller may keep
// but not change the slice.
func (r *ContainerRoots) mounts(ctx context.Context, c cri.Container) ([]mount.Mount, error) {
	key := c.Snapshotter + "/" + c.SnapshotKey
	if ms := r.snaps.get(key).mounts; ms != nil {
		return ms, nil
	}
	ms, err := r.Snapshots.Mounts(ctx, c.Snapshotter, c.SnapshotKey)
	if err != nil {
		return nil, err
	}
	r.snaps.update(key, func(f *snapshotFacts) { f.mounts = ms })
	return ms, nil
}

// OpenContainer implements RootOpener.
func (r *ContainerRoots) OpenContainer(ctx context.Context, c cri.Container) (Root, string, error) {
	mounts, err := r.mounts(ctx, c)
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
	key := c.Snapshotter + "/" + c.SnapshotKey
	f := r.snaps.get(key)
	p := f.parent
	if !f.hasParent {
		var err error
		if p, err = r.Snapshots.Parent(ctx, c.Snapshotter, c.SnapshotKey); err != nil {
			return "", err
		}
		r.snaps.update(key, func(f *snapshotFacts) { f.parent, f.hasParent = p, true })
	}
	if p == "" {
		return "", fmt.Errorf("snapshot %s/%s has no parent: %w", c.Snapshotter, c.SnapshotKey, fsaccess.ErrUnsupportedMount)
	}
	return c.Snapshotter + "/" + p, nil
}

// OpenView implements Views. There is no /proc fallback here: the image and upper views exist only for snapshots
// the scanner can split itself; the caller falls back to scanning the whole container.
func (r *ContainerRoots) OpenView(ctx context.Context, c cri.Container, view fsaccess.View) (Root, error) {
	mounts, err := r.mounts(ctx, c)
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
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.uppers.mu.Lock()
	kept := r.uppers.m[c.ID]
	r.uppers.mu.Unlock()
	if kept != nil {
		return keptRoot{kept}, nil
	}
	dir, err := upperDir(mounts)
	if err != nil {
		return nil, fmt.Errorf("upper dir of %s: %w", c.ID, err)
	}
	opts := r.Options
	opts.NoXDev = true
	root, err := fsaccess.OpenDir(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("upper dir of %s: %w", c.ID, err)
	}
	r.uppers.mu.Lock()
	defer r.uppers.mu.Unlock()
	if r.uppers.m == nil {
		r.uppers.m = map[string]*fsaccess.Root{}
	}
	if other := r.uppers.m[c.ID]; other != nil {
		root.Close() // two checks of one container at once (the daemon never runs them, the one-shot scan may)
		return keptRoot{other}, nil
	}
	if len(r.uppers.m) >= maxSnapshotMemo {
		return root, nil
	}
	r.uppers.m[c.ID] = root
	return keptRoot{root}, nil
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
