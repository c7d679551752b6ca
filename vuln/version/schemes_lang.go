package version

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/osv-scalibr/semantic"
	"golang.org/x/mod/semver"
)

// The comparisons of RubyGems, NuGet and Packagist come from github.com/google/osv-scalibr/semantic, the OSV
// project's own comparators (what osv-scanner evaluates osv.dev's ranges with), tested upstream against each
// ecosystem's test suites. That library orders any string it is given; this file adds what it leaves to the caller:
// refusing what the ecosystem itself would not parse, and the canonical forms the ecosystem compares (Gem::Version's
// "-" as ".pre.", composer's normalisation), so an invalid version is an error rather than a guess.

// gemVersion is Gem::Version::ANCHORED_VERSION_PATTERN (rubygems/version.rb), without the surrounding whitespace
// that Gem::Version strips first.
var gemVersion = regexp.MustCompile(`^[0-9]+(\.[0-9a-zA-Z]+)*(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`)

// parseGem follows Gem::Version.new: strip, refuse what the pattern refuses, and read "-" as ".pre." (so
// "1.0-rc1" is the pre-release "1.0.pre.rc1", below "1.0.rc1").
func parseGem(v string) (semantic.RubyGemsVersion, error) {
	s := strings.TrimSpace(v)
	if !gemVersion.MatchString(s) {
		return semantic.RubyGemsVersion{}, fmt.Errorf("invalid RubyGems version %q", v)
	}
	return semantic.ParseRubyGemsVersion(strings.ReplaceAll(s, "-", ".pre.")), nil
}

func compareGem(a, b string) (int, error) {
	if err := checkLen(a, b); err != nil {
		return 0, err
	}
	va, err := parseGem(a)
	if err != nil {
		return 0, err
	}
	vb, err := parseGem(b)
	if err != nil {
		return 0, err
	}
	n, err := va.Compare(vb)
	return sign(n), err
}

// nugetVersion is what NuGetVersion.TryParse accepts: one to four numeric parts (NuGet keeps System.Version's
// fourth "revision" part for legacy packages), SemVer 2.0 release labels and build metadata.
var nugetVersion = regexp.MustCompile(`^[0-9]+(\.[0-9]+){0,3}(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`)

func parseNuGet(v string) (semantic.NuGetVersion, error) {
	if !nugetVersion.MatchString(v) {
		return semantic.NuGetVersion{}, fmt.Errorf("invalid NuGet version %q", v)
	}
	release, _, _ := strings.Cut(v, "+")
	if _, labels, ok := strings.Cut(release, "-"); ok {
		for l := range strings.SplitSeq(labels, ".") {
			// NuGet, like SemVer 2.0, refuses numeric release labels with leading zeros ("1.0.0-beta.01").
			if len(l) > 1 && l[0] == '0' && strings.Trim(l, "0123456789") == "" {
				return semantic.NuGetVersion{}, fmt.Errorf("invalid NuGet version %q: release label %q has a leading zero", v, l)
			}
		}
	}
	return semantic.ParseNuGetVersion(v), nil
}

func compareNuGet(a, b string) (int, error) {
	if err := checkLen(a, b); err != nil {
		return 0, err
	}
	va, err := parseNuGet(a)
	if err != nil {
		return 0, err
	}
	vb, err := parseNuGet(b)
	if err != nil {
		return 0, err
	}
	n, err := va.Compare(vb)
	return sign(n), err
}

// ErrBranch is returned for a Packagist dev branch ("dev-main"): composer gives branches no place in the version
// order, so no range can say whether one is affected.
var ErrBranch = errors.New("composer dev branch has no version order")

// The regular expressions of composer/semver's VersionParser::normalize (possessive quantifiers made greedy, which
// RE2 does not need: the alternatives cannot overlap).
const composerModifier = `[._-]?(?:(stable|beta|b|rc|alpha|a|patch|pl|p)((?:[.-]?\d+)*)?)?([.-]?dev)?`

var (
	composerClassical = regexp.MustCompile(`(?i)^v?(\d{1,5})(\.\d+)?(\.\d+)?(\.\d+)?` + composerModifier + `$`)
	composerDate      = regexp.MustCompile(`(?i)^v?(\d{4}(?:[.:-]?\d{2}){1,6}(?:[.:-]?\d{1,3}){0,2})` + composerModifier + `$`)
	composerDevSuffix = regexp.MustCompile(`(?i)^(.*?)[.-]?dev$`)
	composerBranch    = regexp.MustCompile(`(?i)^v?(\d+)(\.(?:\d+|[x*]))?(\.(?:\d+|[x*]))?(\.(?:\d+|[x*]))?$`)
	composerBuild     = regexp.MustCompile(`^([^,\s+]+)\+\S+$`)
	nonDigit          = regexp.MustCompile(`\D`)
)

