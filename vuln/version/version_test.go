package version

import (
	"errors"
	"testing"
)

// The cases come from each ecosystem's own documentation of its ordering: Debian Policy 5.6.12, Alpine's
// apk-tools version tests, rpm's rpmvercmp tests (rpmio/test and the Fedora packaging guidelines), SemVer 2.0 §11,
// PEP 440's "Summary of permitted suffixes and relative ordering", Maven's ComparableVersion documentation.
func TestCompare(t *testing.T) {
	tests := []struct {
		eco  string
		a, b string
		want int
	}{
		// Debian Policy: "~" sorts before anything, even the end of the version; epochs dominate; revisions compare
		// after the upstream version; digits compare numerically.
		{"Debian:12", "1.0~rc1-1", "1.0-1", -1},
		{"Debian:12", "1.0~~", "1.0~~a", -1},
		{"Debian:12", "1.0~~a", "1.0~", -1},
		{"Debian:12", "1.0~", "1.0", -1},
		{"Debian:12", "1.0", "1.0a", -1},
		{"Debian:12", "1:1.0-1", "2.0-1", 1},
		{"Debian:12", "1.10-1", "1.9-1", 1},
		{"Debian:12", "2.36-9+deb12u3", "2.36-9+deb12u10", -1},
		{"Debian:12", "3.0.11-1~deb12u1", "3.0.11-1", -1},
		{"Debian:12", "1:1.2.13.dfsg-1", "1:1.2.13.dfsg-1", 0},
		{"Debian:12", "1.2-1", "1.2-1+b1", -1},
		{"Ubuntu:22.04:LTS", "3.0.2-0ubuntu1.10", "3.0.2-0ubuntu1.9", 1},
		// apk: suffixes _alpha < _beta < _pre < _rc < (none) < _cvs < _svn < _git < _hg < _p; -rN revisions.
		{"Alpine:v3.19", "1.2.3_alpha1", "1.2.3_beta1", -1},
		{"Alpine:v3.19", "1.2.3_rc1", "1.2.3", -1},
		{"Alpine:v3.19", "1.2.3", "1.2.3_p1", -1},
		{"Alpine:v3.19", "3.1.4-r5", "3.1.4-r10", -1},
		{"Alpine:v3.19", "1.10", "1.9", 1},
		{"Alpine:v3.19", "1.2.3-r0", "1.2.3-r0", 0},
		// rpm: epoch first, then rpmvercmp on version and release; "~" sorts before, "^" after the base version.
		{"Red Hat", "1:1.0-1", "2.0-1", 1},
		{"Red Hat", "1.0-1.el9", "1.0-2.el9", -1},
		{"Red Hat", "1.0~rc1-1", "1.0-1", -1},
		{"Red Hat", "1.0^git1-1", "1.0-1", 1},
		{"Red Hat", "3.0.7-24.el9", "3.0.7-25.el9_3", -1},
		{"Rocky Linux", "1.010", "1.9", 1},
		{"SUSE", "2.31-150300.4.1", "2.31-150300.4.1", 0},
		// SemVer 2.0 §11: 1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-alpha.beta < 1.0.0-beta < 1.0.0-beta.2 < 1.0.0-beta.11 <
		// 1.0.0-rc.1 < 1.0.0; build metadata is ignored.
		{"npm", "1.0.0-alpha", "1.0.0-alpha.1", -1},
		{"npm", "1.0.0-alpha.1", "1.0.0-alpha.beta", -1},
		{"npm", "1.0.0-alpha.beta", "1.0.0-beta", -1},
		{"npm", "1.0.0-beta", "1.0.0-beta.2", -1},
		{"npm", "1.0.0-beta.2", "1.0.0-beta.11", -1},
		{"npm", "1.0.0-beta.11", "1.0.0-rc.1", -1},
		{"npm", "1.0.0-rc.1", "1.0.0", -1},
		{"crates.io", "1.0.0+build.1", "1.0.0+build.2", 0},
		{"crates.io", "0.10.0", "0.9.9", 1},
		// Go: pseudo-versions are pre-releases of the next patch; the standard library is plain semver.
		{"Go", "0.0.0-20220906165146-f3363e06e74c", "0.0.0-20220826154423-83b083e8dc8b", 1},
		{"Go", "0.0.0-20220906165146-f3363e06e74c", "0.1.0", -1},
		{"Go", "1.19.8", "1.19.11", -1},
		{"Go", "1.21.0-0", "1.21.0", -1},
		{"Go", "v1.2.3", "1.2.3", 0},
		// PEP 440: 1.0.dev0 < 1.0a1 < 1.0b1 < 1.0rc1 < 1.0 < 1.0.post1; epochs; normalisation (1.0 == 1.0.0).
		{"PyPI", "1.0.dev0", "1.0a1", -1},
		{"PyPI", "1.0a1", "1.0b1", -1},
		{"PyPI", "1.0b1", "1.0rc1", -1},
		{"PyPI", "1.0rc1", "1.0", -1},
		{"PyPI", "1.0", "1.0.post1", -1},
		{"PyPI", "1!0.1", "2.0", 1},
		{"PyPI", "1.0", "1.0.0", 0},
		{"PyPI", "2.28.1", "2.31.0", -1},
		{"PyPI", "1.26.12", "1.26.17", -1},
		// Maven ComparableVersion: alpha < beta < milestone < rc = cr < snapshot < "" = final = ga < sp;
		// missing components are zero.
		{"Maven", "1.0-alpha-1", "1.0-beta-1", -1},
		{"Maven", "1.0-beta-1", "1.0-milestone-1", -1},
		{"Maven", "1.0-milestone-1", "1.0-rc-1", -1},
		{"Maven", "1.0-rc-1", "1.0-SNAPSHOT", -1},
		{"Maven", "1.0-SNAPSHOT", "1.0", -1},
		{"Maven", "1.0", "1.0-final", 0},
		{"Maven", "1.0", "1.0-sp-1", -1},
		{"Maven", "1", "1.0.0", 0},
		{"Maven", "2.14.1", "2.9.10", 1},
	}
	for _, tt := range tests {
		got, err := Compare(tt.eco, tt.a, tt.b)
		if err != nil {
			t.Errorf("Compare(%s, %q, %q): %v", tt.eco, tt.a, tt.b, err)
			continue
		}
		if got != tt.want {
			t.Errorf("Compare(%s, %q, %q) = %d, want %d", tt.eco, tt.a, tt.b, got, tt.want)
		}
		if back, _ := Compare(tt.eco, tt.b, tt.a); back != -tt.want {
			t.Errorf("Compare(%s, %q, %q) = %d, want %d (antisymmetry)", tt.eco, tt.b, tt.a, back, -tt.want)
		}
	}
}

