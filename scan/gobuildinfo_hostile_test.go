package scan

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// hostileBuildInfoELF writes a sparse ELF of size bytes whose .go.buildinfo declares a module string of
// declared bytes: a few KiB on disk, the rest holes that read as zeros.
func hostileBuildInfoELF(t *testing.T, size int64, declared uint64) string {
	t.Helper()
	le := binary.LittleEndian
	hdr := make([]byte, 0x1100)
	copy(hdr, elf.ELFMAG)
	hdr[4], hdr[5], hdr[6] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	le.PutUint16(hdr[16:], uint16(elf.ET_EXEC))
	le.PutUint16(hdr[18:], uint16(elf.EM_X86_64))
	le.PutUint32(hdr[20:], uint32(elf.EV_CURRENT))
	le.PutUint64(hdr[32:], 64)    // phoff
	le.PutUint64(hdr[40:], 0x200) // shoff
	le.PutUint16(hdr[52:], 64)
	le.PutUint16(hdr[54:], 56)
	le.PutUint16(hdr[56:], 1)
	le.PutUint16(hdr[58:], 64)
	le.PutUint16(hdr[60:], 3)
	le.PutUint16(hdr[62:], 2)
	ph := hdr[64:]
	le.PutUint32(ph[0:], uint32(elf.PT_LOAD))
	le.PutUint32(ph[4:], uint32(elf.PF_R|elf.PF_W))
	le.PutUint64(ph[8:], 0x1000)
	le.PutUint64(ph[16:], 0x401000)
	le.PutUint64(ph[24:], 0x401000)
	le.PutUint64(ph[32:], uint64(size-0x1000))
	le.PutUint64(ph[40:], uint64(size-0x1000))
	le.PutUint64(ph[48:], 0x1000)
	strtab := "\x00.go.buildinfo\x00.shstrtab\x00"
	copy(hdr[0x300:], strtab)
	sh := hdr[0x200+64:] // section 1: .go.buildinfo
	le.PutUint32(sh[0:], 1)
	le.PutUint32(sh[4:], uint32(elf.SHT_PROGBITS))
	le.PutUint64(sh[8:], uint64(elf.SHF_ALLOC|elf.SHF_WRITE))
	le.PutUint64(sh[16:], 0x401000)
	le.PutUint64(sh[24:], 0x1000)
	le.PutUint64(sh[32:], 0x100)
	sh = hdr[0x200+128:] // section 2: .shstrtab
	le.PutUint32(sh[0:], 15)
	le.PutUint32(sh[4:], uint32(elf.SHT_STRTAB))
	le.PutUint64(sh[24:], 0x300)
	le.PutUint64(sh[32:], uint64(len(strtab)))
	bi := hdr[0x1000:]
	copy(bi, "\xff Go buildinf:")
	bi[14], bi[15] = 8, 2 // pointer size, inline strings
	s := binary.AppendUvarint(nil, uint64(len("go1.22.0")))
	s = append(s, "go1.22.0"...)
	s = binary.AppendUvarint(s, declared)
	copy(bi[32:], s)
	p := filepath.Join(t.TempDir(), "sparse")
	if err := os.WriteFile(p, hdr, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
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
