package scan

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/rootscan/rootscan/report"
)

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// md5sumsOf renders an md5sums file listing each path with the sum of content.
func md5sumsOf(entries ...[2]string) []byte {
	var b strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&b, "%s  %s\n", md5hex(e[1]), e[0])
	}
	return []byte(b.String())
}

func stanza(name, arch string) []byte {
	return []byte("Package: " + name + "\nVersion: 1.0-1\nArchitecture: " + arch + "\nMaintainer: x\nDescription: y\n")
}

// runIntegrity runs dpkg then deb-integrity, as DefaultAnalyzers orders them.
func runIntegrity(t *testing.T, fsys FS, a Analyzer) *report.Result {
	t.Helper()
	return Run(context.Background(), fsys, []Analyzer{NewDpkg(), a})
}

func findingLines(fs []report.IntegrityFinding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, strings.Join([]string{f.Package, f.Ecosystem, f.Path, f.Algorithm, f.Expected, f.Found}, " "))
	}
	return out
}

func errorLines(es []report.FileError) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Analyzer+" "+e.Path+": "+e.Err)
	}
	return out
}

// A distroless root: status.d stanzas with .md5sums next to them, docs stripped.
func TestDebIntegrityDistroless(t *testing.T) {
	const sd = dpkgStatusDir + "/"
	fsys := fstest.MapFS{
		sd + "hello": file(stanza("hello", "amd64")),
		sd + "hello.md5sums": file(md5sumsOf(
			[2]string{"usr/bin/hello", "hello binary"},
			[2]string{"usr/lib/libhello.so.1", "lib"},
			[2]string{"usr/lib/gone.so", "gone"},
			[2]string{"usr/share/doc/hello/changelog.gz", "stripped docs"},
			[2]string{"usr/share/doc/hello/copyright", "copyright"},
			[2]string{"usr/share/man/man1/hello.1.gz", "stripped man page"},
			[2]string{"usr/share/locale/de/LC_MESSAGES/hello.mo", "stripped translation"},
			[2]string{"usr/lib/now-a-link", "was a file"},
			[2]string{"usr/lib/now-a-dir", "was a file"},
			[2]string{"usr/share/doc/hello/README", "readme"},
		)),
		"usr/bin/hello":                 file([]byte("hello binary")),
		"usr/lib/libhello.so.1":         file([]byte("patched lib")),
		"usr/share/doc/hello/copyright": file([]byte("copyright")),
		"usr/lib/now-a-link":            {Data: []byte("/usr/bin/hello"), Mode: fs.ModeSymlink | 0o777},
		"usr/lib/now-a-dir/x":           file([]byte("x")),
		// Present in an excused tree but rewritten: still reported.
		"usr/share/doc/hello/README": file([]byte("rewritten")),
		// A second package without md5sums (a metapackage) is simply not checked.
		sd + "meta": file(stanza("meta", "all")),
	}
	res := runIntegrity(t, fsys, NewDebIntegrity())
	if len(res.Errors) != 0 {
		t.Errorf("errors: %q", errorLines(res.Errors))
	}
	want := []string{
		"hello Debian usr/lib/gone.so md5 " + md5hex("gone") + " ",
		"hello Debian usr/lib/libhello.so.1 md5 " + md5hex("lib") + " " + md5hex("patched lib"),
		"hello Debian usr/lib/now-a-dir md5 " + md5hex("was a file") + " not a regular file",
		"hello Debian usr/lib/now-a-link md5 " + md5hex("was a file") + " not a regular file",
		"hello Debian usr/share/doc/hello/README md5 " + md5hex("readme") + " " + md5hex("rewritten"),
	}
	if got := findingLines(res.Integrity); !reflect.DeepEqual(got, want) {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A full Debian root: one status file, info/<pkg>.md5sums and info/<pkg>:<arch>.md5sums for Multi-Arch: same
// packages, and a diversion.
func TestDebIntegrityFullDebian(t *testing.T) {
	status := "Package: libfoo\nStatus: install ok installed\nVersion: 2\nArchitecture: amd64\nMulti-Arch: same\n\n" +
		"Package: libfoo\nStatus: install ok installed\nVersion: 2\nArchitecture: i386\nMulti-Arch: same\n\n" +
		"Package: tool\nStatus: install ok installed\nVersion: 3\nArchitecture: amd64\n\n" +
		"Package: wrapper\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n\n" +
		"Package: removed\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: amd64\n"
	fsys := fstest.MapFS{
		dpkgStatusPath:                        file([]byte(status)),
		dpkgInfoDir + "/libfoo:amd64.md5sums": file(md5sumsOf([2]string{"usr/lib/x86_64-linux-gnu/libfoo.so", "foo64"})),
		dpkgInfoDir + "/libfoo:i386.md5sums":  file(md5sumsOf([2]string{"usr/lib/i386-linux-gnu/libfoo.so", "foo32"})),
		// tool's /usr/bin/tool is diverted by wrapper to /usr/bin/tool.real; wrapper installs its own /usr/bin/tool.
		dpkgInfoDir + "/tool.md5sums":        file(md5sumsOf([2]string{"usr/bin/tool", "real tool"})),
		dpkgInfoDir + "/wrapper.md5sums":     file(md5sumsOf([2]string{"usr/bin/tool", "wrapper script"})),
		dpkgInfoDir + "/removed.md5sums":     file(md5sumsOf([2]string{"usr/bin/removed", "gone"})),
		dpkgDiversionsPath:                   file([]byte("/usr/bin/tool\n/usr/bin/tool.real\nwrapper\n")),
		"usr/lib/x86_64-linux-gnu/libfoo.so": file([]byte("foo64")),
		"usr/lib/i386-linux-gnu/libfoo.so":   file([]byte("changed")),
		"usr/bin/tool":                       file([]byte("wrapper script")),
		"usr/bin/tool.real":                  file([]byte("real tool")),
	}
	res := runIntegrity(t, fsys, NewDebIntegrity())
	if len(res.Errors) != 0 {
		t.Errorf("errors: %q", errorLines(res.Errors))
	}
	want := []string{"libfoo Debian usr/lib/i386-linux-gnu/libfoo.so md5 " + md5hex("foo32") + " " + md5hex("changed")}
	if got := findingLines(res.Integrity); !reflect.DeepEqual(got, want) {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Without the diversion, tool's sum is checked against wrapper's file.
	delete(fsys, dpkgDiversionsPath)
	res = runIntegrity(t, fsys, NewDebIntegrity())
	if len(res.Integrity) != 2 || res.Integrity[1].Package != "tool" || res.Integrity[1].Found != md5hex("wrapper script") {
		t.Errorf("without diversion: %q", findingLines(res.Integrity))
	}
}

// Bad lines are reported with their line number; the good lines of the same file are still checked.
func TestDebIntegrityMalformedList(t *testing.T) {
	const sd = dpkgStatusDir + "/"
	list := md5hex("a") + "  usr/bin/a\n" +
		"not a line\n" +
		md5hex("b")[:31] + "  usr/bin/short\n" +
		md5hex("c") + "  ../../etc/shadow\n" +
		md5hex("d") + " usr/bin/one-space\n" +
		strings.ToUpper(md5hex("e")) + "  usr/bin/e\n" +
		md5hex("f") + " */usr/bin/f\n" +
		"\n"
	fsys := fstest.MapFS{
		sd + "p":         file(stanza("p", "amd64")),
		sd + "p.md5sums": file([]byte(list)),
		"usr/bin/a":      file([]byte("changed")),
		"usr/bin/e":      file([]byte("e")),
		"usr/bin/f":      file([]byte("f")),
	}
	res := runIntegrity(t, fsys, NewDebIntegrity())
	wantErrs := []string{
		`deb-integrity var/lib/dpkg/status.d/p.md5sums: line 2: not "<md5>  <path>"`,
		`deb-integrity var/lib/dpkg/status.d/p.md5sums: line 3: not "<md5>  <path>"`,
		`deb-integrity var/lib/dpkg/status.d/p.md5sums: line 4: invalid path "../../etc/shadow"`,
		`deb-integrity var/lib/dpkg/status.d/p.md5sums: line 5: not "<md5>  <path>"`,
	}
	if got := errorLines(res.Errors); !reflect.DeepEqual(got, wantErrs) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantErrs, "\n"))
	}
	want := []string{"p Debian usr/bin/a md5 " + md5hex("a") + " " + md5hex("changed")}
	if got := findingLines(res.Integrity); !reflect.DeepEqual(got, want) {
		t.Errorf("findings: %q, want %q", got, want)
	}
}

