package scan

import (
	"debug/buildinfo"
	"debug/elf"
	"debug/pe"
	"errors"
	"fmt"
	"io"
	"regexp"
	"runtime/debug"
	"strings"

	"github.com/rootscan/rootscan/report"
)

const (
	// goBinMinSize skips small executables (shell scripts, tiny C tools) without opening them. The smallest gc-built
	// Go program, stripped, is about 1.2 MiB; 64 KiB leaves a wide margin for other toolchains.
	goBinMinSize = 64 << 10
	// goBinMaxSize is the largest file looked at. Reading goes through io.ReaderAt and touches only the ELF headers
	// and the build info (plus at most the data segment of a non-Go ELF), so big binaries cost little; the bound
	// only keeps absurd files out. The largest real Go binaries (kubelet, terraform providers) are a few hundred MiB.
	goBinMaxSize = 1 << 30
	// goBinMaxInMemory bounds the copy made when the FS's files do not implement io.ReaderAt (fsaccess's do).
	goBinMaxInMemory = 64 << 20
	// goStdlib is the package name OSV and govulncheck use for the Go standard library and toolchain.
	goStdlib = "stdlib"
	// goToolchain is the package name of the Go vulnerability database for the go command, compiler and linker
	// (cmd/...): govulncheck keeps their advisories apart from stdlib's because they concern building code, not the
	// code a program contains. Only the toolchain's own programs are reported as it.
	goToolchain = "toolchain"
	// goDevel is the version the go command records for a main module built from a working tree.
	goDevel = "(devel)"
)

// goBinSkipExt lists name suffixes of files that are never Go programs, so that the walk does not stat them even
// when they are marked executable (Debian installs many data files 0755). Stat is the only per-file cost Wants has.
var goBinSkipExt = []string{
	".py", ".pyc", ".pyi", ".sh", ".pl", ".pm", ".rb", ".js", ".ts", ".map", ".json", ".txt", ".md", ".rst",
	".html", ".css", ".xml", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".service", ".rules", ".desktop",
	".gz", ".xz", ".bz2", ".zst", ".zip", ".jar", ".class", ".png", ".jpg", ".gif", ".svg", ".ico", ".ttf", ".otf",
	".woff", ".woff2", ".mo", ".gmo", ".qm", ".h", ".hpp", ".c", ".go", ".java", ".pem", ".crt", ".ko", ".a", ".o",
}

// goBinSkipDirs are trees that hold documentation, translations, headers and time zones, never installed programs.
// Skipping them by name saves a stat for each of their (many) files. A Go program hidden there is not part of the
// inventory; finding executables where they do not belong is the drift analyzer's job.
var goBinSkipDirs = []string{
	"usr/share/doc/", "usr/share/man/", "usr/share/info/", "usr/share/locale/", "usr/share/i18n/",
	"usr/share/zoneinfo/", "usr/include/", "var/lib/dpkg/info/",
}

// goBinaryName is the FoundBy of the Go modules NewBinary reports. NewBinary reads Go programs anywhere in the root, in the same pass as Rust audit data.
// It reports the main module, every dependency (after replace directives) and the Go toolchain as the OSV package
// "stdlib", one Package per (module, version) with the binaries that contain it as Locations. The Go
// distribution's own programs (the go command, gofmt, the compiler) are also reported as the OSV package
// "toolchain" at their Go version, the way govulncheck separates the two.
//
// Versions follow OSV's Go ecosystem: no "v" prefix ("0.17.0"; the PURL "pkg:golang/...@v0.17.0" adds it back) and
// the toolchain without "go" ("1.22.3"). A main module built from a working tree keeps the go command's "(devel)".
// A binary built outside module mode (Debian builds with GO111MODULE=off) has no main module version and no
// dependency list: only stdlib is reported for it, the program itself is in the distribution's inventory.
const goBinaryName = "go-binary"

// goBuildInfoBudget bounds the bytes debug/buildinfo may read from one file. It allocates what the file declares (a
// module string's length, a data segment's size), so a sparse file declaring a 900 MiB string would cost gigabytes;
// with the budget the read fails instead. Real build info is a few KiB; the search through a data segment of a
// program without section headers reads that segment, a few MiB for the largest programs.
const goBuildInfoBudget = 32 << 20

// budgetReaderAt fails reads once n bytes have been read through it.
type budgetReaderAt struct {
	r io.ReaderAt
	n int64
}

var errReadBudget = errors.New("read budget exhausted")

func (b *budgetReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if int64(len(p)) > b.n {
		return 0, fmt.Errorf("%w (%d bytes asked)", errReadBudget, len(p))
	}
	b.n -= int64(len(p))
	return b.r.ReadAt(p, off)
}

