package scan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/rootscan/rootscan/report"
	"golang.org/x/mod/semver"
)

// npmMaxManifestSize bounds one package.json. Installed manifests are a few KiB (npm 7+ no longer copies the README
// into them); older npm versions added a "readme" field, which reaches a few hundred KiB for the biggest projects.
const npmMaxManifestSize = 1 << 20

// npmMaxLockSize bounds one package-lock.json; a big application's lock (a few thousand packages) is a few MiB.
const npmMaxLockSize = 16 << 20

// npmMaxNameLen is npm's limit on package names (validate-npm-package-name).
const npmMaxNameLen = 214

// npmAnalyzer lists installed Node.js packages from their manifests: node_modules/<name>/package.json and
// node_modules/@scope/<name>/package.json, at any depth (nested node_modules, pnpm's .pnpm store, global
// lib/node_modules). The installed manifest is the ground truth of what a container can require().
//
// A lock file only says what an install would fetch: package-lock.json and npm-shrinkwrap.json (lockfileVersion 1,
// 2 and 3), yarn.lock (Yarn 1 and Yarn 2+) and pnpm-lock.yaml (lockfile 5.x, 6.0 and 9.0). The installed manifests
// are authoritative, so a lock file is read only when its directory has no node_modules (an application shipped
// without its installed dependencies, or one whose dependencies live elsewhere, as in some bundler setups);
// otherwise node_modules wins and the lock file is not read, so a dependency the lock names but the image does not
// hold (an optional dependency for another platform, a pruned dev dependency) is not reported. What a lock file
// adds is a Package per name and version, with the lock file as its Location: the same package at the same version
// found installed anywhere in the root (or in another lock) is one Package whose Locations list the manifest and the
// lock files, never two. Dev dependencies are skipped where the lock says which they are (npm's "dev": true, pnpm
// 5.x/6.0's dev flag, pnpm 9.0's importers graph); Yarn's locks do not say, so every entry of a yarn.lock is
// reported.
//
// Debian's node-* packages (and Debian's npm) install their modules to usr/share/nodejs/<name> and
// usr/lib/<triplet>/nodejs/<name> instead of a node_modules directory; they are reported too, as npm packages at
// their manifest path: it is the npm release's code and an npm advisory may apply. Joining those Locations with
// dpkg's file lists (the Debian version is what counts for patching) is for a later step.
type npmAnalyzer struct {
	maxSize, lockMaxSize int64
}

// NewNpm returns the analyzer for installed Node.js packages. Package.Name is the manifest's "name" field as npm
// spells it ("@types/node" for scoped packages), which is the name OSV's npm advisories and the npm PURL use; a
// package installed under an alias (npm install foo@npm:bar) is therefore reported as what it really is, bar.
func NewNpm() Analyzer { return &npmAnalyzer{maxSize: npmMaxManifestSize, lockMaxSize: npmMaxLockSize} }

func (a *npmAnalyzer) Name() string { return "npm" }

func (a *npmAnalyzer) Version() int { return 1 }

func (a *npmAnalyzer) Requires() []string { return nil }

// Paths is empty: node_modules can be at any depth, Wants decides.
func (a *npmAnalyzer) Paths() []string { return nil }

// Wants decides from the name and the entry type of the directory listing; it never stats. A symlinked
// package.json is not read: the walk reaches its target on its own if it is inside the tree.
func (a *npmAnalyzer) Wants(name string, d fs.DirEntry) bool {
	if d != nil && (d.IsDir() || d.Type()&fs.ModeSymlink != 0) {
		return false
	}
	if npmIsLock(name) {
		return true
	}
	dir, ok := strings.CutSuffix(name, "/package.json")
	if !ok {
		return false
	}
	return npmPackageDir(dir)
}

// npmIsLock reports whether name is a project's lock file (package-lock.json, npm-shrinkwrap.json, yarn.lock,
// pnpm-lock.yaml) outside any node_modules (inside one, it is a dependency's file, and the installed manifests next to it say more; npm's own
// node_modules/.package-lock.json is a cache of the tree the manifests already describe).
func npmIsLock(name string) bool {
	switch path.Base(name) {
	case "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml":
	default:
		return false
	}
	return !strings.HasPrefix(name, "node_modules/") && !strings.Contains(name, "/node_modules/")
}

