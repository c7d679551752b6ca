// Package scan reads a container's root filesystem and turns what it finds into a report. It performs no I/O beyond
// the FS it is given, so the same analyzers run on a mounted snapshot, a plain directory or an in-memory test tree.
package scan

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
)

// Analyzer is one kind of knowledge about a root (its OS, its Debian packages, ...). Paths tells the scheduler which
// files the analyzer depends on, so a container whose upper dir touches none of them need not be re-analyzed.
//
// Analyzers share one Result: some read what others found (the rpm ecosystem comes from the OS os-release found).
// They say so in Requires, and Run computes the order from it (see Order) instead of trusting the caller's list.
type Analyzer interface {
	// Name is stable; it is part of finding IDs and of error reports, and what Requires refers to.
	Name() string
	// Version is bumped whenever the analyzer's findings for the same files can change (parsing, limits, what it
	// reports), so that analyses cached by an older version are not trusted (see Fingerprint).
	Version() int
	// Requires names the analyzers whose findings Analyze reads from the Result. They must be in the same Run, and
	// their Analyze runs first. The shared walk runs before every Analyze, so AnalyzeFile sees no one's findings.
	Requires() []string
	// Paths are path.Match patterns relative to the root ("var/lib/dpkg/status.d/*").
	Paths() []string
	// Analyze adds what it finds to out. Problems with single files go to out.Errors and the analyzer carries on;
	// a returned error means the analyzer as a whole failed (the context ended, the root vanished).
	Analyze(ctx context.Context, fsys FS, out *report.Result) error
}

// InventoryReader is an Analyzer that reads the finished inventory, every package whichever analyzer found it
// (compliance's packages()). Order runs it after every analyzer that is not an InventoryReader, so it needs no list
// of package analyzers, which differ from one caller to the next.
type InventoryReader interface {
	Analyzer
	// ReadsInventory marks the analyzer; it is never called.
	ReadsInventory()
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
// analyzer's Analyze in the order Order computes, so an analyzer sees the findings of those it requires. A failing
// analyzer is recorded and the others still run, so one bad file never hides the rest of a container's inventory.
// A set Order refuses (a missing requirement, a cycle) is a wiring mistake: it is the result's only error and
// nothing is analyzed.
func Run(ctx context.Context, fsys FS, analyzers []Analyzer) *report.Result {
	return RunWithLimits(ctx, fsys, analyzers, WalkLimits{})
}

// RunWithLimits is Run with explicit bounds on the shared walk.
func RunWithLimits(ctx context.Context, fsys FS, analyzers []Analyzer, lim WalkLimits) *report.Result {
	res := &report.Result{}
	analyzers, err := Order(analyzers)
	if err != nil {
		res.Errors = append(res.Errors, report.FileError{Analyzer: "scan", Err: err.Error()})
		return res
	}
	var fas []FileAnalyzer
	for _, a := range analyzers {
		if fa, ok := a.(FileAnalyzer); ok {
			fas = append(fas, fa)
		}
	}
	prog := ProgressFrom(ctx)
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
		prog.Set(a.Name(), "")
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

// runVersion is Run's own share of every result, for Fingerprint: bump it when the shared walk (what it skips, in
// what order) or the package URLs Run fills in (report.PURL) change what a root's result holds.
const runVersion = 1

// Fingerprint names what Run makes of a root with these analyzers: Run's own version and walk bounds, then each
// analyzer's name and version in run order. Equal fingerprints mean equal results for the same root, whichever
// binary computed them, so cached analyses are keyed by it (node.CacheKey) rather than by rootscan's version: an
// upgrade that leaves the analyzers alone keeps them, a bumped analyzer invalidates them. It fails where Order does.
func Fingerprint(analyzers []Analyzer) (string, error) {
	ordered, err := Order(analyzers)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "run/%d walk/%d,%d", runVersion, fsaccess.DefaultWalkMaxEntries, fsaccess.DefaultWalkMaxDepth)
	for _, a := range ordered {
		fmt.Fprintf(&b, " %s/%d", a.Name(), a.Version())
	}
	return b.String(), nil
}
