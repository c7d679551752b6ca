package integration

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/scan"
)

// debianAppsRoot is the "497-package Debian root with apps" that scripts/bench-peers.sh builds with
// debootstrap (minutes, needs root and the Debian mirror) and caches; the benchmarks use it when it is there.
func debianAppsRoot(b *testing.B) string {
	cache := os.Getenv("ROOTSCAN_TESTBED_CACHE")
	if cache == "" {
		cache = "/var/cache/rootscan-testbed"
	}
	dir := filepath.Join(cache, "roots", "debian-apps")
	if _, err := os.Stat(filepath.Join(dir, "var/lib/dpkg/status")); err != nil {
		b.Skipf("no debian-apps root (%v): `make bench` or scripts/bench-peers.sh debian-apps builds it", err)
	}
	return dir
}

// BenchmarkScanDebianAppsRoot: the analyzers alone over the debian-apps root (Debian, Python, Java, Ruby, Go and
// Rust packages), in process.
func BenchmarkScanDebianAppsRoot(b *testing.B) {
	ctx := context.Background()
	root, err := fsaccess.OpenDir(debianAppsRoot(b), fsaccess.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer root.Close()
	analyzers := scan.DefaultAnalyzers()
	b.ReportAllocs()
	for b.Loop() {
		if res := scan.Run(ctx, root, analyzers); len(res.Packages) < 400 {
			b.Fatalf("packages: %d", len(res.Packages))
		}
	}
}

// BenchmarkCLIDebianAppsRoot: `rootscan scan --dir` over the same root, as a user runs it; reports its peak RSS,
// the figure the issue compares with scalibr's 63 MB.
func BenchmarkCLIDebianAppsRoot(b *testing.B) {
	dir := debianAppsRoot(b)
	var maxRSS int64
	for b.Loop() {
		res := runRootscan(b, 2*time.Minute, "scan", "-o", "json", "--log-level", "debug", "--dir", dir)
		if res.code != 0 {
			b.Fatalf("exit %d: %s", res.code, res.stderr)
		}
		maxRSS = max(maxRSS, res.maxRSSKiB)
	}
	b.ReportMetric(float64(maxRSS), "peak-RSS-KiB")
}

// BenchmarkCLIInventoryDebianAppsRoot: `rootscan scan --dir --no-baseline` over the same root, the inventory-only
// command scripts/bench-peers.sh compares with syft and scalibr; reports its peak RSS (the target: half of
// scalibr's).
func BenchmarkCLIInventoryDebianAppsRoot(b *testing.B) {
	dir := debianAppsRoot(b)
	var maxRSS int64
	for b.Loop() {
		res := runRootscan(b, 2*time.Minute, "scan", "-o", "json", "--no-baseline", "--db", "/nonexistent", "--log-level", "debug", "--dir", dir)
		if res.code != 0 {
			b.Fatalf("exit %d: %s", res.code, res.stderr)
		}
		maxRSS = max(maxRSS, res.maxRSSKiB)
	}
	b.ReportMetric(float64(maxRSS), "peak-RSS-KiB")
}
