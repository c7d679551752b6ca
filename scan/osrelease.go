package scan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"unicode/utf8"

	"github.com/rootscan/rootscan/report"
)

// Where os-release(5) says to look, in order: etc/os-release wins and usr/lib/os-release is the fallback. Debian
// roots without either (very old or hand-made minimal ones) still name their release in etc/debian_version.
const (
	osReleaseEtc       = "etc/os-release"
	osReleaseUsrLib    = "usr/lib/os-release"
	debianVersionPath  = "etc/debian_version"
	osReleaseMaxSize   = 64 << 10
	debianVersionMaxSz = 64 << 10
)

// osReleaseAnalyzer identifies the distribution. Its limit is a field so tests can shrink it.
type osReleaseAnalyzer struct {
	maxSize int64
}

// NewOSRelease returns the analyzer that fills Result.OS, which vulnerability matching needs to pick the advisories
// of the right release.
func NewOSRelease() Analyzer {
	return &osReleaseAnalyzer{maxSize: osReleaseMaxSize}
}

// osReleaseName is the os-release analyzer's name, which the analyzers that need the OS require.
const osReleaseName = "os-release"

func (a *osReleaseAnalyzer) Name() string { return osReleaseName }

func (a *osReleaseAnalyzer) Version() int { return 1 }

func (a *osReleaseAnalyzer) Requires() []string { return nil }

func (a *osReleaseAnalyzer) Paths() []string {
	return []string{osReleaseEtc, osReleaseUsrLib, debianVersionPath}
}

// Analyze reads the first os-release that exists and yields at least one assignment. A file that exists but cannot
// be used is reported and the next candidate is tried, so a broken etc/os-release does not hide usr/lib/os-release.
// etc/os-release is usually a link to ../usr/lib/os-release; fsys.Open follows it inside the root.
func (a *osReleaseAnalyzer) Analyze(ctx context.Context, fsys FS, out *report.Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fail := func(p, msg string) {
		out.Errors = append(out.Errors, report.FileError{Analyzer: a.Name(), Path: p, Err: msg})
	}
	for _, p := range []string{osReleaseEtc, osReleaseUsrLib} {
		data, err := ReadFile(fsys, p, a.maxSize)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			fail(p, err.Error())
			continue
		}
		res := parseOSRelease(data)
		if res.BadLines > 0 {
			fail(p, fmt.Sprintf("ignored %d malformed lines (first at line %d)", res.BadLines, res.FirstBadLine))
		}
		if len(res.Values) == 0 {
			fail(p, "no assignments")
			continue
		}
		out.OS = osFromRelease(res.Values, p)
		return nil
	}

	data, err := ReadFile(fsys, debianVersionPath, min(a.maxSize, debianVersionMaxSz))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		fail(debianVersionPath, err.Error())
		return nil
	}
	osv, err := parseDebianVersion(data)
	if err != nil {
		fail(debianVersionPath, err.Error())
		return nil
	}
	out.OS = osv
	return nil
}

// osFromRelease maps os-release variables to OS. ID defaults to "linux" as os-release(5) specifies.
func osFromRelease(v map[string]string, source string) *report.OS {
	o := &report.OS{
		ID:              v["ID"],
		IDLike:          strings.Fields(v["ID_LIKE"]),
		Name:            v["NAME"],
		PrettyName:      v["PRETTY_NAME"],
		VersionID:       v["VERSION_ID"],
		VersionCodename: v["VERSION_CODENAME"],
		Source:          source,
	}
	if o.ID == "" {
		o.ID = "linux"
	}
	if len(o.IDLike) == 0 {
		o.IDLike = nil
	}
	return o
}

// osReleaseParse is what an os-release file holds. Malformed lines are skipped and counted, never fatal: one odd
// line must not cost the release ID.
type osReleaseParse struct {
	Values       map[string]string
	BadLines     int
	FirstBadLine int
}

