package vuln

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rootscan/rootscan/report"
)

// buildDB imports paths into a fresh database directory and opens it.
func buildDB(t testing.TB, paths ...string) *DB {
	t.Helper()
	return buildDBWith(t, func(b *Builder) error {
		for _, p := range paths {
			if _, err := b.ImportPath(context.Background(), p, Limits{}); err != nil {
				return err
			}
		}
		return nil
	})
}

// buildDBWith builds a database with what fill adds and opens it.
func buildDBWith(t testing.TB, fill func(*Builder) error) *DB {
	t.Helper()
	dir := t.TempDir()
	b, err := NewBuilder(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := fill(b); err != nil {
		b.Abort()
		t.Fatal(err)
	}
	if _, err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

var debian12 = &report.OS{ID: "debian", VersionID: "12", VersionCodename: "bookworm"}

func deb(name, ver, src, srcVer string) report.Package {
	return report.Package{Name: name, Version: ver, Ecosystem: report.EcosystemDebian, Source: src, SourceVersion: srcVer}
}

func golang(name, ver string) report.Package {
	return report.Package{Name: name, Version: ver, Ecosystem: report.EcosystemGo}
}

func pypi(name, ver string) report.Package {
	return report.Package{Name: name, Version: ver, Ecosystem: report.EcosystemPyPI}
}

// line is how a finding is compared: id package version severity score fixed.
func line(v report.Vulnerability) string {
	return fmt.Sprintf("%s %s %s %s %.1f fixed=%s", v.ID, v.Package, v.Version, v.Severity, v.Score, v.FixedVersion)
}

func matchLines(t *testing.T, db *DB, o *report.OS, pkgs ...report.Package) []string {
	t.Helper()
	res := &report.Result{OS: o, Packages: pkgs}
	if err := db.Match(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range res.Vulnerabilities {
		got = append(got, line(v))
	}
	slices.Sort(got)
	return got
}

func TestMatch(t *testing.T) {
	db := buildDB(t, "testdata/osv")
	tests := []struct {
		name string
		os   *report.OS
		pkgs []report.Package
		want []string
	}{
		{
			// Debian advisories are keyed by source package and compared on the source version.
			name: "glibc before the Looney Tunables fix",
			os:   debian12,
			pkgs: []report.Package{deb("libc6", "2.36-9+deb12u2", "glibc", "2.36-9+deb12u2")},
			want: []string{
				"DEBIAN-CVE-2010-4756 libc6 2.36-9+deb12u2 LOW 0.0 fixed=",
				"DEBIAN-CVE-2019-1010022 libc6 2.36-9+deb12u2 LOW 0.0 fixed=",
				"DSA-5514-1 libc6 2.36-9+deb12u2 HIGH 0.0 fixed=2.36-9+deb12u3",
			},
		},
		{
			name: "glibc with the fix: only the unfixed issues",
			os:   debian12,
			pkgs: []report.Package{deb("libc6", "2.36-9+deb12u14", "glibc", "2.36-9+deb12u14")},
			want: []string{
				"DEBIAN-CVE-2010-4756 libc6 2.36-9+deb12u14 LOW 0.0 fixed=",
				"DEBIAN-CVE-2019-1010022 libc6 2.36-9+deb12u14 LOW 0.0 fixed=",
			},
		},
		{
			// "~deb12u1" sorts before "-1" plain: 3.0.11-1~deb12u1 is the fix, 3.0.11-1~deb11u1 would not be.
			name: "openssl binary packages by source, tilde versions",
			os:   debian12,
			pkgs: []report.Package{
				deb("libssl3", "3.0.9-1", "openssl", "3.0.9-1"),
				deb("openssl", "3.0.11-1~deb12u1", "", ""),
			},
			want: []string{"DSA-5532-1 libssl3 3.0.9-1 MEDIUM 0.0 fixed=3.0.11-1~deb12u1"},
		},
		{
			// binNMU: the binary version has +b1, the advisory speaks of the source version.
			name: "zlib by source version, no urgency is UNKNOWN",
			os:   debian12,
			pkgs: []report.Package{deb("zlib1g", "1:1.2.13.dfsg-1+b1", "zlib", "1:1.2.13.dfsg-1")},
			want: []string{"DEBIAN-CVE-2023-45853 zlib1g 1:1.2.13.dfsg-1+b1 UNKNOWN 0.0 fixed="},
		},
		{
			name: "Debian 11 does not match Debian 12 advisories",
			os:   &report.OS{ID: "debian", VersionID: "11"},
			pkgs: []report.Package{deb("libssl1.1", "1.1.1n-0+deb11u4", "openssl", "1.1.1n-0+deb11u4"), deb("zlib1g", "1:1.2.11.dfsg-2+deb11u2", "zlib", "")},
			want: nil,
		},
		{
			name: "Go standard library by toolchain version",
			pkgs: []report.Package{golang("stdlib", "1.19.8"), golang("stdlib", "1.18.5"), golang("stdlib", "1.26.8")},
			want: []string{
				"GO-2022-0969 stdlib 1.18.5 UNKNOWN 0.0 fixed=1.18.6",
				"GO-2023-1878 stdlib 1.18.5 UNKNOWN 0.0 fixed=1.19.11",
				"GO-2023-1878 stdlib 1.19.8 UNKNOWN 0.0 fixed=1.19.11",
			},
		},
		{
			// Pseudo-versions order by their timestamp; a module after the fix is clean; (devel) is never matched.
			name: "Go modules and pseudo-versions",
			pkgs: []report.Package{
				golang("golang.org/x/text", "0.3.5"),
				golang("golang.org/x/net", "0.0.0-20220826154423-83b083e8dc8b"),
				golang("golang.org/x/net", "0.0.0-20220906165146-f3363e06e74c"),
				golang("github.com/beego/beego/v2", "2.0.3"),
				golang("gopkg.in/yaml.v2", "(devel)"),
			},
			want: []string{
				"GO-2021-0113 golang.org/x/text 0.3.5 UNKNOWN 0.0 fixed=0.3.7",
				"GO-2022-0569 github.com/beego/beego/v2 2.0.3 UNKNOWN 0.0 fixed=2.0.4",
				"GO-2022-0969 golang.org/x/net 0.0.0-20220826154423-83b083e8dc8b UNKNOWN 0.0 fixed=0.0.0-20220906165146-f3363e06e74c",
			},
		},
		{
			name: "unfixed Go advisory",
			pkgs: []report.Package{golang("github.com/astaxie/beego", "1.12.3")},
			want: []string{
				"GO-2022-0463 github.com/astaxie/beego 1.12.3 UNKNOWN 0.0 fixed=",
				"GO-2022-0569 github.com/astaxie/beego 1.12.3 UNKNOWN 0.0 fixed=",
				"GO-2022-0572 github.com/astaxie/beego 1.12.3 UNKNOWN 0.0 fixed=",
			},
		},
		{
			// CVSS v3.1 scores computed from the vectors; PyPI names compare case- and separator-insensitively.
			name: "PyPI with CVSS",
			pkgs: []report.Package{pypi("Requests", "2.28.1"), pypi("urllib3", "1.26.12"), pypi("urllib3", "2.0.6"), pypi("requests", "2.2.0")},
			want: []string{
				"GHSA-9wx4-h78v-vm56 Requests 2.28.1 MEDIUM 5.6 fixed=2.32.0",
				"GHSA-9wx4-h78v-vm56 requests 2.2.0 MEDIUM 5.6 fixed=2.32.0",
				"GHSA-j8r2-6x86-q33q Requests 2.28.1 MEDIUM 6.1 fixed=2.31.0",
				"GHSA-v845-jxx5-vc9f urllib3 1.26.12 MEDIUM 4.4 fixed=1.26.17",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := matchLines(t, db, tt.os, tt.pkgs...)
			if !slices.Equal(got, tt.want) {
				t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestMatchKeepsAdvisoryFacts(t *testing.T) {
	db := buildDB(t, "testdata/osv")
	res := &report.Result{OS: debian12, Packages: []report.Package{deb("libssl3", "3.0.9-1", "openssl", "3.0.9-1")}}
	res.Packages[0].PURL = "pkg:deb/debian/libssl3@3.0.9-1?arch=amd64&distro=debian-12"
	if err := db.Match(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	if len(res.Vulnerabilities) != 1 {
		t.Fatalf("findings: %+v", res.Vulnerabilities)
	}
	v := res.Vulnerabilities[0]
	want := report.Vulnerability{
		ID: "DSA-5532-1", Aliases: []string{"CVE-2023-4807", "CVE-2023-5363"}, Summary: "openssl - security update",
		Severity: report.SeverityMedium, Package: "libssl3", Version: "3.0.9-1", Ecosystem: "Debian",
		PURL: res.Packages[0].PURL, FixedVersion: "3.0.11-1~deb12u1",
	}
	if fmt.Sprint(v) != fmt.Sprint(want) {
		t.Errorf("finding\n got %+v\nwant %+v", v, want)
	}
	if !v.Fixable() {
		t.Error("Fixable() = false with a fixed version")
	}
}

func TestMatchWithoutRelease(t *testing.T) {
	db := buildDB(t, "testdata/osv")
	res := &report.Result{Packages: []report.Package{deb("libc6", "2.36-9", "glibc", "2.36-9"), deb("libssl3", "3.0.9-1", "openssl", "")}}
	if err := db.Match(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	if len(res.Vulnerabilities) != 0 {
		t.Errorf("findings without an OS release: %v", res.Vulnerabilities)
	}
	if len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Err, "no OS release") {
		t.Errorf("errors = %+v, want one note about the missing release", res.Errors)
	}
}

func TestInRange(t *testing.T) {
	// OSV schema examples: events in any order, last_affected, re-introduction after a fix.
	tests := []struct {
		events []Event
		v      string
		hit    bool
		fixed  string
	}{
		{[]Event{{Introduced: "0"}, {Fixed: "1.5.0"}}, "1.4.9", true, "1.5.0"},
		{[]Event{{Introduced: "0"}, {Fixed: "1.5.0"}}, "1.5.0", false, ""},
		{[]Event{{Fixed: "1.5.0"}, {Introduced: "1.0.0"}}, "0.9.0", false, ""},
		{[]Event{{Fixed: "1.5.0"}, {Introduced: "1.0.0"}}, "1.0.0", true, "1.5.0"},
		{[]Event{{Introduced: "1.0.0"}, {LastAffected: "1.2.0"}}, "1.2.0", true, ""},
		{[]Event{{Introduced: "1.0.0"}, {LastAffected: "1.2.0"}}, "1.2.1", false, ""},
		{[]Event{{Introduced: "0"}, {Fixed: "1.1.0"}, {Introduced: "2.0.0"}, {Fixed: "2.0.3"}}, "1.9.0", false, ""},
		{[]Event{{Introduced: "2.0.0"}, {Fixed: "2.0.3"}, {Introduced: "0"}, {Fixed: "1.1.0"}}, "2.0.1", true, "2.0.3"},
		{[]Event{{Introduced: "0"}}, "99.0.0", true, ""},
	}
	for _, tt := range tests {
		hit, fixed, err := inRange(compareForTest, tt.events, tt.v, false)
		if err != nil || hit != tt.hit || fixed != tt.fixed {
			t.Errorf("inRange(%+v, %s) = %v, %q, %v; want %v, %q", tt.events, tt.v, hit, fixed, err, tt.hit, tt.fixed)
		}
	}
}

func compareForTest(a, b string) (int, error) {
	ca, cb := "v"+a, "v"+b
	return strings.Compare(ca, cb), nil // the versions in TestInRange order lexically
}

func TestImportZipAndWithdrawn(t *testing.T) {
	dir := t.TempDir()
	withdrawn := `{"id":"GHSA-xxxx-withdrawn","modified":"2024-01-01T00:00:00Z","withdrawn":"2024-01-02T00:00:00Z",
		"affected":[{"package":{"ecosystem":"PyPI","name":"six"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]}]}`
	zipPath := filepath.Join(dir, "all.zip")
	writeZip(t, zipPath, map[string][]byte{
		"GO-2023-1878.json":        mustRead(t, "testdata/osv/go/GO-2023-1878.json"),
		"DSA-5532-1.json":          mustRead(t, "testdata/osv/debian/DSA-5532-1.json"),
		"GHSA-xxxx-withdrawn.json": []byte(withdrawn),
		"README.txt":               []byte("not a record"),
	})
	b, err := NewBuilder(filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := b.ImportPath(context.Background(), zipPath, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != 3 || st.Stored != 2 || st.Withdrawn != 1 || st.BadRecords != 0 {
		t.Errorf("stats = %+v", st)
	}
	info, err := b.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if info.Advisories != 2 || info.Withdrawn != 1 || len(info.Ecosystems) != 2 {
		t.Errorf("info = %+v", info)
	}
	db, err := Open(filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := matchLines(t, db, nil, pypi("six", "1.16.0")); len(got) != 0 {
		t.Errorf("withdrawn advisory matched: %v", got)
	}
	if got := matchLines(t, db, nil, golang("stdlib", "1.20.5")); !slices.Equal(got, []string{"GO-2023-1878 stdlib 1.20.5 UNKNOWN 0.0 fixed=1.20.6"}) {
		t.Errorf("findings = %v", got)
	}
}

func TestImportRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	good := mustRead(t, "testdata/osv/go/GO-2023-1878.json")
	// A zip bomb: one entry that inflates far past the entry limit (the size field is honest here; the reader
	// also counts the bytes it inflates).
	bomb := filepath.Join(dir, "bomb.zip")
	writeZip(t, bomb, map[string][]byte{"big.json": bytes.Repeat([]byte(" "), 4<<20), "GO-2023-1878.json": good})
	// A truncated archive: the central directory is gone.
	full := filepath.Join(dir, "full.zip")
	writeZip(t, full, map[string][]byte{"GO-2023-1878.json": good})
	data := mustRead(t, full)
	trunc := filepath.Join(dir, "trunc.zip")
	os.WriteFile(trunc, data[:len(data)/2], 0o644)
	// A corrupted entry: CRC mismatch.
	corrupt := filepath.Join(dir, "corrupt.zip")
	c := slices.Clone(data)
	i := bytes.Index(c, []byte("GO-2023-1878.json")) + len("GO-2023-1878.json") + 40
	c[i] ^= 0xff
	os.WriteFile(corrupt, c, 0o644)
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	tests := []struct {
		path string
		lim  Limits
		want string
	}{
		{bomb, Limits{MaxEntrySize: 1 << 20, MaxErrors: 0}, ""},
		{bomb, Limits{MaxTotal: 1 << 20}, "inflates past"},
		{trunc, Limits{}, "zip"},
		{corrupt, Limits{}, "zip"},
		{empty, Limits{}, "no OSV records"},
		{full, Limits{MaxEntries: 0}, ""},
	}
	for _, tt := range tests {
		b, err := NewBuilder(filepath.Join(dir, "db"))
		if err != nil {
			t.Fatal(err)
		}
		st, err := b.ImportPath(context.Background(), tt.path, tt.lim)
		b.Abort()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s %+v: %v", filepath.Base(tt.path), tt.lim, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s %+v: err = %v, want %q (stats %+v)", filepath.Base(tt.path), tt.lim, err, tt.want, st)
		}
		if tt.path == bomb && err == nil && (st.BadRecords != 1 || st.Stored != 1) {
			t.Errorf("bomb entry not skipped: %+v", st)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "db", FileName)); !os.IsNotExist(err) {
		t.Errorf("aborted builds left a database: %v", err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, "db", ".*"))
	if len(leftovers) != 0 {
		t.Errorf("temp files left: %v", leftovers)
	}
}

func TestOpenMissing(t *testing.T) {
	_, err := Open(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), ErrNoDatabase.Error()) {
		t.Fatalf("err = %v, want ErrNoDatabase", err)
	}
}

func TestIndexName(t *testing.T) {
	for in, want := range map[string]string{"Requests": "requests", "zope.interface": "zope-interface", "Foo__Bar-.baz": "foo-bar-baz"} {
		if got := indexName("PyPI", in); got != want {
			t.Errorf("indexName(PyPI, %q) = %q, want %q", in, got, want)
		}
	}
	if got := indexName("NuGet", "Newtonsoft.Json"); got != "newtonsoft.json" {
		t.Errorf("NuGet ids are case-insensitive, got %q", got)
	}
	if got := indexName("RubyGems", "RedCloth"); got != "RedCloth" {
		t.Errorf("gem names must stay exact, got %q", got)
	}
	if got := indexName("Go", "github.com/Azure/x"); got != "github.com/Azure/x" {
		t.Errorf("Go names must stay exact, got %q", got)
	}
}

func writeZip(t testing.TB, p string, files map[string][]byte) {
	t.Helper()
	var buf bytes.Buffer
	writeZipTo(t, &buf, files)
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeZipTo(t testing.TB, buf *bytes.Buffer, files map[string][]byte) {
	zw := zip.NewWriter(buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(files[n])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzParseRecord: any input is a record or an error, never a panic; a parsed record compacts and rates.
func FuzzParseRecord(f *testing.F) {
	for _, p := range []string{"testdata/osv/go/GO-2022-0969.json", "testdata/osv/debian/DSA-5514-1.json", "testdata/osv/pypi/GHSA-v845-jxx5-vc9f.json"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"id":"X","affected":[{"package":{"ecosystem":"Debian:12","name":"a"},"severity":[{"type":"CVSS_V4","score":"CVSS:4.0/AV:N"}],"ranges":[{"type":"ECOSYSTEM","events":[{"fixed":"1:1.0"},{"introduced":"~"}]}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRecord(data)
		if err != nil {
			return
		}
		a, ok := compact(r)
		if !ok {
			return
		}
		for i := range a.Affected {
			_, _, _ = affects(&a.Affected[i], "1.0.0")
			_, _, _ = affects(&a.Affected[i], "1:2.36-9+deb12u3")
		}
	})
}

// FuzzImportZip: any archive is imported or refused with an error, never a panic, within the limits.
func FuzzImportZip(f *testing.F) {
	var buf bytes.Buffer
	writeZipTo(f, &buf, map[string][]byte{"a.json": mustRead(f, "testdata/osv/go/GO-2023-1878.json"), "b.json": []byte(`[{"id":"X"}]`)})
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:buf.Len()/2])
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := NewBuilder(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Abort()
		var st ImportStats
		_ = b.ImportZip(context.Background(), bytes.NewReader(data), int64(len(data)), "fuzz.zip", Limits{MaxEntries: 100, MaxEntrySize: 1 << 16, MaxTotal: 1 << 20, MaxErrors: 10}, &st)
	})
}