// npmPackageDir reports whether dir is a package's directory: <modules>/<name> or <modules>/@scope/<name>, where
// <modules> is a node_modules directory or one of Debian's nodejs module directories.
func npmPackageDir(dir string) bool {
	parent, base := path.Split(dir)
	if base == "" || base[0] == '@' || base[0] == '.' {
		return false
	}
	parent = strings.TrimSuffix(parent, "/")
	if sp, sb := path.Split(parent); len(sb) > 1 && sb[0] == '@' {
		parent = strings.TrimSuffix(sp, "/")
	}
	switch {
	case parent == "node_modules" || strings.HasSuffix(parent, "/node_modules"):
		return true
	case parent == "usr/share/nodejs" || parent == "usr/lib/nodejs":
		return true
	}
	// Debian's architecture-dependent modules: usr/lib/<triplet>/nodejs.
	triplet, ok := strings.CutPrefix(parent, "usr/lib/")
	if !ok {
		return false
	}
	triplet, ok = strings.CutSuffix(triplet, "/nodejs")
	return ok && triplet != "" && !strings.Contains(triplet, "/")
}

// AnalyzeFile reads one manifest; a damaged one is reported and skipped.
func (a *npmAnalyzer) AnalyzeFile(ctx context.Context, fsys FS, name string, out *report.Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if npmIsLock(name) {
		a.analyzeLock(fsys, name, out)
		return nil
	}
	data, err := ReadFile(fsys, name, a.maxSize)
	if err != nil {
		out.Errors = append(out.Errors, report.FileError{Analyzer: a.Name(), Path: name, Err: err.Error()})
		return nil
	}
	m, err := parseNpmManifest(data)
	if err != nil {
		out.Errors = append(out.Errors, report.FileError{Analyzer: a.Name(), Path: name, Err: err.Error()})
		return nil
	}
	out.Packages = append(out.Packages, report.Package{
		Name:      m.Name,
		Version:   m.Version,
		Ecosystem: report.EcosystemNpm,
		Locations: []string{name},
		FoundBy:   a.Name(),
	})
	return nil
}

// analyzeLock reports the packages of a lock file whose directory has no node_modules.
func (a *npmAnalyzer) analyzeLock(fsys FS, name string, out *report.Result) {
	fail := func(err error) {
		out.Errors = append(out.Errors, report.FileError{Analyzer: a.Name(), Path: name, Err: err.Error()})
	}
	switch _, err := fs.Lstat(fsys, path.Join(path.Dir(name), "node_modules")); {
	case err == nil:
		return // installed: the manifests are the truth
	case !errors.Is(err, fs.ErrNotExist):
		fail(fmt.Errorf("look for node_modules next to the lock file: %w", err))
		return
	}
	data, err := ReadFile(fsys, name, a.lockMaxSize)
	if err != nil {
		fail(err)
		return
	}
	var pkgs []npmManifest
	switch path.Base(name) {
	case "yarn.lock":
		pkgs, err = parseYarnLock(data)
	case "pnpm-lock.yaml":
		pkgs, err = parsePnpmLock(data)
	default:
		pkgs, err = parseNpmLock(data)
	}
	if err != nil {
		fail(err)
	}
	for _, m := range pkgs {
		out.Packages = append(out.Packages, report.Package{
			Name:      m.Name,
			Version:   m.Version,
			Ecosystem: report.EcosystemNpm,
			Locations: []string{name},
			FoundBy:   a.Name(),
			Evidence:  report.EvidenceLockFile,
		})
	}
}

// Analyze merges what AnalyzeFile found: the same package at the same version installed in several node_modules
// directories (nested copies, several apps) becomes one Package with every manifest path.
func (a *npmAnalyzer) Analyze(ctx context.Context, fsys FS, out *report.Result) error {
	mergePackages(out, a.Name())
	return nil
}

// npmManifest is the part of package.json the inventory needs.
type npmManifest struct {
	Name, Version string
}

// utf8BOM starts some hand-edited manifests; Node's require() and npm strip it, encoding/json does not.
var utf8BOM = []byte("\xef\xbb\xbf")

// parseNpmManifest reads name and version from a package.json. The top-level object is decoded into raw fields
// rather than a struct because encoding/json matches struct fields case-insensitively, and "Name" is not npm's
// "name" (npm, like JSON.parse, is case-sensitive; of duplicate keys the last wins, as here).
func parseNpmManifest(data []byte) (npmManifest, error) {
	var m npmManifest
	if err := checkJSONValues(data, jsonMaxValuesManifest); err != nil {
		return m, fmt.Errorf("parse package.json: %w", err)
	}
	var fields map[string]json.RawMessage
	err := json.Unmarshal(bytes.TrimPrefix(data, utf8BOM), &fields)
	if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok || (err == nil && fields == nil) {
		return m, fmt.Errorf("package.json is not an object")
	}
	if err != nil {
		return m, fmt.Errorf("parse package.json: %w", err)
	}
	str := func(key string) (string, error) {
		raw, ok := fields[key]
		if !ok {
			return "", nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("%q field is not a string", key)
		}
		return s, nil
	}
	if m.Name, err = str("name"); err != nil {
		return m, err
	}
	if m.Version, err = str("version"); err != nil {
		return m, err
	}
	switch {
	case m.Name == "":
		return m, fmt.Errorf("no name field")
	case !validNpmName(m.Name):
		return m, fmt.Errorf("invalid package name %q", m.Name)
	case m.Version == "":
		return m, fmt.Errorf("package %s has no version field", m.Name)
	case !validNpmVersion(m.Version):
		return m, fmt.Errorf("package %s has invalid version %q", m.Name, m.Version)
	}
	return m, nil
}

