package scan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/rootscan/rootscan/report"
)

// Paths of the apk database. Alpine up to 3.22 keeps it in lib/apk/db; merged-/usr releases move it to usr/lib/apk/db
// and leave a link behind. Both are read and duplicates merged, so either layout (or a half-migrated one) works.
const (
	apkInstalledPath    = "lib/apk/db/installed"
	apkInstalledUsrPath = "usr/lib/apk/db/installed"
)

const (
	// apkMaxInstalledSize bounds the installed file. It grows with the number of files packages own (one R and one
	// Z line each, about 50 bytes): a minimal Alpine image needs tens of KiB, a large one with a few hundred
	// thousand package files some 20 MiB.
	apkMaxInstalledSize = 64 << 20
	// apkMaxProblemsPerFile bounds the problems listed for one file; the rest are counted.
	apkMaxProblemsPerFile = 10
)

// apkAnalyzer lists apk packages (Alpine, Wolfi, Chainguard). Its size limit is a field so tests can shrink it.
type apkAnalyzer struct {
	maxSize int64
}

// NewApk returns the analyzer for apk packages, from lib/apk/db/installed.
func NewApk() Analyzer { return &apkAnalyzer{maxSize: apkMaxInstalledSize} }

// apkName is the apk analyzer's name, the FoundBy of its packages.
const apkName = "apk"

func (a *apkAnalyzer) Name() string { return apkName }

func (a *apkAnalyzer) Version() int { return 1 }

// Requires os-release: the ecosystem (Alpine, Wolfi or Chainguard, which share the format but not the advisories)
// comes from Result.OS.
func (a *apkAnalyzer) Requires() []string { return []string{osReleaseName} }

func (a *apkAnalyzer) Paths() []string { return []string{apkInstalledPath, apkInstalledUsrPath} }

// Analyze reads both database locations; a package seen in both (one is usually a link to the other) is reported
// once with both locations.
func (a *apkAnalyzer) Analyze(ctx context.Context, fsys FS, out *report.Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	eco := apkEcosystem(out.OS)
	var pkgs osPackages
	var errs []report.FileError
	for _, p := range []string{apkInstalledPath, apkInstalledUsrPath} {
		data, err := ReadFile(fsys, p, a.maxSize)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, report.FileError{Analyzer: a.Name(), Path: p, Err: err.Error()})
			continue
		}
		res := parseApkInstalled(data)
		for _, msg := range res.Problems {
			errs = append(errs, report.FileError{Analyzer: a.Name(), Path: p, Err: msg})
		}
		if res.MoreProblems > 0 {
			errs = append(errs, report.FileError{Analyzer: a.Name(), Path: p, Err: fmt.Sprintf("%d more problems not listed", res.MoreProblems)})
		}
		for _, pkg := range res.Packages {
			pkg.Ecosystem, pkg.FoundBy = eco, a.Name()
			pkgs.add(pkg, p)
		}
	}
	out.Packages = append(out.Packages, pkgs.sorted()...)
	out.Errors = append(out.Errors, errs...)
	return nil
}

// apkEcosystem names the OSV ecosystem of an apk root. Wolfi and Chainguard images use apk and the same database
// but publish their own advisories; everything else that has an apk database is taken to be Alpine.
func apkEcosystem(os *report.OS) string {
	if os != nil {
		switch os.ID {
		case "wolfi":
			return "Wolfi"
		case "chainguard":
			return "Chainguard"
		}
	}
	return report.EcosystemAlpine
}

// apkParse is what one installed file holds; Packages lack Ecosystem, Locations and FoundBy, which the caller sets.
type apkParse struct {
	Packages     []report.Package
	Problems     []string
	MoreProblems int
}

func (r *apkParse) problem(format string, args ...any) {
	if len(r.Problems) >= apkMaxProblemsPerFile {
		r.MoreProblems++
		return
	}
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

type apkStanza struct {
	line                         int
	name, version, arch, origin  []byte
	hasName, hasVer, hasArch, ok bool
}

// parseApkInstalled parses the apk installed database (https://wiki.alpinelinux.org/wiki/Apk_spec): stanzas of
// "X:value" lines separated by blank lines. Only P (name), V (version), A (arch) and o (origin, the source package
// that advisories are keyed by) matter for the inventory; file lines (F, R, Z, a, M) and the rest are skipped
// without allocating. One bad line or stanza is a problem, never the end of the file.
func parseApkInstalled(data []byte) apkParse {
	var res apkParse
	if i := bytes.IndexByte(data, 0); i >= 0 {
		res.problem("binary content (NUL byte at offset %d)", i)
		return res
	}
	var st apkStanza
	lineNo := 0
	for len(data) > 0 {
		lineNo++
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			if st.ok {
				res.finish(&st)
			}
			st = apkStanza{}
			continue
		}
		if len(line) < 2 || line[1] != ':' {
			res.problem("line %d: not a field", lineNo)
			continue
		}
		if !st.ok {
			st = apkStanza{line: lineNo, ok: true}
		}
		value := line[2:]
		var dst *[]byte
		var has *bool
		switch line[0] {
		case 'P':
			dst, has = &st.name, &st.hasName
		case 'V':
			dst, has = &st.version, &st.hasVer
		case 'A':
			dst, has = &st.arch, &st.hasArch
		case 'o':
			st.origin = value
			continue
		default:
			continue
		}
		if *has {
			res.problem("line %d: duplicate field %c", lineNo, line[0])
			continue
		}
		*dst, *has = value, true
	}
	if st.ok {
		res.finish(&st)
	}
	return res
}

// finish turns a stanza into a package or records why it is unusable.
func (r *apkParse) finish(st *apkStanza) {
	if !st.hasName || len(st.name) == 0 {
		r.problem("stanza at line %d: no P (package name) field", st.line)
		return
	}
	if !validApkName(st.name) {
		r.problem("stanza at line %d: invalid package name %q", st.line, st.name)
		return
	}
	name := string(st.name)
	if !st.hasVer || !validDebToken(st.version) {
		r.problem("stanza at line %d: package %s has no valid V (version) field", st.line, name)
		return
	}
	pkg := report.Package{Name: name, Version: string(st.version)}
	pkg.Source, pkg.SourceVersion = pkg.Name, pkg.Version
	if st.hasArch {
		if validDebToken(st.arch) {
			pkg.Arch = internApkArch(st.arch)
		} else {
			r.problem("stanza at line %d: package %s has invalid architecture %q", st.line, name, st.arch)
		}
	}
	switch {
	case len(st.origin) == 0, string(st.origin) == name:
	case validApkName(st.origin):
		pkg.Source = string(st.origin)
	default:
		r.problem("stanza at line %d: package %s has invalid origin %q", st.line, name, st.origin)
	}
	r.Packages = append(r.Packages, pkg)
}

// validApkName accepts what apk-tools accepts in practice: printable ASCII without spaces and without the
// characters apk uses as dependency operators. It keeps garbage and control characters out of reports.
func validApkName(b []byte) bool {
	if len(b) == 0 || !isAlnum(b[0]) && b[0] != '_' {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '=' || c == '~' || c == '!' || c == ':' {
			return false
		}
	}
	return true
}

// internApkArch returns a constant for the common architectures, saving one allocation per package.
func internApkArch(b []byte) string {
	switch string(b) {
	case "x86_64":
		return "x86_64"
	case "aarch64":
		return "aarch64"
	case "noarch":
		return "noarch"
	}
	return string(b)
}
