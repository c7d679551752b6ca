package scan

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/knqyf263/go-rpmdb/pkg/bdb"
	"github.com/rootscan/rootscan/report"
)

// Testdata provenance: the databases are go-rpmdb's own test data (github.com/knqyf263/go-rpmdb v0.1.1, pkg/testdata),
// gzipped to keep the repository small; the expected lists are extracted from its pkg/rpmdb_testcase_test.go, which
// were made with `rpm -qa --queryformat` in the images themselves (columns: epoch, name, version, release, arch,
// source rpm):
//   testdata/rpm/centos7-plain.Packages.gz        Berkeley DB, centos:7        centos7-plain.expected.tsv (CentOS7Plain)
//   testdata/rpm/sle15-bci.Packages.db.gz         ndb, SLE 15 BCI              sle15-bci.expected.tsv (SLE15WithNDB)
//   testdata/rpm/fedora35.rpmdb.sqlite.gz         sqlite, fedora:35            fedora35.expected.tsv (Fedora35WithSQLite3)

func gunzipTestdata(t testing.TB, name string) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(testdata(t, name)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// srpmRE splits a source rpm name independently of parseSourceRPM, so the test does not check the code with itself.
var srpmRE = regexp.MustCompile(`^(.+)-([^-]+-[^-]+)\.src\.rpm$`)

// rpmExpected turns go-rpmdb's expected list into pkgLines, following OSV's rpm convention: epoch:version-release
// when the epoch is set and not 0. gpg-pubkey records are dropped, as the analyzer drops them.
func rpmExpected(t *testing.T, name string) []string {
	t.Helper()
	var want []string
	sc := bufio.NewScanner(bytes.NewReader(testdata(t, name)))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 6 {
			t.Fatalf("bad expected line %q", sc.Text())
		}
		if f[1] == "gpg-pubkey" {
			continue
		}
		epoch := ""
		if f[0] != "" && f[0] != "0" {
			epoch = f[0] + ":"
		}
		m := srpmRE.FindStringSubmatch(f[5])
		if m == nil {
			t.Fatalf("bad source rpm %q", f[5])
		}
		want = append(want, strings.Join([]string{f[1], f[4], epoch + f[2] + "-" + f[3], m[1], epoch + m[2]}, " "))
	}
	// The analyzer sorts by name, arch, version; with names free of bytes below ' ' that is the lines' byte order.
	slices.Sort(want)
	return want
}

func TestRPMRealDatabases(t *testing.T) {
	for _, tc := range []struct {
		fixture, path, expected, osID, ecosystem string
		count                                    int
	}{
		{"rpm/centos7-plain.Packages.gz", "var/lib/rpm/Packages", "rpm/centos7-plain.expected.tsv", "centos", "RPM", 144},
		{"rpm/sle15-bci.Packages.db.gz", "var/lib/rpm/Packages.db", "rpm/sle15-bci.expected.tsv", "sles", "SUSE", 35},
		{"rpm/fedora35.rpmdb.sqlite.gz", "usr/lib/sysimage/rpm/rpmdb.sqlite", "rpm/fedora35.expected.tsv", "fedora", "RPM", 137},
	} {
		t.Run(tc.path, func(t *testing.T) {
			a := &rpmAnalyzer{maxSize: rpmMaxDBSize, timeout: time.Minute, tempDir: t.TempDir()}
			out := Run(context.Background(), fstest.MapFS{
				"etc/os-release": file([]byte("ID=" + tc.osID + "\n")),
				tc.path:          file(gunzipTestdata(t, tc.fixture)),
			}, []Analyzer{NewOSRelease(), a})
			if len(out.Errors) != 0 {
				t.Fatalf("errors: %v", out.Errors)
			}
			want := rpmExpected(t, tc.expected)
			got := pkgLines(out.Packages)
			if len(got) != tc.count || !reflect.DeepEqual(got, want) {
				t.Fatalf("got %d packages, want %d:\ngot  %v\nwant %v", len(got), len(want), got, want)
			}
			for _, p := range out.Packages {
				if p.Ecosystem != tc.ecosystem || p.FoundBy != "rpm" || !reflect.DeepEqual(p.Locations, []string{tc.path}) {
					t.Errorf("%s: ecosystem %q foundBy %q locations %v", p.Name, p.Ecosystem, p.FoundBy, p.Locations)
				}
			}
			// The temp copy is gone.
			if ents, err := os.ReadDir(a.tempDir); err != nil || len(ents) != 0 {
				t.Errorf("temp dir: %v %v", ents, err)
			}
		})
	}
}

