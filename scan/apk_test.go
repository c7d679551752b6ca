package scan

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/rootscan/rootscan/report"
)

// Testdata provenance:
//   testdata/apk/installed  six whole stanzas, byte for byte, of the lib/apk/db/installed of an Alpine 3.20 image
//                           (alpine-baselayout 3.6.5-r0, apk-tools 2.14.4-r0, busybox 1.36.1-r29) as published in
//                           github.com/choc1024/vaultwarden-extracted-bin (commit c97925e5); alpine-keys and the
//                           stanzas after busybox-binsh were left out to keep the file small.

var apkWant = []string{
	"alpine-baselayout x86_64 3.6.5-r0 alpine-baselayout 3.6.5-r0",
	"alpine-baselayout-data x86_64 3.6.5-r0 alpine-baselayout 3.6.5-r0",
	"apk-tools x86_64 2.14.4-r0 apk-tools 2.14.4-r0",
	"brotli-libs x86_64 1.1.0-r2 brotli 1.1.0-r2",
	"busybox x86_64 1.36.1-r29 busybox 1.36.1-r29",
	"busybox-binsh x86_64 1.36.1-r29 busybox 1.36.1-r29",
}

func TestApkRealInstalled(t *testing.T) {
	out := analyze(t, NewApk(), fstest.MapFS{apkInstalledPath: file(testdata(t, "apk/installed"))})
	if len(out.Errors) != 0 {
		t.Fatalf("errors: %v", out.Errors)
	}
	if got := pkgLines(out.Packages); !reflect.DeepEqual(got, apkWant) {
		t.Fatalf("packages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(apkWant, "\n"))
	}
	for _, p := range out.Packages {
		if p.Ecosystem != report.EcosystemAlpine || p.FoundBy != "apk" || p.PURL != "" || !reflect.DeepEqual(p.Locations, []string{apkInstalledPath}) {
			t.Errorf("%s: ecosystem %q foundBy %q purl %q locations %v", p.Name, p.Ecosystem, p.FoundBy, p.PURL, p.Locations)
		}
	}
}

// Merged-/usr Alpine keeps the database in usr/lib/apk/db and links lib/apk/db to it: one package set, both paths.
func TestApkUsrMergedLink(t *testing.T) {
	out := analyze(t, NewApk(), fstest.MapFS{
		"lib/apk":                  {Data: []byte("../usr/lib/apk"), Mode: fs.ModeSymlink | 0o777},
		apkInstalledUsrPath:        file(testdata(t, "apk/installed")),
		"usr/lib/apk/db/triggers":  file(nil),
		"usr/lib/apk/db/scripts.x": file(nil),
	})
	if len(out.Errors) != 0 {
		t.Fatalf("errors: %v", out.Errors)
	}
	if got := pkgLines(out.Packages); !reflect.DeepEqual(got, apkWant) {
		t.Fatalf("packages: %v", got)
	}
	for _, p := range out.Packages {
		if !reflect.DeepEqual(p.Locations, []string{apkInstalledPath, apkInstalledUsrPath}) {
			t.Errorf("%s: locations %v", p.Name, p.Locations)
		}
	}
}

func TestApkEcosystemFromOS(t *testing.T) {
	for id, want := range map[string]string{"alpine": "Alpine", "wolfi": "Wolfi", "chainguard": "Chainguard", "postmarketos": "Alpine"} {
		out := Run(context.Background(), fstest.MapFS{
			"etc/os-release": file([]byte("ID=" + id + "\n")),
			apkInstalledPath: file(testdata(t, "apk/installed")),
		}, []Analyzer{NewOSRelease(), NewApk()})
		if len(out.Errors) != 0 || len(out.Packages) != len(apkWant) {
			t.Fatalf("%s: %d packages, errors %v", id, len(out.Packages), out.Errors)
		}
		for _, p := range out.Packages {
			if p.Ecosystem != want {
				t.Errorf("%s: %s has ecosystem %q, want %q", id, p.Name, p.Ecosystem, want)
			}
		}
	}
	// Without os-release an apk database still means Alpine.
	if out := analyze(t, NewApk(), fstest.MapFS{apkInstalledPath: file([]byte("P:musl\nV:1.2.5-r0\n"))}); out.Packages[0].Ecosystem != report.EcosystemAlpine {
		t.Errorf("no os-release: ecosystem %q", out.Packages[0].Ecosystem)
	}
}

func TestApkBrokenStanzas(t *testing.T) {
	db := "P:musl\nV:1.2.5-r0\nA:x86_64\no:musl\n\n" +
		"V:1.0-r0\nA:x86_64\n\n" + // no name
		"P:zlib\nA:x86_64\n\n" + // no version
		"garbage line\n" + // not a field, inside no stanza
		"P:bad name\nV:1-r0\n\n" +
		"P:dup\nV:1-r0\nV:2-r0\no:dup-src\n\n" + // duplicate V: first one kept, reported
		"P:scanelf\r\nV:1.3.8-r0\r\nA:x86_64\r\no:pax-utils\r\n\r\n" + // CRLF from a copy through Windows
		"P:noarch\nV:1-r0\n" // last stanza without a trailing blank line, no arch, no origin
	out := analyze(t, NewApk(), fstest.MapFS{apkInstalledPath: file([]byte(db))})
	want := []string{
		"dup  1-r0 dup-src 1-r0",
		"musl x86_64 1.2.5-r0 musl 1.2.5-r0",
		"noarch  1-r0 noarch 1-r0",
		"scanelf x86_64 1.3.8-r0 pax-utils 1.3.8-r0",
	}
	if got := pkgLines(out.Packages); !reflect.DeepEqual(got, want) {
		t.Errorf("packages:\n%s", strings.Join(got, "\n"))
	}
	var msgs []string
	for _, e := range out.Errors {
		if e.Analyzer != "apk" || e.Path != apkInstalledPath {
			t.Errorf("error %+v", e)
		}
		msgs = append(msgs, e.Err)
	}
	wantErrs := []string{
		"stanza at line 6: no P (package name) field",
		"stanza at line 9: package zlib has no valid V (version) field",
		"line 12: not a field",
		"stanza at line 13: invalid package name \"bad name\"",
		"line 18: duplicate field V",
	}
	if !reflect.DeepEqual(msgs, wantErrs) {
		t.Errorf("errors:\n%s", strings.Join(msgs, "\n"))
	}
}

func TestApkFileProblems(t *testing.T) {
	a := &apkAnalyzer{maxSize: 100}
	for name, tc := range map[string]struct {
		fsys fstest.MapFS
		want error
		msg  string
	}{
		"too large": {fsys: fstest.MapFS{apkInstalledPath: file(testdata(t, "apk/installed"))}, want: ErrTooLarge},
		"directory": {fsys: fstest.MapFS{apkInstalledPath + "/x": file(nil)}, want: ErrNotRegular},
		"binary":    {fsys: fstest.MapFS{apkInstalledPath: file([]byte("P:a\nV:1\x00"))}, msg: "binary content (NUL byte at offset 7)"},
		"fifo":      {fsys: fstest.MapFS{apkInstalledPath: {Mode: fs.ModeNamedPipe | 0o644}}, want: ErrNotRegular},
	} {
		t.Run(name, func(t *testing.T) {
			out := analyze(t, a, tc.fsys)
			if len(out.Packages) != 0 || len(out.Errors) != 1 || out.Errors[0].Path != apkInstalledPath {
				t.Fatalf("packages %v errors %v", out.Packages, out.Errors)
			}
			if tc.want != nil && !strings.Contains(out.Errors[0].Err, tc.want.Error()) {
				t.Errorf("error %q, want %v", out.Errors[0].Err, tc.want)
			}
			if tc.msg != "" && out.Errors[0].Err != tc.msg {
				t.Errorf("error %q, want %q", out.Errors[0].Err, tc.msg)
			}
		})
	}
	// No database at all is not an error: most images are not Alpine.
	if out := analyze(t, NewApk(), fstest.MapFS{"etc/hostname": file(nil)}); len(out.Packages)+len(out.Errors) != 0 {
		t.Errorf("empty root: %+v", out)
	}
}

func TestApkProblemsBounded(t *testing.T) {
	res := parseApkInstalled(bytes.Repeat([]byte("x\n"), 1000))
	if len(res.Problems) != apkMaxProblemsPerFile || res.MoreProblems != 1000-apkMaxProblemsPerFile {
		t.Errorf("%d problems listed, %d more", len(res.Problems), res.MoreProblems)
	}
	out := analyze(t, NewApk(), fstest.MapFS{apkInstalledPath: file(bytes.Repeat([]byte("x\n"), 1000))})
	if n := len(out.Errors); n != apkMaxProblemsPerFile+1 || out.Errors[n-1].Err != "990 more problems not listed" {
		t.Errorf("errors %v", out.Errors)
	}
}

func TestApkCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out report.Result
	err := NewApk().Analyze(ctx, fstest.MapFS{apkInstalledPath: file(testdata(t, "apk/installed"))}, &out)
	if !errors.Is(err, context.Canceled) || len(out.Packages) != 0 {
		t.Errorf("err %v, %d packages", err, len(out.Packages))
	}
}

func FuzzParseApkInstalled(f *testing.F) {
	f.Add(testdata(f, "apk/installed"))
	f.Add([]byte("P:a\nV:1\nA:x\no:b\n\nP:\nV:\n\n:\nP:a\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res := parseApkInstalled(data)
		for _, p := range res.Packages {
			if !validApkName([]byte(p.Name)) || !validDebToken([]byte(p.Version)) || p.Source == "" || p.SourceVersion != p.Version {
				t.Fatalf("invalid package %+v", p)
			}
			if !bytes.Contains(data, []byte("P:"+p.Name)) || !bytes.Contains(data, []byte("V:"+p.Version)) {
				t.Fatalf("package %+v not in the input", p)
			}
		}
		if len(res.Problems) > apkMaxProblemsPerFile || res.MoreProblems > 0 && len(res.Problems) != apkMaxProblemsPerFile {
			t.Fatalf("%d problems, %d more", len(res.Problems), res.MoreProblems)
		}
	})
}