// validNpmName follows validate-npm-package-name, accepting the legacy names the registry still serves (upper
// case letters, as in JSONStream): at most 214 bytes, URL-safe characters only (what encodeURIComponent leaves
// alone), not starting with "." or "_", and "@scope/name" for scoped packages.
func validNpmName(s string) bool {
	if len(s) == 0 || len(s) > npmMaxNameLen {
		return false
	}
	if rest, ok := strings.CutPrefix(s, "@"); ok {
		scope, name, ok := strings.Cut(rest, "/")
		return ok && validNpmNamePart(scope) && validNpmNamePart(name)
	}
	return s[0] != '_' && validNpmNamePart(s)
}

func validNpmNamePart(s string) bool {
	if s == "" || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && !strings.ContainsRune("-_.!~*'()", rune(c)) {
			return false
		}
	}
	return true
}

// validNpmVersion accepts the strict SemVer 2.0 versions npm publishes (it normalises versions with semver.clean
// on publish, so an installed manifest carries "1.2.3", "1.0.0-rc.1" or "1.0.0+build", never "v1" or "1.2").
func validNpmVersion(v string) bool {
	if !semver.IsValid("v" + v) {
		return false
	}
	core, _, _ := strings.Cut(v, "-")
	core, _, _ = strings.Cut(core, "+")
	return strings.Count(core, ".") == 2
}

// npmLock is the part of a package-lock.json the inventory needs: "packages" (lockfileVersion 2 and 3) or else
// "dependencies" (1). Keys of Packages are
// install paths ("node_modules/send/node_modules/ms"); "" is the project itself.
type npmLock struct {
	LockfileVersion int `json:"lockfileVersion"`
	Packages        map[string]struct {
		Name    string `json:"name"` // set for aliases (npm install foo@npm:bar) and for the project
		Version string `json:"version"`
		Dev     bool   `json:"dev"`
		Link    bool   `json:"link"` // a workspace or file: link: the project's own code, reported where installed
	} `json:"packages"`
	// Dependencies is lockfileVersion 1's tree (npm 5 and 6); version 2 keeps a copy for them, not read.
	// It stays raw until needed, so a version 2 lock does not pay for decoding the same tree twice.
	Dependencies json.RawMessage `json:"dependencies"`
}

// parseNpmLock returns the packages a lock file would install, sorted by install path so the result does not depend
// on map order. Entries with an invalid name or version are skipped and counted in the returned error, next to the
// packages that were valid.
func parseNpmLock(data []byte) ([]npmManifest, error) {
	if err := checkJSONValues(data, jsonMaxValuesLarge); err != nil {
		return nil, fmt.Errorf("parse lock file: %w", err)
	}
	var lock npmLock
	if err := json.Unmarshal(bytes.TrimPrefix(data, utf8BOM), &lock); err != nil {
		return nil, fmt.Errorf("parse lock file: %w", err)
	}
	if lock.Packages == nil {
		if lock.Dependencies == nil {
			return nil, fmt.Errorf("lockfileVersion %d lock has neither \"packages\" nor \"dependencies\"", lock.LockfileVersion)
		}
		var deps map[string]npmLockV1Dep
		if err := json.Unmarshal(lock.Dependencies, &deps); err != nil {
			return nil, fmt.Errorf("parse lockfileVersion %d dependencies: %w", lock.LockfileVersion, err)
		}
		return parseNpmLockV1(deps) // npm 5 and 6
	}
	keys := make([]string, 0, len(lock.Packages))
	for k := range lock.Packages {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []npmManifest
	bad, firstBad := 0, ""
	for _, k := range keys {
		e := lock.Packages[k]
		i := strings.LastIndex(k, "node_modules/")
		if i < 0 || (i > 0 && k[i-1] != '/') || e.Link || e.Dev {
			continue
		}
		m := npmManifest{Name: e.Name, Version: e.Version}
		if m.Name == "" {
			m.Name = k[i+len("node_modules/"):]
		}
		if !validNpmName(m.Name) || !validNpmVersion(m.Version) {
			if bad++; bad == 1 {
				firstBad = fmt.Sprintf("%q (name %q, version %q)", k, m.Name, m.Version)
			}
			continue
		}
		out = append(out, m)
	}
	if bad > 0 {
		return out, fmt.Errorf("%d lock entries with an invalid name or version skipped, the first %s", bad, firstBad)
	}
	return out, nil
}
