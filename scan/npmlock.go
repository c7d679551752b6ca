package scan

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// This file holds the npm analyzer's lock file readers other than package-lock v2/v3 (npm.go): package-lock v1
// (npm 5 and 6), yarn.lock (Yarn 1 "classic" and Yarn 2+ "berry") and pnpm-lock.yaml (lockfile 5.x, 6 and 9). Each
// returns the packages a production install from the lock would put on disk; how lock results combine with the
// installed manifests is decided in npm.go.

// npmLockV1Dep is one entry of a lockfileVersion 1 "dependencies" tree: nested "dependencies" are the copies npm
// installed below it (node_modules/a/node_modules/b).
type npmLockV1Dep struct {
	Version      string                  `json:"version"`
	Dev          bool                    `json:"dev"`
	Bundled      bool                    `json:"bundled"`
	Dependencies map[string]npmLockV1Dep `json:"dependencies"`
}

// npmLockV1MaxDepth bounds the nesting of a v1 tree; real trees are a few levels deep, JSON allows 10,000.
const npmLockV1MaxDepth = 256

// parseNpmLockV1 returns the packages of a lockfileVersion 1 tree, skipping dev dependencies and entries that are
// not registry packages (git, file: and tarball URLs as versions).
func parseNpmLockV1(deps map[string]npmLockV1Dep) ([]npmManifest, error) {
	var out []npmManifest
	bad, firstBad := 0, ""
	var walk func(deps map[string]npmLockV1Dep, depth int) error
	walk = func(deps map[string]npmLockV1Dep, depth int) error {
		if depth > npmLockV1MaxDepth {
			return fmt.Errorf("lock file nests dependencies deeper than %d levels", npmLockV1MaxDepth)
		}
		for _, name := range slices.Sorted(maps.Keys(deps)) {
			d := deps[name]
			if d.Dev {
				continue
			}
			m := npmManifest{Name: name, Version: d.Version}
			if alias, ok := strings.CutPrefix(d.Version, "npm:"); ok { // old-ms: npm:ms@2.0.0
				m.Name, m.Version = npmSplitSpec(alias)
			}
			switch {
			case validNpmName(m.Name) && validNpmVersion(m.Version):
				out = append(out, m)
			case strings.Contains(m.Version, ":"): // git+https:, file:, https: tarball: not a registry package
			default:
				if bad++; bad == 1 {
					firstBad = fmt.Sprintf("%q (version %q)", name, d.Version)
				}
			}
			if err := walk(d.Dependencies, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(deps, 0); err != nil {
		return out, err
	}
	if bad > 0 {
		return out, fmt.Errorf("%d lock entries with an invalid name or version skipped, the first %s", bad, firstBad)
	}
	return out, nil
}

// npmSplitSpec splits "name@version" or "@scope/name@version" at the "@" that is not the scope's.
func npmSplitSpec(s string) (name, version string) {
	i := strings.LastIndexByte(s, '@')
	if i <= 0 {
		return s, ""
	}
	return s[:i], s[i+1:]
}

// npmSpecName splits a dependency spec "name@range" or "@scope/name@range" at the "@" after the name (the range
// may hold more: "npm:ms@2.0.0").
func npmSpecName(s string) (name, rng string) {
	if len(s) < 2 {
		return s, ""
	}
	i := strings.IndexByte(s[1:], '@')
	if i < 0 {
		return s, ""
	}
	return s[:i+1], s[i+2:]
}

// parseYarnLock reads either yarn.lock format. Yarn 1 keeps no dev flag in its lock, and neither does Yarn 2+: every
// package of the lock is returned (a dev dependency of an application shipped without node_modules is reported).
func parseYarnLock(data []byte) ([]npmManifest, error) {
	data = bytes.TrimPrefix(data, utf8BOM)
	for line := range bytes.Lines(data) {
		if bytes.HasPrefix(line, []byte("__metadata:")) {
			return parseYarnBerryLock(data)
		}
	}
	return parseYarnClassicLock(data)
}

// parseYarnClassicLock reads Yarn 1's own format: blocks headed by the comma-separated specs they resolve
// ("debug@^4.1.0, debug@^4.3.4:"), with an indented `version "4.3.4"` line.
func parseYarnClassicLock(data []byte) ([]npmManifest, error) {
	var out []npmManifest
	bad, firstBad := 0, ""
	name := ""
	flush := func(version, header string) {
		m := npmManifest{Name: name, Version: version}
		if validNpmName(m.Name) && validNpmVersion(m.Version) {
			out = append(out, m)
			return
		}
		if bad++; bad == 1 {
			firstBad = fmt.Sprintf("%q (version %q)", header, version)
		}
	}
	header := ""
	for line := range bytes.Lines(data) {
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if line[0] != ' ' {
			header = string(line)
			spec, _, _ := strings.Cut(strings.TrimSuffix(header, ":"), ",")
			spec = strings.Trim(strings.TrimSpace(spec), `"`)
			n, rng := npmSpecName(spec)
			if alias, ok := strings.CutPrefix(rng, "npm:"); ok { // old-ms@npm:ms@2.0.0 installs ms
				if an, _ := npmSpecName(alias); an != "" && an != alias {
					n = an
				}
			}
			name = n
			continue
		}
		rest, ok := bytes.CutPrefix(line, []byte("  version "))
		if !ok || name == "" {
			continue
		}
		flush(strings.Trim(string(rest), `"`), header)
		name = ""
	}
	if bad > 0 {
		return out, fmt.Errorf("%d yarn.lock entries with an invalid name or version skipped, the first %s", bad, firstBad)
	}
	return out, nil
}

// parseYarnBerryLock reads Yarn 2+'s YAML lock. Only entries resolved from the npm registry ("name@npm:1.2.3") are
// packages; workspaces, links, portals and patches (whose unpatched base has its own entry) are not.
func parseYarnBerryLock(data []byte) ([]npmManifest, error) {
	var doc map[string]struct {
		Version    string `yaml:"version"`
		Resolution string `yaml:"resolution"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse yarn.lock: %w", err)
	}
	var out []npmManifest
	bad, firstBad := 0, ""
	for _, key := range slices.Sorted(maps.Keys(doc)) {
		e := doc[key]
		i := strings.LastIndex(e.Resolution, "@npm:")
		if key == "__metadata" || i <= 0 {
			continue
		}
		m := npmManifest{Name: e.Resolution[:i], Version: e.Version}
		if validNpmName(m.Name) && validNpmVersion(m.Version) {
			out = append(out, m)
			continue
		}
		if bad++; bad == 1 {
			firstBad = fmt.Sprintf("%q (version %q)", e.Resolution, e.Version)
		}
	}
	if bad > 0 {
		return out, fmt.Errorf("%d yarn.lock entries with an invalid name or version skipped, the first %s", bad, firstBad)
	}
	return out, nil
}

// pnpmLock is the part of pnpm-lock.yaml the inventory needs, in all three layouts: 5.x keys packages
// "/name/1.2.3_peerhash", 6.0 "/name@1.2.3(peer@1.0.0)", 9.0 "name@1.2.3" with the dependency graph moved to
// "snapshots" and the dev flag dropped.
type pnpmLock struct {
	LockfileVersion any `yaml:"lockfileVersion"` // 5.4 (a number) or '6.0', '9.0'
	Importers       map[string]struct {
		Dependencies         map[string]pnpmRef `yaml:"dependencies"`
		OptionalDependencies map[string]pnpmRef `yaml:"optionalDependencies"`
	} `yaml:"importers"`
	Packages map[string]struct {
		Name    string `yaml:"name"`
		Version string `yaml:"version"`
		Dev     *bool  `yaml:"dev"`
	} `yaml:"packages"`
	Snapshots map[string]struct {
		Dependencies         map[string]string `yaml:"dependencies"`
		OptionalDependencies map[string]string `yaml:"optionalDependencies"`
	} `yaml:"snapshots"`
}

// pnpmRef is an importer's dependency: a bare version (lockfile 5.x) or {specifier, version} (6.0 and 9.0).
type pnpmRef struct{ Version string }

func (r *pnpmRef) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		r.Version = n.Value
		return nil
	}
	var m struct {
		Version string `yaml:"version"`
	}
	if err := n.Decode(&m); err != nil {
		return err
	}
	r.Version = m.Version
	return nil
}

// pnpmKey turns a dependency reference into its snapshot key: "4.3.4" of debug is "debug@4.3.4", an alias's
// "ms@2.0.0" is itself.
func pnpmKey(name, version string) string {
	base, _, _ := strings.Cut(version, "(")
	if i := strings.IndexByte(base, '@'); i > 0 && !strings.HasPrefix(version, "link:") {
		return version
	}
	return name + "@" + version
}

// parsePnpmLock returns the production packages of a pnpm lock: entries not marked dev (5.x, 6.0), or for 9.0 the
// packages reachable from the importers' dependencies and optionalDependencies through the snapshots.
func parsePnpmLock(data []byte) ([]npmManifest, error) {
	var lock pnpmLock
	if err := yaml.Unmarshal(bytes.TrimPrefix(data, utf8BOM), &lock); err != nil {
		return nil, fmt.Errorf("parse pnpm-lock.yaml: %w", err)
	}
	v5 := strings.HasPrefix(fmt.Sprint(lock.LockfileVersion), "5.") || fmt.Sprint(lock.LockfileVersion) == "5"
	var prod map[string]bool // package keys reachable from production dependencies (9.0)
	if lock.Snapshots != nil && lock.Importers != nil {
		prod = map[string]bool{}
		seen := map[string]bool{}
		var queue []string
		for _, imp := range lock.Importers {
			for _, deps := range []map[string]pnpmRef{imp.Dependencies, imp.OptionalDependencies} {
				for name, ref := range deps {
					queue = append(queue, pnpmKey(name, ref.Version))
				}
			}
		}
		for len(queue) > 0 {
			key := queue[len(queue)-1]
			queue = queue[:len(queue)-1]
			if seen[key] {
				continue
			}
			seen[key] = true
			base, _, _ := strings.Cut(key, "(")
			prod[base] = true
			snap := lock.Snapshots[key]
			for _, deps := range []map[string]string{snap.Dependencies, snap.OptionalDependencies} {
				for name, v := range deps {
					queue = append(queue, pnpmKey(name, v))
				}
			}
		}
	}
	var out []npmManifest
	bad, firstBad := 0, ""
	for _, key := range slices.Sorted(maps.Keys(lock.Packages)) {
		e := lock.Packages[key]
		if (e.Dev != nil && *e.Dev) || (prod != nil && !prod[key]) {
			continue
		}
		m, registry := pnpmPackage(key, v5)
		if e.Name != "" && e.Version != "" {
			m, registry = npmManifest{Name: e.Name, Version: e.Version}, true
		}
		switch {
		case validNpmName(m.Name) && validNpmVersion(m.Version):
			out = append(out, m)
		case !registry: // a tarball, git or file: dependency without name and version fields
		default:
			if bad++; bad == 1 {
				firstBad = fmt.Sprintf("%q", key)
			}
		}
	}
	if bad > 0 {
		return out, fmt.Errorf("%d pnpm-lock.yaml entries with an invalid name or version skipped, the first %s", bad, firstBad)
	}
	return out, nil
}

// pnpmPackage reads name and version from a packages key ("/name/1.2.3_peerhash" in lockfile 5.x, else
// "[/]name@1.2.3(peers)"); registry is false for keys that name a tarball, git repository or directory instead
// ("github.com/user/repo/<sha>", "file:../x").
func pnpmPackage(key string, v5 bool) (m npmManifest, registry bool) {
	k := strings.TrimPrefix(key, "/")
	if strings.Contains(k, ":") {
		return m, false
	}
	parts := strings.Split(k, "/")
	if !strings.HasPrefix(k, "@") && strings.Contains(parts[0], ".") && !strings.Contains(parts[0], "@") && len(parts) >= 3 {
		return m, false // a host: github.com/user/repo/sha, registry.example.com/name/1.0.0
	}
	if v5 {
		i := strings.LastIndexByte(k, '/')
		if i <= 0 {
			return npmManifest{Name: k}, true
		}
		v, _, _ := strings.Cut(k[i+1:], "_")
		return npmManifest{Name: k[:i], Version: v}, true
	}
	k, _, _ = strings.Cut(k, "(")
	i := strings.LastIndexByte(k, '@')
	if i <= 0 {
		return npmManifest{Name: k}, true
	}
	return npmManifest{Name: k[:i], Version: k[i+1:]}, true
}
