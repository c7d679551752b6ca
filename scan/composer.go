package scan

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/rootscan/rootscan/report"
)

// composerMaxInstalledSize bounds one installed.json; a large Laravel or Symfony application's (200 packages with
// their descriptions and autoload maps) is under 1 MiB.
const composerMaxInstalledSize = 16 << 20

// composerMaxNameLen bounds package names; Packagist's longest are well under 100 bytes.
const composerMaxNameLen = 214

// composerAnalyzer lists PHP packages from vendor/composer/installed.json, the record Composer keeps of what it
// installed into vendor/ (composer.lock says what should be installed; installed.json what is). Both of Composer's
// forms are read: Composer 1 writes a JSON array of packages, Composer 2 an object {"packages": [...], "dev": ...,
// "dev-package-names": [...]}. Packages installed as dev requirements are reported too: they are on disk and
// loadable by the autoloader. Packages that Composer only records ("metapackage", or provided by another) have no
// code but are still a resolved requirement; they are reported like the others, as Syft does.
type composerAnalyzer struct {
	maxSize int64
}

// NewComposer returns the analyzer for PHP Composer installs (Packagist ecosystem; Package.Name is "vendor/name").
func NewComposer() Analyzer { return &composerAnalyzer{maxSize: composerMaxInstalledSize} }

func (a *composerAnalyzer) Name() string { return "composer" }

func (a *composerAnalyzer) Version() int { return 1 }

func (a *composerAnalyzer) Requires() []string { return nil }

// Paths is empty: vendor/ dirs can be anywhere (/var/www/html/vendor, /app/vendor), Wants decides.
func (a *composerAnalyzer) Paths() []string { return nil }

// Wants decides from the name alone: <...>vendor/composer/installed.json.
func (a *composerAnalyzer) Wants(name string, d fs.DirEntry) bool {
	if d != nil && !d.Type().IsRegular() {
		return false
	}
	return name == "vendor/composer/installed.json" || strings.HasSuffix(name, "/vendor/composer/installed.json")
}

// AnalyzeFile reads one installed.json; a damaged one is reported and skipped.
func (a *composerAnalyzer) AnalyzeFile(ctx context.Context, fsys FS, name string, out *report.Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	data, err := ReadFile(fsys, name, a.maxSize)
	var pkgs []composerPackage
	if err == nil {
		pkgs, err = parseComposerInstalled(data)
	}
	if err != nil {
		out.Errors = append(out.Errors, report.FileError{Analyzer: a.Name(), Path: name, Err: err.Error()})
	}
	for _, p := range pkgs {
		out.Packages = append(out.Packages, report.Package{Name: p.Name, Version: p.Version, Ecosystem: report.EcosystemPackagist,
			Locations: []string{name}, FoundBy: a.Name()})
	}
	return nil
}

// Analyze merges what AnalyzeFile found: the same package in several applications becomes one Package.
func (a *composerAnalyzer) Analyze(ctx context.Context, fsys FS, out *report.Result) error {
	mergePackages(out, a.Name())
	return nil
}

type composerPackage struct {
	Name, Version string
}

// composerEntry is the part of one installed package's record the inventory needs.
type composerEntry struct {
	Name              string `json:"name"`
	Version           string `json:"version"`
	VersionNormalized string `json:"version_normalized"`
}

// parseComposerInstalled returns the packages of an installed.json in either form, in file order. Entries with an
// invalid name or version are skipped and counted in the returned error, next to the packages that were valid.
func parseComposerInstalled(data []byte) ([]composerPackage, error) {
	data = bytes.TrimSpace(bytes.TrimPrefix(data, utf8BOM))
	if err := checkJSONValues(data, jsonMaxValuesLarge); err != nil {
		return nil, fmt.Errorf("parse installed.json: %w", err)
	}
	var entries []composerEntry
	switch {
	case len(data) > 0 && data[0] == '[': // Composer 1
		if err := json.Unmarshal(data, &entries); err != nil {
			return nil, fmt.Errorf("parse installed.json (Composer 1 form): %w", err)
		}
	case len(data) > 0 && data[0] == '{': // Composer 2
		var doc struct {
			Packages *[]composerEntry `json:"packages"`
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("parse installed.json: %w", err)
		}
		if doc.Packages == nil {
			return nil, fmt.Errorf("installed.json has no \"packages\" list")
		}
		entries = *doc.Packages
	default:
		return nil, fmt.Errorf("installed.json is neither a Composer 1 list nor a Composer 2 object")
	}
	var out []composerPackage
	bad, firstBad := 0, ""
	for _, e := range entries {
		v := composerVersion(e.Version, e.VersionNormalized)
		if !validComposerName(e.Name) || !validComposerVersion(v) {
			if bad++; bad == 1 {
				firstBad = fmt.Sprintf("name %q, version %q", e.Name, e.Version)
			}
			continue
		}
		out = append(out, composerPackage{Name: e.Name, Version: v})
	}
	if bad > 0 {
		return out, fmt.Errorf("%d installed.json entries with an invalid name or version skipped, the first %s", bad, firstBad)
	}
	return out, nil
}

// composerVersion drops the "v" of a tag-style version ("v5.4.21") where Composer's own normalisation did
// (version_normalized "5.4.21.0"): OSV's Packagist advisories and Packagist itself compare the number. A branch
// ("dev-main", "2.x-dev") or a version whose normalised form keeps the "v" is left as Composer wrote it.
func composerVersion(v, normalized string) string {
	rest, ok := strings.CutPrefix(v, "v")
	if !ok || rest == "" || rest[0] < '0' || rest[0] > '9' {
		return v
	}
	if normalized == "" || normalized[0] < '0' || normalized[0] > '9' {
		return v
	}
	return rest
}

// validComposerName follows Composer's rule for package names: "vendor/name", each part lower-case letters, digits
// and the separators ".", "_" and "-" (upper case is accepted: Composer 1 allowed it and old installs carry it).
func validComposerName(s string) bool {
	if len(s) > composerMaxNameLen {
		return false
	}
	vendor, name, ok := strings.Cut(s, "/")
	return ok && composerNamePart(vendor) && composerNamePart(name) && path.Clean(s) == s
}

// composerNamePart follows Composer's own rule for a vendor or package name: alphanumeric runs joined by one '.',
// '_' or '-' (or "--"), starting and ending alphanumeric, so no part is "..", ends in a dot or hides a path step.
func composerNamePart(s string) bool {
	if s == "" || !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlnum(c) {
			continue
		}
		if c != '.' && c != '_' && c != '-' {
			return false
		}
		if next := s[i+1]; !isAlnum(next) && !(c == '-' && next == '-' && i+2 < len(s) && isAlnum(s[i+2])) {
			return false
		}
	}
	return true
}

// validComposerVersion accepts what Composer writes: printable, no spaces, at most 255 bytes ("1.2.3", "v1.2.3-RC1",
// "dev-main", "2.x-dev", "1.0.0+no-version-set").
func validComposerVersion(v string) bool {
	if v == "" || len(v) > 255 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}
