// Package scan reads a container's root filesystem and turns what it finds into a report. It performs no I/O beyond
// the FS it is given, so the same analyzers run on a mounted snapshot, a plain directory or an in-memory test tree.
package scan

import (
	"context"
	"io/fs"
	"path"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
)

// FS is the read-only view analyzers get. fsaccess.Root implements it with every read confined to the root; tests
// use testing/fstest.MapFS. Lstat and ReadLink (fs.ReadLinkFS) let analyzers see links without following them.
type FS interface {
	fs.ReadDirFS
	fs.StatFS
	fs.ReadLinkFS
}

// ErrTooLarge and ErrNotRegular are fsaccess's (one definition, so errors.Is matches whichever read failed):
// ErrTooLarge for a file larger than the limit the caller set, which is not read; ErrNotRegular for FIFOs, sockets,
// devices and directories where file content was expected, which reading could block on or act on.
var (
	ErrTooLarge   = fsaccess.ErrTooLarge
	ErrNotRegular = fsaccess.ErrNotRegular
)

// OpenRegular is fsaccess.OpenRegular: name opened and checked, on the open file, to be a regular file of at most
// limit bytes. Every analyzer that reads file content goes through it or ReadFile.
func OpenRegular(fsys fs.FS, name string, limit int64) (fs.File, fs.FileInfo, error) {
	return fsaccess.OpenRegular(fsys, name, limit)
}

// ReadFile is fsaccess.ReadRegular: a regular file of at most limit bytes, read in one allocation of its size, and
// refused if it grows past limit while it is read.
func ReadFile(fsys fs.FS, name string, limit int64) ([]byte, error) {
	return fsaccess.ReadRegular(fsys, name, limit)
}

// Analyzer is one kind of knowledge about a root (its OS, its Debian packages, ...). Paths tells the scheduler which
// files the analyzer depends on, so a container whose upper dir touches none of them need not be re-analyzed.
type Analyzer interface {
	// Name is stable; it is part of finding IDs and of error reports.
	Name() string
	// Paths are path.Match patterns relative to the root ("var/lib/dpkg/status.d/*").
	Paths() []string
	// Analyze adds what it finds to out. Problems with single files go to out.Errors and the analyzer carries on;
	// a returned error means the analyzer as a whole failed (the context ended, the root vanished).
	Analyze(ctx context.Context, fsys FS, out *report.Result) error
}

// Touches reports whether a changed file (slash path relative to the root) is one an analyzer depends on. A
// FileAnalyzer may want any file, so it is asked through Wants.
func Touches(a Analyzer, name string) bool {
	if fa, ok := a.(FileAnalyzer); ok {
		return fa.Wants(name, nil)
	}
	for _, p := range a.Paths() {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// Run applies the analyzers to one root: first one shared walk for the FileAnalyzers among them (if any), then every
// analyzer's Analyze in order, so later analyzers (distroless detection) see what earlier ones found. A failing
// analyzer is recorded and the others still run, so one bad file never hides the rest of a container's inventory.
func Run(ctx context.Context, fsys FS, analyzers []Analyzer) *report.Result {
	return RunWithLimits(ctx, fsys, analyzers, WalkLimits{})
}

// RunWithLimits is Run with explicit bounds on the shared walk.
func RunWithLimits(ctx context.Context, fsys FS, analyzers []Analyzer, lim WalkLimits) *report.Result {
	res := &report.Result{}
	var fas []FileAnalyzer
	for _, a := range analyzers {
		if fa, ok := a.(FileAnalyzer); ok {
			fas = append(fas, fa)
		}
	}
	if len(fas) > 0 {
		if err := walk(ctx, fsys, fas, lim, res); err != nil {
			res.Errors = append(res.Errors, report.FileError{Analyzer: "walk", Err: err.Error()})
		}
	}
	for _, a := range analyzers {
		if err := ctx.Err(); err != nil {
			res.Errors = append(res.Errors, report.FileError{Analyzer: a.Name(), Err: err.Error()})
			break
		}
		if err := a.Analyze(ctx, fsys, res); err != nil {
			res.Errors = append(res.Errors, report.FileError{Analyzer: a.Name(), Err: err.Error()})
		}
	}
	// PURLs are filled centrally, once the OS is known, so every analyzer's packages follow one convention.
	for i := range res.Packages {
		if res.Packages[i].PURL == "" {
			res.Packages[i].PURL = report.PURL(res.Packages[i], res.OS)
		}
	}
	return res
}
