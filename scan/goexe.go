package scan

import (
	"bytes"
	"debug/elf"
	"debug/pe"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// goSeg is a range of the program's address space and where its initialised bytes are in the file.
type goSeg struct {
	addr, size uint64 // size: bytes present in the file (the rest of the range is zero-filled at load)
	off        int64
}

func (s goSeg) contains(addr, n uint64) bool {
	return addr >= s.addr && n <= s.size && addr-s.addr <= s.size-n
}

// goExe is what the Go symbol reader needs of an executable, from its ELF or PE headers: how to read the memory
// image, where the runtime's function table (pclntab) may be and where its module data may be. It trusts nothing
// the headers say: every read is checked against the segment it falls in and bounded by the caller.
type goExe struct {
	r     io.ReaderAt
	order binary.ByteOrder
	ptr   int
	segs  []goSeg
	// pclntab is the .gopclntab section when the headers name it; ok false when they do not (sstrip, PE).
	pclntab   goSeg
	pclntabOK bool
	// rodata are the read-only ranges searched for the pclntab's header when no section names it; data are the
	// writable ranges searched for the runtime's moduledata.
	rodata, data []goSeg
	// rela is the RELA relocation table of a position-independent ELF program, whose moduledata pointers are
	// zero in the file and filled from relocation addends at load; relative is its R_*_RELATIVE type.
	rela     goSeg
	relaOK   bool
	relative uint32
	// searched counts the bytes read by searches (scan, eachRelative) against goSearchBudget: a hostile file may
	// offer many candidate tables, each of which would search the data again.
	searched int64
}

var errGoSearch = errors.New("search for the Go function table exceeds its read budget")

// charge counts n searched bytes.
func (x *goExe) charge(n uint64) error {
	if n > goSearchBudget {
		return errGoSearch
	}
	if x.searched += int64(n); x.searched > goSearchBudget {
		return errGoSearch
	}
	return nil
}

// goExeFromELF describes an ELF program.
func goExeFromELF(r io.ReaderAt, f *elf.File) *goExe {
	x := &goExe{r: r, order: f.ByteOrder, ptr: 8}
	if f.Class == elf.ELFCLASS32 {
		x.ptr = 4
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD {
			continue
		}
		s := goSeg{addr: p.Vaddr, size: min(p.Filesz, p.Memsz), off: int64(p.Off)}
		x.segs = append(x.segs, s)
		if p.Flags&elf.PF_W != 0 {
			x.data = append(x.data, s)
		} else if p.Flags&elf.PF_X == 0 {
			x.rodata = append(x.rodata, s)
		}
	}
	for _, s := range f.Sections {
		switch s.Name {
		case ".gopclntab", ".data.rel.ro.gopclntab":
			if s.Type != elf.SHT_NOBITS {
				x.pclntab, x.pclntabOK = goSeg{addr: s.Addr, size: s.Size, off: int64(s.Offset)}, true
			}
		case ".rela", ".rela.dyn":
			if f.Type == elf.ET_DYN && s.Type == elf.SHT_RELA && f.Class == elf.ELFCLASS64 {
				x.rela, x.relaOK = goSeg{size: s.Size, off: int64(s.Offset)}, true
			}
		}
	}
	switch f.Machine {
	case elf.EM_X86_64:
		x.relative = uint32(elf.R_X86_64_RELATIVE)
	case elf.EM_AARCH64:
		x.relative = uint32(elf.R_AARCH64_RELATIVE)
	case elf.EM_PPC64:
		x.relative = uint32(elf.R_PPC64_RELATIVE)
	case elf.EM_S390:
		x.relative = uint32(elf.R_390_RELATIVE)
	case elf.EM_RISCV:
		x.relative = uint32(elf.R_RISCV_RELATIVE)
	default:
		x.relaOK = false
	}
	return x
}

// goExeFromPE describes a PE (Windows) program: Go puts the pclntab in .rdata and the moduledata in .data. A PE
// file without an optional header gives nil (nothing to read symbols from).
func goExeFromPE(r io.ReaderAt, f *pe.File) *goExe {
	x := &goExe{r: r, order: binary.LittleEndian, ptr: 8}
	var base uint64
	switch h := f.OptionalHeader.(type) {
	case *pe.OptionalHeader64:
		base = h.ImageBase
	case *pe.OptionalHeader32:
		base, x.ptr = uint64(h.ImageBase), 4
	default:
		return nil
	}
	for _, s := range f.Sections {
		seg := goSeg{addr: base + uint64(s.VirtualAddress), size: uint64(min(s.VirtualSize, s.Size)), off: int64(s.Offset)}
		x.segs = append(x.segs, seg)
		switch s.Name {
		case ".rdata":
			x.rodata = append(x.rodata, seg)
		case ".data":
			x.data = append(x.data, seg)
		}
	}
	return x
}

// read reads n bytes of the memory image at addr; the range must lie in one segment's file bytes.
func (x *goExe) read(addr, n uint64) ([]byte, error) {
	for _, s := range x.segs {
		if s.contains(addr, n) {
			b := make([]byte, n)
			if _, err := x.r.ReadAt(b, s.off+int64(addr-s.addr)); err != nil {
				return nil, fmt.Errorf("read %d bytes at %#x: %w", n, addr, err)
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("address range %#x+%d is not in the file", addr, n)
}

func (x *goExe) word(b []byte, i int) uint64 {
	if x.ptr == 4 {
		return uint64(x.order.Uint32(b[4*i:]))
	}
	return x.order.Uint64(b[8*i:])
}

// scan calls fn for every offset of pattern in the file bytes of segs, reading them in bounded chunks; fn
// returning false stops. What it reads counts against the search budget.
func (x *goExe) scan(segs []goSeg, pattern []byte, align uint64, fn func(addr uint64) bool) error {
	const chunk = 1 << 20
	var largest uint64
	for _, s := range segs {
		largest = max(largest, s.size)
	}
	buf := make([]byte, min(chunk, largest)+uint64(len(pattern)))
	for _, s := range segs {
		for pos := uint64(0); pos < s.size; pos += chunk {
			n := min(s.size-pos, uint64(len(buf)))
			if err := x.charge(n); err != nil {
				return err
			}
			b := buf[:n]
			if _, err := x.r.ReadAt(b, s.off+int64(pos)); err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("read at %d: %w", s.off+int64(pos), err)
			}
			for i := 0; ; {
				j := bytes.Index(b[i:], pattern)
				if j < 0 {
					break
				}
				at := uint64(i+j) + pos
				i += j + 1
				if at >= pos+chunk && pos+chunk < s.size {
					break // the next chunk sees it (chunks overlap by the pattern's length)
				}
				if (s.addr+at)%align == 0 && !fn(s.addr+at) {
					return nil
				}
			}
		}
	}
	return nil
}
