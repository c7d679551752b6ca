package scan

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	"github.com/rootscan/rootscan/report"
)

// Paths of the dpkg database inside a root. Full Debian images keep one status file; distroless images have no dpkg
// and instead drop one control stanza per package into status.d.
const (
	dpkgStatusPath = "var/lib/dpkg/status"
	dpkgStatusDir  = "var/lib/dpkg/status.d"
)

const (
	// dpkgMaxStatusSize bounds the status file. A full Debian desktop lists 3000-5000 packages in 3-8 MiB (about
	// 1-2 KiB per stanza, mostly descriptions and conffiles); 64 MiB leaves room for an order of magnitude more while
	// keeping what one hostile image can make the scanner hold in memory small.
	dpkgMaxStatusSize = 64 << 20
	// dpkgMaxEntrySize bounds one status.d file: it holds a single control stanza, a few KiB at most.
	dpkgMaxEntrySize = 1 << 20
	// dpkgMaxEntries bounds how many status.d directory entries are looked at (distroless images have a few dozen,
	// two per package with .md5sums files), so a directory with millions of files costs bounded work.
	dpkgMaxEntries = 100000
	// dpkgMaxErrors bounds the FileErrors one run reports; a root full of broken files still yields a small report.
	dpkgMaxErrors = 1000
	// dpkgMaxProblemsPerFile bounds the problems listed for one file; the rest are counted.
	dpkgMaxProblemsPerFile = 10
)

// dpkgAnalyzer lists Debian packages. Its limits are fields so tests can shrink them.
type dpkgAnalyzer struct {
	maxStatusSize int64
	maxEntrySize  int64
	maxEntries    int
	maxErrors     int
}

// NewDpkg returns the analyzer for Debian packages, from var/lib/dpkg/status and the distroless status.d directory,
// so that both full Debian images and distroless ones yield an inventory.
func NewDpkg() Analyzer {
	return &dpkgAnalyzer{
		maxStatusSize: dpkgMaxStatusSize,
		maxEntrySize:  dpkgMaxEntrySize,
		maxEntries:    dpkgMaxEntries,
		maxErrors:     dpkgMaxErrors,
	}
}

// dpkgName is the dpkg analyzer's name, which the analyzers that read Debian packages require.
const dpkgName = "dpkg"

func (a *dpkgAnalyzer) Name() string { return dpkgName }

func (a *dpkgAnalyzer) Version() int { return 1 }

func (a *dpkgAnalyzer) Requires() []string { return nil }

func (a *dpkgAnalyzer) Paths() []string {
	return []string{dpkgStatusPath, dpkgStatusDir + "/*"}
}

// Analyze reads the status file, then the status.d entries in name order. Packages listed in several files are
// merged (their Locations say where each was found). Nothing is added to out when the context ends midway: a partial
// inventory must not look like a complete one.
func (a *dpkgAnalyzer) Analyze(ctx context.Context, fsys FS, out *report.Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := dpkgCollector{cappedErrors: cappedErrors{analyzer: a.Name(), maxErrors: a.maxErrors}}

	res, err := a.readStatus(fsys, dpkgStatusPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		c.fail(dpkgStatusPath, err.Error())
	default:
		c.add(dpkgStatusPath, res, false)
	}

	names, err := a.statusDirNames(ctx, fsys, &c)
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read %s: %w", dpkgStatusDir, err)
		}
		p := dpkgStatusDir + "/" + name
		data, err := ReadFile(fsys, p, a.maxEntrySize)
		if err != nil {
			c.fail(p, err.Error())
			continue
		}
		c.addFile(p, data, true)
	}

	out.Packages = append(out.Packages, c.pkgs.sorted()...)
	out.Errors = append(out.Errors, c.errs...)
	c.noteSuppressed(out)
	return nil
}

// readStatus streams the status file through the parser instead of reading it whole: it is a few MiB on a desktop
// root (half a MiB on debian-apps), and only the current stanza's fields need to be held. Errors are ReadFile's.
func (a *dpkgAnalyzer) readStatus(fsys FS, name string) (dpkgParse, error) {
	f, _, err := OpenRegular(fsys, name, a.maxStatusSize)
	if err != nil {
		return dpkgParse{}, err
	}
	defer f.Close()
	lr := &io.LimitedReader{R: f, N: a.maxStatusSize + 1}
	res, err := parseDpkgStatusFrom(lr, false)
	if err != nil {
		return dpkgParse{}, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	if lr.N <= 0 {
		return dpkgParse{}, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("%w: grew past %d bytes while read", ErrTooLarge, a.maxStatusSize)}
	}
	return res, nil
}

