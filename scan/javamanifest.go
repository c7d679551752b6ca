package scan

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/rootscan/rootscan/report"
)

// javaMaxManifest bounds the bytes of META-INF/MANIFEST.MF read from one archive. Only the main section is needed,
// and it comes first; a signed jar's manifest goes on with one section per class (megabytes), which is never read.
// OSGi bundles' Export-Package headers make main sections of tens of KiB.
const javaMaxManifest = 1 << 20

// errManifestTooLong marks a main section that does not end within javaMaxManifest bytes.
var errManifestTooLong = errors.New("manifest main section longer than the limit")

// parseManifestMain reads the main section of a JAR manifest (java.util.jar.Manifest's format, see the JAR File
// Specification): "Name: value" headers, one per line, lines ending in CRLF, LF or CR; a line starting with one space
// continues the previous one (writers wrap at 72 bytes); a blank line ends the section, and what follows (per-entry
// sections) is not read. truncated says data is a prefix of a longer file, so a section that does not end in it is
// an error rather than the whole file. Header names are case-insensitive, as in java.util.jar.Attributes, and are
// returned in lower case; a repeated header keeps its last value, as Java's reader does.
func parseManifestMain(data []byte, truncated bool) (map[string]string, error) {
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return nil, fmt.Errorf("binary content (NUL byte at offset %d)", i)
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	attrs := map[string]string{}
	var name string
	var value strings.Builder
	flush := func() {
		if name != "" {
			attrs[name] = value.String()
		}
		name = ""
		value.Reset()
	}
	for lineNo := 1; ; lineNo++ {
		if len(data) == 0 {
			if truncated {
				return nil, fmt.Errorf("%w of %d bytes", errManifestTooLong, javaMaxManifest)
			}
			break
		}
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 && truncated {
			return nil, fmt.Errorf("%w of %d bytes", errManifestTooLong, javaMaxManifest)
		}
		var line []byte
		if i < 0 {
			line, data = data, nil
		} else {
			line = data[:i]
			n := 1
			if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
				n = 2
			} else if data[i] == '\r' && i+1 == len(data) && truncated {
				return nil, fmt.Errorf("%w of %d bytes", errManifestTooLong, javaMaxManifest)
			}
			data = data[i+n:]
		}
		if len(line) == 0 {
			break // end of the main section
		}
		if line[0] == ' ' {
			if name == "" {
				return nil, fmt.Errorf("line %d: continuation line without a header", lineNo)
			}
			value.Write(line[1:])
			continue
		}
		flush()
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok || !validManifestName(k) {
			return nil, fmt.Errorf("line %d: invalid header %q", lineNo, truncate(string(line), 80))
		}
		name = strings.ToLower(string(k))
		value.Write(bytes.TrimPrefix(v, []byte(" ")))
	}
	flush()
	return attrs, nil
}

