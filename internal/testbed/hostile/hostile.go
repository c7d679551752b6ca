// Package hostile writes the hostile corpus of issue 13 into a directory: each Case is what a container can put in
// its own upper dir (a few KiB to a few hundred MiB on disk, most of it sparse) to make a scanner allocate, hash,
// copy or print what the files declare. The corpus is generated, never committed: the largest case is a jar whose
// central directory really holds 11 million headers (half a gigabyte), the others are holes.
package hostile

import (
	"bufio"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Case is one hostile root: Write puts its files under root (an upper dir or a plain directory).
type Case struct {
	// Name is a short label, usable as a container name.
	Name string
	// What says which budget the case attacks.
	What  string
	Write func(root string) error
}

// EvilName is the file name of the output-hygiene case: a newline, a line that reads like a real table row in
// green, and the Unicode line and next-line separators.
const EvilName = "evil\n\x1b[1;32mPASS  container-baseline-04  forged line\x1b[0m\u2028next\u0085line"

// DeepSetuid and DeepKey are the files the deep-tree case plants outside its 130-deep directory: tree-wide controls
// must still name them.
const (
	DeepSetuid = "usr/bin/planted-suid"
	DeepKey    = "root/.ssh/id_rsa"
	DeepDepth  = 130
)

// Cases lists the corpus, one case per budget of issue 13.
func Cases() []Case {
	return []Case{
		{"gobuildinfo", "sparse 1 GiB ELF whose Go build info declares a 900 MiB module string", writeGoBuildInfo},
		{"longpaths", "100,000 empty files under ~4,000-byte paths", writeLongPaths},
		{"hugejar", "jar whose central directory holds 11 million entries", writeHugeJar},
		{"hashbomb", "16 sparse 256 MiB files that start with an ELF header", writeHashBomb},
		{"rpmdb", "500 MB sparse rpmdb.sqlite", writeRPMDB},
		{"deeptree", "directory nested 130 deep, a setuid file and a private key elsewhere", writeDeepTree},
		{"evilname", "file name with a newline, ANSI escapes, U+2028 and U+0085", writeEvilName},
		{"hugejson", "16 MiB npm lock and composer installed.json of the smallest values", writeHugeJSON},
		{"rustdep", "sparse ELF whose .dep-v0 section declares 900 MiB", writeRustDep},
	}
}

// Write writes every case into its own directory under dir (dir/<name>) and returns those roots by name.
func Write(dir string) (map[string]string, error) {
	roots := map[string]string{}
	for _, c := range Cases() {
		root := filepath.Join(dir, c.Name)
		if err := os.MkdirAll(root, 0o755); err != nil {
			return nil, err
		}
		if err := c.Write(root); err != nil {
			return nil, fmt.Errorf("write hostile case %s: %w", c.Name, err)
		}
		roots[c.Name] = root
	}
	return roots, nil
}

// sparseFile writes head at the start of path and extends it with a hole to size bytes.
func sparseFile(path string, head []byte, size int64, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, head, mode); err != nil {
		return err
	}
	if err := os.Chmod(path, mode); err != nil {
		return err
	}
	return os.Truncate(path, size)
}

