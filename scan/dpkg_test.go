package scan

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"testing/iotest"
	"time"

	"github.com/rootscan/rootscan/report"
)

// Testdata provenance:
//   testdata/dpkg/status                 /var/lib/dpkg/status of a Debian 12 machine (713 installed packages)
//   testdata/dpkg/status.dpkg-query.tsv  on that machine: dpkg-query -W -f='${Package}\t${Architecture}\t${Version}\t
//                                        ${source:Package}\t${source:Version}\t${db:Status-Status}\n'
//   testdata/dpkg/status.d/<pkg>         dpkg-deb -f <pkg>.deb (apt-get download, bookworm), as distroless writes them
//   testdata/dpkg/status.d/<pkg>.md5sums dpkg-deb -I <pkg>.deb md5sums
//   testdata/dpkg/status-states          hand-made from real stanzas, one per interesting Status value

func testdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func file(b []byte) *fstest.MapFile { return &fstest.MapFile{Data: b, Mode: 0o644} }

// statusDFS puts every testdata/dpkg/status.d file under var/lib/dpkg/status.d.
func statusDFS(t *testing.T, fsys fstest.MapFS) fstest.MapFS {
	t.Helper()
	ents, err := os.ReadDir("testdata/dpkg/status.d")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		fsys[dpkgStatusDir+"/"+e.Name()] = file(testdata(t, "dpkg/status.d/"+e.Name()))
	}
	return fsys
}

func analyze(t *testing.T, a Analyzer, fsys FS) *report.Result {
	t.Helper()
	var out report.Result
	if err := a.Analyze(context.Background(), fsys, &out); err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	return &out
}

// pkgLine is the comparable part of a Package.
func pkgLine(p report.Package) string {
	return strings.Join([]string{p.Name, p.Arch, p.Version, p.Source, p.SourceVersion}, " ")
}

func pkgLines(ps []report.Package) []string {
	var out []string
	for _, p := range ps {
		out = append(out, pkgLine(p))
	}
	return out
}

func findPkg(ps []report.Package, name, arch string) *report.Package {
	for i := range ps {
		if ps[i].Name == name && ps[i].Arch == arch {
			return &ps[i]
		}
	}
	return nil
}

func TestDpkgRealStatusMatchesDpkgQuery(t *testing.T) {
	out := analyze(t, NewDpkg(), fstest.MapFS{dpkgStatusPath: file(testdata(t, "dpkg/status"))})
	if len(out.Errors) != 0 {
		t.Fatalf("errors: %v", out.Errors)
	}
	// The oracle is dpkg-query's own view of this status file.
	want := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(testdata(t, "dpkg/status.dpkg-query.tsv")))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 6 || f[5] != "installed" {
			t.Fatalf("bad oracle line %q", sc.Text())
		}
		want[strings.Join(f[:5], " ")] = true
	}
	if len(want) != 713 || len(out.Packages) != 713 {
		t.Fatalf("got %d packages, oracle has %d, want 713", len(out.Packages), len(want))
	}
	for _, p := range out.Packages {
		if !want[pkgLine(p)] {
			t.Errorf("package %q not as dpkg-query reports it", pkgLine(p))
		}
		if p.Ecosystem != report.EcosystemDebian || !reflect.DeepEqual(p.Locations, []string{dpkgStatusPath}) {
			t.Errorf("%s: ecosystem %q locations %v", p.Name, p.Ecosystem, p.Locations)
		}
	}
	// Order is by name (byte order); checked by hand against the file.
	got := pkgLines(out.Packages)
	for i, w := range []string{
		"adduser all 3.134 adduser 3.134",
		"adwaita-icon-theme all 43-1 adwaita-icon-theme 43-1",
		"alsa-topology-conf all 1.2.5.1-2 alsa-topology-conf 1.2.5.1-2",
	} {
		if got[i] != w {
			t.Errorf("package %d = %q, want %q", i, got[i], w)
		}
	}
	if last := got[len(got)-1]; last != "zstd amd64 1.5.4+dfsg2-5 libzstd 1.5.4+dfsg2-5" {
		t.Errorf("last package = %q", last)
	}
	for _, w := range []string{
		"libc6 amd64 2.36-9+deb12u14 glibc 2.36-9+deb12u14",       // Source without version
		"bash amd64 5.2.15-2+b8 bash 5.2.15-2",                    // binNMU: "Source: bash (5.2.15-2)"
		"libatm1 amd64 1:2.5.1-4+b2 linux-atm 1:2.5.1-4",          // epoch in both versions
		"base-files amd64 12.4+deb12u11 base-files 12.4+deb12u11", // no Source field
		"libgcc-s1 amd64 12.2.0-14+deb12u1 gcc-12 12.2.0-14+deb12u1",
		"ca-certificates all 20230311+deb12u1 ca-certificates 20230311+deb12u1",
	} {
		if !strings.Contains("\n"+strings.Join(got, "\n")+"\n", "\n"+w+"\n") {
			t.Errorf("missing %q", w)
		}
	}
}

