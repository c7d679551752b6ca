package inuse

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
	"github.com/rootscan/rootscan/scan"
)

// BenchmarkBuild indexes a merged-/usr root of the real Debian packages of the distroless java, python and nodejs
// flavours (openjdk, python's standard library, node, ICU: 40 packages, about 3,500 listed paths) and reports the
// index's size: entries and retained bytes.
func BenchmarkBuild(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var pkgs []string
	for _, f := range []string{"java", "python", "nodejs"} {
		pkgs = append(pkgs, ociimage.FlavourPackages(f)...)
	}
	slices.Sort(pkgs)
	pkgs = slices.Compact(pkgs)
	dir := debianRootWith(b, ctx, pkgs, "java", "python", "nodejs")
	root, err := fsaccess.OpenDir(dir, fsaccess.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer root.Close()
	res := scan.Run(ctx, root, scan.DefaultAnalyzers())
	b.ResetTimer()
	var x *Index
	for b.Loop() {
		x, _ = Build(ctx, root, res, Options{})
	}
	b.StopTimer()
	b.ReportMetric(float64(x.size()), "entries")
	b.ReportMetric(float64(len(res.Packages)), "packages")
	b.ReportMetric(float64(x.bytes()), "index-B")
}

// BenchmarkNamespaceMaps gathers the mappings of this process's mount namespace (the host's, with every process on
// the machine in it): the worst case of one container scan's /proc reading, reported with the processes seen.
func BenchmarkNamespaceMaps(b *testing.B) {
	ctx := context.Background()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		b.Skip(err)
	}
	var paths []string
	for b.Loop() {
		if paths, err = NamespaceMaps(ctx, "/proc", os.Getpid()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(ents)), "proc-entries")
	b.ReportMetric(float64(len(paths)), "paths")
}
