package scan

import (
	"cmp"
	"slices"
	"strings"

	"github.com/rootscan/rootscan/report"
)

// mergePackages folds the packages that analyzer foundBy added to out into one per (ecosystem, name, version), with
// sorted, de-duplicated Locations, and sorts them; other analyzers' packages keep their place and order.
func mergePackages(out *report.Result, foundBy string) {
	type key struct{ eco, name, version string }
	index := map[key]int{}
	var mine []report.Package
	kept := out.Packages[:0]
	for _, p := range out.Packages {
		if p.FoundBy != foundBy {
			kept = append(kept, p)
			continue
		}
		k := key{p.Ecosystem, p.Name, p.Version}
		if i, ok := index[k]; ok {
			mine[i].Locations = append(mine[i].Locations, p.Locations...)
			if p.Evidence.Stronger(mine[i].Evidence) {
				mine[i].Evidence = p.Evidence
			}
			continue
		}
		index[k] = len(mine)
		p.Locations = slices.Clone(p.Locations)
		mine = append(mine, p)
	}
	for i := range mine {
		slices.Sort(mine[i].Locations)
		mine[i].Locations = slices.Compact(mine[i].Locations)
	}
	slices.SortFunc(mine, func(x, y report.Package) int {
		return cmp.Or(strings.Compare(x.Name, y.Name), strings.Compare(x.Version, y.Version))
	})
	out.Packages = append(kept, mine...)
}