func TestDpkgStatusStates(t *testing.T) {
	out := analyze(t, NewDpkg(), fstest.MapFS{dpkgStatusPath: file(testdata(t, "dpkg/status-states"))})
	if len(out.Errors) != 0 {
		t.Fatalf("errors: %v", out.Errors)
	}
	want := []string{
		"bash amd64 5.2.15-2+b8 bash 5.2.15-2",
		"libc6 amd64 2.36-9+deb12u14 glibc 2.36-9+deb12u14",
		"libc6 i386 2.36-9+deb12u14 glibc 2.36-9+deb12u14",  // hold ok installed
		"man-db amd64 2.11.2-2 man-db 2.11.2-2",             // install ok triggers-pending
		"tzdata all 2025b-0+deb12u2 tzdata 2025b-0+deb12u2", // deinstall ok installed: removal wanted, files still there
	}
	// Dropped: exim4-config (config-files), nano (purge, no Version), libssl3 (reinstreq half-installed), openssl (unpacked).
	if got := pkgLines(out.Packages); !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestDpkgDistrolessStatusD(t *testing.T) {
	fsys := statusDFS(t, fstest.MapFS{
		dpkgStatusDir + "/.libc6.swp":   file([]byte("\x00garbage")), // dot files are skipped
		dpkgStatusDir + "/sub/libfoo":   file([]byte("garbage")),     // directories are skipped
		dpkgStatusDir + "/tzdata-link":  {Data: []byte("tzdata"), Mode: fs.ModeSymlink | 0o777},
		dpkgStatusDir + "/zz.md5sums":   file([]byte("\x00")),
		"var/lib/dpkg/status-old":       file([]byte("garbage")),
		"var/lib/dpkg/status.d.new/foo": file([]byte("garbage")),
	})
	out := analyze(t, NewDpkg(), fsys)
	if len(out.Errors) != 0 {
		t.Fatalf("errors: %v", out.Errors)
	}
	want := []string{
		"base-files amd64 12.4+deb12u15 base-files 12.4+deb12u15",
		"bash amd64 5.2.15-2+b13 bash 5.2.15-2",
		"libatm1 amd64 1:2.5.1-4+b2 linux-atm 1:2.5.1-4",
		"libc6 amd64 2.36-9+deb12u14 glibc 2.36-9+deb12u14",
		"libgcc-s1 amd64 12.2.0-14+deb12u1 gcc-12 12.2.0-14+deb12u1",
		"libssl3 amd64 3.0.22-1~deb12u2 openssl 3.0.22-1~deb12u2",
		"netbase all 6.4 netbase 6.4",
		"tzdata all 2026f-0+deb12u1 tzdata 2026f-0+deb12u1",
	}
	if got := pkgLines(out.Packages); !reflect.DeepEqual(got, want) {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := findPkg(out.Packages, "libc6", "amd64").Locations; !reflect.DeepEqual(got, []string{"var/lib/dpkg/status.d/libc6"}) {
		t.Errorf("libc6 locations %v", got)
	}
	// A symlinked entry is read through the link and names the link.
	wantLoc := []string{"var/lib/dpkg/status.d/tzdata", "var/lib/dpkg/status.d/tzdata-link"}
	if got := findPkg(out.Packages, "tzdata", "all").Locations; !reflect.DeepEqual(got, wantLoc) {
		t.Errorf("tzdata locations %v, want %v", got, wantLoc)
	}
}

func TestDpkgMergesStatusAndStatusD(t *testing.T) {
	fsys := statusDFS(t, fstest.MapFS{dpkgStatusPath: file(testdata(t, "dpkg/status"))})
	out := analyze(t, NewDpkg(), fsys)
	if len(out.Errors) != 0 {
		t.Fatalf("errors: %v", out.Errors)
	}
	libc := findPkg(out.Packages, "libc6", "amd64")
	if want := []string{dpkgStatusPath, "var/lib/dpkg/status.d/libc6"}; libc == nil || !reflect.DeepEqual(libc.Locations, want) {
		t.Fatalf("libc6 = %+v, want locations %v", libc, want)
	}
	// Same name and arch but another version: two packages, each where it was found.
	var bf []string
	for _, p := range out.Packages {
		if p.Name == "base-files" {
			bf = append(bf, p.Version+" "+strings.Join(p.Locations, ","))
		}
	}
	want := []string{"12.4+deb12u11 var/lib/dpkg/status", "12.4+deb12u15 var/lib/dpkg/status.d/base-files"}
	if !reflect.DeepEqual(bf, want) {
		t.Errorf("base-files: %v, want %v", bf, want)
	}
	// 713 from status; status.d adds base-files, bash, libssl3 and tzdata in other versions; libatm1, libc6,
	// libgcc-s1 and netbase are the same as in status.
	if len(out.Packages) != 717 {
		t.Errorf("got %d packages, want 717", len(out.Packages))
	}
}

// hugeFS serves one name as a file claiming to be huge, and counts reads of it.
type hugeFS struct {
	fstest.MapFS
	name  string
	reads *int
}

func (h hugeFS) Open(name string) (fs.File, error) {
	if name == h.name {
		return &hugeFile{name: name, reads: h.reads}, nil
	}
	return h.MapFS.Open(name)
}

type hugeFile struct {
	name  string
	reads *int
}

func (f *hugeFile) Stat() (fs.FileInfo, error) { return hugeInfo{path.Base(f.name)}, nil }
func (f *hugeFile) Read(p []byte) (int, error) {
	*f.reads++
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}
func (f *hugeFile) Close() error { return nil }

type hugeInfo struct{ name string }

func (i hugeInfo) Name() string       { return i.name }
func (i hugeInfo) Size() int64        { return 50 << 20 }
func (i hugeInfo) Mode() fs.FileMode  { return 0o644 }
func (i hugeInfo) ModTime() time.Time { return time.Time{} }
func (i hugeInfo) IsDir() bool        { return false }
func (i hugeInfo) Sys() any           { return nil }

func TestDpkgBadFilesAreReportedAndSkipped(t *testing.T) {
	d := dpkgStatusDir + "/"
	m := fstest.MapFS{
		d + "libc6":    file(testdata(t, "dpkg/status.d/libc6")),
		d + "netbase":  file(testdata(t, "dpkg/status.d/netbase")),
		d + "binary":   file([]byte("\x7fELF\x02\x01\x01\x00\x00\x00Package: evil\n")),
		d + "dangling": {Data: []byte("nowhere"), Mode: fs.ModeSymlink | 0o777},
		d + "empty":    file(nil),
		d + "fifo":     {Mode: fs.ModeNamedPipe | 0o644},
		d + "garbage":  file([]byte("hello world\nthis is not a control file\n")),
		d + "huge":     file([]byte("listed by ReadDir; Open is served by hugeFS")),
		d + "nover":    file([]byte("Package: nover\nArchitecture: amd64\n")),
		d + "nopkg":    file([]byte("Version: 1.0\nArchitecture: amd64\n")),
	}
	reads := 0
	out := analyze(t, NewDpkg(), hugeFS{MapFS: m, name: d + "huge", reads: &reads})
	if reads != 0 {
		t.Errorf("the 50 MiB entry was read %d times; it must be refused by its size", reads)
	}
	if got, want := pkgLines(out.Packages), []string{
		"libc6 amd64 2.36-9+deb12u14 glibc 2.36-9+deb12u14",
		"netbase all 6.4 netbase 6.4",
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("packages %v, want %v", got, want)
	}
	type pe struct{ path, contains string }
	want := []pe{
		{d + "binary", "binary content"},
		{d + "dangling", "not exist"},
		{d + "empty", "no package stanza"},
		{d + "fifo", ErrNotRegular.Error()},
		{d + "garbage", "line 1: not a field"},
		{d + "garbage", "line 2: not a field"},
		{d + "huge", ErrTooLarge.Error()},
		{d + "nopkg", "no Package field"},
		{d + "nover", "package nover has no Version field"},
	}
	if len(out.Errors) != len(want) {
		t.Fatalf("got %d errors, want %d: %+v", len(out.Errors), len(want), out.Errors)
	}
	for i, w := range want {
		e := out.Errors[i]
		if e.Analyzer != "dpkg" || e.Path != w.path || !strings.Contains(e.Err, w.contains) {
			t.Errorf("error %d = %+v, want path %s containing %q", i, e, w.path, w.contains)
		}
	}
}

func TestDpkgLimits(t *testing.T) {
	t.Run("status too large", func(t *testing.T) {
		a := NewDpkg().(*dpkgAnalyzer)
		a.maxStatusSize = 1000
		out := analyze(t, a, statusDFS(t, fstest.MapFS{dpkgStatusPath: file(testdata(t, "dpkg/status"))}))
		if len(out.Errors) != 1 || out.Errors[0].Path != dpkgStatusPath || !strings.Contains(out.Errors[0].Err, ErrTooLarge.Error()) {
			t.Errorf("errors %+v, want one ErrTooLarge for the status file", out.Errors)
		}
		if len(out.Packages) != 8 {
			t.Errorf("got %d packages, want the 8 of status.d", len(out.Packages))
		}
	})
	t.Run("status.d entry too large", func(t *testing.T) {
		a := NewDpkg().(*dpkgAnalyzer)
		big := bytes.Repeat([]byte("Description: x\n"), (dpkgMaxEntrySize/15)+1)
		out := analyze(t, a, fstest.MapFS{dpkgStatusDir + "/big": file(append([]byte("Package: big\nVersion: 1\n"), big...))})
		if len(out.Errors) != 1 || !strings.Contains(out.Errors[0].Err, ErrTooLarge.Error()) || len(out.Packages) != 0 {
			t.Errorf("errors %+v packages %v, want one ErrTooLarge", out.Errors, out.Packages)
		}
	})
	t.Run("too many entries", func(t *testing.T) {
		a := NewDpkg().(*dpkgAnalyzer)
		a.maxEntries = 3
		m := fstest.MapFS{}
		for _, n := range []string{"a", "b", "c", "d", "e"} {
			m[dpkgStatusDir+"/"+n] = file([]byte("Package: " + n + "\nVersion: 1\n"))
		}
		out := analyze(t, a, m)
		if len(out.Packages) != 3 {
			t.Errorf("got %d packages, want 3", len(out.Packages))
		}
		if len(out.Errors) != 1 || out.Errors[0].Path != dpkgStatusDir || !strings.Contains(out.Errors[0].Err, "more than 3 entries") {
			t.Errorf("errors %+v", out.Errors)
		}
	})
	t.Run("error list bounded", func(t *testing.T) {
		a := NewDpkg().(*dpkgAnalyzer)
		a.maxErrors = 2
		m := fstest.MapFS{dpkgStatusDir + "/good": file([]byte("Package: good\nVersion: 1\n"))}
		for i := range 5 {
			m[fmt.Sprintf("%s/bad%d", dpkgStatusDir, i)] = file([]byte("Package: bad\n"))
		}
		out := analyze(t, a, m)
		if len(out.Errors) != 3 || out.Errors[2].Path != "" || out.Errors[2].Err != "3 more problems not listed" {
			t.Errorf("errors %+v, want 2 and a summary", out.Errors)
		}
		if len(out.Packages) != 1 {
			t.Errorf("packages %v", out.Packages)
		}
	})
}

// cancelFS cancels a context when a given file is opened.
type cancelFS struct {
	fstest.MapFS
	name   string
	cancel context.CancelFunc
}

func (c cancelFS) Open(name string) (fs.File, error) {
	if name == c.name {
		c.cancel()
	}
	return c.MapFS.Open(name)
}

func TestDpkgContextCancel(t *testing.T) {
	m := statusDFS(t, fstest.MapFS{dpkgStatusPath: file(testdata(t, "dpkg/status"))})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := report.Result{}
	if err := NewDpkg().Analyze(ctx, m, &out); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled before start: err = %v", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	err := NewDpkg().Analyze(ctx, cancelFS{MapFS: m, name: dpkgStatusDir + "/bash", cancel: cancel}, &out)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled midway: err = %v", err)
	}
	if len(out.Packages) != 0 || len(out.Errors) != 0 {
		t.Errorf("a cancelled run added %d packages and %d errors", len(out.Packages), len(out.Errors))
	}
}

