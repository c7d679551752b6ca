package scan

import (
	"bytes"
	"cmp"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
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

// goBinaryAnalyzer lists the modules compiled into Go programs, from the build information the go command embeds in
// every binary (stripped ones too: it lives in the .go.buildinfo section, not in the symbol table). Distroless and
// scratch images often hold nothing but one Go program, so this is their whole inventory.
type goBinaryAnalyzer struct {
	minSize, maxSize, maxInMemory int64
}

// NewGoBinary returns the analyzer for Go programs anywhere in the root. It reports the main module, every
// dependency (after replace directives) and the Go toolchain as the OSV package "stdlib", one Package per
// (module, version) with the binaries that contain it as Locations.
//
// Versions follow OSV's Go ecosystem: no "v" prefix ("0.17.0"; the PURL "pkg:golang/...@v0.17.0" adds it back) and
// the toolchain without "go" ("1.22.3"). A main module built from a working tree keeps the go command's "(devel)".
// A binary built outside module mode (Debian builds with GO111MODULE=off) has no main module version and no
// dependency list: only stdlib is reported for it, the program itself is in the distribution's inventory.
func NewGoBinary() Analyzer {
	return &goBinaryAnalyzer{minSize: goBinMinSize, maxSize: goBinMaxSize, maxInMemory: goBinMaxInMemory}
}

func (a *goBinaryAnalyzer) Name() string { return "go-binary" }

// Paths is empty: a Go program can be anywhere, Wants decides.
func (a *goBinaryAnalyzer) Paths() []string { return nil }

// Wants takes regular executable files of plausible size. It stats only regular files whose name does not already
// rule them out. Without a DirEntry (a changed path in an upper dir) any name may be a Go program.
func (a *goBinaryAnalyzer) Wants(name string, d fs.DirEntry) bool {
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

// AnalyzeFile reads the build information of one file. Files that are not ELF or not Go programs are skipped
// silently (most executables are not Go); damaged Go build information is reported.
func (a *goBinaryAnalyzer) AnalyzeFile(ctx context.Context, fsys FS, name string, out *Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	bi, err := a.readBuildInfo(fsys, name)
	if err != nil {
		out.Errors = append(out.Errors, FileError{Analyzer: a.Name(), Path: name, Err: err.Error()})
		return nil
	}
	if bi == nil {
		return nil
	}
	out.Packages = append(out.Packages, goPackages(bi, name, a.Name())...)
	return nil
}

// errNotGo marks files that are fine but not Go programs.
var errNotGo = errors.New("not a Go program")

// readBuildInfo returns nil, nil for files that are not Go programs.
func (a *goBinaryAnalyzer) readBuildInfo(fsys FS, name string) (*debug.BuildInfo, error) {
	// Checked again on the open file: the entry the walk saw may have been replaced since; a non-regular file now is
	// simply not a Go program.
	f, fi, err := OpenRegular(fsys, name, a.maxSize)
	if errors.Is(err, ErrNotRegular) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("read: %w", err)
	}
	if string(magic[:]) != elf.ELFMAG {
		return nil, nil
	}
	ra, ok := f.(io.ReaderAt)
	if !ok {
		if fi.Size() > a.maxInMemory {
			return nil, fmt.Errorf("%w: %d > %d bytes and the file cannot be read at offsets", ErrTooLarge, fi.Size(), a.maxInMemory)
		}
		rest, err := io.ReadAll(io.LimitReader(f, a.maxInMemory))
		if err != nil {
			return nil, fmt.Errorf("read: %w", err)
		}
		ra = bytes.NewReader(append(magic[:], rest...))
	}
	// Bound every read to the size seen at open, so a file growing in a live upper dir cannot extend the work.
	sr := io.NewSectionReader(ra, 0, fi.Size())
	if !mayBeGo(sr) {
		return nil, nil
	}
	bi, err := buildinfo.Read(sr)
	if err != nil {
		if isNotGoErr(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("read Go build info: %w", err)
	}
	return bi, nil
}

// mayBeGo is a cheap pre-check: every Go toolchain that records module information (1.13+) puts it in a section
// named .go.buildinfo. An ELF file that has section headers but not that section (libc, most of /usr/lib) is not
// a Go program, and is not searched further; buildinfo.Read would scan its whole writable data segment.
func mayBeGo(r io.ReaderAt) bool {
	f, err := elf.NewFile(r)
	if err != nil {
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

// goPackages turns one binary's build information into packages located at name.
func goPackages(bi *debug.BuildInfo, name, foundBy string) []Package {
	var pkgs []Package
	add := func(p, v string) {
		pkgs = append(pkgs, Package{Name: p, Version: v, Ecosystem: EcosystemGo, Locations: []string{name}, FoundBy: foundBy})
	}
	if v := goToolchainVersion(bi.GoVersion); v != "" {
		add(goStdlib, v)
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

// Analyze merges what AnalyzeFile found: a module compiled into several programs becomes one Package listing them
// all. The analyzer keeps no state between files (it may serve concurrent scans), so the merge works on out.
func (a *goBinaryAnalyzer) Analyze(ctx context.Context, fsys FS, out *Result) error {
	mergePackages(out, a.Name())
	return nil
}

// mergePackages folds the packages that analyzer foundBy added to out into one per (ecosystem, name, version), with
// sorted, de-duplicated Locations, and sorts them; other analyzers' packages keep their place and order.
func mergePackages(out *Result, foundBy string) {
	type key struct{ eco, name, version string }
	index := map[key]int{}
	var mine []Package
	kept := out.Packages[:0]
	for _, p := range out.Packages {
		if p.FoundBy != foundBy {
			kept = append(kept, p)
			continue
		}
		k := key{p.Ecosystem, p.Name, p.Version}
		if i, ok := index[k]; ok {
			mine[i].Locations = append(mine[i].Locations, p.Locations...)
			continue
		}
		index[k] = len(mine)
		p.Locations = slices.Clone(p.Locations)
		mine = append(mine, p)
	}
	for i := range mine {
		slices.Sort(mine[i].Locations)
		mine[i].Locations = slices.Compact(mine[i].Locations)
	}
	slices.SortFunc(mine, func(x, y Package) int {
		return cmp.Or(strings.Compare(x.Name, y.Name), strings.Compare(x.Version, y.Version))
	})
	out.Packages = append(kept, mine...)
}
