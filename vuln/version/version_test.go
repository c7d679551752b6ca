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
		// crates.io (Cargo's semver crate, SemVer 2.0 §11): pre-releases below the release, build metadata ignored.
		{"crates.io", "1.0.0-alpha.1", "1.0.0-alpha.beta", -1},
		{"crates.io", "1.0.0-rc.1", "1.0.0", -1},
		{"crates.io", "1.7.0", "1.5.5", 1},
		{"crates.io", "0.2.14", "0.2.9", 1},
		// RubyGems, Gem::Version's documentation and test_gem_version.rb: a letter makes a pre-release;
		// "1.0.a.2 < 1.0.b1 < 1.0 < 1.1"; trailing zeros do not count; "-" reads as ".pre.".
		{"RubyGems", "1.0.a.2", "1.0.b1", -1},
		{"RubyGems", "1.0.b1", "1.0", -1},
		{"RubyGems", "1.0", "1.1", -1},
		{"RubyGems", "1.8.2", "1.8.2.a", 1},
		{"RubyGems", "1.8.2.a10", "1.8.2.a9", 1},
		{"RubyGems", "1.0", "1.0.0", 0},
		{"RubyGems", "0.beta.1", "0.0.beta.1", 0},
		{"RubyGems", "0.0.beta", "0.0.beta.1", -1},
		{"RubyGems", "5.a", "5.0.0.rc2", -1},
		{"RubyGems", "5.x", "5.0.0.rc2", 1},
		{"RubyGems", "1.0.0-alpha", "1.0.0-alpha.1", -1},
		{"RubyGems", "1.0.0-beta.2", "1.0.0-beta.11", -1},
		{"RubyGems", "1.0.0-rc1", "1.0.0", -1},
		{"RubyGems", "1.0.0-1", "1", -1},
		{"RubyGems", "1.0-a", "1.0.a", 1}, // "1.0.pre.a": "pre" > "a"
		{"RubyGems", "3.10", "3.2", 1},
		// rack's four-part security releases: 2.2.6.4 fixes 2.2.6.3; 2.2.22 is after both (a string order says not).
		{"RubyGems", "2.2.6.3", "2.2.6.4", -1},
		{"RubyGems", "2.2.22", "2.2.6.4", 1},
		{"RubyGems", "0.3.5.1", "0.3.6", -1},
		// NuGet (learn.microsoft.com, "Package versioning"): pre-release labels order alphabetically and ignore case,
		// so alpha10 < alpha2; leading zeros, a zero fourth part and build metadata do not count; four-part legacy
		// versions order on the fourth part.
		{"NuGet", "1.0.1-aaa", "1.0.1-alpha10", -1},
		{"NuGet", "1.0.1-alpha10", "1.0.1-alpha2", -1},
		{"NuGet", "1.0.1-alpha2", "1.0.1-beta", -1},
		{"NuGet", "1.0.1-beta", "1.0.1-open", -1},
		{"NuGet", "1.0.1-rc", "1.0.1-zzz", -1},
		{"NuGet", "1.0.1-zzz", "1.0.1", -1},
		{"NuGet", "1.0.0-Beta", "1.0.0-beta", 0},
		{"NuGet", "1.00", "1.0.0", 0},
		{"NuGet", "1.01.1", "1.1.1", 0},
		{"NuGet", "1.0.0.0", "1.0.0", 0},
		{"NuGet", "1.0.01.0", "1.0.1", 0},
		{"NuGet", "1.0.7+r3456", "1.0.7", 0},
		{"NuGet", "4.0.0.1", "4.0.0", 1},
		{"NuGet", "1.0.0.1-beta", "1.0.0.1-alpha", 1},
		{"NuGet", "8.0.4", "8.0.5", -1},
		{"NuGet", "13.0.3", "13.0.1", 1},
		// Packagist: composer normalises, then orders as version_compare does (dev < alpha < beta < RC < release <
		// patch). composer/semver's ComparatorTest cases, and "1.0" == "1.0.0" == "v1.0.0.0" after normalisation.
		{"Packagist", "1.25.0", "1.26.0", -1},
		{"Packagist", "1.0.0", "1.2-dev", -1},
		{"Packagist", "1.25.0-beta2.1", "1.25.0-b.2.1", 0},
		{"Packagist", "1.25.0beta2.1", "1.25.0-b2.1", 0},
		{"Packagist", "1.0", "1.0.0", 0},
		{"Packagist", "v6.4.3", "6.4.3", 0},
		{"Packagist", "1.0.0-dev", "1.0.0-alpha1", -1},
		{"Packagist", "1.0.0-alpha1", "1.0.0-beta1", -1},
		{"Packagist", "1.0.0-beta1", "1.0.0-RC1", -1},
		{"Packagist", "1.0.0-rc1", "1.0.0-RC1", 0},
		{"Packagist", "1.0.0-RC1", "1.0.0", -1},
		{"Packagist", "1.0.0", "1.0.0-p1", -1},
		{"Packagist", "1.0.0-pl1", "1.0.0-patch1", 0},
		{"Packagist", "1.0.0+foo", "1.0.0", 0},
		{"Packagist", "6.5.5", "6.5.6", -1},
		{"Packagist", "6.5.10", "6.5.8", 1},
		{"Packagist", "2.x-dev", "2.99.0", 1},
		{"Packagist", "2010-01-02", "2010.01.03", -1},
	}
	for _, tt := range tests {
		got, err := compare(tt.eco, tt.a, tt.b)
		if err != nil {
			t.Errorf("Compare(%s, %q, %q): %v", tt.eco, tt.a, tt.b, err)
			continue
		}
		if got != tt.want {
			t.Errorf("Compare(%s, %q, %q) = %d, want %d", tt.eco, tt.a, tt.b, got, tt.want)
		}
		if back, _ := compare(tt.eco, tt.b, tt.a); back != -tt.want {
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
		// Cargo refuses what Go's tooling accepts: a "v", fewer than three parts, leading zeros.
		{"crates.io", "v1.0.0", "1.0.0"},
		{"crates.io", "1.0", "1.0.0"},
		{"crates.io", "01.0.0", "1.0.0"},
		{"crates.io", "1.0.0-01", "1.0.0"},
		// Gem::Version's pattern: digits first, no spaces inside, no empty parts.
		{"RubyGems", "junk", "1.0"},
		{"RubyGems", "1.0 beta", "1.0"},
		{"RubyGems", "1..0", "1.0"},
		{"RubyGems", "-1", "1.0"},
		// NuGet: at most four numeric parts, no leading zero in a numeric label, no "v".
		{"NuGet", "1.0.0.0.0", "1.0.0"},
		{"NuGet", "1.0.0-beta.01", "1.0.0"},
		{"NuGet", "v1.0.0", "1.0.0"},
		{"NuGet", "1.0.0-", "1.0.0"},
		// composer: branches have no order; constraints are not versions.
		{"Packagist", "dev-main", "1.0.0"},
		{"Packagist", "master", "1.0.0"},
		{"Packagist", "feature-x-dev", "1.0.0"},
		{"Packagist", "^1.0", "1.0.0"},
		{"Packagist", "1.0 as 2.0", "1.0.0"},
	}
	for _, tt := range tests {
		if got, err := compare(tt.eco, tt.a, tt.b); err == nil {
			t.Errorf("Compare(%s, %q, %q) = %d, want an error", tt.eco, tt.a, tt.b, got)
		}
	}
	if _, err := compare("Hex", "1.0.0", "2.0.0"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Hex: err = %v, want ErrUnsupported", err)
	}
	if _, err := compare("Packagist", "dev-main", "1.0.0"); !errors.Is(err, ErrBranch) {
		t.Errorf("Packagist dev-main: err = %v, want ErrBranch", err)
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
		{"RubyGems", "2.2.6.4", "1.0.0-rc1.a"},
		{"NuGet", "1.0.0.1-Beta.X+meta", "1.0.01"},
		{"Packagist", "v1.13.11-beta.0", "20100102-203040-p1"},
		{"Packagist", "1.x-dev", "1.0.0RC1dev"},
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

// TestNormalizeComposer holds composer/semver's VersionParserTest::successfulNormalizedVersions cases.
func TestNormalizeComposer(t *testing.T) {
	for in, want := range map[string]string{
		"1.0.0":                    "1.0.0.0",
		"1.2.3.4":                  "1.2.3.4",
		"1.0.0RC1dev":              "1.0.0.0-RC1-dev",
		"1.0.0-rC15-dev":           "1.0.0.0-RC15-dev",
		"1.0.0.RC.15-dev":          "1.0.0.0-RC15-dev",
		"1.0.0-rc1":                "1.0.0.0-RC1",
		"1.0.0.pl3-dev":            "1.0.0.0-patch3-dev",
		"1.0-dev":                  "1.0.0.0-dev",
		"0":                        "0.0.0.0",
		"10.4.13-beta":             "10.4.13.0-beta",
		"10.4.13beta2":             "10.4.13.0-beta2",
		"10.4.13beta.2":            "10.4.13.0-beta2",
		"v1.13.11-beta.0":          "1.13.11.0-beta0",
		"10.4.13-b":                "10.4.13.0-beta",
		"10.4.13-b5":               "10.4.13.0-beta5",
		"v1.0.0":                   "1.0.0.0",
		"2010.01":                  "2010.01.0.0",
		"2010.01.02":               "2010.01.02.0",
		"2010.1.555":               "2010.1.555.0",
		"2010-01-02":               "2010.01.02",
		"20100102-203040":          "20100102.203040",
		"20100102203040-10":        "20100102203040.10",
		"20100102-203040-p1":       "20100102.203040-patch1",
		"1.x-dev":                  "1.9999999.9999999.9999999-dev",
		"1.0.0+foo":                "1.0.0.0",
		"1.0.0-alpha.3.1+foo/-bar": "1.0.0.0-alpha3.1",
		"1.0.0-stable":             "1.0.0.0",
		" 1.0.0":                   "1.0.0.0",
	} {
		got, err := NormalizeComposer(in)
		if err != nil || got != want {
			t.Errorf("NormalizeComposer(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// compare orders two versions of an OSV ecosystem through For, the way the matcher does.
func compare(ecosystem, a, b string) (int, error) {
	c, err := For(ecosystem)
	if err != nil {
		return 0, err
	}
	return c(a, b)
}
