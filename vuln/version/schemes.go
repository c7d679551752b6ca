package version

import (
	"fmt"
	"strings"

	pep440 "github.com/aquasecurity/go-pep440-version"
	apkver "github.com/knqyf263/go-apk-version"
	debver "github.com/knqyf263/go-deb-version"
	rpmver "github.com/knqyf263/go-rpm-version"
	mvnver "github.com/masahiro331/go-mvn-version"
	"golang.org/x/mod/semver"
)

func compareDeb(a, b string) (int, error) {
	if err := checkLen(a, b); err != nil {
		return 0, err
	}
	va, err := debver.NewVersion(a)
	if err != nil {
		return 0, fmt.Errorf("debian version %q: %w", a, err)
	}
	vb, err := debver.NewVersion(b)
	if err != nil {
		return 0, fmt.Errorf("debian version %q: %w", b, err)
	}
	return sign(va.Compare(vb)), nil
}

func compareAPK(a, b string) (int, error) {
	if err := checkLen(a, b); err != nil {
		return 0, err
	}
	va, err := apkver.NewVersion(a)
	if err != nil {
		return 0, fmt.Errorf("apk version %q: %w", a, err)
	}
	vb, err := apkver.NewVersion(b)
	if err != nil {
		return 0, fmt.Errorf("apk version %q: %w", b, err)
	}
	return sign(va.Compare(vb)), nil
}

func compareRPM(a, b string) (int, error) {
	if err := checkLen(a, b); err != nil {
		return 0, err
	}
	return sign(rpmver.NewVersion(a).Compare(rpmver.NewVersion(b))), nil
}

// canonicalSemVer adds the "v" golang.org/x/mod/semver wants (OSV writes Go, npm and crates.io versions without it)
// and refuses what SemVer 2.0 does not allow.
func canonicalSemVer(v string) (string, error) {
	sv := "v" + strings.TrimPrefix(v, "v")
	if !semver.IsValid(sv) {
		return "", fmt.Errorf("invalid semantic version %q", v)
	}
	return sv, nil
}

func compareSemVer(a, b string) (int, error) {
	if err := checkLen(a, b); err != nil {
		return 0, err
	}
	sa, err := canonicalSemVer(a)
	if err != nil {
		return 0, err
	}
	sb, err := canonicalSemVer(b)
	if err != nil {
		return 0, err
	}
	return semver.Compare(sa, sb), nil
}

func comparePEP440(a, b string) (int, error) {
	if err := checkLen(a, b); err != nil {
		return 0, err
	}
	va, err := pep440.Parse(a)
	if err != nil {
		return 0, fmt.Errorf("PEP 440 version %q: %w", a, err)
	}
	vb, err := pep440.Parse(b)
	if err != nil {
		return 0, fmt.Errorf("PEP 440 version %q: %w", b, err)
	}
	return sign(va.Compare(vb)), nil
}

func compareMaven(a, b string) (int, error) {
	if err := checkLen(a, b); err != nil {
		return 0, err
	}
	va, err := mvnver.NewVersion(a)
	if err != nil {
		return 0, fmt.Errorf("maven version %q: %w", a, err)
	}
	vb, err := mvnver.NewVersion(b)
	if err != nil {
		return 0, fmt.Errorf("maven version %q: %w", b, err)
	}
	return sign(va.Compare(vb)), nil
}
