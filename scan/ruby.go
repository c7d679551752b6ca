package scan

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"

	"github.com/rootscan/rootscan/report"
)

// rubyMaxGemspecSize bounds one installed gemspec. RubyGems writes them with the gem's whole file list; the largest
// common ones (bundler, rails' components, aws-sdk) are tens of KiB.
const rubyMaxGemspecSize = 2 << 20

// rubyMaxNameLen bounds gem names; rubygems.org's longest are under 100 bytes.
const rubyMaxNameLen = 128

// rubyAnalyzer lists installed Ruby gems from the specifications RubyGems writes when it installs a gem:
// <gem dir>/specifications/<name>-<version>[-<platform>].gemspec, and specifications/default/ for the gems that ship
// with Ruby itself (bundler, json, cgi, ...). Gem dirs are wherever GEM_HOME or GEM_PATH point: usr/lib/ruby/gems/X,
// usr/local/lib/ruby/gems/X, usr/local/bundle (the official Docker images), vendor/bundle/ruby/X (bundle install
// --deployment), Debian's usr/share/rubygems-integration/all and usr/lib/<triplet>/rubygems-integration/X. So any
// "specifications" directory is read, and a gem's own source tree (gems/rack-2.2.22/rack.gemspec, written by hand)
// is not.
//
// A gemspec is Ruby code, and rootscan never evaluates it. RubyGems writes installed specifications with
// Gem::Specification#to_ruby, always in the same shape ("s.name = "rack".freeze", "s.version = "2.2.22"", older
// versions %q{rack}), and starts them with a "# stub: <name> <version> <platform> <paths>" line that RubyGems itself
// reads instead of loading the file. The name and version come from the assignments in the Gem::Specification.new
// block, else from the stub line.
type rubyAnalyzer struct {
	maxSize int64
}

// NewRuby returns the analyzer for installed Ruby gems (RubyGems ecosystem; Package.Name is the gem name).
func NewRuby() Analyzer { return &rubyAnalyzer{maxSize: rubyMaxGemspecSize} }

func (a *rubyAnalyzer) Name() string { return "ruby" }

func (a *rubyAnalyzer) Version() int { return 1 }

func (a *rubyAnalyzer) Requires() []string { return nil }

// Paths is empty: gem dirs can be anywhere, Wants decides.
func (a *rubyAnalyzer) Paths() []string { return nil }

// Wants decides from the name alone: <...>/specifications/<x>.gemspec or <...>/specifications/default/<x>.gemspec.
func (a *rubyAnalyzer) Wants(name string, d fs.DirEntry) bool {
	if !strings.HasSuffix(name, ".gemspec") || (d != nil && !d.Type().IsRegular()) {
		return false
	}
	dir := path.Dir(name)
	dir = strings.TrimSuffix(dir, "/default")
	return dir == "specifications" || strings.HasSuffix(dir, "/specifications")
}

// AnalyzeFile reads one gemspec; a damaged one is reported and skipped.
func (a *rubyAnalyzer) AnalyzeFile(ctx context.Context, fsys FS, name string, out *report.Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	data, err := ReadFile(fsys, name, a.maxSize)
	if err == nil {
		var g rubyGem
		if g, err = parseGemspec(data); err == nil {
			out.Packages = append(out.Packages, report.Package{Name: g.Name, Version: g.Version, Ecosystem: report.EcosystemRubyGems,
				Locations: []string{name}, FoundBy: a.Name()})
			return nil
		}
	}
	out.Errors = append(out.Errors, report.FileError{Analyzer: a.Name(), Path: name, Err: err.Error()})
	return nil
}

// Analyze merges what AnalyzeFile found: the same gem version in several gem dirs becomes one Package.
func (a *rubyAnalyzer) Analyze(ctx context.Context, fsys FS, out *report.Result) error {
	mergePackages(out, a.Name())
	return nil
}

// rubyGem is the part of a gemspec the inventory needs.
type rubyGem struct {
	Name, Version string
}

