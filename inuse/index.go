// Package inuse decides which of a container's packages are in use: a package is in use when a file it owns was
// executed or mapped executable by a process of the container, as the kernel reported (the bpf Monitor) or as a
// process's /proc/<pid>/maps shows. Every vulnerability finding then carries InUse true, false or unknown.
//
// What it can say, and what it cannot:
//   - Only since watching began: a library mapped before the daemon started watching the container (or by a
//     process that has exited, for /proc maps) is not seen, so false means "not seen in use", not "never used".
//   - Only packages with files the kernel can see being executed or mapped: OS packages (dpkg, distroless
//     status.d, apk, rpm, through their file lists) and compiled programs (a Go or Rust binary is its own package:
//     its modules and crates are in use when the binary ran). Interpreted code (a Python, npm, Ruby, PHP or Java
//     package) is read, not mapped executable, so those findings stay unknown even with runtime data; the
//     interpreter's own package is what shows as in use.
//   - A path is tied to the package that lists it now: a library replaced on disk while a process still maps the
//     old copy counts for the package that owns the path today.
package inuse

import (
	"cmp"
	"context"
	"fmt"
	"hash/maphash"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// MaxEntries bounds the owned paths one Index holds (16 bytes each): a full Debian desktop lists about 300,000
// paths, a typical service image 5,000 to 30,000. Past the bound the rest are left out and Build says so.
const MaxEntries = 1 << 20

// Index maps a root's files to the packages that own them, so that in-use verdicts can be given long after the root
// was read (the daemon builds it while a container's root is mounted and marks findings as the kernel reports
// mappings). It keeps a keyed 64-bit hash of each owned path, not the path: about 16 bytes a path. The hash's seed
// is random per Index, so a hostile list cannot aim a collision at a path.
type Index struct {
	seed    maphash.Seed
	entries []entry // sorted by hash
	pkgs    []pkgKey
	byKey   map[pkgKey]uint32
	// observable marks the packages with at least one indexed file: only for them can "not in use" be said.
	observable []bool
	// complete is false when the lists were not all read (the entry bound, a hostile list's bound, cancellation):
	// a package may then own files the index lacks, and not seeing it in use proves nothing.
	complete bool
}

type entry struct {
	h   uint64
	pkg uint32
}

// pkgKey is what a finding and the package it was matched on share (vuln copies them from the package).
type pkgKey struct{ eco, name, version, purl string }

func keyOf(p report.Package) pkgKey { return pkgKey{p.Ecosystem, p.Name, p.Version, p.PURL} }

func vulnKey(v report.Vulnerability) pkgKey { return pkgKey{v.Ecosystem, v.Package, v.Version, v.PURL} }

// Options tune Build. The zero value is usable.
type Options struct {
	// MaxEntries bounds the owned paths kept; 0 means MaxEntries.
	MaxEntries int
	// Analyzer options for the readers of package databases (the rpm parser).
	Analyzer []scan.AnalyzerOption
}

// Build reads the ownership lists of the root res was scanned from and indexes the owned files of res's packages.
// res must be the result of scanning fsys (its packages are what the lists are tied to). The errors are about
// lists that could not be read and the entry bound; the Index is usable whatever they say, and when it could not
// read every list its verdicts are true or unknown, never false.
func Build(ctx context.Context, fsys scan.FS, res *report.Result, opts Options) (*Index, []report.FileError) {
	limit := cmp.Or(opts.MaxEntries, MaxEntries)
	b := newBuilder(res)
	x := &Index{seed: maphash.MakeSeed(), pkgs: b.keys, byKey: b.byKey}
	var errs []report.FileError
	full := false
	add := func(p string, pkgs []uint32) bool {
		for _, i := range pkgs {
			if full {
				return false
			}
			if len(x.entries) >= limit {
				full = true
				errs = append(errs, report.FileError{Analyzer: "in-use", Err: fmt.Sprintf("more than %d owned files: the rest are not indexed and their packages may show as not in use", limit)})
				return false
			}
			x.entries = append(x.entries, entry{h: x.hash(p), pkg: i})
		}
		return true
	}
	// A compiled program is its own package: its modules are in use when it runs.
	for i, p := range res.Packages {
		if !scan.IsProgramPackage(p) {
			continue
		}
		for _, loc := range p.Locations {
			if !add(strings.TrimPrefix(loc, "/"), []uint32{b.index(i)}) {
				break
			}
		}
	}
	if !full {
		werrs, complete := scan.WalkOwned(ctx, fsys, func(p string, o scan.Owner) bool {
			return add(p, b.owners(o))
		}, opts.Analyzer...)
		errs, x.complete = append(errs, werrs...), complete
	}
	if err := ctx.Err(); err != nil {
		errs = append(errs, report.FileError{Analyzer: "in-use", Err: fmt.Sprintf("ownership lists: %v", err)})
	}
	slices.SortFunc(x.entries, func(a, b entry) int { return cmp.Or(cmp.Compare(a.h, b.h), cmp.Compare(a.pkg, b.pkg)) })
	if x.entries = slices.Compact(x.entries); cap(x.entries) > len(x.entries)+len(x.entries)/4 {
		x.entries = slices.Clone(x.entries) // give back what appending over-allocated: the index is long-lived
	}
	x.observable = make([]bool, len(x.pkgs))
	for _, e := range x.entries {
		x.observable[e.pkg] = true
	}
	return x, errs
}

func (x *Index) hash(p string) uint64 { return maphash.String(x.seed, p) }

// owned appends the packages that own the root-relative path p.
func (x *Index) owned(p string, to []uint32) []uint32 {
	h := x.hash(p)
	i, _ := slices.BinarySearchFunc(x.entries, h, func(e entry, h uint64) int { return cmp.Compare(e.h, h) })
	for ; i < len(x.entries) && x.entries[i].h == h; i++ {
		to = append(to, x.entries[i].pkg)
	}
	return to
}

// relPath turns a container-absolute path into the root-relative form the index holds; false for a path that
// cannot name a file of the root ("..", NUL, empty, a relative path such as "anon_inode:...").
func relPath(p string) (string, bool) {
	if !strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) {
		return "", false
	}
	rel := strings.TrimPrefix(path.Clean(p), "/")
	if rel == "" || !fs.ValidPath(rel) {
		return "", false
	}
	return rel, true
}

// Len is the number of owned paths indexed: what the Index costs (about 16 bytes each), for callers that keep
// many Indexes under one bound.
func (x *Index) Len() int { return len(x.entries) }
