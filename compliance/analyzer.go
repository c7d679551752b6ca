package compliance

import (
	"context"
	"io/fs"
	"regexp"
	"sort"
	"strings"

	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// Analyzer runs an Engine's controls as one scan analyzer, for one target, and adds its results to
// Result.Compliance. packages() reads the whole inventory, so it is a scan.InventoryReader: it runs after every
// package analyzer, whichever a caller has.
//
// When a control of the target's profiles calls files(), the analyzer takes the root's entries from the shared
// walk instead of walking the tree again: the walk's readdir is reused, and so is the Lstat other analyzers
// already made of each regular file (the walk caches it per entry). Stat through the confined root is the bulk of
// a walk's cost, so this saves the second pass over the tree.
type Analyzer struct {
	engine   *Engine
	target   report.Target
	volumes  []Volume
	wantTree bool
	// listing collects the root's entries; past the entry bound, files() walks itself and reports the bound.
	listing walkListing
}

// Analyzer returns the analyzer for one target, with the container's volumes (nil for images and directories).
func (e *Engine) Analyzer(t report.Target, vols []Volume) *Analyzer {
	return &Analyzer{engine: e, target: t, volumes: vols, wantTree: e.usesFiles(t)}
}

// Name implements scan.Analyzer.
func (a *Analyzer) Name() string { return "compliance" }

// Version implements scan.Analyzer.
func (a *Analyzer) Version() int { return 1 }

// Requires implements scan.Analyzer: what it reads is the inventory as a whole (ReadsInventory), not one analyzer's.
func (a *Analyzer) Requires() []string { return nil }

// ReadsInventory implements scan.InventoryReader.
func (a *Analyzer) ReadsInventory() {}

// Paths implements scan.Analyzer; Wants answers for changed paths instead (any file can matter to a control).
func (a *Analyzer) Paths() []string { return nil }

// Wants implements scan.FileAnalyzer. A change anywhere in a container's upper dir re-runs the controls (d == nil).
// For walked entries it never asks for AnalyzeFile: it only records the entry (with its Lstat, shared with the
// other analyzers) when files() will need it.
func (a *Analyzer) Wants(name string, d fs.DirEntry) bool {
	if d == nil {
		return true
	}
	if a.wantTree {
		// Unreadable entries are left out, as the standalone walk does (which warns about them).
		a.listing.visit(a.engine.Limits.withDefaults(), name, d)
	}
	return false
}

// AnalyzeFile implements scan.FileAnalyzer; it is never called since Wants refuses every walked entry.
func (a *Analyzer) AnalyzeFile(context.Context, scan.FS, string, *report.Result) error { return nil }

// Analyze implements scan.Analyzer.
func (a *Analyzer) Analyze(ctx context.Context, fsys scan.FS, out *report.Result) error {
	tree, deep := a.listing.tb.out, a.listing.deep
	cut, walkDeep := walkCut(out)
	if !a.wantTree || a.listing.spoiled || cut {
		tree, deep = nil, nil
	} else if tree == nil {
		tree = []*fileData{} // an empty root: collected, nothing in it
	}
	if tree != nil && len(walkDeep) > 0 {
		deep = outermost(append(deep, walkDeep...))
	}
	a.listing = walkListing{}
	out.Compliance = append(out.Compliance, a.engine.evaluate(ctx, fsys, a.target, a.volumes, out, tree, deep)...)
	return ctx.Err()
}

// outermost sorts dirs and drops those below another of them: with a compliance bound below the walk's, the walk
// also leaves out directories within one the analyzer already left out.
func outermost(dirs []string) []string {
	sort.Strings(dirs)
	kept := map[string]bool{}
	out := dirs[:0]
	for _, d := range dirs {
		inside := false
		for i := strings.LastIndexByte(d, '/'); i > 0 && !inside; i = strings.LastIndexByte(d[:i], '/') {
			inside = kept[d[:i]]
		}
		if !inside {
			kept[d] = true
			out = append(out, d)
		}
	}
	return out
}

// walkCut says whether the shared walk stopped at its entry bound, leaving the collected tree incomplete, and
// which directories it left out for depth (a bound error with the directory's path), paths from the top.
func walkCut(out *report.Result) (cut bool, deep []string) {
	for _, e := range out.Errors {
		if e.Analyzer != "walk" || !strings.Contains(e.Err, scan.ErrWalkLimit.Error()) {
			continue
		}
		if e.Path == "" {
			return true, nil
		}
		deep = append(deep, "/"+e.Path)
	}
	return false, deep
}

// callsFiles finds a files() call in an expression's source; a false match only costs the collection.
var callsFiles = regexp.MustCompile(`\bfiles\s*\(`)

// usesFiles says whether any control that applies to t calls files().
func (e *Engine) usesFiles(t report.Target) bool {
	for _, p := range e.Scope.Select(e.Profiles, t) {
		for _, c := range p.Controls {
			if c.OnlyIf != nil && callsFiles.MatchString(c.OnlyIf.Src) {
				return true
			}
			for _, ck := range c.Checks {
				if callsFiles.MatchString(ck.Src) || ck.Observed != nil && callsFiles.MatchString(ck.Observed.Src) {
					return true
				}
			}
		}
	}
	return false
}
