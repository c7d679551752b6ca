package inuse

import (
	"slices"

	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// builder ties the package databases' entries (scan.Owner) to the result's packages.
type builder struct {
	res   *report.Result
	keys  []pkgKey
	byKey map[pkgKey]uint32
	// of maps each of res.Packages to its key's index.
	of []uint32
	// byName indexes the OS packages by manager and name.
	byName map[[2]string][]int
	// last caches the previous owner's answer: a list's lines all name the same package.
	last     scan.Owner
	lastPkgs []uint32
	lastSet  bool
}

func newBuilder(res *report.Result) *builder {
	b := &builder{res: res, byKey: map[pkgKey]uint32{}, of: make([]uint32, len(res.Packages)), byName: map[[2]string][]int{}}
	for i, p := range res.Packages {
		k := keyOf(p)
		j, ok := b.byKey[k]
		if !ok {
			j = uint32(len(b.keys))
			b.byKey[k] = j
			b.keys = append(b.keys, k)
		}
		b.of[i] = j
		b.byName[[2]string{p.FoundBy, p.Name}] = append(b.byName[[2]string{p.FoundBy, p.Name}], i)
	}
	return b
}

func (b *builder) index(i int) uint32 { return b.of[i] }

// owners returns the packages of the result that the database entry o stands for.
func (b *builder) owners(o scan.Owner) []uint32 {
	if b.lastSet && o == b.last {
		return b.lastPkgs
	}
	var out []uint32
	if o.Entry != "" {
		// A distroless entry's file name need not be the package's name; its stanza file is one of the package's
		// Locations.
		for i, p := range b.res.Packages {
			if p.FoundBy == o.Manager && slices.Contains(p.Locations, o.Entry) {
				out = append(out, b.of[i])
			}
		}
	} else {
		for _, i := range b.byName[[2]string{o.Manager, o.Name}] {
			if p := b.res.Packages[i]; o.Arch == "" || p.Arch == "" || p.Arch == o.Arch {
				out = append(out, b.of[i])
			}
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	b.last, b.lastPkgs, b.lastSet = o, out, true
	return out
}
