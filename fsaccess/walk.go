package fsaccess

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strings"
)

// The bounds of a walk when WalkOptions leaves them zero. Real images hold a few hundred thousand files and nest a
// few dozen directories; a hostile tree of millions of entries or thousands of levels costs bounded time and memory.
const (
	DefaultWalkMaxEntries = 2_000_000
	DefaultWalkMaxDepth   = 128
)

// kernelDirs are the top-level directories of a live root (a container's /proc/<pid>/root, --dir /) where the kernel
// mounts its pseudo filesystems: never image content, and /proc alone has a directory per process.
var kernelDirs = [...]string{"proc", "sys", "dev"}

// WalkOptions bound a walk and say what it leaves out. Zero fields take the defaults.
type WalkOptions struct {
	// MaxEntries is how many entries below the walk's root are visited; the next one ends the walk.
	MaxEntries int
	// MaxDepth is how many directories deep the walk lists: the walk's root is at depth 0, its entries at depth 1,
	// and a directory deeper than MaxDepth is not listed (so entries are at most MaxDepth+1 deep).
	MaxDepth int
	// SkipKernelDirs leaves out proc, sys and dev when the walk starts at the top of the tree (".").
	SkipKernelDirs bool
}

func (o WalkOptions) withDefaults() WalkOptions {
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultWalkMaxEntries
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultWalkMaxDepth
	}
	return o
}

// WalkLimitError is what a walk passes to its fn, wrapped in an fs.PathError, for the entry at which it reaches a
// bound of WalkOptions. It wraps ErrLimit.
type WalkLimitError struct {
	// Depth is set for MaxDepth: the entry is a directory deeper than Limit, and it is not listed. Otherwise the
	// entry is the first past MaxEntries (Limit), and the walk ends there.
	Depth bool
	Limit int
}

func (e *WalkLimitError) Error() string {
	if e.Depth {
		return fmt.Sprintf("%v: deeper than %d directories", ErrLimit, e.Limit)
	}
	return fmt.Sprintf("%v: more than %d entries", ErrLimit, e.Limit)
}

func (e *WalkLimitError) Unwrap() error { return ErrLimit }

// selfWalker is an FS that walks itself: a Root, or a wrapper that hands the walk on to one.
type selfWalker interface {
	Walk(ctx context.Context, root string, opts WalkOptions, fn fs.WalkDirFunc) error
}

// WalkFS is the one walk every reader of a whole tree shares (the analyzers' walk, compliance's files(), drift and
// the upper-dir fingerprint): fs.WalkDir from root with the bounds and the skip list of opts. A Root walks on its
// open directory descriptors (Root.Walk); any other FS (an in-memory test tree, os.DirFS) is walked by name through
// fs.ReadDir and fs.Stat, with the same order, bounds and skip list.
//
// Like fs.WalkDir it visits root and everything below it in lexical order, never follows links (only root itself,
// when it is a link to a directory, is followed), honours SkipDir and SkipAll, and calls fn a second time for a
// directory whose listing failed. The context is checked at every entry.
//
// A bound reached is reported to fn as a *WalkLimitError, at the entry where it is reached: a directory too deep is
// passed to fn with it instead of being visited, and the entry past MaxEntries likewise. The walk goes on only where
// fn asks: SkipDir for a directory too deep leaves that directory out, and SkipAll ends the walk without an error;
// any other answer ends it with fn's error, or with the limit error itself when fn returned nil, so a caller that
// ignores errors never loses what lies past a bound without knowing.
func WalkFS(ctx context.Context, fsys fs.FS, root string, opts WalkOptions, fn fs.WalkDirFunc) error {
	if w, ok := fsys.(selfWalker); ok {
		return w.Walk(ctx, root, opts, fn)
	}
	return walkTree(ctx, fsLister{fsys}, func(name string) (fs.FileInfo, error) { return fs.Stat(fsys, name) }, root, opts, fn)
}

// dirLister lists the directories of a walk. parent is the listing in which name was found, nil for the walk's root.
type dirLister interface {
	list(name string, parent dirList) (dirList, error)
}

// dirList is one directory's entries, sorted by name, held while the walk is inside the directory.
type dirList interface {
	len() int
	entry(i int) fs.DirEntry
	close()
}