// Spot checks, by hand against rpm -qa output in go-rpmdb's test cases: epochs, source names with dashes, and
// binaries whose source has another name.
func TestRPMSpotChecks(t *testing.T) {
	out := analyze(t, NewRPM(), fstest.MapFS{"var/lib/rpm/Packages": file(gunzipTestdata(t, "rpm/centos7-plain.Packages.gz"))})
	for _, p := range out.Packages {
		if p.PURL != "" {
			t.Fatalf("%s: analyzer set PURL %q; PURLs are filled centrally", p.Name, p.PURL)
		}
	}
	lines := "\n" + strings.Join(pkgLines(out.Packages), "\n") + "\n"
	for _, w := range []string{
		"openssl-libs x86_64 1:1.0.2k-12.el7 openssl 1:1.0.2k-12.el7",
		"bash x86_64 4.2.46-30.el7 bash 4.2.46-30.el7",
		"nss-softokn-freebl x86_64 3.36.0-5.el7_5 nss-softokn 3.36.0-5.el7_5",
		"centos-release x86_64 7-5.1804.4.el7.centos centos-release 7-5.1804.4.el7.centos",
	} {
		if !strings.Contains(lines, "\n"+w+"\n") {
			t.Errorf("missing %q", w)
		}
	}
	if strings.Contains(lines, "gpg-pubkey") {
		t.Error("gpg-pubkey reported as a package")
	}
}

// Fedora 36+ and Tumbleweed link var/lib/rpm to usr/lib/sysimage/rpm: one package set, both locations.
func TestRPMLinkedDirs(t *testing.T) {
	out := analyze(t, NewRPM(), fstest.MapFS{
		"var/lib/rpm":                      {Data: []byte("../../usr/lib/sysimage/rpm"), Mode: fs.ModeSymlink | 0o777},
		"usr/lib/sysimage/rpm/Packages.db": file(gunzipTestdata(t, "rpm/sle15-bci.Packages.db.gz")),
	})
	if len(out.Errors) != 0 || len(out.Packages) != 35 {
		t.Fatalf("%d packages, errors %v", len(out.Packages), out.Errors)
	}
	for _, p := range out.Packages {
		if !reflect.DeepEqual(p.Locations, []string{"var/lib/rpm/Packages.db", "usr/lib/sysimage/rpm/Packages.db"}) {
			t.Errorf("%s: locations %v", p.Name, p.Locations)
		}
	}
}

// A stale Berkeley DB next to the sqlite database (left by rpmdb --rebuilddb) is ignored, as rpm ignores it.
func TestRPMPrefersNewestFormat(t *testing.T) {
	out := analyze(t, NewRPM(), fstest.MapFS{
		"var/lib/rpm/rpmdb.sqlite": file(gunzipTestdata(t, "rpm/fedora35.rpmdb.sqlite.gz")),
		"var/lib/rpm/Packages":     file(gunzipTestdata(t, "rpm/centos7-plain.Packages.gz")),
	})
	if len(out.Errors) != 0 || len(out.Packages) != 137 {
		t.Fatalf("%d packages, errors %v", len(out.Packages), out.Errors)
	}
}

func TestRPMEcosystem(t *testing.T) {
	for id, want := range map[string]string{
		"rhel": "Red Hat", "almalinux": "AlmaLinux", "rocky": "Rocky Linux", "sles": "SUSE", "opensuse-leap": "openSUSE",
		"opensuse-tumbleweed": "openSUSE", "azurelinux": "Azure Linux", "mariner": "Azure Linux", "openEuler": "openEuler",
		"centos": "RPM", "fedora": "RPM", "amzn": "RPM", "ol": "RPM",
	} {
		if got := rpmEcosystem(&report.OS{ID: id}); got != want {
			t.Errorf("%s: %q, want %q", id, got, want)
		}
	}
	if got := rpmEcosystem(nil); got != "RPM" {
		t.Errorf("no os-release: %q", got)
	}
}

func TestParseSourceRPM(t *testing.T) {
	for in, want := range map[string][2]string{
		"util-linux-2.32.1-42.el8_8.src.rpm": {"util-linux", "2.32.1-42.el8_8"},
		"python3.10-3.10.0-1.fc35.src.rpm":   {"python3.10", "3.10.0-1.fc35"},
		"foo-1-2.nosrc.rpm":                  {"foo", "1-2"},
		"foo-1.src.rpm":                      {"", ""},
		"-1-2.src.rpm":                       {"", ""},
		"foo--2.src.rpm":                     {"", ""},
		"foo-1-.src.rpm":                     {"", ""},
		"(none)":                             {"", ""},
		"":                                   {"", ""},
	} {
		n, vr, ok := parseSourceRPM(in)
		if n != want[0] || vr != want[1] || ok != (want[0] != "") {
			t.Errorf("%q: %q %q %v, want %q", in, n, vr, ok, want)
		}
	}
}