func TestParseMD5sums(t *testing.T) {
	sum := md5hex("x")
	res := parseMD5sums([]byte(sum + "  /abs/path\n" + sum + "  ./dot/path\n" + sum + "  .hidden\n" +
		"\\" + sum + "  back\\\\slash\\nnewline\n\\" + sum + "  bad\\x\n" + sum + "  a//b\n" + sum + "  "))
	want := []md5Entry{{sum, "abs/path"}, {sum, "dot/path"}, {sum, ".hidden"}, {sum, "back\\slash\nnewline"}}
	if !reflect.DeepEqual(res.Entries, want) {
		t.Errorf("entries = %q, want %q", res.Entries, want)
	}
	wantProblems := []string{"line 5: bad escape in path", `line 6: invalid path "a//b"`, `line 7: not "<md5>  <path>"`}
	if !reflect.DeepEqual(res.Problems, wantProblems) {
		t.Errorf("problems = %q, want %q", res.Problems, wantProblems)
	}

	// A real list (libc6 from bookworm, as distroless ships it) parses without a problem.
	res = parseMD5sums(testdata(t, "dpkg/status.d/libc6.md5sums"))
	if len(res.Problems) != 0 || len(res.Entries) < 250 {
		t.Errorf("libc6.md5sums: %d entries, problems %q", len(res.Entries), res.Problems)
	}
	for _, e := range res.Entries {
		if e.Path == "usr/share/doc/libc6/copyright" && e.MD5 != "d848be5c37cd71d76c5a7b9e7e28868a" {
			t.Errorf("copyright entry = %+v", e)
		}
	}
}