// statusDirNames lists the status.d files worth reading, sorted. It reads the directory in batches so that at most
// maxEntries+1 entries are ever held; beyond that the listing is cut and the cut is reported.
func (a *dpkgAnalyzer) statusDirNames(ctx context.Context, fsys FS, c *dpkgCollector) ([]string, error) {
	dir, err := fsys.Open(dpkgStatusDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		c.fail(dpkgStatusDir, err.Error())
		return nil, nil
	}
	defer dir.Close()
	fi, err := dir.Stat()
	if err != nil {
		c.fail(dpkgStatusDir, fmt.Sprintf("stat: %v", err))
		return nil, nil
	}
	if !fi.IsDir() {
		c.fail(dpkgStatusDir, "not a directory")
		return nil, nil
	}

	var entries []fs.DirEntry
	if rd, ok := dir.(fs.ReadDirFile); ok {
		for len(entries) <= a.maxEntries {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("list %s: %w", dpkgStatusDir, err)
			}
			batch, err := rd.ReadDir(min(256, a.maxEntries+1-len(entries)))
			entries = append(entries, batch...)
			if err == io.EOF {
				break
			}
			if err != nil {
				c.fail(dpkgStatusDir, fmt.Sprintf("list: %v", err))
				break
			}
		}
	} else {
		// Not seen with fsaccess or fstest, but fs.File does not promise ReadDirFile.
		entries, err = fsys.ReadDir(dpkgStatusDir)
		if err != nil {
			c.fail(dpkgStatusDir, fmt.Sprintf("list: %v", err))
		}
	}
	if len(entries) > a.maxEntries {
		entries = entries[:a.maxEntries]
		c.fail(dpkgStatusDir, fmt.Sprintf("more than %d entries, only %d read", a.maxEntries, a.maxEntries))
	}

	names := make([]string, 0, len(entries))
	for _, e := range entries {
		n := e.Name()
		// Dot files are editor or tool leftovers; .md5sums files hold file hashes, not package stanzas.
		if strings.HasPrefix(n, ".") || strings.HasSuffix(n, ".md5sums") || e.IsDir() || !fs.ValidPath(n) || strings.Contains(n, "/") {
			continue
		}
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

// dpkgCollector merges packages from several files and keeps the error list bounded.
type dpkgCollector struct {
	cappedErrors
	pkgs osPackages
}

func (c *dpkgCollector) addFile(p string, data []byte, statusImplied bool) {
	c.add(p, parseDpkgStatus(data, statusImplied), statusImplied)
}

// add merges one parsed file.
func (c *dpkgCollector) add(p string, res dpkgParse, statusImplied bool) {
	for _, msg := range res.Problems {
		c.fail(p, msg)
	}
	if res.MoreProblems > 0 {
		c.fail(p, fmt.Sprintf("%d more problems not listed", res.MoreProblems))
	}
	if statusImplied && len(res.Packages) == 0 && len(res.Problems) == 0 && !res.SawStanza {
		c.fail(p, "no package stanza")
	}
	for _, pkg := range res.Packages {
		c.pkgs.add(pkg, p)
	}
}

// dpkgParse is what one status-format file holds. Problems are human-readable and name a line; after
// dpkgMaxProblemsPerFile of them the rest are only counted in MoreProblems.
type dpkgParse struct {
	Packages     []report.Package
	Problems     []string
	MoreProblems int
	// SawStanza is true when the file held at least one field, installed or not.
	SawStanza bool
}

func (r *dpkgParse) problem(format string, args ...any) {
	if len(r.Problems) >= dpkgMaxProblemsPerFile {
		r.MoreProblems++
		return
	}
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// dpkgStanza holds the fields of one stanza that the inventory needs, as slices of the input.
type dpkgStanza struct {
	line                                   int
	pkg, version, arch, source, status     []byte
	hasPkg, hasVer, hasArch, hasSrc, hasSt bool
}

// parseDpkgStatus parses a dpkg status file or a status.d entry (deb822: stanzas separated by blank lines, "Field:
// value" lines, continuation lines starting with space or tab). It is written by hand rather than with a deb822
// library because it must never give up on a whole file for one bad line, must bound what it reports, and runs on
// every image: it walks the input once, without a line-length limit, and allocates only the strings it keeps.
// statusImplied says that a stanza without a Status field counts as installed (distroless status.d).
func parseDpkgStatus(data []byte, statusImplied bool) dpkgParse {
	p := dpkgStatusParser{statusImplied: statusImplied}
	for len(data) > 0 {
		var line []byte
		var nl bool
		line, data, nl = bytes.Cut(data, []byte{'\n'})
		if !p.line(line, nl) {
			break
		}
	}
	return p.end()
}

// parseDpkgStatusFrom is parseDpkgStatus on a stream: the same result, holding one line (and the current stanza's
// fields) instead of the input. The error is the reader's.
func parseDpkgStatusFrom(r io.Reader, statusImplied bool) (dpkgParse, error) {
	return parseDpkgStatusBuffered(bufio.NewReaderSize(r, dpkgStreamBuf), statusImplied)
}

func parseDpkgStatusBuffered(br *bufio.Reader, statusImplied bool) (dpkgParse, error) {
	p := dpkgStatusParser{statusImplied: statusImplied}
	var long []byte // a line longer than the reader's buffer, gathered
	for {
		chunk, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long, chunk...)
			continue
		}
		line := chunk
		if len(long) > 0 {
			long = append(long, chunk...)
			line = long
		}
		if len(line) > 0 {
			nl := line[len(line)-1] == '\n'
			if nl {
				line = line[:len(line)-1]
			}
			if !p.line(line, nl) {
				return p.end(), nil
			}
		}
		long = long[:0]
		if err == io.EOF {
			return p.end(), nil
		}
		if err != nil {
			return dpkgParse{}, err
		}
	}
}