// readGoBuildInfo returns the build information of an ELF file already open as sr (ef is its parsed header, nil
// when debug/elf could not parse it), or nil, nil for a file that is not a Go program.
func readGoBuildInfo(sr *io.SectionReader, ef *elf.File) (*debug.BuildInfo, error) {
	if !mayBeGoELF(ef) {
		return nil, nil
	}
	bi, err := buildinfo.Read(&budgetReaderAt{r: sr, n: goBuildInfoBudget})
	if err != nil {
		if isNotGoErr(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("read Go build info: %w", err)
	}
	return bi, nil
}

// mayBeGoELF is a cheap pre-check: every Go toolchain that records module information (1.13+) puts it in a section
// named .go.buildinfo. An ELF file that has section headers but not that section (libc, most of /usr/lib) is not
// a Go program, and is not searched further; buildinfo.Read would scan its whole writable data segment.
// f is nil when debug/elf could not parse the file.
func mayBeGoELF(f *elf.File) bool {
	if f == nil {
		// Let buildinfo decide (and report) on odd but possibly valid files.
		return true
	}
	if len(f.Sections) <= 1 { // section headers removed (sstrip): only the data segment can tell
		return true
	}
	return f.Section(".go.buildinfo") != nil
}

// isNotGoErr recognises buildinfo's "not a Go executable" and "unrecognized file format", which are unexported:
// they mean "skip", not "damaged".
func isNotGoErr(err error) bool {
	s := err.Error()
	return strings.Contains(s, "not a Go executable") || strings.Contains(s, "unrecognized file format")
}

// goBinary describes one Go program for matching: its platform and the functions compiled into it (read through x,
// nil when the headers could not be parsed). A program whose function table cannot be read still gets its
// platform; the error says why its functions are missing.
func goBinary(x *goExe, bi *debug.BuildInfo, name string) (report.GoBinary, error) {
	b := report.GoBinary{Path: name}
	for _, s := range bi.Settings {
		switch s.Key {
		case "GOOS":
			b.GOOS = s.Value
		case "GOARCH":
			b.GOARCH = s.Value
		}
	}
	if x == nil {
		return b, nil
	}
	syms, err := readGoSymbols(x, bi)
	if errors.Is(err, errNoGoFuncTab) {
		return b, nil
	}
	if err != nil {
		return b, fmt.Errorf("read Go function table: %w", err)
	}
	b.Symbols, b.SymbolsFrom = syms, "pclntab"
	return b, nil
}

// readGoPE reads a PE file's Go build info and functions; a nil GoBinary means the file is not a Go program.
func readGoPE(sr *io.SectionReader, name string) ([]report.Package, *report.GoBinary, error) {
	pf, err := pe.NewFile(sr)
	if err != nil {
		return nil, nil, nil // not a PE file after all: MZ is a common two-byte prefix
	}
	bi, err := buildinfo.Read(&budgetReaderAt{r: sr, n: goBuildInfoBudget})
	if err != nil {
		if isNotGoErr(err) {
			return nil, nil, nil
		}
		return nil, nil, fmt.Errorf("read Go build info: %w", err)
	}
	b, err := goBinary(goExeFromPE(sr, pf), bi, name)
	return goPackages(bi, name, goBinaryName), &b, err
}

// goPackages turns one binary's build information into packages located at name.
func goPackages(bi *debug.BuildInfo, name, foundBy string) []report.Package {
	var pkgs []report.Package
	add := func(p, v string) {
		pkgs = append(pkgs, report.Package{Name: p, Version: v, Ecosystem: report.EcosystemGo, Locations: []string{name}, FoundBy: foundBy})
	}
	if v := goToolchainVersion(bi.GoVersion); v != "" {
		add(goStdlib, v)
		if goToolchainProgram(bi) {
			add(goToolchain, v)
		}
	}
	if bi.Main.Path != "" {
		p, v := goModule(&bi.Main)
		add(p, v)
	}
	for _, dep := range bi.Deps {
		if dep == nil || dep.Path == "" {
			continue
		}
		p, v := goModule(dep)
		add(p, v)
	}
	return pkgs
}

// goToolchainProgram says whether a binary is one of the Go distribution's own programs (go, gofmt, compile, link,
// cgo, ...): built from GOROOT's "cmd" tree, so its build info names a "cmd/..." package and no main module (or
// the "cmd" module). Such a binary is the toolchain a golang image builds with, and the toolchain's advisories
// ("Go"/"toolchain": the go command running code on "go get", cgo flag injection) apply to it.
func goToolchainProgram(bi *debug.BuildInfo) bool {
	return strings.HasPrefix(bi.Path, "cmd/") && (bi.Main.Path == "" || bi.Main.Path == "cmd")
}

// goModule applies a replace directive the way the go command did when it built the binary: the code compiled in is
// the replacement's, so a module replaced by a fork is reported as the fork (as syft and osv-scalibr do). A
// replacement by a local directory has no version; it is reported under the original path as "(devel)", the go
// command's word for code built from a working tree, because the original version would claim code that was not
// compiled in.
func goModule(m *debug.Module) (string, string) {
	p, v := m.Path, m.Version
	if r := m.Replace; r != nil {
		// The go command records a directory replacement as "=> ./dir (devel)" (older versions: no version).
		if r.Version == "" || r.Version == goDevel || r.Path == "" || goLocalPath(r.Path) {
			v = goDevel
		} else {
			p, v = r.Path, r.Version
		}
	}
	if v == "" {
		v = goDevel
	}
	if v != goDevel {
		v = strings.TrimPrefix(v, "v")
	}
	return p, v
}

// goLocalPath reports whether a replace target is a directory rather than a module path (go.mod's own rule: it
// starts with ./ or ../ or is absolute).
func goLocalPath(p string) bool {
	return strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../") || strings.HasPrefix(p, "/") ||
		p == "." || p == ".."
}

// goReleaseVersion matches released toolchains: go1.21.0, go1.19.8, go1.9, go1.22rc1, go1.21.0-bigcorp.
var goReleaseVersion = regexp.MustCompile(`^go(1(?:\.[0-9]+){1,2}(?:(?:rc|beta)[0-9]+)?)(?:-[0-9A-Za-z.+-]+)?$`)

// goToolchainVersion returns the OSV version of the toolchain that built a binary ("go1.22.3 X:boringcrypto" ->
// "1.22.3"), or "" for a development toolchain ("devel go1.23-abc..."), which matches no release's advisories.
func goToolchainVersion(v string) string {
	first, _, _ := strings.Cut(v, " ")
	m := goReleaseVersion.FindStringSubmatch(first)
	if m == nil {
		return ""
	}
	return m[1]
}
