package scan

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/rootscan/rootscan/report"
)

// Testdata provenance: testdata/npm/root/app holds, verbatim, every package.json of a real npm install (npm 11.19.1,
// node 20.20.2, registry.npmjs.org):
//   cd app && npm install --ignore-scripts express@4.19.2 @types/node@20.11.30
// (73 installed packages, one nested: node_modules/send/node_modules/ms). Only the manifests are committed; the
// package code is not needed. testdata/npm/npm-ls-parseable-long.txt is `npm ls --all --parseable --long` of that
// install, unedited, and testdata/npm/root/app/package-lock.json the lock file it wrote: npm's own list of what is installed, which the analyzer must reproduce exactly.

const npmLsFile = "testdata/npm/npm-ls-parseable-long.txt"

// npmLsExpected turns npm ls's "<abs path>:<name>@<version>[:...]" lines into "name version path" lines with the
// manifest path relative to the scanned root (prefix replaces the install directory).
func npmLsExpected(t testing.TB, file, prefix string) []string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want []string
	sc := bufio.NewScanner(f)
	first := true
	var project string
	for sc.Scan() {
		dir, spec, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			t.Fatalf("npm ls line %q", sc.Text())
		}
		if first { // the project itself, not an installed package
			project, first = dir, false
			continue
		}
		spec, _, _ = strings.Cut(spec, ":")
		i := strings.LastIndexByte(spec, '@')
		if i <= 0 {
			t.Fatalf("npm ls spec %q", spec)
		}
		rel, ok := strings.CutPrefix(dir, project+"/")
		if !ok {
			t.Fatalf("npm ls path %q outside %q", dir, project)
		}
		want = append(want, spec[:i]+" "+spec[i+1:]+" "+prefix+rel+"/package.json")
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	return want
}

