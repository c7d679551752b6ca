package scan

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/rootscan/rootscan/report"
)

// pyMaxMetadataSize bounds one METADATA or PKG-INFO file. Only the header block is used; the body is the project's
// long description, which for big projects reaches a few hundred KiB (urllib3's is 45 KiB).
const pyMaxMetadataSize = 1 << 20

// pythonAnalyzer lists installed Python distributions from their core metadata files: *.dist-info/METADATA (wheels,
// pip), *.egg-info/PKG-INFO (setuptools, and what Debian's python3-* packages mostly ship) and the older single-file
// *.egg-info (distutils). They are found anywhere in the tree: site-packages, dist-packages, virtualenvs, /app.
//
// Debian's python3-* packages are reported too, as PyPI packages at their metadata path: they are the same code as
// the PyPI release and a PyPI advisory may apply. That the deb owns them (so its Debian version and Debian
// advisories are what count for patching) is for a later step that joins Locations with dpkg's file lists.
type pythonAnalyzer struct {
	maxSize int64
}

// NewPython returns the analyzer for installed Python distributions. Package.Name is the PEP 503 normalised name
// ("PyYAML" -> "pyyaml", "zope.interface" -> "zope-interface"): it is the name OSV matches PyPI advisories on and the
// name the pypi PURL requires, and it makes the same distribution found as dist-info and egg-info one package.
func NewPython() Analyzer { return &pythonAnalyzer{maxSize: pyMaxMetadataSize} }

func (a *pythonAnalyzer) Name() string { return "python" }

func (a *pythonAnalyzer) Version() int { return 1 }

func (a *pythonAnalyzer) Requires() []string { return nil }

// Paths is empty: Python metadata can be at any depth, Wants decides.
func (a *pythonAnalyzer) Paths() []string { return nil }

// Wants decides from the name alone; it never stats.
func (a *pythonAnalyzer) Wants(name string, d fs.DirEntry) bool {
	if d != nil && d.IsDir() {
		return false
	}
	dir, base := path.Split(name)
	switch base {
	case "METADATA":
		return strings.HasSuffix(dir, ".dist-info/")
	case "PKG-INFO":
		return strings.HasSuffix(dir, ".egg-info/")
	}
	return strings.HasSuffix(base, ".egg-info") && len(base) > len(".egg-info")
}

// AnalyzeFile reads one metadata file; a damaged one is reported and skipped.
func (a *pythonAnalyzer) AnalyzeFile(ctx context.Context, fsys FS, name string, out *report.Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	data, err := ReadFile(fsys, name, a.maxSize)
	if err != nil {
		out.Errors = append(out.Errors, report.FileError{Analyzer: a.Name(), Path: name, Err: err.Error()})
		return nil
	}
	md, err := parsePyMetadata(data)
	if err != nil {
		out.Errors = append(out.Errors, report.FileError{Analyzer: a.Name(), Path: name, Err: err.Error()})
		return nil
	}
	out.Packages = append(out.Packages, report.Package{
		Name:      normalizePyName(md.Name),
		Version:   md.Version,
		Ecosystem: report.EcosystemPyPI,
		Locations: []string{name},
		FoundBy:   a.Name(),
	})
	return nil
}

// Analyze merges what AnalyzeFile found: a distribution installed for two interpreters becomes one Package with
// both metadata paths.
func (a *pythonAnalyzer) Analyze(ctx context.Context, fsys FS, out *report.Result) error {
	mergePackages(out, a.Name())
	return nil
}

// pyMetadata is the part of Python core metadata the inventory needs, as written (not normalised).
type pyMetadata struct {
	Name, Version string
}

// parsePyMetadata reads the header block of a core metadata file (an email-style message: "Field: value" lines,
// continuation lines starting with whitespace, ended by a blank line, after which comes the description). It is
// written by hand rather than with net/mail because that parser rejects the non-ASCII and odd header lines real
// files contain, and a whole file must not be lost to one such line: only Name and Version must be well formed.
func parsePyMetadata(data []byte) (pyMetadata, error) {
	var md pyMetadata
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return md, fmt.Errorf("binary content (NUL byte at offset %d)", i)
	}
	var hasName, hasVersion bool
	lineNo := 0
	for len(data) > 0 {
		lineNo++
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(bytes.TrimSpace(line)) == 0 {
			break // end of headers
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // continuation of a field the inventory does not use (Name and Version are one line)
		}
		field, value, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		field = bytes.TrimSpace(field)
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(field, []byte("Name")):
			if hasName {
				return md, fmt.Errorf("line %d: duplicate Name field", lineNo)
			}
			hasName, md.Name = true, string(value)
		case bytes.EqualFold(field, []byte("Version")):
			if hasVersion {
				return md, fmt.Errorf("line %d: duplicate Version field", lineNo)
			}
			hasVersion, md.Version = true, string(value)
		}
	}
	switch {
	case !hasName || md.Name == "":
		return md, fmt.Errorf("no Name field")
	case !validPyName(md.Name):
		return md, fmt.Errorf("invalid distribution name %q", md.Name)
	case !hasVersion || md.Version == "":
		return md, fmt.Errorf("distribution %s has no Version field", md.Name)
	case !validDebToken([]byte(md.Version)):
		return md, fmt.Errorf("distribution %s has invalid version %q", md.Name, md.Version)
	}
	return md, nil
}

// validPyName follows the core metadata rule for Name: ASCII letters and digits, with ".", "-" and "_" inside
// (^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$, case-insensitive).
func validPyName(s string) bool {
	if s == "" || !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// normalizePyName applies PEP 503: lower case, and every run of "-", "_" and "." becomes one "-".
func normalizePyName(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	sep := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '-' || c == '_' || c == '.' {
			sep = true
			continue
		}
		if sep {
			b.WriteByte('-')
			sep = false
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}