var (
	// rubySpecNew matches the block opening: Gem::Specification.new do |s| (or { |spec|).
	rubySpecNew = regexp.MustCompile(`Gem::Specification\.new\s*(?:do|\{)\s*\|\s*([a-z_][a-zA-Z0-9_]*)\s*\|`)
	// rubyStub matches RubyGems' stub line: "# stub: rack 2.2.22 ruby lib".
	rubyStub = regexp.MustCompile(`^# stub: (\S+) (\S+) (\S+)`)
	// rubyVersion is Gem::Version's pattern (the part RubyGems accepts for an installed gem).
	rubyVersion = regexp.MustCompile(`^[0-9]+(?:\.[0-9a-zA-Z]+)*(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$`)
)

// parseGemspec reads name and version from an installed gemspec without evaluating it.
func parseGemspec(data []byte) (rubyGem, error) {
	var g, stub rubyGem
	v := ""
	if m := rubySpecNew.FindSubmatch(data); m != nil {
		v = string(m[1])
	}
	for line := range bytes.Lines(data) {
		line = bytes.TrimSpace(line)
		if m := rubyStub.FindSubmatch(line); m != nil && stub.Name == "" {
			stub = rubyGem{Name: string(m[1]), Version: string(m[2])}
			continue
		}
		if v == "" {
			continue
		}
		rest, ok := bytes.CutPrefix(line, []byte(v+"."))
		if !ok {
			continue
		}
		attr, val, ok := bytes.Cut(rest, []byte("="))
		if !ok {
			continue
		}
		field := string(bytes.TrimSpace(attr))
		if (field != "name" || g.Name != "") && (field != "version" || g.Version != "") {
			continue
		}
		s, ok := rubyStringLiteral(val)
		if !ok {
			continue
		}
		if field == "name" {
			g.Name = s
		} else {
			g.Version = s
		}
	}
	if g.Name == "" {
		g.Name = stub.Name
	}
	if g.Version == "" {
		g.Version = stub.Version
	}
	switch {
	case g.Name == "":
		return g, fmt.Errorf("gemspec has no name (neither s.name nor a stub line)")
	case !validGemName(g.Name):
		return g, fmt.Errorf("invalid gem name %q", g.Name)
	case g.Version == "":
		return g, fmt.Errorf("gem %s has no version", g.Name)
	case !rubyVersion.MatchString(g.Version):
		return g, fmt.Errorf("gem %s has invalid version %q", g.Name, g.Version)
	}
	return g, nil
}

// rubyStringLiteral returns the string a gemspec assigns: "x", 'x', %q{x} (any of {} <> () []) or
// Gem::Version.new("x"), each optionally followed by .freeze. Escapes are not interpreted: gem names and versions
// never need them, and a value that has one is rejected by the validation after.
func rubyStringLiteral(b []byte) (string, bool) {
	b = bytes.TrimSpace(b)
	if inner, ok := bytes.CutPrefix(b, []byte("Gem::Version.new(")); ok {
		b = bytes.TrimSpace(inner)
	}
	if len(b) < 2 {
		return "", false
	}
	var end byte
	switch b[0] {
	case '"', '\'':
		end, b = b[0], b[1:]
	case '%':
		if len(b) < 4 || b[1] != 'q' {
			return "", false
		}
		switch b[2] {
		case '{':
			end = '}'
		case '<':
			end = '>'
		case '(':
			end = ')'
		case '[':
			end = ']'
		default:
			return "", false
		}
		b = b[3:]
	default:
		return "", false
	}
	i := bytes.IndexByte(b, end)
	if i < 0 {
		return "", false
	}
	return string(b[:i]), true
}

// validGemName accepts what rubygems.org accepts: letters, digits, ".", "-" and "_", starting with a letter, digit or
// "_" (Gem::Specification's own check).
func validGemName(s string) bool {
	if s == "" || len(s) > rubyMaxNameLen || s[0] == '.' || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '-' && c != '_' {
			return false
		}
	}
	return true
}
