package scan

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	"github.com/rootscan/rootscan/report"
)

// binaryAnalyzer reads what compilers embed in programs: Go build information and Rust cargo-auditable data. Both
// live in ordinary executables anywhere in the tree, so one analyzer opens each candidate once and parses its ELF
// header once for both, instead of two analyzers each opening and parsing every executable of the root. Packages
// keep their own FoundBy ("go-binary", "rust-binary") and so do per-file errors, so users see which reader said what.
type binaryAnalyzer struct {
	name         string
	golang, rust bool
	// minSize and maxSize bound the files looked at; maxInMemory bounds the copy made for an FS whose files cannot
	// be read at offsets.
	minSize, maxSize, maxInMemory int64
	// rustMaxSection bounds the compressed .dep-v0 section, rustMaxJSON its decompressed JSON.
	rustMaxSection, rustMaxJSON int64
}

// NewBinary returns the analyzer rootscan runs for compiled programs: Go modules (see goBinaryName) and Rust crates
// (see readRustAudit) from one open and one ELF parse per executable.
func NewBinary() Analyzer { return newBinaryAnalyzer("binary", true, true) }

func newBinaryAnalyzer(name string, golang, rust bool) *binaryAnalyzer {
	return &binaryAnalyzer{
		name: name, golang: golang, rust: rust,
		minSize: goBinMinSize, maxSize: goBinMaxSize, maxInMemory: goBinMaxInMemory,
		rustMaxSection: rustAuditMaxSection, rustMaxJSON: rustAuditMaxJSON,
	}
}

func (a *binaryAnalyzer) Name() string { return a.name }

func (a *binaryAnalyzer) Version() int { return 1 }

func (a *binaryAnalyzer) Requires() []string { return nil }

// Paths is empty: a program can be anywhere, Wants decides.
func (a *binaryAnalyzer) Paths() []string { return nil }

// Wants takes regular executable files of plausible size. It stats only regular files whose name does not already
// rule them out. Without a DirEntry (a changed path in an upper dir) any name may be a program.
func (a *binaryAnalyzer) Wants(name string, d fs.DirEntry) bool {
	for _, ext := range goBinSkipExt {
		if strings.HasSuffix(name, ext) {
			return false
		}
	}
	for _, dir := range goBinSkipDirs {
		if strings.HasPrefix(name, dir) {
			return false
		}
	}
	if d == nil {
		return true
	}
	if !d.Type().IsRegular() {
		return false
	}
	fi, err := d.Info()
	if err != nil {
		return false
	}
	return fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 && fi.Size() >= a.minSize && fi.Size() <= a.maxSize
}

// AnalyzeFile opens one file once and hands the parsed ELF to each reader. Files that are not ELF, not Go and
// carry no audit data are skipped silently (most executables are C programs); damaged embedded data is reported.
func (a *binaryAnalyzer) AnalyzeFile(ctx context.Context, fsys FS, name string, out *report.Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fail := func(analyzer string, err error) {
		out.Errors = append(out.Errors, report.FileError{Analyzer: analyzer, Path: name, Err: err.Error()})
	}
	// Checked again on the open file: the entry the walk saw may have been replaced since; a non-regular file now is
	// simply not a program.
	f, fi, err := OpenRegular(fsys, name, a.maxSize)
	if errors.Is(err, ErrNotRegular) {
		return nil
	}
	if err != nil {
		fail(a.name, err)
		return nil
	}
	defer f.Close()
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil {
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			fail(a.name, fmt.Errorf("read: %w", err))
		}
		return nil
	}
	// Windows Go programs (release artifacts some images ship) are read for their modules too.
	isPE := a.golang && string(magic[:2]) == "MZ"
	if string(magic[:]) != elf.ELFMAG && !isPE {
		return nil
	}
	ra, ok := f.(io.ReaderAt)
	if !ok {
		if fi.Size() > a.maxInMemory {
			fail(a.name, fmt.Errorf("%w: %d > %d bytes and the file cannot be read at offsets", ErrTooLarge, fi.Size(), a.maxInMemory))
			return nil
		}
		rest, err := io.ReadAll(io.LimitReader(f, a.maxInMemory))
		if err != nil {
			fail(a.name, fmt.Errorf("read: %w", err))
			return nil
		}
		ra = bytes.NewReader(append(magic[:], rest...))
	}
	// Bound every read to the size seen at open, so a file growing in a live upper dir cannot extend the work.
	sr := io.NewSectionReader(ra, 0, fi.Size())
	if isPE {
		pkgs, b, err := readGoPE(sr, name)
		if err != nil {
			fail(goBinaryName, err)
		}
		if b != nil {
			out.Packages = append(out.Packages, pkgs...)
			out.GoBinaries = append(out.GoBinaries, *b)
		}
		return nil
	}
	ef, err := elf.NewFile(sr)
	if err != nil {
		ef = nil // odd but perhaps valid: the Go reader searches the data itself, Rust data needs sections
	}
	if a.golang {
		bi, err := readGoBuildInfo(sr, ef)
		if err != nil {
			fail(goBinaryName, err)
		} else if bi != nil {
			out.Packages = append(out.Packages, goPackages(bi, name, goBinaryName)...)
			var x *goExe
			if ef != nil {
				x = goExeFromELF(sr, ef)
			}
			b, err := goBinary(x, bi, name)
			if err != nil {
				fail(goBinaryName, err)
			}
			out.GoBinaries = append(out.GoBinaries, b)
		}
	}
	if a.rust && ef != nil {
		pkgs, err := a.readRustAudit(ef, name)
		if err != nil {
			fail(rustBinaryName, err)
		}
		out.Packages = append(out.Packages, pkgs...)
	}
	return nil
}

// Analyze merges what AnalyzeFile found: a module or crate compiled into several programs becomes one Package
// listing them all. The analyzer keeps no state between files (it may serve concurrent scans), so the merge works
// on out.
func (a *binaryAnalyzer) Analyze(ctx context.Context, fsys FS, out *report.Result) error {
	if a.golang {
		mergePackages(out, goBinaryName)
		slices.SortFunc(out.GoBinaries, func(x, y report.GoBinary) int { return strings.Compare(x.Path, y.Path) })
	}
	if a.rust {
		mergePackages(out, rustBinaryName)
	}
	return nil
}
