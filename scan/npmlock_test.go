package scan

import (
	"context"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// The lock files under testdata/npm/locks were written by the real tools for testdata/npm/locks/package.json
// (dependencies @types/ms 0.7.34, debug 4.3.4 and the alias old-ms = npm:ms@2.0.0; devDependency semver 7.6.0):
// npm 6.14 (package-lock v1), yarn 1.22.22, Yarn 4.5.3 (berry), pnpm 7.33.7 (lockfile 5.4), pnpm 8.15.9 (6.0) and
// pnpm 9.15.0 (9.0), each with --package-lock-only / --lockfile-only / --mode=update-lockfile.

// npmLockProd is what a production install of the fixture puts on disk; yarn's locks add the dev tree.
var (
	npmLockProd = []string{"@types/ms 0.7.34", "debug 4.3.4", "ms 2.0.0", "ms 2.1.2"}
	npmLockAll  = []string{"@types/ms 0.7.34", "debug 4.3.4", "lru-cache 6.0.0", "ms 2.0.0", "ms 2.1.2", "semver 7.6.0", "yallist 4.0.0"}
)

func npmManifestLines(ms []npmManifest) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name+" "+m.Version)
	}
	slices.Sort(out)
	return out
}

func TestNpmLockFormats(t *testing.T) {
	for _, c := range []struct {
		file  string
		parse func([]byte) ([]npmManifest, error)
		want  []string
	}{
		{"package-lock-v1.json", parseNpmLock, npmLockProd},
		{"yarn-v1.lock", parseYarnLock, npmLockAll},
		{"yarn-berry.lock", parseYarnLock, npmLockAll},
		{"pnpm-lock-v5.4.yaml", parsePnpmLock, npmLockProd},
		{"pnpm-lock-v6.yaml", parsePnpmLock, npmLockProd},
		{"pnpm-lock-v9.yaml", parsePnpmLock, npmLockProd},
	} {
		t.Run(c.file, func(t *testing.T) {
			data, err := os.ReadFile("testdata/npm/locks/" + c.file)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.parse(data)
			if err != nil {
				t.Errorf("error %v", err)
			}
			if lines := npmManifestLines(got); !reflect.DeepEqual(lines, c.want) {
				t.Errorf("got %q\nwant %q", lines, c.want)
			}
		})
	}
}