// elfHeader is an ELF64 x86-64 executable header with one PT_LOAD segment covering the file from 0x1000 on and
// sections 1 (named name, of the given size at offset 0x1000) and 2 (.shstrtab). The first 0x1000 bytes are the
// headers; the caller writes the section's content from 0x1000.
func elfHeader(name string, fileSize int64, sectionSize uint64) []byte {
	le := binary.LittleEndian
	hdr := make([]byte, 0x1100)
	copy(hdr, elf.ELFMAG)
	hdr[4], hdr[5], hdr[6] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	le.PutUint16(hdr[16:], uint16(elf.ET_EXEC))
	le.PutUint16(hdr[18:], uint16(elf.EM_X86_64))
	le.PutUint32(hdr[20:], uint32(elf.EV_CURRENT))
	le.PutUint64(hdr[32:], 64)    // program headers
	le.PutUint64(hdr[40:], 0x200) // section headers
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
	le.PutUint64(ph[32:], uint64(fileSize-0x1000))
	le.PutUint64(ph[40:], uint64(fileSize-0x1000))
	le.PutUint64(ph[48:], 0x1000)
	strtab := "\x00" + name + "\x00.shstrtab\x00"
	copy(hdr[0x300:], strtab)
	sh := hdr[0x200+64:]
	le.PutUint32(sh[0:], 1)
	le.PutUint32(sh[4:], uint32(elf.SHT_PROGBITS))
	le.PutUint64(sh[8:], uint64(elf.SHF_ALLOC|elf.SHF_WRITE))
	le.PutUint64(sh[16:], 0x401000)
	le.PutUint64(sh[24:], 0x1000)
	le.PutUint64(sh[32:], sectionSize)
	sh = hdr[0x200+128:]
	le.PutUint32(sh[0:], uint32(len(name)+2))
	le.PutUint32(sh[4:], uint32(elf.SHT_STRTAB))
	le.PutUint64(sh[24:], 0x300)
	le.PutUint64(sh[32:], uint64(len(strtab)))
	return hdr
}

func writeGoBuildInfo(root string) error {
	return GoBuildInfoELF(filepath.Join(root, "usr/local/bin/buildinfo-bomb"), 1<<30, 900<<20)
}

// GoBuildInfoELF writes a sparse ELF of size bytes whose .go.buildinfo (Go 1.18+ inline strings) declares a module
// string of declared bytes: a few KiB on disk, the rest holes that read as zeros.
func GoBuildInfoELF(path string, size int64, declared uint64) error {
	hdr := elfHeader(".go.buildinfo", size, 0x100)
	bi := hdr[0x1000:]
	copy(bi, "\xff Go buildinf:")
	bi[14], bi[15] = 8, 2 // pointer size, inline strings
	s := binary.AppendUvarint(nil, uint64(len("go1.22.0")))
	s = append(s, "go1.22.0"...)
	s = binary.AppendUvarint(s, declared)
	copy(bi[32:], s)
	return sparseFile(path, hdr, size, 0o755)
}

func writeRustDep(root string) error {
	const size = 1 << 30
	return sparseFile(filepath.Join(root, "usr/local/bin/rusty"), elfHeader(".dep-v0", size, 900<<20), size, 0o755)
}

func writeHashBomb(root string) error {
	for i := range 16 {
		p := filepath.Join(root, "opt/tools", fmt.Sprintf("tool-%02d", i))
		if err := sparseFile(p, elfHeader(".text", 256<<20, 0x100), 256<<20, 0o755); err != nil {
			return err
		}
	}
	return nil
}

func writeRPMDB(root string) error {
	head := make([]byte, 100)
	copy(head, "SQLite format 3\x00")
	binary.BigEndian.PutUint16(head[16:], 4096) // page size
	head[18], head[19] = 1, 1
	head[21], head[22], head[23] = 64, 32, 32
	binary.BigEndian.PutUint32(head[28:], 500_000_000/4096)
	return sparseFile(filepath.Join(root, "var/lib/rpm/rpmdb.sqlite"), head, 500_000_000, 0o644)
}

