// Package version orders package versions the way each ecosystem does, so that an OSV range ("introduced 1.2,
// fixed 1.4") can be evaluated against an installed version. A string comparison gets "1.10" < "1.9" and Debian's
// "1.0~rc1" < "1.0" wrong, and either mistake hides or invents a vulnerability.
//
// Each ecosystem uses a well-kept comparator library of the field (the ones trivy and grype use):
//
//	Debian, Ubuntu                          github.com/knqyf263/go-deb-version (epochs, "~", revisions)
//	Alpine, Wolfi, Chainguard               github.com/knqyf263/go-apk-version
//	Red Hat, AlmaLinux, Rocky Linux, SUSE…  github.com/knqyf263/go-rpm-version (epoch:version-release, rpmvercmp)
//	Go, npm, OSV SEMVER ranges              golang.org/x/mod/semver (SemVer 2.0, Go pseudo-versions are pre-releases)
//	crates.io                               golang.org/x/mod/semver, held to Cargo's strict form (no "v", three parts)
//	PyPI                                    github.com/aquasecurity/go-pep440-version
//	Maven                                   github.com/masahiro331/go-mvn-version (ComparableVersion rules)
//	RubyGems, NuGet, Packagist              github.com/google/osv-scalibr/semantic (the OSV project's comparators),
//	                                        behind the ecosystem's own validity rules and composer's normalisation
package version

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnsupported is returned for an ecosystem without a known ordering; matching then falls back to OSV's explicit
// "versions" lists, which need no ordering.
var ErrUnsupported = errors.New("no version ordering for ecosystem")

// Comparator orders two versions of one ecosystem: negative when a < b, zero when equal, positive when a > b. It
// returns an error when either version is not valid in the ecosystem, so that an unparsable version is never
// silently treated as "affected" or "not affected".
type Comparator func(a, b string) (int, error)

// Scheme names a version ordering.
type Scheme string

// The orderings this package knows.
const (
	Deb    Scheme = "deb"
	APK    Scheme = "apk"
	RPM    Scheme = "rpm"
	SemVer Scheme = "semver"
	PEP440 Scheme = "pep440"
	Maven  Scheme = "maven"
	// Cargo is crates.io's ordering: SemVer 2.0 as Cargo's semver crate parses it.
	Cargo Scheme = "cargo"
	// Gem is Gem::Version's ordering (RubyGems).
	Gem Scheme = "gem"
	// NuGet is NuGet's SemVer 2.0 with four-part legacy versions and case-insensitive release labels.
	NuGet Scheme = "nuget"
	// Composer is composer's ordering of normalised versions (Packagist).
	Composer Scheme = "composer"
)

// ecosystemSchemes maps OSV ecosystem names (the part before any ":release" suffix) to their ordering.
var ecosystemSchemes = map[string]Scheme{
	"Debian":      Deb,
	"Ubuntu":      Deb,
	"Alpine":      APK,
	"Wolfi":       APK,
	"Chainguard":  APK,
	"Red Hat":     RPM,
	"AlmaLinux":   RPM,
	"Rocky Linux": RPM,
	"SUSE":        RPM,
	"openSUSE":    RPM,
	"Mageia":      RPM,
	"openEuler":   RPM,
	"Photon OS":   RPM,
	"Azure Linux": RPM,
	"Go":          SemVer,
	"npm":         SemVer,
	"crates.io":   Cargo,
	"PyPI":        PEP440,
	"Maven":       Maven,
	"RubyGems":    Gem,
	"NuGet":       NuGet,
	"Packagist":   Composer,
}

// BaseEcosystem strips OSV's release suffix: "Debian:12" is "Debian", "Alpine:v3.19" is "Alpine".
func BaseEcosystem(ecosystem string) string {
	base, _, _ := strings.Cut(ecosystem, ":")
	return base
}

// SchemeFor returns the ordering of an OSV ecosystem ("Debian:12", "PyPI", ...).
func SchemeFor(ecosystem string) (Scheme, error) {
	s, ok := ecosystemSchemes[BaseEcosystem(ecosystem)]
	if !ok {
		return "", fmt.Errorf("%w %q", ErrUnsupported, ecosystem)
	}
	return s, nil
}

// For returns the comparator of an OSV ecosystem.
func For(ecosystem string) (Comparator, error) {
	s, err := SchemeFor(ecosystem)
	if err != nil {
		return nil, err
	}
	return s.Comparator(), nil
}

// Comparator returns the scheme's comparator.
func (s Scheme) Comparator() Comparator {
	switch s {
	case Deb:
		return compareDeb
	case APK:
		return compareAPK
	case RPM:
		return compareRPM
	case SemVer:
		return compareSemVer
	case PEP440:
		return comparePEP440
	case Maven:
		return compareMaven
	case Cargo:
		return compareCargo
	case Gem:
		return compareGem
	case NuGet:
		return compareNuGet
	case Composer:
		return comparePackagist
	}
	return func(a, b string) (int, error) { return 0, fmt.Errorf("%w %q", ErrUnsupported, string(s)) }
}

// maxLen bounds the versions handed to the libraries: no real version is longer, and some comparators are
// quadratic in the number of components.
const maxLen = 256

func checkLen(a, b string) error {
	if len(a) > maxLen || len(b) > maxLen {
		return fmt.Errorf("version longer than %d bytes", maxLen)
	}
	if a == "" || b == "" {
		return errors.New("empty version")
	}
	return nil
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}