// TestNpmLocksInRoot: lock files of every kind through the analyzer. A lock next to node_modules is not read; a
// package both installed and in a lock is one Package with both Locations; lock-only packages carry the lock path.
func TestNpmLocksInRoot(t *testing.T) {
	file := func(name string) *fstest.MapFile {
		data, err := os.ReadFile("testdata/npm/locks/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return &fstest.MapFile{Data: data, Mode: 0o644}
	}
	fsys := fstest.MapFS{
		"srv/yarn/yarn.lock":                             file("yarn-v1.lock"),
		"srv/pnpm/pnpm-lock.yaml":                        file("pnpm-lock-v9.yaml"),
		"srv/npm6/package-lock.json":                     file("package-lock-v1.json"),
		"srv/berry/yarn.lock":                            file("yarn-berry.lock"),
		"srv/installed/pnpm-lock.yaml":                   file("pnpm-lock-v6.yaml"),
		"srv/installed/node_modules/.modules.yaml":       npmFile("layoutVersion: 5\n"),
		"srv/installed/node_modules/debug/package.json":  npmFile(`{"name":"debug","version":"4.3.4"}`),
		"srv/installed/node_modules/semver/package.json": npmFile(`{"name":"semver","version":"7.6.0"}`),
	}
	res := Run(context.Background(), fsys, []Analyzer{NewNpm()})
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
	got := gobinLines(res.Packages)
	want := []string{
		"@types/ms 0.7.34 srv/berry/yarn.lock,srv/npm6/package-lock.json,srv/pnpm/pnpm-lock.yaml,srv/yarn/yarn.lock",
		"debug 4.3.4 srv/berry/yarn.lock,srv/installed/node_modules/debug/package.json,srv/npm6/package-lock.json,srv/pnpm/pnpm-lock.yaml,srv/yarn/yarn.lock",
		"lru-cache 6.0.0 srv/berry/yarn.lock,srv/yarn/yarn.lock",
		"ms 2.0.0 srv/berry/yarn.lock,srv/npm6/package-lock.json,srv/pnpm/pnpm-lock.yaml,srv/yarn/yarn.lock",
		"ms 2.1.2 srv/berry/yarn.lock,srv/npm6/package-lock.json,srv/pnpm/pnpm-lock.yaml,srv/yarn/yarn.lock",
		"semver 7.6.0 srv/berry/yarn.lock,srv/installed/node_modules/semver/package.json,srv/yarn/yarn.lock",
		"yallist 4.0.0 srv/berry/yarn.lock,srv/yarn/yarn.lock",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("packages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A package installed somewhere is installed, whatever lock files also declare it; the rest are declared.
	for _, p := range res.Packages {
		installed := p.Name == "debug" || p.Name == "semver"
		if p.Declared() == installed {
			t.Errorf("%s %s: evidence %q, want installed=%v", p.Name, p.Version, p.Evidence, installed)
		}
	}
}

func TestParseLocksMalformed(t *testing.T) {
	for _, c := range []struct {
		name  string
		parse func([]byte) ([]npmManifest, error)
		in    string
		want  []string
		err   string
	}{
		{"v1 git and file deps are not registry packages", parseNpmLock, `{"lockfileVersion":1,"dependencies":{"a":{"version":"github:u/a#abc"},"b":{"version":"file:../b"},"c":{"version":"1.0.0","dependencies":{"d":{"version":"2.0.0"}}},"e":{"version":"latest"}}}`,
			[]string{"c 1.0.0", "d 2.0.0"}, `1 lock entries with an invalid name or version skipped, the first "e" (version "latest")`},
		{"v1 broken tree", parseNpmLock, `{"lockfileVersion":1,"dependencies":[1]}`, nil, "parse lockfileVersion 1 dependencies"},
		{"yarn classic bad version", parseYarnLock, "a@^1:\n  version \"1\"\n\nb@^2:\n  version \"2.0.0\"\n", []string{"b 2.0.0"}, `1 yarn.lock entries with an invalid name or version skipped, the first "a@^1:" (version "1")`},
		{"yarn classic header only", parseYarnLock, "a@^1:\n", nil, ""},
		{"yarn berry not yaml", parseYarnLock, "__metadata:\n  version: 8\n\"a@npm:1\": [\n", nil, "parse yarn.lock"},
		{"yarn berry patch and workspace skipped", parseYarnLock, "__metadata:\n  version: 8\n\"a@patch:a@npm%3A1.0.0#x::version=1.0.0\":\n  version: 1.0.0\n  resolution: \"a@patch:a@npm%3A1.0.0#x::version=1.0.0\"\n\"w@workspace:.\":\n  version: 0.0.0-use.local\n  resolution: \"w@workspace:.\"\n",
			nil, ""},
		{"pnpm alias bomb", parsePnpmLock, "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\ni: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\npackages: *i\n", nil, "parse pnpm-lock.yaml"},
		{"pnpm tarball and git entries", parsePnpmLock, "lockfileVersion: '6.0'\npackages:\n  github.com/u/r/abc:\n    resolution: {tarball: x}\n    dev: false\n  /ok@1.0.0:\n    dev: false\n  /bad@1:\n    dev: false\n",
			[]string{"ok 1.0.0"}, `1 pnpm-lock.yaml entries with an invalid name or version skipped, the first "/bad@1"`},
		{"pnpm 5 scoped with peer hash", parsePnpmLock, "lockfileVersion: 5.4\npackages:\n  /@s/a/1.0.0_react@18.2.0:\n    dev: false\n  /b/2.0.0:\n    dev: true\n",
			[]string{"@s/a 1.0.0"}, ""},
		{"pnpm 9 peer suffix in snapshots", parsePnpmLock, "lockfileVersion: '9.0'\nimporters:\n  .:\n    dependencies:\n      a:\n        specifier: ^1\n        version: 1.0.0(r@2.0.0)\npackages:\n  a@1.0.0: {}\n  r@2.0.0: {}\n  x@3.0.0: {}\nsnapshots:\n  a@1.0.0(r@2.0.0):\n    dependencies:\n      r: 2.0.0\n  r@2.0.0: {}\n  x@3.0.0: {}\n",
			[]string{"a 1.0.0", "r 2.0.0"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.parse([]byte(c.in))
			if lines := npmManifestLines(got); !reflect.DeepEqual(lines, c.want) {
				t.Errorf("got %q, want %q", lines, c.want)
			}
			switch {
			case c.err == "" && err != nil:
				t.Errorf("error %v", err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Errorf("error %v, want one containing %q", err, c.err)
			}
		})
	}
}

func npmLockSeeds(f *testing.F, files ...string) {
	for _, name := range files {
		data, err := os.ReadFile("testdata/npm/locks/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

func npmCheckAccepted(t *testing.T, ms []npmManifest) {
	for _, m := range ms {
		if !validNpmName(m.Name) || !validNpmVersion(m.Version) {
			t.Fatalf("accepted %+v", m)
		}
	}
}

func FuzzParseYarnLock(f *testing.F) {
	npmLockSeeds(f, "yarn-v1.lock", "yarn-berry.lock")
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, _ := parseYarnLock(data)
		npmCheckAccepted(t, ms)
	})
}

func FuzzParsePnpmLock(f *testing.F) {
	npmLockSeeds(f, "pnpm-lock-v5.4.yaml", "pnpm-lock-v6.yaml", "pnpm-lock-v9.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, _ := parsePnpmLock(data)
		npmCheckAccepted(t, ms)
	})
}

func FuzzParseNpmLockV1(f *testing.F) {
	npmLockSeeds(f, "package-lock-v1.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, _ := parseNpmLock(data)
		npmCheckAccepted(t, ms)
	})
}