func TestDpkgDeterministic(t *testing.T) {
	m := statusDFS(t, fstest.MapFS{
		dpkgStatusPath:             file(append(testdata(t, "dpkg/status-states"), testdata(t, "dpkg/status")...)),
		dpkgStatusDir + "/garbage": file([]byte("x\n")),
	})
	first := analyze(t, NewDpkg(), m)
	for range 5 {
		if again := analyze(t, NewDpkg(), m); !reflect.DeepEqual(first, again) {
			t.Fatal("two runs over the same root differ")
		}
	}
}

func TestDpkgPaths(t *testing.T) {
	a := NewDpkg()
	for name, want := range map[string]bool{
		"var/lib/dpkg/status":              true,
		"var/lib/dpkg/status.d/libc6":      true,
		"var/lib/dpkg/status-old":          false,
		"var/lib/dpkg/status.d/sub/libfoo": false,
		"var/lib/dpkg/available":           false,
	} {
		if got := Touches(a, name); got != want {
			t.Errorf("Touches(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestParseDpkgStatus(t *testing.T) {
	longDesc := strings.Repeat("y", 1<<20)
	tests := []struct {
		name          string
		in            string
		implied       bool
		want          []string
		wantProblems  []string
		wantMoreProbs int
	}{
		{
			name: "continuation lines and long lines",
			in: "Package: a\nStatus: install ok installed\nDescription: " + longDesc + "\n " + longDesc +
				"\n .\n more\nConffiles:\n /etc/a 123\nVersion: 1.0\nArchitecture: amd64\n",
			want: []string{"a amd64 1.0 a 1.0"},
		},
		{
			name:    "source with version",
			in:      "Package: libatm1\nSource: linux-atm (1:2.5.1-4)\nVersion: 1:2.5.1-4+b2\n",
			implied: true,
			want:    []string{"libatm1  1:2.5.1-4+b2 linux-atm 1:2.5.1-4"},
		},
		{
			name:    "source with version, same name, odd spacing",
			in:      "Package: bash\nSource:   bash\t( 5.2.15-2 )  \nVersion: 5.2.15-2+b8\n",
			implied: true,
			want:    []string{"bash  5.2.15-2+b8 bash 5.2.15-2"},
		},
		{
			name:         "malformed source keeps the package",
			in:           "Package: a\nSource: glibc (2.36\nVersion: 1\n",
			implied:      true,
			want:         []string{"a  1 a 1"},
			wantProblems: []string{`stanza at line 1: package a has malformed Source "glibc (2.36"`},
		},
		{
			name:    "field names are case-insensitive, CRLF, blank line with spaces, no final newline",
			in:      "package: a\r\nversion: 1\r\n  \t\r\nPACKAGE: b\r\nVERSION: 2",
			implied: true,
			want:    []string{"a  1 a 1", "b  2 b 2"},
		},
		{
			name:    "comments and repeated blank lines",
			in:      "\n\n# generated\nPackage: a\n# inside\nVersion: 1\n\n\n\n",
			implied: true,
			want:    []string{"a  1 a 1"},
		},
		{
			name: "status file needs a Status field",
			in:   "Package: a\nVersion: 1\n",
			wantProblems: []string{
				"stanza at line 1: package a has no Status field",
			},
		},
		{
			name:    "explicit Status counts in status.d too",
			in:      "Package: a\nStatus: deinstall ok config-files\nVersion: 1\n",
			implied: true,
		},
		{
			name: "status words",
			in: "Package: a\nStatus: install ok installed extra\nVersion: 1\n\n" +
				"Package: b\nStatus: install reinstreq installed\nVersion: 1\n\n" +
				"Package: c\nStatus:  hold   ok   triggers-awaited \nVersion: 1\n\n" +
				"Package: d\nStatus: install ok half-configured\nVersion: 1\n",
			want: []string{"c  1 c 1"},
		},
		{
			name:    "duplicate field keeps the first",
			in:      "Package: a\nPackage: b\nVersion: 1\n",
			implied: true,
			want:    []string{"a  1 a 1"},
			wantProblems: []string{
				"line 2: duplicate field Package",
			},
		},
		{
			name:    "continuation of a single-line field",
			in:      "Package: a\nVersion: 1\n 2\n",
			implied: true,
			want:    []string{"a  1 a 1"},
			wantProblems: []string{
				"line 3: continuation of single-line field Version",
			},
		},
		{
			name:    "invalid values",
			in:      "Package: -a\nVersion: 1\n\nPackage: b\nVersion: 1 2\n\nPackage: c\nVersion: 1\nArchitecture: am\x01d64\n",
			implied: true,
			want:    []string{"c  1 c 1"},
			wantProblems: []string{
				`stanza at line 1: invalid package name "-a"`,
				`stanza at line 4: package b has invalid version "1 2"`,
				`stanza at line 7: package c has invalid architecture "am\x01d64"`,
			},
		},
		{
			name:          "problems are capped",
			in:            strings.Repeat("junk\n", 25) + "Package: a\nVersion: 1\n",
			implied:       true,
			want:          []string{"a  1 a 1"},
			wantProblems:  []string{"line 1: not a field", "line 2: not a field", "line 3: not a field", "line 4: not a field", "line 5: not a field", "line 6: not a field", "line 7: not a field", "line 8: not a field", "line 9: not a field", "line 10: not a field"},
			wantMoreProbs: 15,
		},
		{
			name:         "continuation outside a stanza",
			in:           " orphan\n",
			wantProblems: []string{"line 1: continuation line outside a stanza"},
		},
		{name: "empty", in: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := parseDpkgStatus([]byte(tc.in), tc.implied)
			if got := pkgLines(res.Packages); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("packages %q, want %q", got, tc.want)
			}
			if !reflect.DeepEqual(res.Problems, tc.wantProblems) {
				t.Errorf("problems %q, want %q", res.Problems, tc.wantProblems)
			}
			if res.MoreProblems != tc.wantMoreProbs {
				t.Errorf("more problems %d, want %d", res.MoreProblems, tc.wantMoreProbs)
			}
		})
	}
}

func FuzzParseDpkgStatus(f *testing.F) {
	for _, name := range []string{"dpkg/status-states", "dpkg/status.d/libc6", "dpkg/status.d/bash", "dpkg/status.d/libc6.md5sums"} {
		f.Add(testdata(f, name), false)
		f.Add(testdata(f, name), true)
	}
	// The first stanzas of the real status file; the whole file makes each fuzz run slow.
	status := testdata(f, "dpkg/status")
	f.Add(status[:8192], false)
	f.Add([]byte("Package: a\nSource: b (1)\nVersion: 1\n\n \n\tx\nPackage:\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, implied bool) {
		res := parseDpkgStatus(data, implied)
		for _, p := range res.Packages {
			if p.Name == "" || p.Version == "" || p.Source == "" || p.SourceVersion == "" {
				t.Fatalf("incomplete package %+v", p)
			}
			if p.Ecosystem != report.EcosystemDebian {
				t.Fatalf("ecosystem %q", p.Ecosystem)
			}
			if !validDebName([]byte(p.Name)) || !validDebToken([]byte(p.Version)) {
				t.Fatalf("invalid package %+v", p)
			}
			if !bytes.Contains(data, []byte(p.Name)) || !bytes.Contains(data, []byte(p.Version)) {
				t.Fatalf("package %+v not in the input", p)
			}
		}
		if len(res.Problems) > dpkgMaxProblemsPerFile || res.MoreProblems > 0 && len(res.Problems) != dpkgMaxProblemsPerFile {
			t.Fatalf("%d problems listed, %d more", len(res.Problems), res.MoreProblems)
		}
		if again := parseDpkgStatus(data, implied); !reflect.DeepEqual(res, again) {
			t.Fatal("parsing is not deterministic")
		}
	})
}

// The streaming parser (what the analyzer uses for var/lib/dpkg/status) must give exactly what the in-memory one
// gives, also when lines are longer than its buffer (16 bytes here) and the reader returns a byte at a time.
func FuzzParseDpkgStatusFrom(f *testing.F) {
	for _, name := range []string{"dpkg/status-states", "dpkg/status.d/libc6", "dpkg/status.d/bash"} {
		f.Add(testdata(f, name), false)
	}
	f.Add(testdata(f, "dpkg/status")[:8192], false)
	f.Add([]byte("Package: a\nSource: b (1)\nVersion: 1\n\n \n\tx\nPackage:\n"), true)
	f.Add([]byte("Package: a\nVersion: 1\nStatus: install ok installed\n\nPackage: b\x00\n"), false)
	f.Add([]byte("Package: a-very-long-package-name-longer-than-the-buffer\r\nVersion: 1\r\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, implied bool) {
		want := parseDpkgStatus(data, implied)
		got, err := parseDpkgStatusBuffered(bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(data)), 16), implied)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("streamed:\n%+v\nin memory:\n%+v", got, want)
		}
	})
}

// BenchmarkDpkgStatusFrom: the streaming parse of the same 713-package status file.
func BenchmarkDpkgStatusFrom(b *testing.B) {
	data := testdata(b, "dpkg/status")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if res, err := parseDpkgStatusFrom(bytes.NewReader(data), false); err != nil || len(res.Packages) != 713 {
			b.Fatalf("%v, %d packages", err, len(res.Packages))
		}
	}
}

func BenchmarkDpkgStatus(b *testing.B) {
	data := testdata(b, "dpkg/status")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if res := parseDpkgStatus(data, false); len(res.Packages) != 713 {
			b.Fatalf("%d packages", len(res.Packages))
		}
	}
}

func BenchmarkDpkgAnalyze(b *testing.B) {
	m := fstest.MapFS{dpkgStatusPath: file(testdata(b, "dpkg/status"))}
	a := NewDpkg()
	b.ReportAllocs()
	for b.Loop() {
		var out report.Result
		if err := a.Analyze(context.Background(), m, &out); err != nil || len(out.Packages) != 713 {
			b.Fatalf("%v, %d packages", err, len(out.Packages))
		}
	}
}
