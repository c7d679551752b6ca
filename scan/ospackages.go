package scan

import (
	"cmp"
	"slices"
	"strings"

	"github.com/rootscan/rootscan/report"
)

// osPackages collects what an OS package database lists (dpkg, apk, rpm): one package per (name, arch, version),
// with every file that says it is installed, in the order the files were read. Images often carry the same database
// twice (status and status.d, a linked var/lib/rpm); the package is still one package.
type osPackages struct {
	index map[osPackageKey]int
	pkgs  []report.Package
}

type osPackageKey struct{ name, arch, version string }

// add records pkg as listed by the file location.
func (s *osPackages) add(pkg report.Package, location string) {
	k := osPackageKey{pkg.Name, pkg.Arch, pkg.Version}
	if i, ok := s.index[k]; ok {
		if !slices.Contains(s.pkgs[i].Locations, location) {
			s.pkgs[i].Locations = append(s.pkgs[i].Locations, location)
		}
		return
	}
	if s.index == nil {
		s.index = map[osPackageKey]int{}
	}
	pkg.Locations = []string{location}
	s.index[k] = len(s.pkgs)
	s.pkgs = append(s.pkgs, pkg)
}

// sorted returns the packages by name, arch and version: the same database gives the same report.
func (s *osPackages) sorted() []report.Package {
	slices.SortFunc(s.pkgs, func(x, y report.Package) int {
		return cmp.Or(strings.Compare(x.Name, y.Name), strings.Compare(x.Arch, y.Arch), strings.Compare(x.Version, y.Version))
	})
	return s.pkgs
}