func TestNpmRealInstall(t *testing.T) {
	res := Run(context.Background(), gobinOpen(t, "testdata/npm/root"), []Analyzer{NewNpm()})
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
	want := npmLsExpected(t, npmLsFile, "app/")
	if len(want) != 73 {
		t.Fatalf("npm ls lists %d packages, want 73", len(want))
	}
	got := gobinLines(res.Packages)
	slices.Sort(got)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("packages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	purls := map[string]string{}
	for _, p := range res.Packages {
		if p.Ecosystem != report.EcosystemNpm || p.FoundBy != "npm" || p.Arch != "" || p.Source != "" {
			t.Errorf("%s: %+v", p.Name, p)
		}
		purls[p.Name+"@"+p.Version] = p.PURL
	}
	for spec, want := range map[string]string{
		"express@4.19.2":       "pkg:npm/express@4.19.2",
		"@types/node@20.11.30": "pkg:npm/%40types/node@20.11.30",
		"ms@2.1.3":             "pkg:npm/ms@2.1.3",
		"ms@2.0.0":             "pkg:npm/ms@2.0.0",
	} {
		if purls[spec] != want {
			t.Errorf("purl of %s = %q, want %q", spec, purls[spec], want)
		}
	}
}

// TestNpmLockWithoutNodeModules scans the real lock file of the testdata install in a directory without
// node_modules: it names the same 73 packages npm ls lists.
func TestNpmLockWithoutNodeModules(t *testing.T) {
	lock, err := os.ReadFile("testdata/npm/root/app/package-lock.json")
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{
		"srv/app/package-lock.json": &fstest.MapFile{Data: lock, Mode: 0o644},
		"srv/app/package.json":      npmFile(`{"dependencies":{"express":"^4.19.2"}}`),
		// Installed next to its lock: only the manifest counts.
		"opt/b/package-lock.json":            &fstest.MapFile{Data: lock, Mode: 0o644},
		"opt/b/node_modules/ms/package.json": npmFile(`{"name":"ms","version":"2.1.3"}`),
		"node_modules/a/npm-shrinkwrap.json": npmFile(`{"lockfileVersion":3,"packages":{"node_modules/x":{"version":"1.0.0"}}}`),
		"node_modules/.package-lock.json":    npmFile(`{"lockfileVersion":3,"packages":{"node_modules/x":{"version":"1.0.0"}}}`),
		"old/package-lock.json":              npmFile(`{"lockfileVersion":1,"dependencies":{"x":{"version":"1.0.0"}}}`),
		"bad/npm-shrinkwrap.json":            npmFile(`{"lockfileVersion":3,"packages":{"node_modules/x":{"version":"1.0"},"node_modules/y":{"version":"2.0.0"},"node_modules/_z":{"version":"1.0.0"}}}`),
	}
	res := Run(context.Background(), fsys, []Analyzer{NewNpm()})
	var want []string
	for _, l := range npmLsExpected(t, npmLsFile, "") {
		f := strings.Fields(l)
		if f[0] == "ms" && f[1] == "2.1.3" {
			want = append(want, "ms 2.1.3 opt/b/node_modules/ms/package.json,srv/app/package-lock.json")
			continue
		}
		want = append(want, f[0]+" "+f[1]+" srv/app/package-lock.json")
	}
	want = append(want, "y 2.0.0 bad/npm-shrinkwrap.json", "x 1.0.0 old/package-lock.json")
	slices.Sort(want)
	got := gobinLines(res.Packages)
	slices.Sort(got)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("packages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantErr := []report.FileError{
		{Analyzer: "npm", Path: "bad/npm-shrinkwrap.json", Err: `2 lock entries with an invalid name or version skipped, the first "node_modules/_z" (name "_z", version "1.0.0")`},
	}
	if !reflect.DeepEqual(res.Errors, wantErr) {
		t.Errorf("errors:\n%+v\nwant:\n%+v", res.Errors, wantErr)
	}
}

func TestParseNpmLock(t *testing.T) {
	in := `{"name":"app","lockfileVersion":2,"packages":{
		"": {"name":"app","version":"1.0.0"},
		"node_modules/a": {"version":"1.0.0"},
		"node_modules/a/node_modules/@s/b": {"version":"2.0.0-rc.1"},
		"node_modules/old-ms": {"name":"ms","version":"2.1.3"},
		"node_modules/mocha": {"version":"10.4.0","dev":true},
		"node_modules/ws-local": {"resolved":"packages/ws-local","link":true},
		"packages/ws-local": {"name":"ws-local","version":"0.1.0"},
		"xnode_modules/c": {"version":"1.0.0"}
	},"dependencies":{}}`
	got, err := parseNpmLock([]byte(in))
	want := []npmManifest{{"a", "1.0.0"}, {"@s/b", "2.0.0-rc.1"}, {"ms", "2.1.3"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, %v; want %v", got, err, want)
	}
	for in, wantErr := range map[string]string{
		`{"lockfileVersion":3}`:                 `lockfileVersion 3 lock has neither "packages" nor "dependencies"`,
		`{"lockfileVersion":"3","packages":{}}`: "parse lock file: json: cannot unmarshal string into Go struct field npmLock.lockfileVersion of type int",
		`[`:                                     "parse lock file: unexpected end of JSON input",
	} {
		if _, err := parseNpmLock([]byte(in)); err == nil || err.Error() != wantErr {
			t.Errorf("%s: err %v, want %s", in, err, wantErr)
		}
	}
}

func FuzzParseNpmLock(f *testing.F) {
	if b, err := os.ReadFile("testdata/npm/root/app/package-lock.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"lockfileVersion":3,"packages":{"node_modules/a":{"name":"b","version":"1.0.0"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, _ := parseNpmLock(data)
		for _, m := range pkgs {
			if !validNpmName(m.Name) || !validNpmVersion(m.Version) {
				t.Fatalf("accepted %+v", m)
			}
		}
	})
}

func npmFile(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s), Mode: 0o644} }

