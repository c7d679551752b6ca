package compliance

import (
	"context"
	"io/fs"
	"strings"

	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// ListingCollector is a scan analyzer that collects an image's files() listing during the walk of the image's
// analysis, for the image's evaluation: its containers then list their merged roots from it and their upper dirs
// (deltaTree), and the first container of an image, evaluated on its own root, does not walk the whole root a second
// time. The walk of the merged root was most of a first node scan's compliance cost.
//
// The listing is kept only when it is what files()'s own walk of the image gives: no entry unreadable, no walk error
// or bound (the analysis walk's bounds may differ from the engine's), none past the engine's entry bound.
type ListingCollector struct {
	ie      *ImageEval
	lim     Limits
	listing walkListing
}

// walkListing records a root's files() entries from the shared walk, with the Lstat the walk shares, bounded as
// files()'s own walk is (Limits.MaxEntries, MaxDepth, MaxDirPath, MaxTreeBytes), so that both stop at the same entry.
type walkListing struct {
	tb         treeBuilder
	spoiled    bool     // past the entry or byte bound: nothing is kept, files() walks itself and reports the bound
	unreadable bool     // an entry's Lstat failed; it is left out
	deep       []string // directories left out for depth or path length, paths from the top
	deepName   string   // the last of them as the walk names it, whose entries are left out too
	used       int      // bytes charged against Limits.MaxTreeBytes, as the standalone walk charges them
}

// visit records one walked entry.
func (w *walkListing) visit(lim Limits, name string, d fs.DirEntry) {
	switch {
	case w.spoiled:
		return
	case len(w.tb.out) >= lim.MaxEntries:
		*w = walkListing{spoiled: true}
		return
	case w.deepName != "" && strings.HasPrefix(name, w.deepName+"/"):
		return
	case d.IsDir() && (strings.Count(name, "/")+1 > lim.MaxDepth || len(name)+1 > lim.MaxDirPath):
		if w.charge(lim, name) {
			w.deep, w.deepName = append(w.deep, "/"+name), name
		}
		return
	}
	fi, err := d.Info()
	if err != nil {
		w.unreadable = true
		return
	}
	if w.charge(lim, name) {
		w.tb.add(nil, name, fi)
	}
}

// charge counts name against Limits.MaxTreeBytes as the standalone walk does; past it the listing is dropped.
func (w *walkListing) charge(lim Limits, name string) bool {
	w.used += len(name) + 1 + fileDataBytes
	if w.used > lim.MaxTreeBytes {
		*w = walkListing{spoiled: true}
		return false
	}
	return true
}

// ListingCollector returns a collector for ie's image, nil when no control calls files() or the evaluation has a
// listing already. The listing serves the first container evaluated on its own root, and is then dropped.
func (ie *ImageEval) ListingCollector() *ListingCollector {
	ie.mu.Lock()
	has := ie.tree != nil || ie.listing != nil
	ie.mu.Unlock()
	if has || !ie.engine.anyUsesFiles() {
		return nil
	}
	return &ListingCollector{ie: ie, lim: ie.engine.Limits.withDefaults()}
}

// anyUsesFiles says whether a control of any profile calls files(), whichever targets its scope selects.
func (e *Engine) anyUsesFiles() bool {
	return (&Engine{Profiles: e.Profiles}).usesFiles(report.Target{})
}

// Name implements scan.Analyzer.
func (c *ListingCollector) Name() string { return "compliance-listing" }

// Version implements scan.Analyzer.
func (c *ListingCollector) Version() int { return 1 }

// Requires implements scan.Analyzer.
func (c *ListingCollector) Requires() []string { return nil }

// Paths implements scan.Analyzer.
func (c *ListingCollector) Paths() []string { return nil }

// Wants implements scan.FileAnalyzer: it records the entry, with the Lstat the walk shares, and never asks for it.
func (c *ListingCollector) Wants(name string, d fs.DirEntry) bool {
	if d != nil {
		c.listing.visit(c.lim, name, d)
	}
	return false
}

// AnalyzeFile implements scan.FileAnalyzer; never called.
func (c *ListingCollector) AnalyzeFile(context.Context, scan.FS, string, *report.Result) error {
	return nil
}

// Analyze implements scan.Analyzer: the walk is over; the listing goes to the image's evaluation if it is whole.
func (c *ListingCollector) Analyze(ctx context.Context, _ scan.FS, out *report.Result) error {
	l := c.listing
	c.listing = walkListing{}
	// An unreadable entry is one files() would warn about: the image's listing is not kept then either (keepTree).
	if l.spoiled || l.unreadable || ctx.Err() != nil {
		return nil
	}
	for _, e := range out.Errors {
		if e.Analyzer == "walk" {
			return nil
		}
	}
	t := &imageTree{entries: make([]fileData, len(l.tb.out)), deep: l.deep}
	t.bytes = len(t.entries) * fileDataBytes
	for i, d := range l.tb.out {
		if i > 0 && walkCompare(l.tb.out[i-1].path, d.path) >= 0 {
			return nil // not in walk order, as deltaTree needs it: not expected from the one walk, and not trusted
		}
		t.entries[i] = *d
		t.bytes += len(d.path)
	}
	for _, p := range t.deep {
		t.bytes += len(p) + 16
	}
	if t.bytes > maxKeptTreeBytes {
		return nil
	}
	c.ie.mu.Lock()
	if c.ie.tree == nil {
		c.ie.listing = t
	}
	c.ie.mu.Unlock()
	return nil
}