// parseOSRelease parses os-release(5): KEY=value lines, values optionally in single quotes (taken literally) or
// double quotes (where backslash escapes ", \, $ and `), unquoted values with backslash escapes and embedded spaces
// (distroless writes NAME=Debian GNU/Linux unquoted; systemd accepts it), comments and blank lines. Later
// assignments win, as in a shell. Values with control characters or invalid UTF-8 are rejected: they end up in
// reports and SIEM events.
func parseOSRelease(data []byte) osReleaseParse {
	res := osReleaseParse{Values: map[string]string{}}
	lineNo := 0
	for len(data) > 0 {
		lineNo++
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		line = bytes.TrimLeft(line, " \t\r")
		if len(line) == 0 || line[0] == '#' || line[0] == ';' {
			continue
		}
		key, value, ok := parseOSReleaseLine(line)
		if !ok {
			res.BadLines++
			if res.FirstBadLine == 0 {
				res.FirstBadLine = lineNo
			}
			continue
		}
		res.Values[key] = value
	}
	return res
}

// parseOSReleaseLine parses one non-blank, non-comment line without leading whitespace.
func parseOSReleaseLine(line []byte) (key, value string, ok bool) {
	i := 0
	for i < len(line) && (isAlnum(line[i]) || line[i] == '_') {
		i++
	}
	if i == 0 || line[0] >= '0' && line[0] <= '9' {
		return "", "", false
	}
	key = string(line[:i])
	rest := bytes.TrimLeft(line[i:], " \t")
	if len(rest) == 0 || rest[0] != '=' {
		return "", "", false
	}
	rest = bytes.TrimLeft(rest[1:], " \t")

	var v []byte
	switch {
	case len(rest) > 0 && rest[0] == '\'':
		end := bytes.IndexByte(rest[1:], '\'')
		if end < 0 || !isBlank(rest[end+2:]) {
			return "", "", false
		}
		v = rest[1 : end+1]
	case len(rest) > 0 && rest[0] == '"':
		v = make([]byte, 0, len(rest))
		closed := false
		j := 1
		for ; j < len(rest); j++ {
			c := rest[j]
			if c == '"' {
				closed = true
				break
			}
			if c == '\\' && j+1 < len(rest) {
				j++
				switch n := rest[j]; n {
				case '"', '\\', '$', '`':
					v = append(v, n)
				default:
					v = append(v, '\\', n)
				}
				continue
			}
			v = append(v, c)
		}
		if !closed || !isBlank(rest[j+1:]) {
			return "", "", false
		}
	default:
		v = make([]byte, 0, len(rest))
		keep := 0 // length of v up to its last character that is not unescaped trailing whitespace
		for j := 0; j < len(rest); j++ {
			c := rest[j]
			if c == '\\' {
				if j+1 < len(rest) {
					j++
					v = append(v, rest[j])
					keep = len(v)
				}
				continue
			}
			v = append(v, c)
			if c != ' ' && c != '\t' && c != '\r' {
				keep = len(v)
			}
		}
		v = v[:keep]
	}
	if !utf8.Valid(v) {
		return "", "", false
	}
	for _, c := range v {
		if c < ' ' && c != '\t' || c == 0x7f {
			return "", "", false
		}
	}
	return key, string(v), true
}

// parseDebianVersion reads etc/debian_version: "12.7" for a release (VersionID is the major number, as in
// os-release) or "trixie/sid" for testing and unstable (VersionCodename, as Debian's own os-release has it).
func parseDebianVersion(data []byte) (*report.OS, error) {
	s := string(bytes.TrimSpace(data))
	if s == "" || len(s) > 64 {
		return nil, fmt.Errorf("unrecognized content")
	}
	for _, c := range []byte(s) {
		if !isAlnum(c) && !strings.ContainsRune("./+~_-", rune(c)) {
			return nil, fmt.Errorf("unrecognized content")
		}
	}
	o := &report.OS{ID: "debian", Source: debianVersionPath}
	if s[0] >= '0' && s[0] <= '9' {
		major, _, _ := strings.Cut(s, ".")
		for _, c := range []byte(major) {
			if c < '0' || c > '9' {
				return nil, fmt.Errorf("unrecognized version %q", s)
			}
		}
		o.VersionID = major
		return o, nil
	}
	codename, rest, found := strings.Cut(s, "/")
	if !found || rest != "sid" || codename == "" {
		return nil, fmt.Errorf("unrecognized version %q", s)
	}
	for _, c := range []byte(codename) {
		if c < 'a' || c > 'z' {
			return nil, fmt.Errorf("unrecognized version %q", s)
		}
	}
	o.VersionCodename = codename
	return o, nil
}
