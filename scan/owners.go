package scan

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/rootscan/rootscan/report"
)

// Owner is the package database entry that lists a file: what WalkOwned hands out with each path, so that a caller
// can tie a file to the report.Package the same database produced.
type Owner struct {
	// Manager is the FoundBy of the analyzer that lists the package: "dpkg", "apk" or "rpm".
	Manager string
	// Name is the package's name as its database spells it; for a distroless status.d entry it is the entry's file
	// name, which need not be the package's (Entry ties them).
	Name string
	// Arch is the architecture the database records, when it records one in the list's name (dpkg's
	// info/<name>:<arch>.list) or entry (rpm).
	Arch string
	// List is the root-relative database file the entry comes from: var/lib/dpkg/info/<name>.list,
	// var/lib/dpkg/status.d/<entry>.md5sums, lib/apk/db/installed or the rpm database.
	List string
	// Entry is, for a distroless status.d entry, its stanza file (var/lib/dpkg/status.d/<entry>): one of the
	// Locations of the package the dpkg analyzer read from it. Empty for the other databases.
	Entry string
}

// WalkOwned calls fn with every path the root's package databases list (dpkg info/*.list, info/*.md5sums of packages
// without a .list, distroless status.d/*.md5sums, apk's installed database, rpm's file lists) and the package that
// lists it, until fn returns false. It reads the lists the unowned-files analyzer reads, with its bounds (64 MiB
// and 16 KiB lines per list, confined reads).
//
// Paths are root-relative and resolved the way the kernel sees the file: a list's directory is followed through the
// root's symlinks (confined, cached per directory), so /lib/x86_64-linux-gnu/libc.so.6 listed on a merged-/usr root
// is handed out as usr/lib/x86_64-linux-gnu/libc.so.6. The base name is not followed: a listed symlink stays itself
// (its target is listed by whoever ships it). A dpkg-diverted path is handed out both as listed and where dpkg put
// the file, as the unowned-files analyzer counts both owned. Directories are handed out too; the lists do not say
// which lines are directories.
//
// The errors are about lists that could not be read; what was read before is still handed out. complete is false
// when the walk ended before the last list: fn asked to stop, the directory bound was reached, or ctx ended.
func WalkOwned(ctx context.Context, fsys FS, fn func(path string, o Owner) bool, opts ...AnalyzerOption) (errs []report.FileError, complete bool) {
	return walkOwned(ctx, fsys, fn, ownedMaxDirBytes, opts...)
}

func walkOwned(ctx context.Context, fsys FS, fn func(path string, o Owner) bool, maxDirBytes int64, opts ...AnalyzerOption) ([]report.FileError, bool) {
	a := NewUnownedFiles(opts...).(*unownedFiles)
	s := newOwnership(fsys, nil)
	s.visit = func(p string) bool { return fn(p, s.cur) }
	s.maxDirBytes = maxDirBytes
	s.readDpkg(ctx, a)
	s.readApk(ctx, a)
	s.readRPM(ctx, a)
	return s.errs, !s.stopped && ctx.Err() == nil
}

const (
	// ownedMaxPath is the longest listed path handed out (PATH_MAX): the kernel reports none longer, and a hostile
	// list's deep paths would each cost a resolution per directory level.
	ownedMaxPath = 4096
	// ownedMaxDirBytes bounds the resolved directories WalkOwned keeps (their names, twice, and dirEntryOverhead
	// each), and so the lstat calls resolving them (at most a million): a Debian desktop's lists name about 30,000
	// directories, a few MiB.
	ownedMaxDirBytes = 64 << 20
	// dirEntryOverhead is what one cached directory costs beyond its names (map entry and string headers).
	dirEntryOverhead = 64
)

// visitListed hands one listed path (and, when dpkg diverted it, its new place) to visit, resolved. Past the
// directory bound the walk stops and says so.
func (s *ownership) visitListed(p string) {
	if len(p) > ownedMaxPath {
		return
	}
	if s.dirBytes > s.maxDirBytes {
		s.fail(s.cur.List, fmt.Errorf("%w: the lists name more than %d bytes of directories; the rest were not read", ErrWalkLimit, s.maxDirBytes))
		s.stopped = true
		return
	}
	if to, ok := s.diversions[p]; ok && !s.stopped {
		s.stopped = !s.visit(s.resolveFile(to))
	}
	if !s.stopped {
		s.stopped = !s.visit(s.resolveFile(p))
	}
}

// resolveFile resolves the directory of a listed path; the base name stays as listed.
func (s *ownership) resolveFile(p string) string {
	dir := s.resolveDir(path.Dir(p))
	if dir == "." {
		return path.Base(p)
	}
	return dir + "/" + path.Base(p)
}

// dpkgInfoOwner names the package of info/<name>[:<arch>]<suffix>.
func dpkgInfoOwner(file, suffix string) Owner {
	name, arch, _ := strings.Cut(strings.TrimSuffix(file, suffix), ":")
	return Owner{Manager: dpkgName, Name: name, Arch: arch, List: dpkgInfoDir + "/" + file}
}

// IsProgramPackage reports whether p was read out of a compiled program (Go build info, Rust cargo-auditable data):
// such a package is its program, and its Locations are the programs' paths, so running one of them uses it.
func IsProgramPackage(p report.Package) bool {
	return p.FoundBy == goBinaryName || p.FoundBy == rustBinaryName
}
