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
	"unicode/utf8"

	"github.com/rootscan/rootscan/report"
)

// Testdata provenance:
//   testdata/os-release/debian12             /usr/lib/os-release of Debian 12 (base-files 12.4+deb12u11)
//   testdata/os-release/debian_version       /etc/debian_version of the same machine
//   testdata/os-release/distroless-debian12  what GoogleContainerTools/distroless writes (common/variables.bzl
//                                            OS_RELEASE, serialized unquoted by rules_distroless os_release.bzl)

func TestParseOSRelease(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		bad     int
		firstBd int
	}{
		{
			name: "debian 12",
			in:   string(testdata(t, "os-release/debian12")),
			want: map[string]string{
				"PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)", "NAME": "Debian GNU/Linux", "VERSION_ID": "12",
				"VERSION": "12 (bookworm)", "VERSION_CODENAME": "bookworm", "ID": "debian",
				"HOME_URL": "https://www.debian.org/", "SUPPORT_URL": "https://www.debian.org/support",
				"BUG_REPORT_URL": "https://bugs.debian.org/",
			},
		},
		{
			name: "quotes",
			in:   "A=\"x y\"\nB='x \"y\" \\n'\nC=plain\nD=\"\"\nE=''\nF=\nG=x y  \t\n",
			want: map[string]string{"A": "x y", "B": `x "y" \n`, "C": "plain", "D": "", "E": "", "F": "", "G": "x y"},
		},
		{
			name: "escapes",
			in:   `A="a\"b\\c\$d` + "\\`" + `e\nf"` + "\n" + `B=a\ b\\c\"d\ ` + "\n" + `C='a\'` + "\n",
			want: map[string]string{"A": "a\"b\\c$d`e\\nf", "B": `a b\c"d `, "C": `a\`},
		},
		{
			name: "comments, blank lines, whitespace, CRLF, later wins",
			in:   "# comment\n\n   \n  ; also a comment\n  ID = debian\r\nID=\"ubuntu\"\r\n\tNAME=Ubuntu",
			want: map[string]string{"ID": "ubuntu", "NAME": "Ubuntu"},
		},
		{
			name: "bad lines are skipped and counted",
			in: "ID=debian\nno equals sign\n9KEY=x\nA=\"unterminated\nB='x'trailing\nC=\"x\" y\n" +
				"D=\"tab\tok\"\nE=ctrl\x01char\nF=\xff\xfe\n-X=1\n=1\nVERSION_ID=12\n",
			want:    map[string]string{"ID": "debian", "VERSION_ID": "12", "D": "tab\tok"},
			bad:     9,
			firstBd: 2,
		},
		{
			name: "binary",
			in:   "\x00\x01\x02ELF",
			want: map[string]string{},
			bad:  1, firstBd: 1,
		},
		{name: "empty", in: "", want: map[string]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := parseOSRelease([]byte(tc.in))
			if !reflect.DeepEqual(res.Values, tc.want) {
				t.Errorf("values %q, want %q", res.Values, tc.want)
			}
			if res.BadLines != tc.bad || res.FirstBadLine != tc.firstBd {
				t.Errorf("bad lines %d (first %d), want %d (first %d)", res.BadLines, res.FirstBadLine, tc.bad, tc.firstBd)
			}
		})
	}
}

func TestParseDebianVersion(t *testing.T) {
	for in, want := range map[string]*report.OS{
		string(testdata(t, "os-release/debian_version")): {ID: "debian", VersionID: "12", Source: debianVersionPath},
		"13.1\n":       {ID: "debian", VersionID: "13", Source: debianVersionPath},
		"6.0.10\n":     {ID: "debian", VersionID: "6", Source: debianVersionPath},
		"12":           {ID: "debian", VersionID: "12", Source: debianVersionPath},
		"trixie/sid\n": {ID: "debian", VersionCodename: "trixie", Source: debianVersionPath},
		"":             nil,
		"hello world":  nil,
		"12a.1":        nil,
		"Trixie/sid":   nil,
		"trixie/foo":   nil,
		"12\n13\n":     nil,
	} {
		got, err := parseDebianVersion([]byte(in))
		if !reflect.DeepEqual(got, want) || (err != nil) != (want == nil) {
			t.Errorf("parseDebianVersion(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
}

func TestOSReleaseAnalyzer(t *testing.T) {
	debian12 := testdata(t, "os-release/debian12")
	wantDebian := func(source string) *report.OS {
		return &report.OS{
			ID: "debian", Name: "Debian GNU/Linux", PrettyName: "Debian GNU/Linux 12 (bookworm)",
			VersionID: "12", VersionCodename: "bookworm", Source: source,
		}
	}
	link := func(target string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte(target), Mode: fs.ModeSymlink | 0o777}
	}
	type fe struct{ path, contains string }
	tests := []struct {
		name   string
		fsys   fstest.MapFS
		want   *report.OS
		errors []fe
	}{
		{
			name: "etc/os-release links to ../usr/lib/os-release, as in Debian",
			fsys: fstest.MapFS{osReleaseEtc: link("../usr/lib/os-release"), osReleaseUsrLib: file(debian12),
				debianVersionPath: file([]byte("12.11\n"))},
			want: wantDebian(osReleaseEtc),
		},
		{
			name: "only usr/lib/os-release",
			fsys: fstest.MapFS{osReleaseUsrLib: file(debian12)},
			want: wantDebian(osReleaseUsrLib),
		},
		{
			name: "etc/os-release wins over usr/lib/os-release",
			fsys: fstest.MapFS{osReleaseEtc: file([]byte("ID=alpine\nVERSION_ID=3.20.3\n")), osReleaseUsrLib: file(debian12)},
			want: &report.OS{ID: "alpine", VersionID: "3.20.3", Source: osReleaseEtc},
		},
		{
			name: "absolute link that this FS cannot follow falls back to usr/lib",
			fsys: fstest.MapFS{osReleaseEtc: link("/usr/lib/os-release"), osReleaseUsrLib: file(debian12)},
			want: wantDebian(osReleaseUsrLib),
		},
		{
			name: "distroless",
			fsys: fstest.MapFS{osReleaseEtc: file(testdata(t, "os-release/distroless-debian12"))},
			want: &report.OS{ID: "debian", Name: "Debian GNU/Linux", PrettyName: "Distroless", VersionID: "12", Source: osReleaseEtc},
		},
		{
			name: "ID_LIKE is split, ID defaults to linux",
			fsys: fstest.MapFS{osReleaseEtc: file([]byte("NAME=\"Some Linux\"\nID_LIKE=\"rhel  centos fedora\"\n"))},
			want: &report.OS{ID: "linux", IDLike: []string{"rhel", "centos", "fedora"}, Name: "Some Linux", Source: osReleaseEtc},
		},
		{
			name:   "bad lines are reported, the rest is used",
			fsys:   fstest.MapFS{osReleaseEtc: file([]byte("ID=debian\nVERSION_ID=\"12\nVERSION_CODENAME=bookworm\n"))},
			want:   &report.OS{ID: "debian", VersionCodename: "bookworm", Source: osReleaseEtc},
			errors: []fe{{osReleaseEtc, "ignored 1 malformed lines (first at line 2)"}},
		},
		{
			name: "unusable etc/os-release falls back to usr/lib",
			fsys: fstest.MapFS{osReleaseEtc: file([]byte("\x7fELF\x00\x00\n")), osReleaseUsrLib: file(debian12)},
			want: wantDebian(osReleaseUsrLib),
			errors: []fe{
				{osReleaseEtc, "ignored 1 malformed lines"},
				{osReleaseEtc, "no assignments"},
			},
		},
		{
			name:   "too large",
			fsys:   fstest.MapFS{osReleaseEtc: file(append([]byte("ID=debian\n"), bytes.Repeat([]byte("#"), 64<<10)...)), osReleaseUsrLib: file(debian12)},
			want:   wantDebian(osReleaseUsrLib),
			errors: []fe{{osReleaseEtc, ErrTooLarge.Error()}},
		},
		{
			name:   "FIFO",
			fsys:   fstest.MapFS{osReleaseEtc: {Mode: fs.ModeNamedPipe | 0o644}},
			errors: []fe{{osReleaseEtc, ErrNotRegular.Error()}},
		},
		{
			name: "debian_version fallback",
			fsys: fstest.MapFS{debianVersionPath: file(testdata(t, "os-release/debian_version"))},
			want: &report.OS{ID: "debian", VersionID: "12", Source: debianVersionPath},
		},
		{
			name:   "garbage debian_version",
			fsys:   fstest.MapFS{debianVersionPath: file([]byte("<html>\n"))},
			errors: []fe{{debianVersionPath, "unrecognized content"}},
		},
		{
			name: "nothing",
			fsys: fstest.MapFS{"etc/passwd": file([]byte("root:x:0:0::/root:/bin/sh\n"))},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := analyze(t, NewOSRelease(), tc.fsys)
			if !reflect.DeepEqual(out.OS, tc.want) {
				t.Errorf("OS = %+v, want %+v", out.OS, tc.want)
			}
			if len(out.Errors) != len(tc.errors) {
				t.Fatalf("errors %+v, want %v", out.Errors, tc.errors)
			}
			for i, w := range tc.errors {
				if e := out.Errors[i]; e.Analyzer != "os-release" || e.Path != w.path || !strings.Contains(e.Err, w.contains) {
					t.Errorf("error %d = %+v, want %s containing %q", i, e, w.path, w.contains)
				}
			}
		})
	}
}

func TestOSReleaseContextAndPaths(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out report.Result
	err := NewOSRelease().Analyze(ctx, fstest.MapFS{osReleaseEtc: file([]byte("ID=debian\n"))}, &out)
	if !errors.Is(err, context.Canceled) || out.OS != nil {
		t.Errorf("cancelled: err %v, OS %+v", err, out.OS)
	}
	a := NewOSRelease()
	for name, want := range map[string]bool{
		"etc/os-release": true, "usr/lib/os-release": true, "etc/debian_version": true, "etc/lsb-release": false,
	} {
		if got := Touches(a, name); got != want {
			t.Errorf("Touches(%q) = %v, want %v", name, got, want)
		}
	}
}

// osReleaseQuote writes v the way os-release(5) says to: double quotes, with ", \, $ and ` escaped.
func osReleaseQuote(v string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range []byte(v) {
		if strings.IndexByte("\"\\$`", c) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String()
}

func FuzzParseOSRelease(f *testing.F) {
	for _, name := range []string{"os-release/debian12", "os-release/distroless-debian12", "os-release/debian_version"} {
		f.Add(testdata(f, name), "Debian GNU/Linux 12 (bookworm)")
	}
	f.Add([]byte("A=\"a\\\"b\"\nB='c'\nC=d\\ e\n#x\n"), "a \"quoted\" $value with `ticks` and \\")
	f.Fuzz(func(t *testing.T, data []byte, value string) {
		res := parseOSRelease(data)
		for k, v := range res.Values {
			if k == "" || k[0] >= '0' && k[0] <= '9' || !bytes.Contains(data, []byte(k)) {
				t.Fatalf("bad key %q", k)
			}
			for _, c := range []byte(k) {
				if !isAlnum(c) && c != '_' {
					t.Fatalf("bad key %q", k)
				}
			}
			if !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
				t.Fatalf("value %q of %s has control characters or invalid UTF-8", v, k)
			}
		}
		if res.BadLines > 0 && res.FirstBadLine < 1 || res.BadLines == 0 && res.FirstBadLine != 0 {
			t.Fatalf("bad lines %d, first %d", res.BadLines, res.FirstBadLine)
		}
		if again := parseOSRelease(data); !reflect.DeepEqual(res, again) {
			t.Fatal("parsing is not deterministic")
		}
		// Round trip: any clean value written with os-release quoting reads back unchanged, whatever precedes it.
		if !utf8.ValidString(value) || strings.ContainsFunc(value, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
			return
		}
		doc := append(append([]byte{}, data...), "\nFUZZ_VALUE="+osReleaseQuote(value)+"\n"...)
		if got, ok := parseOSRelease(doc).Values["FUZZ_VALUE"]; !ok || got != value {
			t.Fatalf("round trip of %q gave %q (present %v)", value, got, ok)
		}
	})
}
