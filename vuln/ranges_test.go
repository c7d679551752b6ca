package vuln

import (
	"fmt"
	"strings"
	"testing"
)

// rng builds a range from "i:X" (introduced), "f:X" (fixed), "l:X" (last_affected) and "x:X" (limit) events, in
// the order given (affects sorts them, as the OSV evaluation requires).
func rng(typ string, evs ...string) Range {
	r := Range{Type: typ}
	for _, e := range evs {
		k, v, _ := strings.Cut(e, ":")
		switch k {
		case "i":
			r.Events = append(r.Events, Event{Introduced: v})
		case "f":
			r.Events = append(r.Events, Event{Fixed: v})
		case "l":
			r.Events = append(r.Events, Event{LastAffected: v})
		case "x":
			r.Events = append(r.Events, Event{Limit: v})
		}
	}
	return r
}

// TestOSVRangeEdgeCases evaluates introduced / fixed / last_affected per the OSV schema's algorithm on each
// ecosystem's ordering, at the edges that differ between orderings: epochs, "~" sorting before everything in
// Debian, Alpine's _p (patch, after the release) and _rc (before) suffixes and -r revisions, PEP 440 local versions
// (after their public version) and epochs, Maven qualifiers (alpha < beta < milestone < rc < snapshot < "" = ga =
// final < sp), SemVer pre-releases and build metadata, and several ranges in one entry.
func TestOSVRangeEdgeCases(t *testing.T) {
	type tc struct {
		version string
		hit     bool
		fixed   string
	}
	for _, c := range []struct {
		eco    string
		ranges []Range
		cases  []tc
	}{
		{"Debian:12", []Range{rng("ECOSYSTEM", "i:0", "f:1:1.2-1")}, []tc{
			{"1.3-1", true, "1:1.2-1"}, {"1:1.1-1", true, "1:1.2-1"}, {"1:1.2-1", false, ""}, {"2:0.1-1", false, ""},
		}},
		{"Debian:12", []Range{rng("ECOSYSTEM", "i:0", "f:1.2~rc1-1")}, []tc{
			{"1.2~beta1-1", true, "1.2~rc1-1"}, {"1.2~rc1-1", false, ""}, {"1.2-1", false, ""}, {"1.1-9", true, "1.2~rc1-1"},
		}},
		{"Debian:12", []Range{rng("ECOSYSTEM", "i:1.5-1", "l:2.0-1")}, []tc{
			{"1.4-1", false, ""}, {"1.5-1", true, ""}, {"1.6+dfsg-1", true, ""}, {"2.0~rc1-1", true, ""},
			{"2.0-1", true, ""}, {"2.0-1+deb12u1", false, ""},
		}},
		{"Alpine:v3.19", []Range{rng("ECOSYSTEM", "i:0", "f:1.2.3-r1")}, []tc{
			{"1.2.3-r0", true, "1.2.3-r1"}, {"1.2.3-r1", false, ""}, {"1.2.3_rc1-r5", true, "1.2.3-r1"},
			{"1.2.3_p1-r0", false, ""}, {"1.2.2_p9-r3", true, "1.2.3-r1"},
		}},
		{"PyPI", []Range{rng("ECOSYSTEM", "i:0", "f:2.0.0")}, []tc{
			{"2.0.0rc1", true, "2.0.0"}, {"1.9.post1", true, "2.0.0"}, {"2.0.0", false, ""}, {"2.0.0+local.1", false, ""},
			{"1.9+local", true, "2.0.0"}, {"2.0.0.post1", false, ""}, {"1!1.0", false, ""}, {"2.0", false, ""},
		}},
		{"PyPI", []Range{rng("ECOSYSTEM", "i:1.0", "l:1.5")}, []tc{
			{"0.9", false, ""}, {"1.0", true, ""}, {"1.5", true, ""}, {"1.5+ubuntu1", false, ""}, {"1.5.post1", false, ""},
			{"1.5rc1", true, ""},
		}},
		{"Maven", []Range{rng("ECOSYSTEM", "i:0", "f:2.0")}, []tc{
			{"2.0-alpha-1", true, "2.0"}, {"2.0-beta-2", true, "2.0"}, {"2.0-M1", true, "2.0"}, {"2.0-RC1", true, "2.0"},
			{"2.0-SNAPSHOT", true, "2.0"}, {"2.0", false, ""}, {"2.0.0", false, ""}, {"2.0.Final", false, ""},
			{"2.0-ga", false, ""}, {"2.0-sp1", false, ""}, {"1.9.9", true, "2.0"},
		}},
		{"Go", []Range{rng("SEMVER", "i:0", "f:1.22.1")}, []tc{
			{"1.22.0", true, "1.22.1"}, {"1.22.1-rc.1", true, "1.22.1"}, {"1.22.1", false, ""}, {"1.22.1+build", false, ""},
		}},
		{"npm", []Range{rng("SEMVER", "i:1.0.0", "f:1.1.0", "i:2.0.0", "f:2.1.0")}, []tc{
			{"0.9.0", false, ""}, {"1.0.5", true, "1.1.0"}, {"1.5.0", false, ""}, {"2.0.0-beta.1", false, ""},
			{"2.0.0", true, "2.1.0"}, {"2.1.0", false, ""},
		}},
		{"npm", []Range{rng("SEMVER", "f:1.1.0", "i:1.0.0")}, []tc{ // events out of order in the record
			{"1.0.5", true, "1.1.0"}, {"0.5.0", false, ""},
		}},
		{"crates.io", []Range{rng("SEMVER", "i:0")}, []tc{{"0.0.1", true, ""}, {"99.0.0", true, ""}}},
		{"crates.io", []Range{rng("SEMVER", "i:0", "l:1.0.0")}, []tc{{"1.0.0", true, ""}, {"1.0.1", false, ""}, {"1.0.0-alpha", true, ""}}},
		{"npm", []Range{rng("SEMVER", "i:1.0.0", "i:2.0.0", "f:3.0.0")}, []tc{ // a second introduced changes nothing
			{"0.9.0", false, ""}, {"1.5.0", true, "3.0.0"}, {"2.5.0", true, "3.0.0"}, {"3.0.0", false, ""},
		}},
		{"npm", []Range{rng("SEMVER", "i:1.0.0", "f:1.0.0")}, []tc{{"1.0.0", false, ""}}}, // fixed where introduced
		{"Red Hat", []Range{rng("ECOSYSTEM", "i:0", "f:1:2.0-1.el9")}, []tc{
			{"2.1-1.el9", true, "1:2.0-1.el9"}, {"1:1.9-3.el9", true, "1:2.0-1.el9"}, {"1:2.0-1.el9", false, ""},
		}},
		{"RubyGems", []Range{rng("ECOSYSTEM", "i:0", "f:3.0.0")}, []tc{
			{"3.0.0.rc1", true, "3.0.0"}, {"3.0.0", false, ""}, {"2.9.9", true, "3.0.0"},
		}},
	} {
		for _, k := range c.cases {
			t.Run(fmt.Sprintf("%s/%s", c.eco, k.version), func(t *testing.T) {
				af := &advAffected{Ecosystem: c.eco, Ranges: c.ranges}
				hit, fixed, err := affects(af, k.version)
				if err != nil {
					t.Fatalf("error: %v", err)
				}
				if hit != k.hit || fixed != k.fixed {
					t.Errorf("%v: affected %v fixed %q, want %v %q", c.ranges, hit, fixed, k.hit, k.fixed)
				}
				// The presorted path (import time) agrees with the unsorted one.
				sorted := advAffected{Ecosystem: c.eco, Ranges: append([]Range(nil), c.ranges...)}
				for i := range sorted.Ranges {
					sorted.Ranges[i].Events = append([]Event(nil), sorted.Ranges[i].Events...)
				}
				sorted.Sorted = presort(c.eco, sorted.Ranges)
				if h2, f2, _ := affects(&sorted, k.version); h2 != hit || f2 != fixed {
					t.Errorf("presorted: affected %v fixed %q, unsorted %v %q", h2, f2, hit, fixed)
				}
			})
		}
	}
}