func TestCompareInvalid(t *testing.T) {
	tests := []struct{ eco, a, b string }{
		{"Debian:12", "", "1.0"},
		{"Debian:12", "a:1.0", "1.0"},
		{"Go", "(devel)", "1.0.0"},
		{"Go", "1.0.0", "not-a-version"},
		{"npm", "1.0.0.0.0", "1.0.0"},
		{"PyPI", "1.0", "one point oh"},
		{"Debian:12", "1." + string(make([]byte, 300)), "1.0"},
	}
	for _, tt := range tests {
		if got, err := Compare(tt.eco, tt.a, tt.b); err == nil {
			t.Errorf("Compare(%s, %q, %q) = %d, want an error", tt.eco, tt.a, tt.b, got)
		}
	}
	if _, err := Compare("RubyGems", "1.0", "2.0"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("RubyGems: err = %v, want ErrUnsupported", err)
	}
}

func TestBaseEcosystem(t *testing.T) {
	for in, want := range map[string]string{"Debian:12": "Debian", "Ubuntu:22.04:LTS": "Ubuntu", "Go": "Go", "": ""} {
		if got := BaseEcosystem(in); got != want {
			t.Errorf("BaseEcosystem(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzCompare checks that no comparator panics or hangs on any input and that every ordering is antisymmetric and
// reflexive: a comparator that says both a<b and b<a would make range matching depend on event order.
func FuzzCompare(f *testing.F) {
	seeds := [][3]string{
		{"Debian:12", "1:2.36-9+deb12u3", "2.36-9~bpo"},
		{"Alpine:v3.19", "1.2.3_rc1-r0", "1.2.3_p1-r2"},
		{"Red Hat", "1:3.0.7-24.el9", "3.0.7~rc1^git1-1"},
		{"Go", "0.0.0-20220906165146-f3363e06e74c", "1.19.11"},
		{"npm", "1.0.0-alpha.beta+b", "1.0.0-rc.1"},
		{"PyPI", "1!1.0.post1.dev2+local.7", "1.0rc1"},
		{"Maven", "1.0-alpha-1-SNAPSHOT", "1.0.0.RELEASE"},
		{"crates.io", "0.1.0", "0.01.0"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, eco, a, b string) {
		c, err := For(eco)
		if err != nil {
			return
		}
		ab, errAB := c(a, b)
		ba, errBA := c(b, a)
		if (errAB == nil) != (errBA == nil) {
			t.Fatalf("%s: Compare(%q, %q) err=%v but reversed err=%v", eco, a, b, errAB, errBA)
		}
		if errAB != nil {
			return
		}
		if ab != -ba {
			t.Fatalf("%s: Compare(%q, %q) = %d but Compare(%q, %q) = %d", eco, a, b, ab, b, a, ba)
		}
		if aa, err := c(a, a); err != nil || aa != 0 {
			t.Fatalf("%s: Compare(%q, %q) = %d, %v; want 0", eco, a, a, aa, err)
		}
	})
}
