package scan

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	"github.com/rootscan/rootscan/report"
)

// Where dpkg keeps per-package file hashes: full Debian in info/, as <pkg>.md5sums or, for packages of a
// Multi-Arch: same architecture, <pkg>:<arch>.md5sums; distroless next to its status.d stanzas.
const (
	dpkgInfoDir        = "var/lib/dpkg/info"
	dpkgDiversionsPath = "var/lib/dpkg/diversions"
)

const (
	// debMaxMD5sumsSize bounds one md5sums file: about 80 bytes a line, the largest Debian packages (documentation
	// and font bundles) list some 50k files, about 4 MiB.
	debMaxMD5sumsSize = 16 << 20
	// debMaxDiversionsSize bounds the diversions file, three short lines per diversion; real ones are a few KiB.
	debMaxDiversionsSize = 4 << 20
	// debMaxHashedFileSize bounds one hashed file. Files are streamed, so this is about time, not memory: no
	// Debian package ships a 1 GiB file, and one that claims to be one is reported instead of read.
	debMaxHashedFileSize = 1 << 30
	// debMaxCheckedFiles bounds the files checked per root: a full Debian desktop lists about 300k.
	debMaxCheckedFiles = 500000
	// debMaxHashedBytes bounds the bytes hashed per root: a full Debian desktop has 5-10 GiB of package files.
	debMaxHashedBytes = 8 << 30
	// debMaxFindings bounds the findings of one root, so a root whose every file was rewritten still yields a
	// report of bounded size; the rest are counted in a FileError.
	debMaxFindings = 10000
)

// debNotRegular is IntegrityFinding.Found for a listed file that is now a symlink, directory, FIFO or device: md5sums
// lists regular files only, so something replaced it.
const debNotRegular = "not a regular file"

// debExcusedDirs are trees whose listed files may be missing without a finding: documentation, manual and info
// pages, lintian overrides, translations. Slim images delete them on purpose: Debian's own -slim images
// (debuerreotype's slimify list: usr/share/doc except copyright, groff, info, linda, lintian/overrides, locale,
// man), dpkg path-exclude configurations, and distroless-style images built from .debs (the testbed's distroless
// drops doc except copyright, man, info, lintian). dpkg leaves md5sums untouched by path-exclude, so without this
// rule every slim image would report hundreds of "missing" files. A file under these trees that is present but
// differs is still reported: deleting documentation is policy, rewriting it is not.
var debExcusedDirs = []string{
	"usr/share/doc/", "usr/share/man/", "usr/share/info/", "usr/share/groff/", "usr/share/linda/",
	"usr/share/lintian/", "usr/share/locale/",
}

// debIntegrityAnalyzer is the limits of a run; fields so tests can shrink them.
type debIntegrityAnalyzer struct {
	maxListSize     int64
	maxFileSize     int64
	maxFiles        int
	maxBytes        int64
	maxFindings     int
	maxErrors       int
	maxDivertedSize int64
}

// NewDebIntegrity returns the analyzer that checks installed Debian packages' files against the MD5 sums dpkg
// recorded for them, like debsums: a changed libc or a deleted CA bundle in an image shows up without running
// anything inside it. It checks the packages the dpkg analyzer found (see Requires).
//
// MD5 is what dpkg records, so it is what can be checked. It catches accidental and unsophisticated changes
// (a patched binary, a file overwritten by a later layer); it is no defence against an attacker, who can make a file
// with the same MD5 or simply rewrite the md5sums file in the same image. Conffiles are not in md5sums (dpkg keeps
// their hashes in the status file), so legitimately edited configuration is not reported.
//
// Cost: it reads every byte of every package file, so its time grows with the image (a full Debian root of 700
// packages takes seconds to tens of seconds, mostly I/O); the per-root bounds keep it finite.
//
// Paths lists only the package database: a container whose upper dir changes a package file does not make the
// scheduler re-run it, because Paths patterns cannot say "any file" (the drift analyzer reports such changes).
func NewDebIntegrity() Analyzer {
	return &debIntegrityAnalyzer{
		maxListSize:     debMaxMD5sumsSize,
		maxFileSize:     debMaxHashedFileSize,
		maxFiles:        debMaxCheckedFiles,
		maxBytes:        debMaxHashedBytes,
		maxFindings:     debMaxFindings,
		maxErrors:       dpkgMaxErrors,
		maxDivertedSize: debMaxDiversionsSize,
	}
}

func (a *debIntegrityAnalyzer) Name() string { return "deb-integrity" }

func (a *debIntegrityAnalyzer) Version() int { return 1 }

// Requires dpkg: the packages checked are those it found.
func (a *debIntegrityAnalyzer) Requires() []string { return []string{dpkgName} }

func (a *debIntegrityAnalyzer) Paths() []string {
	return []string{dpkgStatusPath, dpkgStatusDir + "/*", dpkgInfoDir + "/*.md5sums", dpkgDiversionsPath}
}

