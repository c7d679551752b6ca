package scan

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/rootscan/rootscan/report"
)

// Testdata provenance: testdata/python/root/usr/lib/python3/dist-packages holds the core metadata files, verbatim,
// of Debian 12 (bookworm) packages fetched with apt-get download and unpacked with dpkg-deb -x:
//   python3-certifi 2022.9.24-1, python3-idna 3.3-1+deb12u1, python3-requests 2.28.1+dfsg-1, python3-six 1.16.0-4,
//   python3-urllib3 1.26.12-1+deb12u4, python3-setuptools 66.1.1-1+deb12u2, python3-zope.interface 5.5.2-1
//   (*.egg-info/PKG-INFO); python3-chardet 5.1.0+dfsg-2, python3-yaml 6.0-3+b2 (*.dist-info/METADATA);
//   criu 3.17.1-2+deb12u2 (crit-3.17.1-py3.11.egg-info, a single-file egg-info).

const pyDist = "usr/lib/python3/dist-packages/"

func TestPythonDebianMetadata(t *testing.T) {
	res := Run(context.Background(), gobinOpen(t, "testdata/python/root"), []Analyzer{NewPython()})
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
	want := []string{
		"certifi 2022.9.24 " + pyDist + "certifi-2022.9.24.egg-info/PKG-INFO",
		"chardet 5.1.0 " + pyDist + "chardet-5.1.0.dist-info/METADATA",
		"crit 3.17.1 " + pyDist + "crit-3.17.1-py3.11.egg-info",
		"idna 3.3 " + pyDist + "idna-3.3.egg-info/PKG-INFO",
		"pyyaml 6.0 " + pyDist + "PyYAML-6.0.dist-info/METADATA",
		"requests 2.28.1 " + pyDist + "requests-2.28.1.egg-info/PKG-INFO",
		"setuptools 66.1.1 " + pyDist + "setuptools-66.1.1.egg-info/PKG-INFO",
		"six 1.16.0 " + pyDist + "six-1.16.0.egg-info/PKG-INFO",
		"urllib3 1.26.12 " + pyDist + "urllib3-1.26.12.egg-info/PKG-INFO",
		"zope-interface 5.5.2 " + pyDist + "zope.interface-5.5.2.egg-info/PKG-INFO",
	}
	if got := gobinLines(res.Packages); !reflect.DeepEqual(got, want) {
		t.Errorf("packages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, p := range res.Packages {
		if p.Ecosystem != report.EcosystemPyPI || p.FoundBy != "python" || p.Arch != "" || p.Source != "" {
			t.Errorf("%s: %+v", p.Name, p)
		}
	}
}

func pyFile(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s), Mode: 0o644} }

