package vuln

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/rootscan/rootscan/report"
)

// The figures: import of a 100,000-advisory corpus (time, file size), match of 10,000 packages, heap with
// the database open. Run with: go test ./vuln -run '^$' -bench . -benchtime 1x -benchmem

const (
	synthAdvisories = 100_000
	synthPackages   = 20_000 // advisories per package: 5 on average, like Debian's busiest source packages and more
)

// synthRecord is a realistic OSV record: Debian-style (one or two releases, urgency, long details) for a quarter,
// GHSA-style (CVSS v3.1 vector, aliases, two ranges) for the rest, spread over Debian, Go, PyPI and npm packages.
func synthRecord(i int) []byte {
	pkg := i % synthPackages
	details := `"details":"A synthetic advisory with a realistic amount of text. An attacker could exploit a flaw in the parsing of crafted input to cause a denial of service or possibly execute arbitrary code; this sentence pads the record to the size of real advisories."`
	switch i % 4 {
	case 0:
		return []byte(fmt.Sprintf(`{"id":"DEBIAN-CVE-2099-%06d","modified":"2024-05-01T00:00:00Z","upstream":["CVE-2099-%06d"],%s,`+
			`"affected":[{"package":{"ecosystem":"Debian:11","name":"src%d"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.%d-1+deb11u1"}]}],"ecosystem_specific":{"urgency":"medium"}},`+
			`{"package":{"ecosystem":"Debian:12","name":"src%d"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.%d-2+deb12u1"}]}],"ecosystem_specific":{"urgency":"medium"}}]}`,
			i, i, details, pkg, i%50, pkg, i%50))
	case 1:
		return []byte(fmt.Sprintf(`{"id":"GO-2099-%06d","modified":"2024-05-01T00:00:00Z","aliases":["CVE-2099-%06d","GHSA-%06d"],"summary":"synthetic",%s,`+
			`"affected":[{"package":{"ecosystem":"Go","name":"example.com/mod%d"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.%d.0"},{"introduced":"2.0.0"},{"fixed":"2.%d.1"}]}]}]}`,
			i, i, i, details, pkg, i%50, i%50))
	case 2:
		return []byte(fmt.Sprintf(`{"id":"GHSA-py-%06d","modified":"2024-05-01T00:00:00Z","aliases":["CVE-2099-%06d"],"summary":"synthetic",%s,`+
			`"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:N/A:N"}],`+
			`"affected":[{"package":{"ecosystem":"PyPI","name":"py_pkg%d"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.%d"}]}],"versions":["0.9","1.0"]}]}`,
			i, i, details, pkg, i%50))
	}
	return []byte(fmt.Sprintf(`{"id":"GHSA-npm-%06d","modified":"2024-05-01T00:00:00Z","aliases":["CVE-2099-%06d"],"summary":"synthetic",%s,`+
		`"severity":[{"type":"CVSS_V4","score":"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}],`+
		`"affected":[{"package":{"ecosystem":"npm","name":"npm-pkg%d"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.%d.0"}]}]}]}`,
		i, i, details, pkg, i%50))
}

// synthZip writes the corpus as an osv.dev-style all.zip.
func synthZip(b *testing.B, p string) {
	b.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := range synthAdvisories {
		w, err := zw.Create(fmt.Sprintf("%d.json", i))
		if err != nil {
			b.Fatal(err)
		}
		w.Write(synthRecord(i))
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
}

func buildSynth(b *testing.B, zipPath, dir string) Info {
	b.Helper()
	bl, err := NewBuilder(dir)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := bl.ImportPath(context.Background(), zipPath, Limits{}); err != nil {
		b.Fatal(err)
	}
	info, err := bl.Commit()
	if err != nil {
		b.Fatal(err)
	}
	return info
}

func BenchmarkImport100k(b *testing.B) {
	tmp := b.TempDir()
	zipPath := filepath.Join(tmp, "all.zip")
	synthZip(b, zipPath)
	zfi, _ := os.Stat(zipPath)
	cpu0 := cpuSeconds()
	b.ResetTimer()
	var info Info
	for i := range b.N {
		info = buildSynth(b, zipPath, filepath.Join(tmp, fmt.Sprint("db", i)))
	}
	b.StopTimer()
	// CPU time next to wall time: on a shared machine the wall time mostly measures the other processes.
	b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/op")
	if info.Advisories != synthAdvisories {
		b.Fatalf("imported %d advisories", info.Advisories)
	}
	fi, err := os.Stat(filepath.Join(tmp, "db0", FileName))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(fi.Size())/(1<<20), "MiB-db")
	b.ReportMetric(float64(zfi.Size())/(1<<20), "MiB-zip")
}