// NormalizeComposer is composer/semver's VersionParser::normalize for the versions a composer installation records:
// "v6.4.3" is "6.4.3.0", "1.0.0-b.2" is "1.0.0.0-beta2", "1.2-dev" is "1.2.0.0-dev", "2.x-dev" is
// "2.9999999.9999999.9999999-dev", "2010-01-02" is "2010.01.02". Composer compares only normalised versions, so
// "1.0" and "1.0.0" are one version there (PHP's version_compare alone orders them). A dev branch ("dev-main")
// returns ErrBranch; constraint syntax (aliases, "@dev" flags) is not a version and is refused.
func NormalizeComposer(v string) (string, error) {
	s := strings.TrimSpace(v)
	if s == "master" || s == "trunk" || s == "default" || len(s) >= 4 && strings.EqualFold(s[:4], "dev-") {
		return "", fmt.Errorf("%w: %q", ErrBranch, v)
	}
	if m := composerBuild.FindStringSubmatch(s); m != nil {
		s = m[1]
	}
	var m []string
	var norm string
	if m = composerClassical.FindStringSubmatch(s); m != nil {
		norm = m[1]
		for _, part := range m[2:5] {
			norm += cmpOr(part, ".0")
		}
		m = m[5:]
	} else if m = composerDate.FindStringSubmatch(s); m != nil {
		norm = nonDigit.ReplaceAllString(m[1], ".")
		m = m[2:]
	}
	if m != nil {
		// m is now [stability, stability number, dev suffix].
		if m[0] != "" {
			stab := strings.ToLower(m[0])
			if stab == "stable" {
				return norm, nil
			}
			norm += "-" + expandStability(stab) + strings.TrimLeft(m[1], ".-")
		}
		if m[2] != "" {
			norm += "-dev"
		}
		return norm, nil
	}
	if d := composerDevSuffix.FindStringSubmatch(s); d != nil {
		if b := composerBranch.FindStringSubmatch(d[1]); b != nil {
			norm := b[1]
			for _, part := range b[2:5] {
				norm += strings.NewReplacer("*", "x", "X", "x").Replace(cmpOr(part, ".x"))
			}
			return strings.ReplaceAll(norm, "x", "9999999") + "-dev", nil
		}
		return "", fmt.Errorf("%w: %q", ErrBranch, v)
	}
	return "", fmt.Errorf("invalid composer version %q", v)
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// expandStability is VersionParser::expandStability.
func expandStability(s string) string {
	switch s {
	case "a":
		return "alpha"
	case "b":
		return "beta"
	case "p", "pl":
		return "patch"
	case "rc":
		return "RC"
	}
	return s
}

// comparePackagist normalises both versions as composer does and orders them with PHP's version_compare rules
// (dev < alpha < beta < RC < release < patch), which is what composer's Comparator does with normalised versions.
func comparePackagist(a, b string) (int, error) {
	if err := checkLen(a, b); err != nil {
		return 0, err
	}
	na, err := NormalizeComposer(a)
	if err != nil {
		return 0, err
	}
	nb, err := NormalizeComposer(b)
	if err != nil {
		return 0, err
	}
	n, err := semantic.ParsePackagistVersion(na).Compare(semantic.ParsePackagistVersion(nb))
	return sign(n), err
}

// compareCargo orders crates.io versions as Cargo's semver crate does: strict SemVer 2.0 (three numeric parts, no
// leading zeros, no "v" prefix, which Cargo refuses although Go's tooling writes it), build metadata ignored for
// precedence.
func compareCargo(a, b string) (int, error) {
	if err := checkLen(a, b); err != nil {
		return 0, err
	}
	if strings.HasPrefix(a, "v") || strings.HasPrefix(b, "v") {
		return 0, fmt.Errorf("invalid crates.io version %q/%q: Cargo versions have no \"v\" prefix", a, b)
	}
	sa, sb := "v"+a, "v"+b
	if !semver.IsValid(sa) || !semver.IsValid(sb) {
		return 0, fmt.Errorf("invalid crates.io version %q or %q", a, b)
	}
	// golang.org/x/mod/semver accepts the "v1" and "v1.2" shorthands; Cargo does not.
	for _, s := range []string{sa, sb} {
		core, _, _ := strings.Cut(strings.SplitN(s, "+", 2)[0], "-")
		if strings.Count(core, ".") != 2 {
			return 0, fmt.Errorf("invalid crates.io version %q: Cargo wants major.minor.patch", s[1:])
		}
	}
	return semver.Compare(sa, sb), nil
}
