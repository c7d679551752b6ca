package scan

import (
	"debug/elf"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/rootscan/rootscan/internal/testbed/hostile"
)

// hostileBuildInfoELF writes the hostile corpus's sparse ELF of size bytes whose .go.buildinfo declares a module
// string of declared bytes.
func hostileBuildInfoELF(t *testing.T, size int64, declared uint64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sparse")
	if err := hostile.GoBuildInfoELF(p, size, declared); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestGoBuildInfoBudget: a sparse file declaring a 900 MiB module string fails within the read budget instead of
// costing what it declares (debug/buildinfo alone allocates gigabytes for it), and the analyzer reports it as a
// damaged file.
func TestGoBuildInfoBudget(t *testing.T) {
	p := hostileBuildInfoELF(t, 1<<30, 900<<20)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sr := io.NewSectionReader(f, 0, 1<<30)
	ef, err := elf.NewFile(sr)
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	bi, err := readGoBuildInfo(sr, ef)
	runtime.ReadMemStats(&after)
	if bi != nil || !errors.Is(err, errReadBudget) {
		t.Errorf("build info %v, error %v; want the read budget exhausted", bi, err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*goBuildInfoBudget {
		t.Errorf("reading the hostile build info allocated %d MiB", alloc>>20)
	}
	// A real declared size still reads.
	small := hostileBuildInfoELF(t, 1<<20, 0)
	g, err := os.Open(small)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	sr = io.NewSectionReader(g, 0, 1<<20)
	if ef, err = elf.NewFile(sr); err != nil {
		t.Fatal(err)
	}
	if bi, err := readGoBuildInfo(sr, ef); err != nil || bi == nil || bi.GoVersion != "go1.22.0" {
		t.Errorf("small build info: %+v, %v", bi, err)
	}
}