// synthInventory is 10,000 packages: Debian binaries (two per source package, as libssl3/openssl), Go modules,
// PyPI and npm packages, most of them named in the corpus, some not.
func synthInventory() *report.Result {
	res := &report.Result{OS: &report.OS{ID: "debian", VersionID: "12"}}
	for i := range 10_000 {
		pkg := (i * 7) % (synthPackages + 2000)
		var p report.Package
		switch i % 4 {
		case 0:
			p = report.Package{Name: fmt.Sprintf("lib%d", i), Version: "1.10-1", Ecosystem: report.EcosystemDebian, Source: fmt.Sprintf("src%d", pkg), SourceVersion: "1.10-1"}
		case 1:
			p = report.Package{Name: fmt.Sprintf("example.com/mod%d", pkg), Version: "1.10.0", Ecosystem: report.EcosystemGo}
		case 2:
			p = report.Package{Name: fmt.Sprintf("py-pkg%d", pkg), Version: "1.10", Ecosystem: report.EcosystemPyPI}
		default:
			p = report.Package{Name: fmt.Sprintf("npm-pkg%d", pkg), Version: "1.10.0", Ecosystem: report.EcosystemNpm}
		}
		res.Packages = append(res.Packages, p)
	}
	return res
}

// BenchmarkMatch10k matches 10,000 packages against the 100,000-advisory database, and reports the heap the open
// database costs (bbolt maps the file; the heap holds only what one match decodes).
func BenchmarkMatch10k(b *testing.B) {
	tmp := b.TempDir()
	zipPath := filepath.Join(tmp, "all.zip")
	synthZip(b, zipPath)
	buildSynth(b, zipPath, filepath.Join(tmp, "db"))
	os.Remove(zipPath)
	inv := synthInventory()

	// Two collections: sync.Pool keeps objects (the zip writer's compressors) through one.
	gc := func(m *runtime.MemStats) { runtime.GC(); runtime.GC(); runtime.ReadMemStats(m) }
	var before, opened, matched runtime.MemStats
	gc(&before)
	db, err := Open(filepath.Join(tmp, "db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	gc(&opened)
	rssFile0 := procStatusKiB("RssFile:")
	cpu0 := cpuSeconds()
	b.ResetTimer()
	found := 0
	for range b.N {
		res := &report.Result{OS: inv.OS, Packages: inv.Packages}
		if err := db.Match(context.Background(), res); err != nil {
			b.Fatal(err)
		}
		found = len(res.Vulnerabilities)
	}
	b.StopTimer()
	b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/op")
	gc(&matched)
	b.ReportMetric(float64(found), "findings")
	// Pages of the mapped file the match touched: page cache the kernel can drop, not heap.
	b.ReportMetric(float64(procStatusKiB("RssFile:")-rssFile0), "KiB-rss-file-touched")
	b.ReportMetric(float64(int64(opened.HeapAlloc)-int64(before.HeapAlloc))/1024, "KiB-heap-open")
	b.ReportMetric(float64(int64(matched.HeapAlloc)-int64(before.HeapAlloc))/1024, "KiB-heap-after-match")
}

// cpuSeconds is the user and system CPU time of this process so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// procStatusKiB reads one "Name: N kB" line of /proc/self/status; -1 when missing.
func procStatusKiB(field string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}
