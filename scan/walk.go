package scan

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

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
// memory. Past a bound the walk stops and the result says so: a "too large" error, never an out-of-memory kill. Zero
// fields take fsaccess's walk defaults (fsaccess.DefaultWalkMaxEntries, fsaccess.DefaultWalkMaxDepth).
type WalkLimits struct {
	MaxEntries int // entries visited below the top
	MaxDepth   int // directory depth
}

// ErrWalkLimit marks a walk cut short by WalkLimits.
var ErrWalkLimit = errors.New("root too large")

// walk visits the root once for all file analyzers, with fsaccess's one walk: links are not followed, /proc, /sys
// and /dev are not walked (pseudo filesystems a live root may show; nothing an analyzer wants lives there), and only
// the current path is kept in memory, not an index of the tree.
func walk(ctx context.Context, fsys FS, fas []FileAnalyzer, lim WalkLimits, out *report.Result) error {
	// One entry wrapper for the whole walk: every FileAnalyzer that asks Info of the same entry shares one Lstat,
	// and reusing it costs no allocation per entry. Wants and AnalyzeFile must not keep d past their call.
	var ce cachedEntry
	prog := ProgressFrom(ctx)
	opts := fsaccess.WalkOptions{MaxEntries: lim.MaxEntries, MaxDepth: lim.MaxDepth, SkipKernelDirs: true}
	return fsaccess.WalkFS(ctx, fsys, ".", opts, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return walkError(name, d, err, out)
		}
		if name == "." {
			return nil
		}
		ce = cachedEntry{DirEntry: d}
		for _, fa := range fas {
			if !fa.Wants(name, &ce) {
				continue
			}
			prog.Set(fa.Name(), name)
			if err := fa.AnalyzeFile(ctx, fsys, name, out); err != nil {
				return fmt.Errorf("%s: %w", fa.Name(), err)
			}
		}
		return nil
	})
}

// walkError records a problem the walk met at name and says how the walk goes on: a directory too deep or
// unreadable is left out, too many entries end the walk, and so does an unreadable top.
func walkError(name string, d fs.DirEntry, err error, out *report.Result) error {
	var le *fsaccess.WalkLimitError
	switch {
	case errors.As(err, &le) && le.Depth:
		out.Errors = append(out.Errors, report.FileError{Analyzer: "walk", Path: name, Err: fmt.Sprintf("%v: deeper than %d directories; not analyzed", ErrWalkLimit, le.Limit)})
		return fs.SkipDir
	case le != nil:
		return fmt.Errorf("%w: more than %d files and directories; the rest was not analyzed", ErrWalkLimit, le.Limit)
	case name == ".":
		return err
	}
	out.Errors = append(out.Errors, report.FileError{Analyzer: "walk", Path: name, Err: err.Error()})
	if d != nil && d.IsDir() {
		return fs.SkipDir
	}
	return nil
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
