package scan

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
)

// FileAnalyzer is an analyzer whose files can be anywhere in the tree (Go binaries, Python dist-info, node_modules,
// jars). Instead of each walking the root, they share one walk: Run asks each FileAnalyzer whether it Wants every
// entry and calls AnalyzeFile for those it wants. Analyze still runs afterwards, once, to finish (merge, dedupe).
//
// Wants must be cheap and do no I/O beyond d.Info() (an Lstat), which it should call only when the name alone cannot
// decide: a walk of a million files must not cost a million stats. d is nil when the question comes from outside a
// walk (is a changed path in a container's upper dir relevant?): then answer from the name, erring on "yes".
type FileAnalyzer interface {
	Analyzer
	Wants(name string, d fs.DirEntry) bool
	// AnalyzeFile reads one wanted file. Problems with the file go to out.Errors; a returned error stops the walk.
	AnalyzeFile(ctx context.Context, fsys FS, name string, out *report.Result) error
}

// WalkLimits bound the shared walk, so a tree with millions of files or a pathological depth costs bounded time and
// memory. Past a bound the walk stops and the result says so: a "too large" error, never an out-of-memory kill.
type WalkLimits struct {
	MaxEntries int // entries visited; default 2,000,000
	MaxDepth   int // directory depth; default 128
}

func (l WalkLimits) withDefaults() WalkLimits {
	if l.MaxEntries <= 0 {
		l.MaxEntries = 2_000_000
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = 128
	}
	return l
}

// ErrWalkLimit marks a walk cut short by WalkLimits.
var ErrWalkLimit = errors.New("root too large")

// skipDirs are never walked: pseudo filesystems a live root may show, and nothing an analyzer wants lives there.
var skipDirs = map[string]bool{"proc": true, "sys": true, "dev": true}

// walk visits the root once for all file analyzers. It never follows symlinks (fs.WalkDir does not) and keeps only
// the current path in memory, not an index of the tree.
func walk(ctx context.Context, fsys FS, fas []FileAnalyzer, lim WalkLimits, out *report.Result) error {
	lim = lim.withDefaults()
	entries := 0
	// One entry wrapper for the whole walk: every FileAnalyzer that asks Info of the same entry shares one Lstat,
	// and reusing it costs no allocation per entry. Wants and AnalyzeFile must not keep d past their call.
	var ce cachedEntry
	err := walkFS(ctx, fsys, lim, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			if name == "." {
				return err
			}
			out.Errors = append(out.Errors, report.FileError{Analyzer: "walk", Path: name, Err: err.Error()})
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		entries++
		if entries > lim.MaxEntries {
			return fmt.Errorf("%w: more than %d files and directories; the rest was not analyzed", ErrWalkLimit, lim.MaxEntries)
		}
		if d.IsDir() {
			if name == "." {
				return nil
			}
			if skipDirs[name] {
				return fs.SkipDir
			}
			if strings.Count(name, "/")+1 > lim.MaxDepth {
				out.Errors = append(out.Errors, report.FileError{Analyzer: "walk", Path: name, Err: fmt.Sprintf("%v: deeper than %d directories; not analyzed", ErrWalkLimit, lim.MaxDepth)})
				return fs.SkipDir
			}
		}
		ce = cachedEntry{DirEntry: d}
		for _, fa := range fas {
			if !fa.Wants(name, &ce) {
				continue
			}
			if err := fa.AnalyzeFile(ctx, fsys, name, out); err != nil {
				return fmt.Errorf("%s: %w", fa.Name(), err)
			}
		}
		return nil
	})
	return err
}

// cachedEntry remembers the result of Info, so that several FileAnalyzers deciding on the same entry (the Go binary
// and the unowned-executable analyzers both want its mode and size) cost one Lstat, not one each.
type cachedEntry struct {
	fs.DirEntry
	done bool
	fi   fs.FileInfo
	err  error
}

func (c *cachedEntry) Info() (fs.FileInfo, error) {
	if !c.done {
		c.fi, c.err = c.DirEntry.Info()
		c.done = true
	}
	return c.fi, c.err
}

// pathEntry is a DirEntry that knows its path from the root (fsaccess's entries do: they build it when the directory
// is read, to lstat it later). walkDir takes it instead of joining the name again, which saves an allocation for
// every entry of a root.
type pathEntry interface {
	Path() string
}

// childPath is path.Join(dir, d.Name()), taken from d when it carries it and it is exactly that.
func childPath(dir string, d fs.DirEntry) string {
	name := d.Name()
	if pe, ok := d.(pathEntry); ok {
		p := pe.Path()
		if dir == "." && p == name {
			return p
		}
		if len(p) == len(dir)+1+len(name) && p[len(dir)] == '/' && strings.HasPrefix(p, dir) && strings.HasSuffix(p, name) {
			return p
		}
	}
	return path.Join(dir, name)
}

// walkDir is fs.WalkDir (lexical order, links not followed, SkipDir and SkipAll, a second call with a ReadDir
// error), with the children's paths from childPath.
func walkDir(fsys fs.FS, root string, fn fs.WalkDirFunc) error {
	info, err := fs.Stat(fsys, root)
	if err != nil {
		err = fn(root, nil, err)
	} else {
		err = walkDirEntry(fsys, root, fs.FileInfoToDirEntry(info), fn)
	}
	if err == fs.SkipDir || err == fs.SkipAll {
		return nil
	}
	return err
}

func walkDirEntry(fsys fs.FS, name string, d fs.DirEntry, fn fs.WalkDirFunc) error {
	if err := fn(name, d, nil); err != nil || !d.IsDir() {
		if err == fs.SkipDir && d.IsDir() {
			err = nil
		}
		return err
	}
	dirs, err := fs.ReadDir(fsys, name)
	if err != nil {
		// Second call, to report the ReadDir error.
		if err = fn(name, d, err); err != nil {
			if err == fs.SkipDir && d.IsDir() {
				err = nil
			}
			return err
		}
	}
	for _, d1 := range dirs {
		if err := walkDirEntry(fsys, childPath(name, d1), d1, fn); err != nil {
			if err == fs.SkipDir {
				break
			}
			return err
		}
	}
	return nil
}

// dirWalker is an FS that walks itself without resolving every entry's path from the top: fsaccess.Root holds each
// directory open and stats its entries there (fstatat), so d.Info costs a single-name lookup instead of a confined
// path resolution. Other FS values (fstest.MapFS, OCI layouts) are walked with walkDir.
type dirWalker interface {
	Walk(ctx context.Context, root string, opts fsaccess.WalkOptions, fn fs.WalkDirFunc) error
}

// walkFS is fs.WalkDir from the top of fsys, through its own walker when it has one. fn enforces lim; the walker's
// bounds are set just past them, as a backstop.
func walkFS(ctx context.Context, fsys FS, lim WalkLimits, fn fs.WalkDirFunc) error {
	if w, ok := fsys.(dirWalker); ok {
		return w.Walk(ctx, ".", fsaccess.WalkOptions{MaxDepth: lim.MaxDepth + 1, MaxEntries: lim.MaxEntries + 2}, fn)
	}
	return walkDir(fsys, ".", fn)
}