// A damaged database is one file error; the analyzer and the other analyzers carry on, and nothing is left behind.
func TestRPMDamagedDatabases(t *testing.T) {
	sqlite := gunzipTestdata(t, "rpm/fedora35.rpmdb.sqlite.gz")
	ndb := gunzipTestdata(t, "rpm/sle15-bci.Packages.db.gz")
	bdb := gunzipTestdata(t, "rpm/centos7-plain.Packages.gz")
	for name, tc := range map[string]struct {
		path string
		data []byte
	}{
		"sqlite truncated":  {"var/lib/rpm/rpmdb.sqlite", sqlite[:8192]},
		"sqlite header":     {"var/lib/rpm/rpmdb.sqlite", sqlite[:16]},
		"ndb truncated":     {"var/lib/rpm/Packages.db", ndb[:4096]},
		"ndb header only":   {"var/lib/rpm/Packages.db", ndb[:40]},
		"bdb truncated":     {"var/lib/rpm/Packages", bdb[:len(bdb)/2]},
		"bdb metadata only": {"var/lib/rpm/Packages", bdb[:512]},
		"empty":             {"var/lib/rpm/Packages", nil},
		"text":              {"var/lib/rpm/Packages", []byte("this is not a database\n")},
	} {
		t.Run(name, func(t *testing.T) {
			a := &rpmAnalyzer{maxSize: rpmMaxDBSize, timeout: time.Minute, tempDir: t.TempDir()}
			out := Run(context.Background(), fstest.MapFS{
				tc.path:          file(tc.data),
				apkInstalledPath: file([]byte("P:musl\nV:1.2.5-r0\n")),
			}, []Analyzer{NewOSRelease(), a, NewApk()})
			if len(out.Errors) != 1 || out.Errors[0].Analyzer != "rpm" || out.Errors[0].Path != tc.path {
				t.Fatalf("errors %v", out.Errors)
			}
			if len(out.Packages) != 1 || out.Packages[0].Name != "musl" {
				t.Errorf("packages %v", pkgLines(out.Packages))
			}
			if ents, _ := os.ReadDir(a.tempDir); len(ents) != 0 {
				t.Errorf("temp files left: %v", ents)
			}
			t.Log(out.Errors[0].Err)
		})
	}
}

