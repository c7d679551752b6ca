package integration

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/scan"
)

// BenchmarkNodeScan: one full node scan (list, mount, analyze, unmount) of the distroless test node, in process.
func BenchmarkNodeScan(b *testing.B) {
	n := startDistrolessNode(b)
	s, _ := newScanner(b, n.bed, filepath.Join(b.TempDir(), "mounts"))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		reps, err := s.ScanNode(ctx, cri.Filter{})
		if err != nil || len(reps) != 4 {
			b.Fatalf("scan: %v, %d reports", err, len(reps))
		}
	}
}

// BenchmarkCLINodeScan: the rootscan binary over the same node, as a user runs it; reports its peak RSS.
func BenchmarkCLINodeScan(b *testing.B) {
	n := startDistrolessNode(b)
	mountDir := filepath.Join(b.TempDir(), "mounts")
	var maxRSS int64
	for b.Loop() {
		res := runRootscan(b, time.Minute, "scan", "-o", "json", "--log-level", "debug", "--runtime-endpoint", n.bed.Address(), "--mount-dir", mountDir)
		maxRSS = max(maxRSS, res.maxRSSKiB)
	}
	if maxRSS <= 0 {
		b.Fatal("rootscan did not log its peak RSS")
	}
	b.ReportMetric(float64(maxRSS), "peak-RSS-KiB")
}

// BenchmarkScanDistrolessRoot: the analyzers alone over the distroless image's root filesystem.
func BenchmarkScanDistrolessRoot(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, layout, _ := distrolessLayout(b, ctx)
	root, _, err := fsaccess.OpenOCI(ctx, layout, b.TempDir(), fsaccess.OCIOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer root.Close()
	analyzers := scan.DefaultAnalyzers()
	b.ReportAllocs()
	for b.Loop() {
		if res := scan.Run(ctx, root, analyzers); len(res.Packages) != 8 {
			b.Fatalf("packages: %d", len(res.Packages))
		}
	}
}
