package inuse

import (
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rootscan/rootscan/report"
)

// bytes estimates the memory the index holds: its entries and package keys (map overhead left out).
func (x *Index) bytes() int {
	n := cap(x.entries)*16 + len(x.observable)
	for _, k := range x.pkgs {
		n += 4*16 + len(k.eco) + len(k.name) + len(k.version) + len(k.purl) + 4
	}
	return n
}

// size is the number of (path, package) pairs held.
func (x *Index) size() int { return len(x.entries) }

// ownersOf returns the packages that own the file at p (container-absolute, as the kernel reports it, or
// root-relative), in the words of report.Package: ecosystem, name and version. It is nil for a file no package owns.
func (x *Index) ownersOf(p string) []report.Package {
	rel, ok := relPath(p)
	if !ok {
		return nil
	}
	var out []report.Package
	for _, i := range x.owned(rel, nil) {
		k := x.pkgs[i]
		out = append(out, report.Package{Ecosystem: k.eco, Name: k.name, Version: k.version, PURL: k.purl})
	}
	return out
}

// packagesOf returns the packages of the index that own one of used, in the words of report.Package (ecosystem,
// name, version, purl), for logs and tests.
func (x *Index) packagesOf(used []string) []report.Package {
	var out []report.Package
	for j, u := range x.inUse(used) {
		if u {
			k := x.pkgs[j]
			out = append(out, report.Package{Ecosystem: k.eco, Name: k.name, Version: k.version, PURL: k.purl})
		}
	}
	return out
}

// trimRoot keeps the paths under root (the directory a container's root is mounted at, as the reader sees it) and
// returns them as the container sees them ("/usr/lib/..."); paths outside root (a volume, the host) are left out.
func trimRoot(paths []string, root string) []string {
	root = filepath.Clean(root)
	if root == "/" {
		return slices.Clone(paths)
	}
	var out []string
	for _, p := range paths {
		if rel, ok := strings.CutPrefix(p, root+"/"); ok {
			out = append(out, "/"+rel)
		}
	}
	return out
}

// parseMapsAll is parseMaps with the bound of one process's listing.
func parseMapsAll(r io.Reader) ([]string, error) {
	out, _, err := parseMaps(r, mapsMaxBytes)
	return out, err
}