func TestRPMLimits(t *testing.T) {
	bdb := gunzipTestdata(t, "rpm/centos7-plain.Packages.gz")
	fsys := fstest.MapFS{"var/lib/rpm/Packages": file(bdb)}

	a := &rpmAnalyzer{maxSize: 1 << 20, timeout: time.Minute, tempDir: t.TempDir()}
	out := analyze(t, a, fsys)
	if len(out.Packages) != 0 || len(out.Errors) != 1 || !strings.Contains(out.Errors[0].Err, ErrTooLarge.Error()) {
		t.Errorf("too large: %d packages, errors %v", len(out.Packages), out.Errors)
	}

	a = &rpmAnalyzer{maxSize: rpmMaxDBSize, timeout: time.Nanosecond, tempDir: t.TempDir()}
	out = analyze(t, a, fsys)
	if len(out.Packages) != 0 || len(out.Errors) != 1 || !strings.Contains(out.Errors[0].Err, errRPMTimeout.Error()) {
		t.Errorf("timeout: %d packages, errors %v", len(out.Packages), out.Errors)
	}

	for name, f := range map[string]*fstest.MapFile{
		"directory": {Mode: fs.ModeDir | 0o755},
		"fifo":      {Mode: fs.ModeNamedPipe | 0o644},
	} {
		out = analyze(t, NewRPM(), fstest.MapFS{"var/lib/rpm/Packages": f})
		if len(out.Errors) != 1 || !strings.Contains(out.Errors[0].Err, ErrNotRegular.Error()) {
			t.Errorf("%s: errors %v", name, out.Errors)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var res report.Result
	if err := NewRPM().Analyze(ctx, fsys, &res); !errors.Is(err, context.Canceled) || len(res.Packages) != 0 {
		t.Errorf("cancelled: %v, %d packages", err, len(res.Packages))
	}

	// No database is not an error: most images are not rpm-based.
	if out := analyze(t, NewRPM(), fstest.MapFS{"etc/hostname": file(nil)}); len(out.Packages)+len(out.Errors) != 0 {
		t.Errorf("empty root: %+v", out)
	}
}

// FuzzRPMDB feeds arbitrary bytes to go-rpmdb in each of the three formats. go-rpmdb parses in goroutines of its
// own, where a panic cannot be recovered and would end the scanner: this target is how such panics are found.
// The seeds are the first pages of a real database of each format, so the fuzzer starts past format detection.
func FuzzRPMDB(f *testing.F) {
	f.Add([]byte{}, uint8(0))
	f.Add(gunzipTestdata(f, "rpm/sle15-bci.Packages.db.gz")[:4096], uint8(1))
	f.Add(gunzipTestdata(f, "rpm/centos7-plain.Packages.gz")[:8192], uint8(2))
	f.Add(gunzipTestdata(f, "rpm/fedora35.rpmdb.sqlite.gz")[:8192], uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, kind uint8) {
		name := "var/lib/rpm/" + rpmDBFiles[int(kind)%len(rpmDBFiles)]
		a := &rpmAnalyzer{maxSize: 1 << 20, timeout: 10 * time.Second, tempDir: t.TempDir()}
		out := analyze(t, a, fstest.MapFS{name: file(data)})
		if len(out.Errors) > 1 {
			t.Fatalf("errors %v", out.Errors)
		}
		for _, e := range out.Errors {
			if strings.Contains(e.Err, errRPMTimeout.Error()) {
				t.Fatalf("parse did not end: %v", e.Err)
			}
		}
	})
}

// bdbFirstValue finds, in a real Berkeley DB, the first value entry that points to overflow pages: the offset of its
// page number field and the first overflow page.
func bdbFirstValue(t *testing.T, db []byte) (pageNoOff int, firstPage uint32, pageSize int) {
	t.Helper()
	md, err := bdb.ParseHashMetadataPage(db[:512])
	if err != nil || md.Swapped {
		t.Fatalf("metadata: %v", err)
	}
	ps := int(md.PageSize)
	for p := 0; (p+1)*ps <= len(db); p++ {
		page := db[p*ps : (p+1)*ps]
		hp, err := bdb.ParseHashPage(page, false)
		if err != nil || hp.PageType != bdb.HashPageType || hp.NumEntries == 0 {
			continue
		}
		v := int(binary.LittleEndian.Uint16(page[bdb.PageHeaderSize+bdb.HashIndexEntrySize:]))
		if page[v] != bdb.HashOffIndexPageType {
			continue
		}
		return p*ps + v + 4, binary.LittleEndian.Uint32(page[v+4:]), ps
	}
	t.Fatal("no overflow value")
	return 0, 0, 0
}

// Damage that would make go-rpmdb spin forever in its own goroutine (which no timeout can stop) or panic there
// (which no recover can catch) is refused before go-rpmdb runs.
func TestRPMPreflightRefusesLoops(t *testing.T) {
	orig := gunzipTestdata(t, "rpm/centos7-plain.Packages.gz")
	off, first, ps := bdbFirstValue(t, orig)
	for name, tc := range map[string]struct {
		damage func(db []byte)
		msg    string
	}{
		"value points to the metadata page": {func(db []byte) { binary.LittleEndian.PutUint32(db[off:], 1<<20) }, "no overflow page"},
		"overflow page links to itself": {func(db []byte) {
			binary.LittleEndian.PutUint32(db[int(first)*ps+16:], first)
		}, "values larger than the file"}, // caught by the size bound before the step bound
		"value offset outside the page": {func(db []byte) {
			binary.LittleEndian.PutUint16(db[off-4-(off-4)%ps+bdb.PageHeaderSize+bdb.HashIndexEntrySize:], uint16(ps))
		}, "outside the page"},
	} {
		t.Run(name, func(t *testing.T) {
			db := bytes.Clone(orig)
			tc.damage(db)
			a := &rpmAnalyzer{maxSize: rpmMaxDBSize, timeout: time.Minute, tempDir: t.TempDir()}
			out := analyze(t, a, fstest.MapFS{"var/lib/rpm/Packages": file(db)})
			if len(out.Packages) != 0 || len(out.Errors) != 1 || !strings.Contains(out.Errors[0].Err, "damaged rpm database") || !strings.Contains(out.Errors[0].Err, tc.msg) {
				t.Fatalf("%d packages, errors %v", len(out.Packages), out.Errors)
			}
		})
	}
}
