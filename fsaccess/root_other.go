//go:build !linux

package fsaccess

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sync"
)

// Root is a read-only view of one directory tree in which every name resolves inside the tree. It implements fs.FS,
// fs.ReadDirFS, fs.ReadFileFS, fs.StatFS and fs.ReadLinkFS (the scanner's scan.FS); names follow io/fs rules.
//
// Outside Linux there is no openat2: this Root stands on os.Root, which confines every name to the tree with the
// descriptor-relative lookups each system offers. It differs from the Linux Root in what it refuses, never in what
// it lets out: os.Root rejects absolute symlinks and links that climb above the top instead of resolving them
// inside the tree as a chroot would, so an image's etc/localtime -> /usr/share/zoneinfo/UTC reads as missing. That
// is acceptable for what runs on a laptop (scan --dir, scan --oci); nodes run Linux. Options.NoXDev is ignored.
//
// A Root is safe for concurrent use. Files it returns stay usable after Close, but Close should follow the last use
// of the Root because OnClose may remove the tree.
type Root struct {
	path string
	opts Options
	root *os.Root

	closeOnce sync.Once
	closeErr  error
}

// OpenDir opens dir as a Root. dir itself is trusted; only names inside it are confined.
func OpenDir(dir string, opts Options) (*Root, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open root %s: %w", dir, err)
	}
	return &Root{path: dir, opts: opts.withDefaults(), root: root}, nil
}

// Close closes the root and then runs Options.OnClose. Later calls return the first call's result.
func (r *Root) Close() error {
	r.closeOnce.Do(func() {
		errs := []error{r.root.Close()}
		if r.opts.OnClose != nil {
			errs = append(errs, r.opts.OnClose())
		}
		if err := errors.Join(errs...); err != nil {
			r.closeErr = fmt.Errorf("close root %s: %w", r.path, err)
		}
	})
	return r.closeErr
}

// Walk is WalkFS over the root, by name: each directory is listed with ReadDir and each entry's Info is a confined
// Lstat.
func (r *Root) Walk(ctx context.Context, root string, opts WalkOptions, fn fs.WalkDirFunc) error {
	return walkTree(ctx, fsLister{r}, r.Stat, root, opts, fn)
}

// osName checks name and turns it into the system's form for os.Root.
func (r *Root) osName(op, name string) (string, error) {
	if !validPath(name) {
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return filepath.FromSlash(name), nil
}

// pathError reports err (often an *fs.PathError of os.Root) for the name the caller gave.
func pathError(op, name string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// open opens a regular file or a directory, following links inside the root. Anything else is never opened: its
// File has a working Stat and a Read that fails with ErrNotRegular. The open is non-blocking and checked against
// the stat, so a name swapped for a FIFO in between neither hangs the scanner nor gets read.
func (r *Root) Open(name string) (fs.File, error) {
	n, err := r.osName("open", name)
	if err != nil {
		return nil, err
	}
	fi, err := r.root.Stat(n)
	if err != nil {
		return nil, pathError("open", name, err)
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		return &specialFile{name: name, info: fi}, nil
	}
	f, err := r.root.OpenFile(n, os.O_RDONLY|openNonblock, 0)
	if err != nil {
		return nil, pathError("open", name, err)
	}
	fi2, err := f.Stat()
	if err != nil || !os.SameFile(fi, fi2) || fi2.Mode().Type() != fi.Mode().Type() {
		f.Close()
		if err == nil {
			err = errors.New("file changed while opened")
		}
		return nil, pathError("open", name, err)
	}
	if fi2.IsDir() {
		return &dirFile{r: r, name: name, f: f}, nil
	}
	return &file{f: f}, nil
}

// Stat returns the FileInfo of name, following symlinks inside the root.
func (r *Root) Stat(name string) (fs.FileInfo, error) {
	n, err := r.osName("stat", name)
	if err != nil {
		return nil, err
	}
	fi, err := r.root.Stat(n)
	if err != nil {
		return nil, pathError("stat", name, err)
	}
	return fi, nil
}

// Lstat returns the FileInfo of name without following a final symlink.
func (r *Root) Lstat(name string) (fs.FileInfo, error) {
	n, err := r.osName("lstat", name)
	if err != nil {
		return nil, err
	}
	fi, err := r.root.Lstat(n)
	if err != nil {
		return nil, pathError("lstat", name, err)
	}
	return fi, nil
}

// ReadLink returns the raw target of the symlink name, as the image wrote it.
func (r *Root) ReadLink(name string) (string, error) {
	n, err := r.osName("readlink", name)
	if err != nil {
		return "", err
	}
	target, err := r.root.Readlink(n)
	if err != nil {
		return "", pathError("readlink", name, err)
	}
	return filepath.ToSlash(target), nil
}

// ReadDir lists the directory name, sorted by name, without following the entries. It fails with ErrLimit past
// Options.MaxDirEntries entries.
func (r *Root) ReadDir(name string) ([]fs.DirEntry, error) {
	f, err := r.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d, ok := f.(*dirFile)
	if !ok {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	entries, err := d.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	sortEntries(entries)
	return entries, nil
}

// dirFile is an open directory. Its entries' Info is a confined Lstat by name, not the host path os would stat.
type dirFile struct {
	r     *Root
	name  string
	f     *os.File
	count int
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.f.Stat() }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: errors.New("is a directory")}
}
func (d *dirFile) Close() error { return d.f.Close() }

// ReadDir implements fs.ReadDirFile, in directory order. All calls on one directory together return at most
// Options.MaxDirEntries entries before failing with ErrLimit.
func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	var out []fs.DirEntry
	for n <= 0 || len(out) < n {
		batch := 256
		if n > 0 {
			batch = min(batch, n-len(out))
		}
		ents, err := d.f.ReadDir(batch)
		for _, e := range ents {
			d.count++
			if d.count > d.r.opts.MaxDirEntries {
				return out, &fs.PathError{Op: "readdir", Path: d.name, Err: fmt.Errorf("%w: more than %d entries", ErrLimit, d.r.opts.MaxDirEntries)}
			}
			p := path.Join(d.name, e.Name())
			out = append(out, &dirEntry{r: d.r, path: p, name: path.Base(p), typ: e.Type()})
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return out, &fs.PathError{Op: "readdir", Path: d.name, Err: err}
		}
	}
	if n > 0 && len(out) == 0 {
		return nil, io.EOF
	}
	return out, nil
}