// writeLongPaths nests 15 directories of 250-byte names (3,765 bytes) and puts 100 directories of 1,000 empty
// files with 120-byte names at the bottom: every path is about 4,000 bytes, under PATH_MAX with the upper dir's
// own prefix.
func writeLongPaths(root string) error {
	dir := root
	for i := range 15 {
		dir = filepath.Join(dir, fmt.Sprintf("%03d", i)+strings.Repeat("p", 247))
	}
	for d := range 100 {
		sub := filepath.Join(dir, fmt.Sprintf("%02d", d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return err
		}
		for f := range 1000 {
			name := fmt.Sprintf("%04d", f) + strings.Repeat("f", 116)
			if err := os.WriteFile(filepath.Join(sub, name), nil, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeHugeJar writes a zip64 archive whose central directory holds 11 million real 47-byte headers (517 MB),
// each pointing at the one empty stored entry: archive/zip would build every one of them.
func writeHugeJar(root string) error {
	const entries = 11_000_000
	p := filepath.Join(root, "app/lib/huge.jar")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	le := binary.LittleEndian
	local := make([]byte, 31)
	le.PutUint32(local[0:], 0x04034b50)
	le.PutUint16(local[4:], 20)
	le.PutUint16(local[26:], 1)
	local[30] = 'a'
	w.Write(local)
	cd := make([]byte, 47)
	le.PutUint32(cd[0:], 0x02014b50)
	le.PutUint16(cd[4:], 20)
	le.PutUint16(cd[6:], 20)
	le.PutUint16(cd[28:], 1)
	cd[46] = 'a'
	for range entries {
		w.Write(cd)
	}
	dirOff, dirSize := uint64(len(local)), uint64(entries*len(cd))
	end64 := make([]byte, 56)
	le.PutUint32(end64[0:], 0x06064b50)
	le.PutUint64(end64[4:], 44)
	le.PutUint16(end64[12:], 45)
	le.PutUint16(end64[14:], 45)
	le.PutUint64(end64[24:], entries)
	le.PutUint64(end64[32:], entries)
	le.PutUint64(end64[40:], dirSize)
	le.PutUint64(end64[48:], dirOff)
	w.Write(end64)
	loc := make([]byte, 20)
	le.PutUint32(loc[0:], 0x07064b50)
	le.PutUint64(loc[8:], dirOff+dirSize)
	le.PutUint32(loc[16:], 1)
	w.Write(loc)
	end := make([]byte, 22)
	le.PutUint32(end[0:], 0x06054b50)
	le.PutUint16(end[8:], 0xffff)
	le.PutUint16(end[10:], 0xffff)
	le.PutUint32(end[12:], 0xffffffff)
	le.PutUint32(end[16:], 0xffffffff)
	w.Write(end)
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

func writeDeepTree(root string) error {
	dir := filepath.Join(root, "var/cache/deep")
	for range DeepDepth {
		dir = filepath.Join(dir, "d")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bottom"), []byte("x"), 0o644); err != nil {
		return err
	}
	if err := sparseFile(filepath.Join(root, DeepSetuid), []byte("#!/bin/sh\n"), 10, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Join(root, DeepSetuid), os.ModeSetuid|0o755); err != nil {
		return err
	}
	key := "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
	return sparseFile(filepath.Join(root, DeepKey), []byte(key), int64(len(key)), 0o600)
}

// writeEvilName plants the hostile name as a setuid executable, so the setuid control, unowned executables and
// drift all name it.
func writeEvilName(root string) error {
	p := filepath.Join(root, "usr/local/bin", EvilName)
	if err := sparseFile(p, []byte("#!/bin/sh\n"), 10, 0o755); err != nil {
		return err
	}
	return os.Chmod(p, os.ModeSetuid|0o755)
}

// writeHugeJSON writes an npm lock (read because its directory has no node_modules) and a composer installed.json
// of just under their 16 MiB size caps, each one array of about 8 million zeros.
func writeHugeJSON(root string) error {
	write := func(rel, prefix, suffix string) error {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		defer f.Close()
		w := bufio.NewWriterSize(f, 1<<20)
		w.WriteString(prefix)
		n := len(prefix) + len(suffix)
		for i := 0; n+2 < 16<<20-1024; i++ {
			if i > 0 {
				w.WriteByte(',')
				n++
			}
			w.WriteByte('0')
			n++
		}
		w.WriteString(suffix)
		if err := w.Flush(); err != nil {
			return err
		}
		return f.Close()
	}
	if err := write("srv/app/package-lock.json",
		`{"name":"app","lockfileVersion":3,"packages":{"node_modules/a":{"version":"1.0.0","x":[`, `]}}}`); err != nil {
		return err
	}
	return write("var/www/html/vendor/composer/installed.json",
		`{"packages":[{"name":"a/b","version":"1.0.0","x":[`, `]}]}`)
}