// dpkgStreamBuf is parseDpkgStatusFrom's read buffer; status lines are short, a longer one is gathered.
const dpkgStreamBuf = 16 << 10

// dpkgStatusParser is the line-by-line state of parseDpkgStatus. The fields a stanza keeps are copied into buffers
// the parser reuses, so a line may be overwritten once line returns.
type dpkgStatusParser struct {
	res           dpkgParse
	statusImplied bool
	st            dpkgStanza
	bufs          [5][]byte
	inStanza      bool
	// cur names the field that continuation lines extend: "" for fields the inventory ignores.
	cur    string
	lineNo int
	offset int // of the line's first byte in the input
	binary bool
}

// line takes one line without its '\n' (nl says whether one followed). It returns false once the input is known to
// be binary (a NUL byte): the result is then that one problem, and further lines change nothing.
func (p *dpkgStatusParser) line(line []byte, nl bool) bool {
	if p.binary {
		return false
	}
	if i := bytes.IndexByte(line, 0); i >= 0 {
		p.res = dpkgParse{}
		p.res.problem("binary content (NUL byte at offset %d)", p.offset+i)
		p.binary = true
		return false
	}
	p.offset += len(line)
	if nl {
		p.offset++
	}
	p.lineNo++
	lineNo, res, st := p.lineNo, &p.res, &p.st
	if isBlank(line) {
		if p.inStanza {
			res.finish(st, p.statusImplied)
			*st, p.inStanza, p.cur = dpkgStanza{}, false, ""
		}
		return true
	}
	switch line[0] {
	case ' ', '\t':
		if !p.inStanza {
			res.problem("line %d: continuation line outside a stanza", lineNo)
		} else if p.cur != "" {
			res.problem("line %d: continuation of single-line field %s", lineNo, p.cur)
		}
		return true
	case '#':
		return true
	}
	colon := bytes.IndexByte(line, ':')
	name := bytes.TrimRight(line[:max(colon, 0)], " \t")
	if colon <= 0 || len(name) == 0 {
		res.problem("line %d: not a field", lineNo)
		if p.inStanza {
			p.cur = ""
		}
		return true
	}
	if !p.inStanza {
		*st, p.inStanza = dpkgStanza{line: lineNo}, true
		res.SawStanza = true
	}
	value := bytes.TrimSpace(line[colon+1:])
	var dst *[]byte
	var has *bool
	var buf int
	switch {
	case bytes.EqualFold(name, []byte("Package")):
		dst, has, p.cur, buf = &st.pkg, &st.hasPkg, "Package", 0
	case bytes.EqualFold(name, []byte("Version")):
		dst, has, p.cur, buf = &st.version, &st.hasVer, "Version", 1
	case bytes.EqualFold(name, []byte("Architecture")):
		dst, has, p.cur, buf = &st.arch, &st.hasArch, "Architecture", 2
	case bytes.EqualFold(name, []byte("Source")):
		dst, has, p.cur, buf = &st.source, &st.hasSrc, "Source", 3
	case bytes.EqualFold(name, []byte("Status")):
		dst, has, p.cur, buf = &st.status, &st.hasSt, "Status", 4
	default:
		p.cur = ""
		return true
	}
	if *has {
		res.problem("line %d: duplicate field %s", lineNo, p.cur)
		return true
	}
	p.bufs[buf] = append(p.bufs[buf][:0], value...)
	*dst, *has = p.bufs[buf], true
	return true
}