// validManifestName accepts the JAR specification's header names: 1-70 of [A-Za-z0-9_-].
func validManifestName(k []byte) bool {
	if len(k) == 0 || len(k) > 70 {
		return false
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// javaIdentity is the name and version of a jar that carries no pom.properties, and how they were learned.
type javaIdentity struct {
	name, version string
	evidence      report.Evidence
}

// manifestNamePairs are the manifest headers that name a jar, each with the version header that goes with it, in
// the order they are trusted: the OSGi symbolic name is unique by design and Bundle-Version is what OSGi resolves
// on; Implementation-* is what Maven's and Gradle's jar tasks write; Specification-* names an API jar's spec.
var manifestNamePairs = [][2]string{
	{"bundle-symbolicname", "bundle-version"},
	{"implementation-title", "implementation-version"},
	{"specification-title", "specification-version"},
}

// javaIdentityOf names a jar without pom.properties from its manifest's main section (attrs, may be nil) and its
// file name (base, e.g. "asm-9.4.jar"). In order:
//
//  1. the first of manifestNamePairs whose name and version are both usable (EvidenceJarManifest);
//  2. a version from the manifest (Implementation-, Bundle-, Specification-Version, in that order) with the first
//     usable name among the manifest's names, Automatic-Module-Name, and the file name's name part
//     (EvidenceJarManifest: the version, the part that matters for matching, is the jar's own);
//  3. the file name, "name-1.2.3.jar" or "name_1.2.3.jar" (EvidenceFileName).
//
// ok is false when none gives a version: Debian's unversioned /usr/share/java/foo.jar without a manifest version is
// not reported (dpkg's record of the package that installed it is, by the dpkg analyzer).
//
// The name is never "group:artifact": manifests carry no Maven groupId (Bundle-SymbolicName is often, not always,
// group plus artifact, and which dot splits them cannot be known), and the file name carries none. scalibr guesses a
// group (from Bundle-SymbolicName, the vendor headers or a table of known artifacts) and syft does too (a table, the
// manifest, else the artifact name itself: pkg:maven/asm/asm@9.4 where the real coordinate is org.ow2.asm:asm). A
// guessed coordinate is looked up in OSV as if it were real, so a wrong guess misses advisories silently and a
// collision reports another project's; the bare name, kept apart from real coordinates by having no ":", is honest.
func javaIdentityOf(attrs map[string]string, base string) (javaIdentity, bool) {
	fileName, fileVersion := javaFileNameVersion(base)
	for _, p := range manifestNamePairs {
		if n, v := manifestJavaName(attrs[p[0]]), attrs[p[1]]; n != "" && usableJavaVersion(v) {
			return javaIdentity{n, v, report.EvidenceJarManifest}, true
		}
	}
	var version string
	for _, k := range []string{"implementation-version", "bundle-version", "specification-version"} {
		if v := attrs[k]; usableJavaVersion(v) {
			version = v
			break
		}
	}
	if version != "" {
		names := []string{"bundle-symbolicname", "implementation-title", "specification-title", "automatic-module-name"}
		for _, k := range names {
			if n := manifestJavaName(attrs[k]); n != "" {
				return javaIdentity{n, version, report.EvidenceJarManifest}, true
			}
		}
		if fileName != "" {
			return javaIdentity{fileName, version, report.EvidenceJarManifest}, true
		}
	}
	if fileName != "" && fileVersion != "" {
		return javaIdentity{fileName, fileVersion, report.EvidenceFileName}, true
	}
	return javaIdentity{}, false
}

// manifestJavaName is a manifest value usable as a package name, or "". Bundle-SymbolicName's directives
// (";singleton:=true") are cut off. Titles with spaces ("Apache Commons Lang") are prose, not names, and unexpanded
// build placeholders ("${project.artifactId}", "@NAME@") are not names either.
func manifestJavaName(v string) string {
	v, _, _ = strings.Cut(v, ";")
	v = strings.TrimSpace(v)
	if !validMavenToken(v) || strings.ContainsAny(v, "$@%{}") {
		return ""
	}
	return v
}

// usableJavaVersion accepts a version that starts with a digit and is a valid Maven token, which rules out prose
// ("1.0 (build 5)"), placeholders ("${version}") and words ("unspecified", "SNAPSHOT").
func usableJavaVersion(v string) bool {
	return v != "" && v[0] >= '0' && v[0] <= '9' && validMavenToken(v) && !strings.ContainsAny(v, "$@%{}")
}

// javaFileNameVersion splits an archive's base name at the first "-" or "_" followed by a digit, as syft does:
// "asm-all-9.4.jar" is asm-all 9.4, "hamcrest-integration-1.3.1-SNAPSHOT.jar" is hamcrest-integration
// 1.3.1-SNAPSHOT, "foo_2.1.jar" is foo 2.1. name is the whole stem when there is no version ("asm.jar": asm, "").
// A name must start with a letter.
func javaFileNameVersion(base string) (name, version string) {
	stem := base
	if i := strings.LastIndexByte(stem, '.'); i > 0 {
		stem = stem[:i]
	}
	for i := 1; i+1 < len(stem); i++ {
		if (stem[i] == '-' || stem[i] == '_') && stem[i+1] >= '0' && stem[i+1] <= '9' {
			name, version = stem[:i], stem[i+1:]
			break
		}
	}
	if version == "" {
		name = stem
	}
	if name == "" || !(name[0] >= 'a' && name[0] <= 'z' || name[0] >= 'A' && name[0] <= 'Z') || !validMavenToken(name) {
		return "", ""
	}
	if version != "" && !usableJavaVersion(version) {
		version = ""
	}
	return name, version
}
