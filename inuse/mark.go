package inuse

import (
	"slices"

	"github.com/rootscan/rootscan/report"
)

// Mark sets InUse on every finding of res. known says whether runtime data exists for the container (the daemon
// watched it, or its processes' maps were read); without it every finding is unknown, as it is without an Index.
// With it, a finding is true when a file of its package is among used (container-absolute paths of files executed
// or mapped executable), false when the package has indexed files and none was used (and the index read every
// list), and unknown when the package has no file the index knows (interpreted-language packages, a package matched
// on something other than its files).
func Mark(res *report.Result, x *Index, used []string, known bool) {
	if res == nil {
		return
	}
	var inUse []bool
	if known && x != nil {
		inUse = x.inUse(used)
	}
	for i := range res.Vulnerabilities {
		v := &res.Vulnerabilities[i]
		v.InUse = report.InUseUnknown
		if inUse == nil {
			continue
		}
		if j, ok := x.byKey[vulnKey(*v)]; ok && x.observable[j] {
			switch {
			case inUse[j]:
				v.InUse = report.InUseTrue
			case x.complete:
				v.InUse = report.InUseFalse
			}
		}
	}
}

// inUse marks the packages (by key index) that own one of used.
func (x *Index) inUse(used []string) []bool {
	out := make([]bool, len(x.pkgs))
	var buf []uint32
	for _, p := range used {
		rel, ok := relPath(p)
		if !ok {
			continue
		}
		buf = x.owned(rel, buf[:0])
		for _, j := range buf {
			out[j] = true
		}
	}
	return out
}

// DropNotInUse removes the findings marked not in use (InUse false), for --in-use-only; unknown ones stay, as a
// finding nothing was learned about must not disappear.
func DropNotInUse(vs []report.Vulnerability) []report.Vulnerability {
	return slices.DeleteFunc(vs, func(v report.Vulnerability) bool { return v.InUse == report.InUseFalse })
}