// end finishes the last stanza and returns the result.
func (p *dpkgStatusParser) end() dpkgParse {
	if p.inStanza && !p.binary {
		p.res.finish(&p.st, p.statusImplied)
		p.inStanza = false
	}
	return p.res
}

// finish turns a complete stanza into a package, drops it when it is not installed, or records why it is unusable.
func (r *dpkgParse) finish(st *dpkgStanza, statusImplied bool) {
	if !st.hasPkg || len(st.pkg) == 0 {
		r.problem("stanza at line %d: no Package field", st.line)
		return
	}
	name := string(st.pkg)
	if !validDebName(st.pkg) {
		r.problem("stanza at line %d: invalid package name %q", st.line, name)
		return
	}
	if st.hasSt {
		if !dpkgInstalled(st.status) {
			return
		}
	} else if !statusImplied {
		r.problem("stanza at line %d: package %s has no Status field", st.line, name)
		return
	}
	if !st.hasVer || len(st.version) == 0 {
		r.problem("stanza at line %d: package %s has no Version field", st.line, name)
		return
	}
	if !validDebToken(st.version) {
		r.problem("stanza at line %d: package %s has invalid version %q", st.line, name, st.version)
		return
	}
	pkg := report.Package{Name: name, Version: string(st.version), Ecosystem: report.EcosystemDebian, FoundBy: "dpkg"}
	if st.hasArch {
		if validDebToken(st.arch) {
			pkg.Arch = internArch(st.arch)
		} else {
			r.problem("stanza at line %d: package %s has invalid architecture %q", st.line, name, st.arch)
		}
	}
	pkg.Source, pkg.SourceVersion = pkg.Name, pkg.Version
	if st.hasSrc {
		src, srcVer, ok := parseDebSource(st.source)
		switch {
		case !ok:
			r.problem("stanza at line %d: package %s has malformed Source %q", st.line, name, st.source)
		case string(src) == name:
			// Common when the binary is rebuilt (binNMU): keep the one string already allocated.
			if len(srcVer) > 0 {
				pkg.SourceVersion = string(srcVer)
			}
		default:
			pkg.Source = string(src)
			if len(srcVer) > 0 {
				pkg.SourceVersion = string(srcVer)
			}
		}
	}
	r.Packages = append(r.Packages, pkg)
}

// parseDebSource splits a Source field, "name" or "name (version)"; the version is empty when absent.
func parseDebSource(v []byte) (name, version []byte, ok bool) {
	i := bytes.IndexAny(v, " \t(")
	if i < 0 {
		return v, nil, validDebName(v)
	}
	name = v[:i]
	rest := bytes.TrimLeft(v[i:], " \t")
	if len(rest) < 2 || rest[0] != '(' || rest[len(rest)-1] != ')' {
		return nil, nil, false
	}
	version = bytes.TrimSpace(rest[1 : len(rest)-1])
	return name, version, validDebName(name) && validDebToken(version)
}

// dpkgInstalled reports whether a Status value ("want eflag status") means the package's files are on disk and
// configured: error flag ok and status installed, or triggers-pending/-awaited, which dpkg itself treats as
// satisfying dependencies. The want flag (install, hold, deinstall, purge) is only an intention and is ignored.
func dpkgInstalled(status []byte) bool {
	var words [3][]byte
	n := 0
	for w := range bytes.FieldsSeq(status) {
		if n == 3 {
			return false
		}
		words[n] = w
		n++
	}
	if n != 3 || string(words[1]) != "ok" {
		return false
	}
	switch string(words[2]) {
	case "installed", "triggers-pending", "triggers-awaited":
		return true
	}
	return false
}

// validDebName follows dpkg's own check for package names: an alphanumeric first character, then alphanumerics and
// "-+._". It keeps garbage and control characters out of reports and SIEM events.
func validDebName(b []byte) bool {
	if len(b) == 0 || !isAlnum(b[0]) {
		return false
	}
	for _, c := range b[1:] {
		if !isAlnum(c) && c != '-' && c != '+' && c != '.' && c != '_' {
			return false
		}
	}
	return true
}

// internArch returns a constant for the common architectures, saving one allocation per package.
func internArch(b []byte) string {
	switch string(b) {
	case "amd64":
		return "amd64"
	case "arm64":
		return "arm64"
	case "all":
		return "all"
	case "i386":
		return "i386"
	}
	return string(b)
}
