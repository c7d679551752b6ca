package scan

import (
	"debug/buildinfo"
	"debug/elf"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkReadGoSymbols reads the functions of real Go programs: $ROOTSCAN_GOSYMBOLS_BENCH (space-separated
// paths; the test bed's containerd, helm and promtool builds are good candidates), else this test binary.
func BenchmarkReadGoSymbols(b *testing.B) {
	paths := strings.Fields(os.Getenv("ROOTSCAN_GOSYMBOLS_BENCH"))
	if len(paths) == 0 {
		exe, err := os.Executable()
		if err != nil {
			b.Fatal(err)
		}
		paths = []string{exe}
	}
	for _, p := range paths {
		b.Run(filepath.Base(filepath.Dir(p))+"/"+filepath.Base(p), func(b *testing.B) {
			f, err := os.Open(p)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				b.Fatal(err)
			}
			sr := io.NewSectionReader(f, 0, fi.Size())
			bi, err := buildinfo.Read(sr)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(fi.Size())
			b.ReportAllocs()
			keys := 0
			for b.Loop() {
				ef, err := elf.NewFile(sr)
				if err != nil {
					b.Fatal(err)
				}
				syms, err := readGoSymbols(goExeFromELF(sr, ef), bi)
				if err != nil {
					b.Fatal(err)
				}
				keys = syms.Len()
			}
			b.ReportMetric(float64(keys), "keys")
		})
	}
}