func TestNpmMergesAndReportsBadManifests(t *testing.T) {
	ms := npmFile(`{"name":"ms","version":"2.1.3","main":"./index"}`)
	fsys := fstest.MapFS{
		"app/node_modules/ms/package.json":                              ms,
		"app/node_modules/debug/node_modules/ms/package.json":           npmFile(`{"version":"2.0.0","name":"ms"}`),
		"srv/other/node_modules/ms/package.json":                        ms,
		"usr/lib/node_modules/npm/package.json":                         npmFile("\xef\xbb\xbf{\"name\": \"npm\", \"version\": \"10.8.2\"}\n"),
		"usr/lib/node_modules/npm/node_modules/@npmcli/fs/package.json": npmFile(`{"name":"@npmcli/fs","version":"3.1.1"}`),
		// Debian's node-* packages.
		"usr/share/nodejs/@types/ms/package.json":                 npmFile(`{"name":"@types/ms","version":"0.7.31"}`),
		"usr/share/nodejs/ms/package.json":                        ms,
		"usr/lib/x86_64-linux-gnu/nodejs/bufferutil/package.json": npmFile(`{"name":"bufferutil","version":"4.0.7"}`),
		// An alias install (npm install old-ms@npm:ms@2.1.3): the real package.
		"app/node_modules/old-ms/package.json": ms,
		// Not package manifests.
		"app/package.json":                     npmFile(`{"name":"app","version":"1.0.0"}`),
		"app/node_modules/ms/lib/package.json": npmFile(`{"type":"module"}`),
		"app/node_modules/@scope/package.json": npmFile(`{"name":"x","version":"1.0.0"}`),
		"app/node_modules/.package-lock.json":  npmFile(`{}`),
		"app/node_modules/ms/package.json.bak": npmFile(`{}`),
		"usr/share/nodejs/x/y/package.json":    npmFile(`{}`),
		"usr/lib/a/b/nodejs/x/package.json":    npmFile(`{}`),
		// Broken ones: one error each, the rest still reported.
		"app/node_modules/nover/package.json":   npmFile(`{"name":"nover"}`),
		"app/node_modules/noname/package.json":  npmFile(`{"Name":"noname","Version":"1.0.0"}`),
		"app/node_modules/badver/package.json":  npmFile(`{"name":"badver","version":"v1.2"}`),
		"app/node_modules/badname/package.json": npmFile(`{"name":"../../etc","version":"1.0.0"}`),
		"app/node_modules/numver/package.json":  npmFile(`{"name":"numver","version":1}`),
		"app/node_modules/trunc/package.json":   npmFile(`{"name":"trunc","version":"1.0.0"`),
		"app/node_modules/array/package.json":   npmFile(`[]`),
	}
	res := Run(context.Background(), fsys, []Analyzer{NewNpm()})
	want := []string{
		"@npmcli/fs 3.1.1 usr/lib/node_modules/npm/node_modules/@npmcli/fs/package.json",
		"@types/ms 0.7.31 usr/share/nodejs/@types/ms/package.json",
		"bufferutil 4.0.7 usr/lib/x86_64-linux-gnu/nodejs/bufferutil/package.json",
		"ms 2.0.0 app/node_modules/debug/node_modules/ms/package.json",
		"ms 2.1.3 app/node_modules/ms/package.json,app/node_modules/old-ms/package.json,srv/other/node_modules/ms/package.json,usr/share/nodejs/ms/package.json",
		"npm 10.8.2 usr/lib/node_modules/npm/package.json",
	}
	if got := gobinLines(res.Packages); !reflect.DeepEqual(got, want) {
		t.Errorf("packages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantErr := []report.FileError{
		{Analyzer: "npm", Path: "app/node_modules/array/package.json", Err: "package.json is not an object"},
		{Analyzer: "npm", Path: "app/node_modules/badname/package.json", Err: `invalid package name "../../etc"`},
		{Analyzer: "npm", Path: "app/node_modules/badver/package.json", Err: `package badver has invalid version "v1.2"`},
		{Analyzer: "npm", Path: "app/node_modules/noname/package.json", Err: "no name field"},
		{Analyzer: "npm", Path: "app/node_modules/nover/package.json", Err: "package nover has no version field"},
		{Analyzer: "npm", Path: "app/node_modules/numver/package.json", Err: `"version" field is not a string`},
		{Analyzer: "npm", Path: "app/node_modules/trunc/package.json", Err: "parse package.json: unexpected end of JSON input"},
	}
	if !reflect.DeepEqual(res.Errors, wantErr) {
		t.Errorf("errors:\n%+v\nwant:\n%+v", res.Errors, wantErr)
	}
}

func TestNpmWants(t *testing.T) {
	a := NewNpm().(FileAnalyzer)
	for name, want := range map[string]bool{
		"node_modules/express/package.json":                            true,
		"app/node_modules/@types/node/package.json":                    true,
		"a/node_modules/b/node_modules/@s/c/package.json":              true,
		"app/node_modules/.pnpm/ms@2.1.3/node_modules/ms/package.json": true,
		"usr/share/nodejs/ms/package.json":                             true,
		"usr/share/nodejs/@types/ms/package.json":                      true,
		"usr/lib/nodejs/x/package.json":                                true,
		"usr/lib/x86_64-linux-gnu/nodejs/x/package.json":               true,
		"package.json":                          false,
		"node_modules/package.json":             false,
		"app/package.json":                      false,
		"node_modules/@types/package.json":      false,
		"node_modules/.bin/package.json":        false,
		"node_modules/@/x/package.json":         false, // a lone "@" is no scope
		"node_modules/x/lib/package.json":       false,
		"node_modules/@s/x/lib/package.json":    false,
		"my_node_modules/x/package.json":        false,
		"node_modules/x/package.json/y":         false,
		"node_modules/x/package.jsonx":          false,
		"usr/share/nodejs/package.json":         false,
		"usr/local/share/nodejs/x/package.json": false,
		"usr/lib/a/b/nodejs/x/package.json":     false,
		"usr/lib//nodejs/x/package.json":        false,
	} {
		if got := a.Wants(name, nil); got != want {
			t.Errorf("Wants(%q) = %v", name, got)
		}
	}
	// A directory named package.json, and a symlinked manifest, are not read.
	fsys := fstest.MapFS{
		"node_modules/a/package.json/x": npmFile(""),
		"node_modules/b/package.json":   &fstest.MapFile{Data: []byte("../a/package.json"), Mode: 0o777 | os.ModeSymlink},
	}
	for _, dir := range []string{"node_modules/a", "node_modules/b"} {
		ents, err := fsys.ReadDir(dir)
		if err != nil || len(ents) != 1 {
			t.Fatal(ents, err)
		}
		if a.Wants(dir+"/package.json", ents[0]) {
			t.Errorf("%s/package.json (%v) wanted", dir, ents[0].Type())
		}
	}
}

func TestParseNpmManifest(t *testing.T) {
	for _, c := range []struct {
		in, name, version, err string
	}{
		{in: `{"name":"express","version":"4.19.2"}`, name: "express", version: "4.19.2"},
		{in: "\xef\xbb\xbf{\"name\":\"a\",\"version\":\"1.0.0-rc.1+build.5\"}", name: "a", version: "1.0.0-rc.1+build.5"},
		{in: `{"name":"@types/node","version":"20.11.30","readme":"x","dependencies":{"name":"no"}}`, name: "@types/node", version: "20.11.30"},
		{in: `{"name":"JSONStream","version":"1.3.5"}`, name: "JSONStream", version: "1.3.5"}, // legacy upper case
		{in: `{"name":"a","version":"1.0.0","name":"b"}`, name: "b", version: "1.0.0"},        // last wins, as JSON.parse
		{in: `{"name":"a","version":"1.0.0","Version":"2.0.0"}`, name: "a", version: "1.0.0"},
		{in: `{"name":"_a","version":"1.0.0"}`, err: `invalid package name "_a"`},
		{in: `{"name":".a","version":"1.0.0"}`, err: `invalid package name ".a"`},
		{in: `{"name":"a b","version":"1.0.0"}`, err: `invalid package name "a b"`},
		{in: `{"name":"@s","version":"1.0.0"}`, err: `invalid package name "@s"`},
		{in: `{"name":"@s/a/b","version":"1.0.0"}`, err: `invalid package name "@s/a/b"`},
		{in: `{"name":"a/b","version":"1.0.0"}`, err: `invalid package name "a/b"`},
		{in: `{"name":"` + strings.Repeat("a", 215) + `","version":"1.0.0"}`, err: `invalid package name "` + strings.Repeat("a", 215) + `"`},
		{in: `{"name":"a","version":"1.0"}`, err: `package a has invalid version "1.0"`},
		{in: `{"name":"a","version":"01.0.0"}`, err: `package a has invalid version "01.0.0"`},
		{in: `{"name":"a","version":"1.0.0 "}`, err: `package a has invalid version "1.0.0 "`},
		{in: `{"name":"a","version":""}`, err: "package a has no version field"},
		{in: `{"name":null,"version":"1.0.0"}`, err: "no name field"},
		{in: `{"name":["a"],"version":"1.0.0"}`, err: `"name" field is not a string`},
		{in: `null`, err: "package.json is not an object"},
		{in: ``, err: "parse package.json: unexpected end of JSON input"},
		{in: `{"name":"a","version":"1.0.0"} x`, err: "parse package.json: invalid character 'x' after top-level value"},
	} {
		m, err := parseNpmManifest([]byte(c.in))
		switch {
		case c.err != "":
			if err == nil || err.Error() != c.err {
				t.Errorf("%q: err %v, want %q", c.in, err, c.err)
			}
		case err != nil:
			t.Errorf("%q: %v", c.in, err)
		case m.Name != c.name || m.Version != c.version:
			t.Errorf("%q: got %+v", c.in, m)
		}
	}
}

func TestNpmTooLarge(t *testing.T) {
	big := `{"name":"a","version":"1.0.0","readme":"` + strings.Repeat("x", npmMaxManifestSize) + `"}`
	fsys := fstest.MapFS{
		"node_modules/a/package.json": npmFile(big),
		"node_modules/b/package.json": npmFile(`{"name":"b","version":"1.0.0"}`),
	}
	res := Run(context.Background(), fsys, []Analyzer{NewNpm()})
	if got := gobinLines(res.Packages); !reflect.DeepEqual(got, []string{"b 1.0.0 node_modules/b/package.json"}) {
		t.Errorf("packages %v", got)
	}
	if len(res.Errors) != 1 || res.Errors[0].Path != "node_modules/a/package.json" || !strings.Contains(res.Errors[0].Err, ErrTooLarge.Error()) {
		t.Errorf("errors %v", res.Errors)
	}
}

func FuzzParseNpmManifest(f *testing.F) {
	files, _ := filepath.Glob("testdata/npm/root/app/node_modules/*/package.json")
	for _, p := range files[:min(len(files), 10)] {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"name":"@types/node","version":"20.11.30"}`))
	f.Add([]byte("\xef\xbb\xbf{\"name\":\"a\",\"version\":\"1.0.0-x.1+b\"}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseNpmManifest(data)
		if err != nil {
			return
		}
		if !validNpmName(m.Name) || !validNpmVersion(m.Version) || strings.ContainsAny(m.Name+m.Version, " \t\r\n\x00") {
			t.Fatalf("accepted %+v", m)
		}
		if scope, rest, ok := strings.Cut(m.Name, "/"); ok && (!strings.HasPrefix(scope, "@") || strings.Contains(rest, "/")) {
			t.Fatalf("path-like name accepted: %q", m.Name)
		}
	})
}

// BenchmarkNpm10k scans a root with 10,000 installed packages (the target), each a realistic package
// directory: package.json of about 1 KiB, index.js, README.md, LICENSE and lib/ with two files, so the walk visits
// about 80,000 entries and reads only the 10,000 manifests. walk-only is the shared walk's own cost. heap-MiB-after
// is the live heap after a scan with its result still held: the walk keeps only the current path, so what stays
// is the inventory itself.
func BenchmarkNpm10k(b *testing.B) {
	root := b.TempDir()
	const n = 10000
	for i := range n {
		dir := fmt.Sprintf("app/node_modules/pkg-%05d", i)
		switch {
		case i%10 == 0: // every tenth scoped, some others nested in their predecessor
			dir = fmt.Sprintf("app/node_modules/@scope%d/pkg-%05d", i%7, i)
		case i%7 == 0 && (i-1)%10 != 0:
			dir = fmt.Sprintf("app/node_modules/pkg-%05d/node_modules/pkg-%05d", i-1, i)
		}
		name := dir[strings.LastIndex(dir, "node_modules/")+len("node_modules/"):]
		manifest := fmt.Sprintf(`{
  "name": %q,
  "version": "1.%d.%d",
  "description": "A synthetic package for the 10,000 packages benchmark, about as long as a real manifest.",
  "license": "MIT",
  "repository": {"type": "git", "url": "git+https://github.com/example/%s.git"},
  "main": "index.js",
  "files": ["index.js", "lib/"],
  "engines": {"node": ">= 0.8"},
  "scripts": {"test": "mocha --reporter spec --bail --check-leaks test/", "lint": "eslint ."},
  "dependencies": {"ms": "2.1.3", "debug": "^4.3.4", "depd": "~2.0.0"},
  "devDependencies": {"eslint": "8.57.0", "mocha": "10.4.0", "nyc": "15.1.0"},
  "keywords": ["synthetic", "benchmark", "node_modules"]
}
`, name, i/100, i%100, name)
		d := filepath.Join(root, filepath.FromSlash(dir))
		if err := os.MkdirAll(filepath.Join(d, "lib"), 0o755); err != nil {
			b.Fatal(err)
		}
		files := map[string]string{"package.json": manifest, "index.js": "module.exports = require('./lib/a')\n",
			"README.md": "# " + name + "\n", "LICENSE": "MIT\n", "lib/a.js": "module.exports = 1\n", "lib/b.js": "\n"}
		for f, data := range files {
			if err := os.WriteFile(filepath.Join(d, filepath.FromSlash(f)), []byte(data), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	fsys := gobinOpen(b, root)
	for _, c := range []struct {
		name      string
		analyzers []Analyzer
		packages  int
	}{
		{"walk-only", []Analyzer{pyNopAnalyzer{}}, 0},
		{"npm", []Analyzer{NewNpm()}, n},
		{"default", DefaultAnalyzers(), n},
	} {
		b.Run(c.name, func(b *testing.B) {
			var res *report.Result
			for b.Loop() {
				res = Run(context.Background(), fsys, c.analyzers)
				if len(res.Packages) != c.packages || len(res.Errors) != 0 {
					b.Fatalf("packages %d errors %v", len(res.Packages), res.Errors[:min(len(res.Errors), 3)])
				}
			}
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MiB-after")
			runtime.KeepAlive(res)
		})
	}
}