// walkTree is the walk behind WalkFS and Root.Walk; lister is where the two differ.
func walkTree(ctx context.Context, lister dirLister, stat func(string) (fs.FileInfo, error), root string, opts WalkOptions, fn fs.WalkDirFunc) error {
	opts = opts.withDefaults()
	w := &walker{ctx: ctx, lister: lister, opts: opts, fn: fn, skipKernel: opts.SkipKernelDirs && root == "."}
	var err error
	if info, serr := stat(root); serr != nil {
		err = fn(root, nil, serr)
	} else {
		err = w.walk(root, fs.FileInfoToDirEntry(info), nil, 0)
	}
	if err == fs.SkipDir || err == fs.SkipAll {
		return nil
	}
	return err
}

type walker struct {
	ctx        context.Context
	lister     dirLister
	opts       WalkOptions
	fn         fs.WalkDirFunc
	skipKernel bool
	entries    int
}

// walk visits name, whose DirEntry is d, found in parent at depth, and below it when it is a directory.
func (w *walker) walk(name string, d fs.DirEntry, parent dirList, depth int) error {
	if err := w.ctx.Err(); err != nil {
		return fmt.Errorf("walk %s: %w", name, err)
	}
	if depth > 0 {
		w.entries++
		if w.entries > w.opts.MaxEntries {
			return w.limit(name, d, &WalkLimitError{Limit: w.opts.MaxEntries})
		}
		if d.IsDir() && depth > w.opts.MaxDepth {
			return w.limit(name, d, &WalkLimitError{Depth: true, Limit: w.opts.MaxDepth})
		}
	}
	if err := w.fn(name, d, nil); err != nil || !d.IsDir() {
		if err == fs.SkipDir && d.IsDir() {
			err = nil
		}
		return err
	}
	dir, err := w.lister.list(name, parent)
	if err != nil {
		// Second call, to report the listing's error.
		if err = w.fn(name, d, err); err == fs.SkipDir {
			err = nil
		}
		return err
	}
	defer dir.close()
	for i := range dir.len() {
		e := dir.entry(i)
		if depth == 0 && w.skipKernel && e.IsDir() && slices.Contains(kernelDirs[:], e.Name()) {
			continue
		}
		child := e.Name()
		if name != "." {
			child = name + "/" + child
		}
		if err := w.walk(child, e, dir, depth+1); err != nil {
			if err == fs.SkipDir {
				break
			}
			return err
		}
	}
	return nil
}

// limit reports a bound reached at name to fn and applies fn's answer (see WalkFS).
func (w *walker) limit(name string, d fs.DirEntry, le *WalkLimitError) error {
	perr := &fs.PathError{Op: "walk", Path: name, Err: le}
	switch err := w.fn(name, d, perr); {
	case err == fs.SkipDir && le.Depth:
		return nil
	case err == fs.SkipAll:
		return fs.SkipAll
	case err == nil || err == fs.SkipDir:
		return perr
	default:
		return err
	}
}

// fsLister lists directories of any FS by name.
type fsLister struct{ fsys fs.FS }

func (l fsLister) list(name string, _ dirList) (dirList, error) {
	entries, err := fs.ReadDir(l.fsys, name)
	if err != nil {
		return nil, err
	}
	return entryList(entries), nil
}

type entryList []fs.DirEntry

func (l entryList) len() int                { return len(l) }
func (l entryList) entry(i int) fs.DirEntry { return l[i] }
func (l entryList) close()                  {}

func sortEntries(entries []fs.DirEntry) {
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
}

// dirEntry is one name in a directory listed by Root.ReadDir. Info re-resolves the name through the root (lstat),
// so it stays confined even after the directory was closed.
type dirEntry struct {
	r *Root
	// path is the entry's path from the root (what path.Join(dir, name) gives); name is its last element, sharing
	// path's bytes.
	path, name string
	typ        fs.FileMode
}

func (d *dirEntry) Name() string               { return d.name }
func (d *dirEntry) IsDir() bool                { return d.typ.IsDir() }
func (d *dirEntry) Type() fs.FileMode          { return d.typ }
func (d *dirEntry) Info() (fs.FileInfo, error) { return d.r.Lstat(d.path) }
func (d *dirEntry) String() string             { return fs.FormatDirEntry(d) }

// joinEntry is path.Join(dir, name) for a clean dir and a single name from a listing (no '/', never "." or ".."),
// in one allocation.
func joinEntry(dir string, name []byte) string {
	if dir == "." {
		return string(name)
	}
	b := make([]byte, 0, len(dir)+1+len(name))
	b = append(append(append(b, dir...), '/'), name...)
	return string(b)
}
