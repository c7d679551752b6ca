package scan

import (
	"fmt"
	"slices"
	"strings"
)

// Order returns the analyzers in the order Run calls their Analyze: each after the analyzers it Requires, and every
// InventoryReader after all the others. Among analyzers free to go, the caller's order stands, so the order of a
// Result's packages (which follows the order analyzers add them) only changes when a requirement forces it.
//
// It fails on a set that cannot run as declared: two analyzers with one name, a requirement that is not in the set,
// or analyzers that require each other (the error names the cycle).
func Order(analyzers []Analyzer) ([]Analyzer, error) {
	after, err := requirements(analyzers)
	if err != nil {
		return nil, err
	}
	placed := make([]bool, len(analyzers))
	ready := func(i int) bool {
		return !placed[i] && !slices.ContainsFunc(after[i], func(j int) bool { return !placed[j] })
	}
	out := make([]Analyzer, 0, len(analyzers))
	for len(out) < len(analyzers) {
		i := 0
		for i < len(analyzers) && !ready(i) {
			i++
		}
		if i == len(analyzers) {
			return nil, cycleError(analyzers, after, placed)
		}
		placed[i] = true
		out = append(out, analyzers[i])
	}
	return out, nil
}

// requirements lists, for each analyzer, the indexes of those that must run before it.
func requirements(analyzers []Analyzer) ([][]int, error) {
	index := make(map[string]int, len(analyzers))
	for i, a := range analyzers {
		if _, dup := index[a.Name()]; dup {
			return nil, fmt.Errorf("order analyzers: two analyzers are named %q", a.Name())
		}
		index[a.Name()] = i
	}
	after := make([][]int, len(analyzers))
	for i, a := range analyzers {
		for _, name := range a.Requires() {
			j, ok := index[name]
			if !ok {
				return nil, fmt.Errorf("order analyzers: %s requires %s, which is not among them", a.Name(), name)
			}
			after[i] = append(after[i], j)
		}
		if isInventoryReader(a) {
			for j, b := range analyzers {
				if !isInventoryReader(b) {
					after[i] = append(after[i], j)
				}
			}
		}
	}
	return after, nil
}

func isInventoryReader(a Analyzer) bool {
	_, ok := a.(InventoryReader)
	return ok
}

// cycleError names one cycle among the analyzers not yet placed. Each of them waits for another unplaced one (else
// it would be ready), so following the first such wait from any of them must come back to an analyzer already seen.
func cycleError(analyzers []Analyzer, after [][]int, placed []bool) error {
	i := slices.Index(placed, false)
	seen := map[int]int{} // analyzer -> position in path
	var path []int
	for {
		if at, ok := seen[i]; ok {
			path = append(path[at:], i)
			break
		}
		seen[i] = len(path)
		path = append(path, i)
		i = after[i][slices.IndexFunc(after[i], func(j int) bool { return !placed[j] })]
	}
	names := make([]string, len(path))
	for k, j := range path {
		names[k] = analyzers[j].Name()
	}
	return fmt.Errorf("order analyzers: requirement cycle %s (each must run after the next; an InventoryReader after every other analyzer)", strings.Join(names, " -> "))
}