// boundedRoot has one package listing n files of 10 bytes each, all intact.
func boundedRoot(n int) fstest.MapFS {
	const sd = dpkgStatusDir + "/"
	fsys := fstest.MapFS{sd + "p": file(stanza("p", "amd64")), sd + "q": file(stanza("q", "amd64"))}
	var list, qlist [][2]string
	for i := range n {
		p := fmt.Sprintf("usr/lib/f%02d", i)
		list = append(list, [2]string{p, "0123456789"})
		fsys[p] = file([]byte("0123456789"))
	}
	qlist = append(qlist, [2]string{"usr/lib/q", "q"})
	fsys["usr/lib/q"] = file([]byte("q"))
	fsys[sd+"p.md5sums"] = file(md5sumsOf(list...))
	fsys[sd+"q.md5sums"] = file(md5sumsOf(qlist...))
	return fsys
}

func TestDebIntegrityBounds(t *testing.T) {
	limited := func(mod func(*debIntegrityAnalyzer)) Analyzer {
		a := NewDebIntegrity().(*debIntegrityAnalyzer)
		mod(a)
		return a
	}
	t.Run("files", func(t *testing.T) {
		res := runIntegrity(t, boundedRoot(5), limited(func(a *debIntegrityAnalyzer) { a.maxFiles = 3 }))
		want := []string{"deb-integrity : file limit reached: checked 3 files, skipped 2 more of p and all files of 1 more packages"}
		if got := errorLines(res.Errors); !reflect.DeepEqual(got, want) {
			t.Errorf("errors = %q, want %q", got, want)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		res := runIntegrity(t, boundedRoot(5), limited(func(a *debIntegrityAnalyzer) { a.maxBytes = 25 }))
		want := []string{"deb-integrity : byte limit reached: hashed 20 bytes, skipped 3 more files of p and all files of 1 more packages"}
		if got := errorLines(res.Errors); !reflect.DeepEqual(got, want) {
			t.Errorf("errors = %q, want %q", got, want)
		}
	})
	t.Run("file size", func(t *testing.T) {
		fsys := boundedRoot(1)
		fsys["usr/lib/q"] = file([]byte("a file much larger than the limit"))
		res := runIntegrity(t, fsys, limited(func(a *debIntegrityAnalyzer) { a.maxFileSize = 10 }))
		want := []string{"deb-integrity usr/lib/q: package q: 33 bytes, larger than the 10 bytes hashed per file; not checked"}
		if got := errorLines(res.Errors); !reflect.DeepEqual(got, want) || len(res.Integrity) != 0 {
			t.Errorf("errors = %q, want %q; findings %q", got, want, findingLines(res.Integrity))
		}
	})
	t.Run("findings", func(t *testing.T) {
		fsys := boundedRoot(5)
		for i := range 5 {
			delete(fsys, fmt.Sprintf("usr/lib/f%02d", i))
		}
		res := runIntegrity(t, fsys, limited(func(a *debIntegrityAnalyzer) { a.maxFindings = 2 }))
		want := []string{"deb-integrity : 3 more integrity findings not listed"}
		// Without the bound, all five are reported.
		if all := runIntegrity(t, fsys, NewDebIntegrity()); len(all.Integrity) != 5 || len(all.Errors) != 0 {
			t.Errorf("unbounded: %q %q", findingLines(all.Integrity), errorLines(all.Errors))
		}
		if got := errorLines(res.Errors); !reflect.DeepEqual(got, want) || len(res.Integrity) != 2 {
			t.Errorf("errors = %q, want %q; findings %q", got, want, findingLines(res.Integrity))
		}
	})
	t.Run("list size", func(t *testing.T) {
		res := runIntegrity(t, boundedRoot(5), limited(func(a *debIntegrityAnalyzer) { a.maxListSize = 100 }))
		if len(res.Errors) != 1 || res.Errors[0].Path != dpkgStatusDir+"/p.md5sums" || !strings.Contains(res.Errors[0].Err, "exceeds size limit") {
			t.Errorf("errors = %q", errorLines(res.Errors))
		}
	})
}

// A FIFO listed in md5sums is reported without being opened (opening a FIFO could block forever).
func TestDebIntegrityFIFONotOpened(t *testing.T) {
	fsys := boundedRoot(0)
	fsys["usr/lib/q"] = &fstest.MapFile{Mode: fs.ModeNamedPipe | 0o644}
	res := runIntegrity(t, fsys, NewDebIntegrity())
	if got := findingLines(res.Integrity); len(got) != 1 || res.Integrity[0].Found != "not a regular file" {
		t.Errorf("findings = %q", got)
	}
}

func TestDebIntegrityCancelled(t *testing.T) {
	var out report.Result
	out.Packages = []report.Package{{Name: "q", Version: "1", Ecosystem: report.EcosystemDebian, Arch: "amd64"}}
	fsys := boundedRoot(0)
	delete(fsys, "usr/lib/q")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := NewDebIntegrity().Analyze(ctx, fsys, &out)
	if !errors.Is(err, context.Canceled) || len(out.Integrity) != 0 {
		t.Errorf("err = %v, findings %v", err, out.Integrity)
	}
	// The same root, not cancelled, has a finding: the test above could fail.
	if err := NewDebIntegrity().Analyze(context.Background(), fsys, &out); err != nil || len(out.Integrity) != 1 {
		t.Errorf("err = %v, findings %v", err, out.Integrity)
	}
}

func FuzzParseMD5sums(f *testing.F) {
	f.Add(md5sumsOf([2]string{"usr/bin/a", "a"}, [2]string{"usr/share/doc/a/copyright", "c"}))
	f.Add([]byte("\\" + md5hex("x") + "  a\\nb\\\\c\n" + md5hex("y") + " *b\nbad line\n"))
	f.Add([]byte(md5hex("z") + "  ../x\n" + md5hex("z") + "  /\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res := parseMD5sums(data)
		if len(res.Entries) > strings.Count(string(data), "\n")+1 {
			t.Fatalf("%d entries from %d lines", len(res.Entries), strings.Count(string(data), "\n")+1)
		}
		if len(res.Problems) > dpkgMaxProblemsPerFile {
			t.Fatalf("%d problems listed", len(res.Problems))
		}
		for _, e := range res.Entries {
			if len(e.MD5) != 32 || strings.ToLower(e.MD5) != e.MD5 || !isHex([]byte(e.MD5)) {
				t.Fatalf("bad sum %q", e.MD5)
			}
			if !fs.ValidPath(e.Path) || e.Path == "." || strings.ContainsRune(e.Path, 0) {
				t.Fatalf("bad path %q", e.Path)
			}
		}
	})
}
