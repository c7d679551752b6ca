package compliance

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/rootscan/rootscan/scan"
)

// Volume is a container mount seen by controls: a ConfigMap, Secret or hostPath volume is not in the container's
// snapshot, but the container reads its /etc/nginx/nginx.conf from it, so a control on that path must too. FS is
// the volume's host directory opened as a confined root (fsaccess.OpenDir); Sub is the name inside FS that appears
// at ContainerPath ("" for a directory volume, the file's name for a single-file mount such as a subPath).
type Volume struct {
	ContainerPath string
	FS            scan.FS
	Sub           string
}

// maxLinkHops bounds symlink resolution like the kernel's MAXSYMLINKS: a link loop is an error, never a hang.
const maxLinkHops = 40

// errLinkLoop is returned for a chain of more than maxLinkHops symlinks.
var errLinkLoop = errors.New("too many levels of symbolic links")

// view is the container's filesystem as its processes see it: the root, with the volumes over it. Every path is
// resolved here, component by component and with chroot semantics (an absolute link target means this root, ".."
// stops at "/"), so a link from the image into a volume lands in the volume and no link leaves the root. The
// final read still goes through the FS's own confined open.
type view struct {
	root    scan.FS
	volumes []Volume // longest ContainerPath first
	// rec, when set, records what the current control reads, so an image's result can be kept for a container
	// whose own layer does not touch it (see ImageEval).
	rec *readLog
}

func newView(root scan.FS, vols []Volume) *view {
	v := &view{root: root}
	for _, vol := range vols {
		vol.ContainerPath = cleanPath(vol.ContainerPath)
		if vol.ContainerPath == "/" || vol.FS == nil {
			continue // a volume over the whole root would hide the image; a container cannot have one
		}
		v.volumes = append(v.volumes, vol)
	}
	sort.SliceStable(v.volumes, func(i, j int) bool { return len(v.volumes[i].ContainerPath) > len(v.volumes[j].ContainerPath) })
	return v
}

// cleanPath makes p an absolute, clean container path; relative paths are taken from "/", and ".." cannot climb
// above it.
func cleanPath(p string) string {
	return path.Clean("/" + p)
}

// locate maps a clean absolute container path to the FS holding it and the fs.FS name there.
func (v *view) locate(p string) (scan.FS, string, *Volume) {
	for i := range v.volumes {
		vol := &v.volumes[i]
		mp := vol.ContainerPath
		if p == mp || strings.HasPrefix(p, mp+"/") {
			rest := strings.TrimPrefix(strings.TrimPrefix(p, mp), "/")
			name := path.Join(vol.Sub, rest)
			if name == "" {
				name = "."
			}
			return vol.FS, name, vol
		}
	}
	name := strings.TrimPrefix(p, "/")
	if name == "" {
		name = "."
	}
	return v.root, name, nil
}

// lstat stats a resolved path (no symlink in its directories) without following a final link. The directories
// leading to a volume exist for the container even when the image lacks them (the runtime creates them).
func (v *view) lstat(p string) (fs.FileInfo, error) {
	v.rec.add(readEntry, p)
	return v.lstatQuiet(p)
}

// lstatQuiet is lstat without recording: resolve records what it learns itself.
func (v *view) lstatQuiet(p string) (fs.FileInfo, error) {
	fsys, name, vol := v.locate(p)
	fi, err := fsys.Lstat(name)
	if err != nil && vol == nil && errors.Is(err, fs.ErrNotExist) && v.leadsToVolume(p) {
		return mountDirInfo(path.Base(p)), nil
	}
	return fi, err
}

func (v *view) leadsToVolume(p string) bool {
	for _, vol := range v.volumes {
		if p == "/" || strings.HasPrefix(vol.ContainerPath, p+"/") {
			return true
		}
	}
	return false
}

// mountDirInfo describes a directory the runtime made for a volume's mount point.
type mountDirInfo string

func (m mountDirInfo) Name() string       { return string(m) }
func (m mountDirInfo) Size() int64        { return 0 }
func (m mountDirInfo) Mode() fs.FileMode  { return fs.ModeDir | 0o755 }
func (m mountDirInfo) ModTime() time.Time { return time.Time{} }
func (m mountDirInfo) IsDir() bool        { return true }
func (m mountDirInfo) Sys() any           { return nil }

func (v *view) readLink(p string) (string, error) {
	v.rec.add(readEntry, p)
	fsys, name, _ := v.locate(p)
	return fsys.ReadLink(name)
}

// resolve follows every symlink in p (the final one too when follow is set) inside the view and returns the
// path with no links left. A missing component is not an error: the path is returned as far as it resolved plus
// the rest, with fs.ErrNotExist, so callers can report "does not exist" for the path the profile named.
func (v *view) resolve(p string, follow bool) (string, error) {
	p = cleanPath(p)
	hops := 0
	todo := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur := "/"
	for len(todo) > 0 {
		elem := todo[0]
		todo = todo[1:]
		switch elem {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, elem)
		if len(todo) == 0 && !follow {
			return next, nil
		}
		fi, err := v.lstatQuiet(next)
		if err == nil && fi.IsDir() {
			// Going through a directory depends on its being one, not on its attributes.
			v.rec.add(readDir, next)
		} else {
			v.rec.add(readEntry, next)
		}
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return path.Join(append([]string{next}, todo...)...), fs.ErrNotExist
			}
			return next, err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		hops++
		if hops > maxLinkHops {
			return next, &fs.PathError{Op: "resolve", Path: p, Err: errLinkLoop}
		}
		target, err := v.readLink(next)
		if err != nil {
			return next, err
		}
		if strings.HasPrefix(target, "/") {
			cur = "/"
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	return cur, nil
}

// openRegular opens a resolved path for reading with the size bound; only regular files are opened.
func (v *view) readFile(p string, limit int64) ([]byte, error) {
	v.rec.add(readEntry, p)
	fsys, name, _ := v.locate(p)
	b, err := scan.ReadFile(fsys, name, limit)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, unwrapPathError(err))
	}
	return b, nil
}

// unwrapPathError drops the fs name (relative to a volume or the root) from err: messages name container paths.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