// debIntegrityRun is the state of one Analyze call.
type debIntegrityRun struct {
	a          *debIntegrityAnalyzer
	fsys       FS
	diversions map[string]debDiversion
	integrityLog
	files int
	bytes int64
}

// Analyze checks the packages in out.Packages with a Debian or Ubuntu ecosystem, in their order. Nothing is added
// to out when the context ends midway: a partly checked root must not look clean.
func (a *debIntegrityAnalyzer) Analyze(ctx context.Context, fsys FS, out *report.Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := newDebIntegrityRun(a, fsys)
	r.diversions = r.readDiversions()

	type key struct{ name, arch string }
	seen := map[key]bool{}
	var pkgs []report.Package
	for _, p := range out.Packages {
		if p.Ecosystem != report.EcosystemDebian && p.Ecosystem != report.EcosystemUbuntu {
			continue
		}
		if k := (key{p.Name, p.Arch}); !seen[k] {
			seen[k] = true
			pkgs = append(pkgs, p)
		}
	}

	for i, p := range pkgs {
		listPath, entries := r.readList(p)
		if listPath == "" {
			continue
		}
		for j, e := range entries {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("check files of %s: %w", p.Name, err)
			}
			if r.files >= a.maxFiles {
				r.fail("", fmt.Sprintf("file limit reached: checked %d files, skipped %d more of %s and all files of %d more packages",
					r.files, len(entries)-j, p.Name, len(pkgs)-i-1))
				return r.flush(out)
			}
			if !r.check(p, e) {
				r.fail("", fmt.Sprintf("byte limit reached: hashed %d bytes, skipped %d more files of %s and all files of %d more packages",
					r.bytes, len(entries)-j, p.Name, len(pkgs)-i-1))
				return r.flush(out)
			}
		}
	}
	return r.flush(out)
}

// debListCandidates are the places a package's md5sums may be, most specific first: next to the status.d file the
// package was found in (distroless names it after the package, but the stanza file name is what ties them),
// status.d/<pkg>.md5sums, info/<pkg>:<arch>.md5sums (Multi-Arch: same), info/<pkg>.md5sums.
func debListCandidates(p report.Package) []string {
	var c []string
	for _, loc := range p.Locations {
		if strings.HasPrefix(loc, dpkgStatusDir+"/") {
			c = append(c, loc+".md5sums")
		}
	}
	c = append(c, dpkgStatusDir+"/"+p.Name+".md5sums")
	if p.Arch != "" {
		c = append(c, dpkgInfoDir+"/"+p.Name+":"+p.Arch+".md5sums")
	}
	c = append(c, dpkgInfoDir+"/"+p.Name+".md5sums")
	return slices.Compact(c)
}

// readList returns the first md5sums file of p that exists and its entries; "" when the package has none (packages
// without files, such as metapackages, have none).
func (r *debIntegrityRun) readList(p report.Package) (string, []md5Entry) {
	for _, c := range debListCandidates(p) {
		data, err := ReadFile(r.fsys, c, r.a.maxListSize)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			r.fail(c, err.Error())
			return "", nil
		}
		res := parseMD5sums(data)
		for _, msg := range res.Problems {
			r.fail(c, msg)
		}
		if res.MoreProblems > 0 {
			r.fail(c, fmt.Sprintf("%d more problems not listed", res.MoreProblems))
		}
		return c, res.Entries
	}
	return "", nil
}

// check verifies one listed file; false means the byte budget is spent and the file was not checked.
func (r *debIntegrityRun) check(p report.Package, e md5Entry) bool {
	name := e.Path
	if d, ok := r.diversions[name]; ok && d.by != p.Name {
		// Another package (or the admin, ":") diverted this path; dpkg installed p's file under d.to.
		name = d.to
	}
	finding := report.IntegrityFinding{Package: p.Name, Ecosystem: p.Ecosystem, Path: name, Algorithm: "md5", Expected: e.MD5}
	excused := debExcused(name)

	fi, err := r.fsys.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.files++
		if !excused {
			r.report(finding)
		}
		return true
	case err != nil:
		r.files++
		r.fail(name, fmt.Sprintf("package %s: %v", p.Name, err))
		return true
	case !fi.Mode().IsRegular():
		r.files++
		if !excused {
			finding.Found = debNotRegular
			r.report(finding)
		}
		return true
	case fi.Size() > r.a.maxFileSize:
		r.files++
		r.fail(name, fmt.Sprintf("package %s: %d bytes, larger than the %d bytes hashed per file; not checked", p.Name, fi.Size(), r.a.maxFileSize))
		return true
	case r.bytes+fi.Size() > r.a.maxBytes:
		return false
	}
	r.files++

	f, _, err := OpenRegular(r.fsys, name, r.a.maxFileSize)
	if err != nil {
		r.fail(name, fmt.Sprintf("package %s: %v", p.Name, err))
		return true
	}
	defer f.Close()
	h := md5.New()
	// The limit also stops a file that grows while it is hashed (a live upper dir).
	n, err := io.Copy(h, io.LimitReader(f, r.a.maxFileSize+1))
	r.bytes += n
	if err != nil {
		r.fail(name, fmt.Sprintf("package %s: read: %v", p.Name, err))
		return true
	}
	if n > r.a.maxFileSize {
		r.fail(name, fmt.Sprintf("package %s: grew past %d bytes while hashed; not checked", p.Name, r.a.maxFileSize))
		return true
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != e.MD5 {
		finding.Found = sum
		r.report(finding)
	}
	return true
}