func TestPythonMergesInstalls(t *testing.T) {
	six := pyFile("Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n")
	fsys := fstest.MapFS{
		"usr/local/lib/python3.11/site-packages/six-1.16.0.dist-info/METADATA": six,
		"app/.venv/lib/python3.12/site-packages/six-1.16.0.dist-info/METADATA": six,
		"app/.venv/lib/python3.12/site-packages/Six-1.17.0.dist-info/METADATA": pyFile("Name: Six\nVersion: 1.17.0\n"),
		// Same distribution, other spelling, as an egg: one package.
		"opt/x/Zope.Interface-6.0-py3.11.egg-info/PKG-INFO":       pyFile("Name: Zope.Interface\nVersion: 6.0\n"),
		"opt/y/zope_interface-6.0.dist-info/METADATA":             pyFile("Name: zope_interface\r\nVersion: 6.0\r\n"),
		"opt/y/zope_interface-6.0.dist-info/RECORD":               pyFile("not wanted"),
		"opt/y/not-metadata/METADATA":                             pyFile("Name: nope\nVersion: 1\n"),
		"opt/y/broken-1.0.dist-info/METADATA":                     pyFile("Name: broken\n"),
		"usr/share/doc/python3-six/PKG-INFO":                      pyFile("Name: nope\nVersion: 1\n"),
		"usr/lib/python3/dist-packages/foo.egg-info/PKG-INFO/x":   pyFile("Name: nope\nVersion: 1\n"),
		"usr/lib/python3/dist-packages/six-1.16.0.egg-info/top.x": pyFile("six\n"),
	}
	res := Run(context.Background(), fsys, []Analyzer{NewPython()})
	want := []string{
		"six 1.16.0 app/.venv/lib/python3.12/site-packages/six-1.16.0.dist-info/METADATA,usr/local/lib/python3.11/site-packages/six-1.16.0.dist-info/METADATA",
		"six 1.17.0 app/.venv/lib/python3.12/site-packages/Six-1.17.0.dist-info/METADATA",
		"zope-interface 6.0 opt/x/Zope.Interface-6.0-py3.11.egg-info/PKG-INFO,opt/y/zope_interface-6.0.dist-info/METADATA",
	}
	if got := gobinLines(res.Packages); !reflect.DeepEqual(got, want) {
		t.Errorf("packages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantErr := []report.FileError{{Analyzer: "python", Path: "opt/y/broken-1.0.dist-info/METADATA", Err: "distribution broken has no Version field"}}
	if !reflect.DeepEqual(res.Errors, wantErr) {
		t.Errorf("errors %+v", res.Errors)
	}
}

func TestPythonWants(t *testing.T) {
	a := NewPython().(FileAnalyzer)
	for name, want := range map[string]bool{
		"usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA": true,
		"x/six-1.16.0.egg-info/PKG-INFO":                              true,
		"x/crit-3.17.1-py3.11.egg-info":                               true,
		"METADATA":                                                    false,
		"x/.dist-info/METADATA/y":                                     false,
		"x/six.dist-info/RECORD":                                      false,
		"x/six.egg-info/METADATA":                                     false,
		"x/six.dist-info/PKG-INFO":                                    false,
		"x/.egg-info":                                                 false,
		"x/six.egg-info.bak":                                          false,
	} {
		if got := a.Wants(name, nil); got != want {
			t.Errorf("Wants(%q) = %v", name, got)
		}
	}
	// An egg-info directory is walked into, not read.
	fsys := fstest.MapFS{"six-1.16.0.egg-info/PKG-INFO": pyFile("")}
	ents, _ := fsys.ReadDir(".")
	if len(ents) != 1 || a.Wants("six-1.16.0.egg-info", ents[0]) {
		t.Error("egg-info directory wanted")
	}
}

func TestParsePyMetadata(t *testing.T) {
	for _, c := range []struct {
		in, name, version, err string
	}{
		{in: "Metadata-Version: 2.1\nName: requests\nVersion: 2.28.1\nSummary: x\n", name: "requests", version: "2.28.1"},
		{in: "name:six\nversion:  1.16.0  \n", name: "six", version: "1.16.0"},
		{in: "Name: a\r\nVersion: 1.0\r\n\r\nName: b\r\n", name: "a", version: "1.0"},
		// Continuation lines and odd lines in other fields are no problem; the body is never read.
		{in: "Name: a\nDescription: line\n        more\n |x\nnot a field\nVersion: 1.0rc1+local.2\n\nVersion: 9\n", name: "a", version: "1.0rc1+local.2"},
		{in: "Name: caf\xc3\xa9\nVersion: 1\n", err: `invalid distribution name "café"`},
		{in: "Name: -a\nVersion: 1\n", err: `invalid distribution name "-a"`},
		{in: "Version: 1\n", err: "no Name field"},
		{in: "Name:\nVersion: 1\n", err: "no Name field"},
		{in: "Name: a\nVersion: 1 2\n", err: `distribution a has invalid version "1 2"`},
		{in: "Name: a\n\nVersion: 1\n", err: "distribution a has no Version field"},
		{in: "Name: a\nName: b\nVersion: 1\n", err: "line 2: duplicate Name field"},
		{in: "Name: a\nVersion: 1\nVersion: 2\n", err: "line 3: duplicate Version field"},
		{in: "Name: a\x00\nVersion: 1\n", err: "binary content (NUL byte at offset 7)"},
		{in: "", err: "no Name field"},
	} {
		md, err := parsePyMetadata([]byte(c.in))
		switch {
		case c.err != "":
			if err == nil || err.Error() != c.err {
				t.Errorf("%q: err %v, want %q", c.in, err, c.err)
			}
		case err != nil:
			t.Errorf("%q: %v", c.in, err)
		case md.Name != c.name || md.Version != c.version:
			t.Errorf("%q: got %+v", c.in, md)
		}
	}
}

func TestNormalizePyName(t *testing.T) {
	for in, want := range map[string]string{
		"PyYAML":          "pyyaml",
		"zope.interface":  "zope-interface",
		"Friendly-Bard":   "friendly-bard",
		"FRIENDLY__bard":  "friendly-bard",
		"friendly.-_bard": "friendly-bard",
		"a":               "a",
	} {
		if got := normalizePyName(in); got != want {
			t.Errorf("normalizePyName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPythonTooLarge(t *testing.T) {
	fsys := fstest.MapFS{"a-1.dist-info/METADATA": pyFile("Name: a\nVersion: 1\n\n" + strings.Repeat("x", pyMaxMetadataSize))}
	res := Run(context.Background(), fsys, []Analyzer{NewPython()})
	if len(res.Packages) != 0 || len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Err, ErrTooLarge.Error()) {
		t.Errorf("packages %v errors %v", res.Packages, res.Errors)
	}
}

func FuzzParsePyMetadata(f *testing.F) {
	ents, _ := filepath.Glob("testdata/python/root/" + pyDist + "*/*")
	ents = append(ents, "testdata/python/root/"+pyDist+"crit-3.17.1-py3.11.egg-info")
	for _, p := range ents {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("Name: a\r\nVersion: 1\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		md, err := parsePyMetadata(data)
		if err != nil {
			return
		}
		if !validPyName(md.Name) || md.Version == "" || strings.ContainsAny(md.Version, " \t\r\n") {
			t.Fatalf("accepted %+v", md)
		}
		n := normalizePyName(md.Name)
		if n != strings.ToLower(n) || strings.Contains(n, "--") || strings.ContainsAny(n, "._") {
			t.Fatalf("normalizePyName(%q) = %q", md.Name, n)
		}
	})
}

// BenchmarkSharedWalk runs both language analyzers over a tree of 10,000 files of which few are wanted. Python
// answers from the name alone; Go rules most files out by name and stats the rest (regular files only), so the
// difference to walk-only is about one stat per file it cannot rule out by name.
func BenchmarkSharedWalk(b *testing.B) {
	root := b.TempDir()
	for i := range 10000 {
		var name string
		var data []byte
		mode := os.FileMode(0o644)
		switch {
		case i%1000 == 0:
			name = fmt.Sprintf("usr/lib/python3/dist-packages/p%d-1.0.dist-info/METADATA", i)
			data = fmt.Appendf(nil, "Name: p%d\nVersion: 1.0\n", i)
		case i%100 == 0:
			name = fmt.Sprintf("usr/bin/tool%d", i) // executable, not ELF: one stat, one 4-byte read
			data = make([]byte, goBinMinSize)
			mode = 0o755
		case i%10 < 4:
			name = fmt.Sprintf("usr/share/locale/l%d/LC_MESSAGES/m%d.mo", i%50, i)
		case i%10 < 7:
			name = fmt.Sprintf("usr/lib/python3/dist-packages/pkg%d/m%d.py", i%40, i)
		case i%10 < 9:
			name = fmt.Sprintf("usr/lib/data%d/file%d", i%30, i) // no telling suffix: stat
		default:
			name = fmt.Sprintf("usr/share/doc/pkg%d/copyright", i)
		}
		gobinWrite(b, root, name, data, mode)
	}
	fsys := gobinOpen(b, root)
	for _, c := range []struct {
		name      string
		analyzers []Analyzer
		packages  int
	}{
		{"walk-only", []Analyzer{pyNopAnalyzer{}}, 0},
		{"go+python", []Analyzer{goOnlyBinary(), NewPython()}, 10},
		// default: every analyzer rootscan runs, so the walk cost of each new file analyzer shows here.
		{"default", DefaultAnalyzers(), 10},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				res := Run(context.Background(), fsys, c.analyzers)
				if len(res.Packages) != c.packages || len(res.Errors) != 0 {
					b.Fatalf("packages %d errors %v", len(res.Packages), res.Errors)
				}
			}
		})
	}
}

// pyNopAnalyzer wants nothing: the cost of the shared walk alone.
type pyNopAnalyzer struct{}

func (pyNopAnalyzer) Name() string                                                  { return "nop" }
func (pyNopAnalyzer) Version() int                                                  { return 1 }
func (pyNopAnalyzer) Requires() []string                                            { return nil }
func (pyNopAnalyzer) Paths() []string                                               { return nil }
func (pyNopAnalyzer) Analyze(context.Context, FS, *report.Result) error             { return nil }
func (pyNopAnalyzer) Wants(string, fs.DirEntry) bool                                { return false }
func (pyNopAnalyzer) AnalyzeFile(context.Context, FS, string, *report.Result) error { return nil }
