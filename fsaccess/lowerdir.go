package fsaccess

import (
	"fmt"
	"strings"

	"github.com/containerd/containerd/v2/core/mount"
)

// View chooses which part of a container's snapshot a mount shows.
type View int

// The views a scanner needs: the container as it runs now, the image it started from, and only what it changed.
const (
	// ViewContainer is the merged filesystem the container sees: its upper dir over the image's layers.
	ViewContainer View = iota
	// ViewImage is the image's committed layers alone, shared by every container of the image (cacheable by chain ID).
	ViewImage
	// ViewUpper is the container's own upper dir: what it added, changed or deleted (whiteouts), for drift.
	ViewUpper
)

func (v View) String() string {
	switch v {
	case ViewContainer:
		return "container"
	case ViewImage:
		return "image"
	case ViewUpper:
		return "upper"
	}
	return fmt.Sprintf("view(%d)", int(v))
}

// hardening is added to every mount we make: nothing on a scanned filesystem may be executed, gain privileges or act
// as a device, whatever the image contains.
var hardening = []string{"ro", "nosuid", "nodev", "noexec"}

// ErrUnsupportedMount is returned for snapshot mounts rootscan cannot re-mount read-only without touching the live
// container (devmapper block devices, FUSE-backed lazy snapshotters). Callers fall back to /proc/<pid>/root.
var ErrUnsupportedMount = fmt.Errorf("unsupported snapshot mount")

// readOnlyMounts turns the mounts a snapshotter returned for a container's active snapshot into a mount that can be
// made beside the running container without disturbing it.
//
// The returned overlay is never re-mounted as it is, not even with "ro": a second overlay mount with the same
// upperdir/workdir recreates workdir/work, and the running container's copy-ups then fail with EPERM for good.
// Instead the upper dir becomes the top lower dir of an overlay with no upperdir, workdir, index or volatile option:
// such an overlay cannot write anywhere. A single directory (a committed image view, the native snapshotter, a
// one-layer image seen without its upper dir) is a read-only bind instead, since overlay wants two lower dirs when it
// has no upper dir.
func readOnlyMounts(mounts []mount.Mount, view View) ([]mount.Mount, error) {
	if len(mounts) != 1 {
		return nil, fmt.Errorf("%w: %d mounts (want exactly 1)", ErrUnsupportedMount, len(mounts))
	}
	m := mounts[0]
	var dirs []string // top first
	var keep []string
	switch m.Type {
	case "overlay":
		var upper string
		var lowers []string
		for _, o := range m.Options {
			switch {
			case strings.HasPrefix(o, "upperdir="):
				upper = strings.TrimPrefix(o, "upperdir=")
			case strings.HasPrefix(o, "lowerdir="):
				lowers = strings.Split(strings.TrimPrefix(o, "lowerdir="), ":")
			case o == "userxattr":
				// Layers written with user.overlay.* xattrs (rootless) must be read with the same option.
				keep = append(keep, o)
			case strings.HasPrefix(o, "metacopy="):
				keep = append(keep, o)
			case o == "redirect_dir=on" || o == "redirect_dir=follow":
				// Without an upper dir the kernel only follows redirects; it must not create them.
				keep = append(keep, "redirect_dir=follow")
			}
			// Everything else (workdir, index, volatile, rw, uidmap, ...) is dropped on purpose.
		}
		switch view {
		case ViewContainer:
			if upper != "" {
				dirs = append(dirs, upper)
			}
			dirs = append(dirs, lowers...)
		case ViewImage:
			dirs = lowers
		case ViewUpper:
			if upper == "" {
				return nil, fmt.Errorf("%w: snapshot has no upper dir (a committed or view snapshot)", ErrUnsupportedMount)
			}
			dirs = []string{upper}
		}
	case "bind", "rbind":
		// The native snapshotter, and overlayfs for an active snapshot of an image with no layers or a view of one
		// layer. The single dir is the whole filesystem; there is no separate image part.
		if view == ViewImage || view == ViewUpper {
			return nil, fmt.Errorf("%w: %s view of a %s mount: layers are not separable", ErrUnsupportedMount, view, m.Type)
		}
		dirs = []string{m.Source}
	default:
		return nil, fmt.Errorf("%w: mount type %q", ErrUnsupportedMount, m.Type)
	}
	for _, d := range dirs {
		if d == "" || strings.ContainsAny(d, ",") {
			return nil, fmt.Errorf("%w: bad layer directory %q", ErrUnsupportedMount, d)
		}
	}
	switch len(dirs) {
	case 0:
		return nil, fmt.Errorf("%w: no layer directories for the %s view", ErrUnsupportedMount, view)
	case 1:
		return []mount.Mount{{Type: "bind", Source: dirs[0], Options: append([]string{"bind"}, hardening...)}}, nil
	default:
		opts := append([]string{"lowerdir=" + strings.Join(dirs, ":")}, keep...)
		return []mount.Mount{{Type: "overlay", Source: "rootscan", Options: append(opts, hardening...)}}, nil
	}
}