func debExcused(p string) bool {
	for _, d := range debExcusedDirs {
		if strings.HasPrefix(p, d) {
			return true
		}
	}
	return false
}

// debDiversion is one dpkg-divert entry: files of packages other than by that dpkg would install at a path go to
// to instead. by is ":" for a local (administrator's) diversion, which applies to every package.
type debDiversion struct{ to, by string }

// readDiversions reads var/lib/dpkg/diversions (three lines per diversion: from, to, package), keyed by the from
// path without its leading slash. A full Debian system has a few (dash diverts /bin/sh's man page); without them
// the diverting package's file would be checked against the diverted package's sum.
func (r *debIntegrityRun) readDiversions() map[string]debDiversion {
	data, err := ReadFile(r.fsys, dpkgDiversionsPath, r.a.maxDivertedSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		r.fail(dpkgDiversionsPath, err.Error())
		return nil
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines)%3 != 0 {
		r.fail(dpkgDiversionsPath, fmt.Sprintf("%d lines, not a multiple of 3; the incomplete diversion is ignored", len(lines)))
	}
	m := map[string]debDiversion{}
	for i := 0; i+2 < len(lines); i += 3 {
		from, okF := debRelPath(lines[i])
		to, okT := debRelPath(lines[i+1])
		if !okF || !okT || lines[i+2] == "" {
			r.fail(dpkgDiversionsPath, fmt.Sprintf("line %d: malformed diversion", i+1))
			continue
		}
		m[from] = debDiversion{to: to, by: lines[i+2]}
	}
	return m
}

// md5Entry is one md5sums line: a lower-case hex MD5 and a root-relative path.
type md5Entry struct {
	MD5  string
	Path string
}

// md5sumsParse is what one md5sums file holds; after dpkgMaxProblemsPerFile problems the rest are only counted.
type md5sumsParse struct {
	Entries      []md5Entry
	Problems     []string
	MoreProblems int
}

func (r *md5sumsParse) problem(format string, args ...any) {
	if len(r.Problems) >= dpkgMaxProblemsPerFile {
		r.MoreProblems++
		return
	}
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// parseMD5sums parses md5sum(1) output as dpkg keeps it: "<32 hex>  <path>" per line, path relative to / (a leading
// "/" or "./" is tolerated). md5sum's escaped form (a leading backslash, "\\" and "\n" in the name) and its binary
// marker ("<hex> *<path>") are accepted. A bad line is a problem and the rest of the file is still used.
func parseMD5sums(data []byte) md5sumsParse {
	var res md5sumsParse
	lineNo := 0
	for len(data) > 0 {
		lineNo++
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		if len(line) == 0 {
			continue
		}
		escaped := line[0] == '\\'
		if escaped {
			line = line[1:]
		}
		if len(line) < 35 || !isHex(line[:32]) || line[32] != ' ' || (line[33] != ' ' && line[33] != '*') {
			res.problem("line %d: not \"<md5>  <path>\"", lineNo)
			continue
		}
		name := string(line[34:])
		if escaped {
			var ok bool
			if name, ok = md5sumUnescape(name); !ok {
				res.problem("line %d: bad escape in path", lineNo)
				continue
			}
		}
		p, ok := debRelPath(name)
		if !ok {
			res.problem("line %d: invalid path %q", lineNo, name)
			continue
		}
		res.Entries = append(res.Entries, md5Entry{MD5: strings.ToLower(string(line[:32])), Path: p})
	}
	return res
}

// debRelPath turns a dpkg path ("/usr/bin/x", "./usr/bin/x", "usr/bin/x") into a root-relative fs path, refusing
// "..", empty elements and NUL bytes so a hostile list cannot name anything outside the usual tree syntax.
func debRelPath(s string) (string, bool) {
	s = strings.TrimLeft(strings.TrimPrefix(s, "./"), "/")
	if s == "" || s == "." || strings.ContainsRune(s, 0) || !fs.ValidPath(s) {
		return "", false
	}
	return s, true
}

// md5sumUnescape undoes md5sum's escaping of "\\" and "\n" in names.
func md5sumUnescape(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return "", false
		}
		i++
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		default:
			return "", false
		}
	}
	return b.String(), true
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func newDebIntegrityRun(a *debIntegrityAnalyzer, fsys FS) *debIntegrityRun {
	return &debIntegrityRun{a: a, fsys: fsys, integrityLog: integrityLog{cappedErrors: cappedErrors{analyzer: a.Name(), maxErrors: a.maxErrors}, maxFindings: a.maxFindings}}
}
