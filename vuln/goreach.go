package vuln

import (
	"encoding/json"
	"slices"

	"github.com/rootscan/rootscan/report"
)

// Bounds on a Go advisory's imports, far above the Go database's largest record (a few dozen packages, a few
// hundred symbols).
const (
	maxGoImports = 1024
	maxGoSymbols = 16384
)

// GoImport is one entry of a Go advisory's ecosystem_specific.imports: a vulnerable package, the functions
// that carry the vulnerability (none: the whole package) and the platforms it is limited to (none: all).
type GoImport struct {
	Path    string   `json:"p"`
	GOOS    []string `json:"os,omitempty"`
	GOARCH  []string `json:"ar,omitempty"`
	Symbols []string `json:"sy,omitempty"`
}

// goImports reads the imports of a Go affected entry; records of other ecosystems, and imports too large to be
// real, give none.
func goImports(af *Affected) []GoImport {
	if af.Package.Ecosystem != report.EcosystemGo || len(af.EcosystemSpecific) == 0 {
		return nil
	}
	var es struct {
		Imports []struct {
			Path    string   `json:"path"`
			GOOS    []string `json:"goos"`
			GOARCH  []string `json:"goarch"`
			Symbols []string `json:"symbols"`
		} `json:"imports"`
	}
	if json.Unmarshal(af.EcosystemSpecific, &es) != nil || len(es.Imports) > maxGoImports {
		return nil
	}
	var out []GoImport
	n := 0
	for _, im := range es.Imports {
		if n += len(im.Symbols); n > maxGoSymbols {
			return nil
		}
		out = append(out, GoImport{Path: im.Path, GOOS: im.GOOS, GOARCH: im.GOARCH, Symbols: im.Symbols})
	}
	return out
}

// goBins indexes a result's Go programs by path, for the programs a Go package was found in (its Locations).
type goBins map[string]*report.GoBinary

func newGoBins(res *report.Result) goBins {
	m := goBins{}
	for i := range res.GoBinaries {
		m[res.GoBinaries[i].Path] = &res.GoBinaries[i]
	}
	return m
}

// of returns the described programs that contain p.
func (m goBins) of(p report.Package) []*report.GoBinary {
	var out []*report.GoBinary
	for _, l := range p.Locations {
		if b := m[l]; b != nil {
			out = append(out, b)
		}
	}
	return out
}

// goPlatform says whether a platform list (GOOS or GOARCH of an import) admits v, as govulncheck decides: an
// empty list, or an unknown platform, admits everything.
func goPlatform(v string, list []string) bool {
	return v == "" || len(list) == 0 || slices.Contains(list, v)
}

// importsFor returns the imports of af that apply to program b (all of them with b nil), and whether af applies
// at all: an entry whose imports all name other platforms does not.
func importsFor(af *advAffected, b *report.GoBinary) ([]GoImport, bool) {
	if len(af.Imports) == 0 {
		return nil, true
	}
	var goos, goarch string
	if b != nil {
		goos, goarch = b.GOOS, b.GOARCH
	}
	var out []GoImport
	for _, im := range af.Imports {
		if goPlatform(goos, im.GOOS) && goPlatform(goarch, im.GOARCH) {
			out = append(out, im)
		}
	}
	return out, len(out) > 0
}

// goApplies says whether a Go affected entry applies to at least one of the programs containing the package (to
// the package, when no program is described: nothing to filter on).
func goApplies(af *advAffected, bins []*report.GoBinary) bool {
	if len(bins) == 0 {
		_, ok := importsFor(af, nil)
		return ok
	}
	for _, b := range bins {
		if _, ok := importsFor(af, b); ok {
			return true
		}
	}
	return false
}

// goReachability is govulncheck's symbol-level verdict for advisory a on module mod at version v, over the
// programs that contain it: true when one of them has a vulnerable function of an entry that applies to it (any
// function of a package an import names without symbols; any package of the module for an entry without
// imports), false when every program's function table was read and none has, unknown otherwise.
func goReachability(a *advisory, mod, v string, bins []*report.GoBinary) report.Reachability {
	sawFalse, sawUnknown := false, false
	for _, b := range bins {
		switch goReachableIn(a, mod, v, b) {
		case report.ReachableTrue:
			return report.ReachableTrue
		case report.ReachableFalse:
			sawFalse = true
		case report.ReachableUnknown:
			sawUnknown = true
		}
	}
	if sawFalse && !sawUnknown {
		return report.ReachableFalse
	}
	return report.ReachableUnknown
}

// goReachableIn is the verdict for one program; "" when no entry applies to its platform.
func goReachableIn(a *advisory, mod, v string, b *report.GoBinary) report.Reachability {
	var verdict report.Reachability
	for i := range a.Affected {
		af := &a.Affected[i]
		if af.Ecosystem != report.EcosystemGo || af.Name != mod {
			continue
		}
		if hit, _, _ := affects(af, v); !hit {
			continue
		}
		imports, ok := importsFor(af, b)
		if !ok {
			continue
		}
		if b.Symbols == nil {
			return report.ReachableUnknown
		}
		verdict = report.ReachableFalse
		if goImportsIn(b.Symbols, mod, imports) {
			return report.ReachableTrue
		}
	}
	return verdict
}

// goImportsIn says whether a function table holds code an entry's imports name.
func goImportsIn(s *report.GoSymbols, mod string, imports []GoImport) bool {
	if len(imports) == 0 {
		return s.Has(report.GoModuleKey(mod))
	}
	for _, im := range imports {
		if len(im.Symbols) == 0 {
			if s.Has(report.GoPackageKey(im.Path)) {
				return true
			}
			continue
		}
		for _, sym := range im.Symbols {
			if s.Has(report.GoSymbolKey(im.Path, sym)) {
				return true
			}
		}
	}
	return false
}

// DropUnreachable removes, in place, the findings known to be unreachable (Go findings whose vulnerable code is in
// none of the programs that contain the module) and returns the rest: what a --reachable-only filter shows.
// Findings of undecided reachability stay (every other ecosystem, Go programs without a readable function table):
// dropping them would hide every OS package's findings.
func DropUnreachable(vs []report.Vulnerability) []report.Vulnerability {
	return slices.DeleteFunc(vs, func(v report.Vulnerability) bool { return v.Reachable == report.ReachableFalse })
}
