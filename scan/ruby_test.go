package scan

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

// The gemspecs under testdata/ruby/root are Debian 12's, unpacked from ruby-rack 2.2.22-0+deb12u2 (arch-all gem in
// rubygems-integration/all), ruby-json 2.6.3+dfsg-1 (C extension gem in the arch-specific dir) and libruby3.1
// 3.1.7-1~deb12u2 (a bundled gem and a default gem). bundler/source/gemspec.rb is Ruby code, not a specification.
func TestRubyRealGemspecs(t *testing.T) {
	res := Run(context.Background(), gobinOpen(t, "testdata/ruby/root"), []Analyzer{NewRuby()})
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
	var got []string
	for _, p := range res.Packages {
		got = append(got, p.Ecosystem+" "+p.Name+" "+p.Version+" "+p.PURL+" "+strings.Join(p.Locations, ","))
	}
	want := []string{
		"RubyGems cgi 0.3.7 pkg:gem/cgi@0.3.7 usr/lib/ruby/gems/3.1.0/specifications/default/cgi-0.3.7.gemspec",
		"RubyGems json 2.6.3 pkg:gem/json@2.6.3 usr/lib/x86_64-linux-gnu/rubygems-integration/3.1.0/specifications/json-2.6.3.gemspec",
		"RubyGems net-smtp 0.3.1.1 pkg:gem/net-smtp@0.3.1.1 usr/lib/ruby/gems/3.1.0/specifications/net-smtp-0.3.1.1.gemspec",
		"RubyGems rack 2.2.22 pkg:gem/rack@2.2.22 usr/share/rubygems-integration/all/specifications/rack-2.2.22.gemspec",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("packages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestRubyWants(t *testing.T) {
	a := NewRuby().(FileAnalyzer)
	for name, want := range map[string]bool{
		"usr/local/bundle/specifications/rails-7.1.3.gemspec":                              true,
		"usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec":                true,
		"app/vendor/bundle/ruby/3.2.0/specifications/nokogiri-1.15.4-x86_64-linux.gemspec": true,
		"specifications/x-1.gemspec":                                                       true,
		"usr/lib/ruby/gems/3.1.0/gems/rack-2.2.22/rack.gemspec":                            false,
		"usr/lib/ruby/gems/3.1.0/specifications/rack-2.2.22.gemspec.bak":                   false,
		"usr/lib/ruby/gems/3.1.0/specifications/sub/rack-2.2.22.gemspec":                   false,
		"usr/lib/ruby/gems/3.1.0/myspecifications/rack-2.2.22.gemspec":                     false,
	} {
		if got := a.Wants(name, nil); got != want {
			t.Errorf("Wants(%q) = %v", name, got)
		}
	}
}

func TestParseGemspec(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     rubyGem
		err      string
	}{
		{"rubygems 1.8 form", "# -*- encoding: utf-8 -*-\n\nGem::Specification.new do |s|\n  s.name = %q{rake}\n  s.version = \"0.9.2.2\"\nend\n", rubyGem{"rake", "0.9.2.2"}, ""},
		{"platform gem", "# stub: nokogiri 1.15.4 x86_64-linux lib\nGem::Specification.new do |s|\n  s.name = \"nokogiri\".freeze\n  s.version = \"1.15.4\"\n  s.platform = \"x86_64-linux\".freeze\nend\n", rubyGem{"nokogiri", "1.15.4"}, ""},
		{"stub only", "# stub: puma 6.4.2 ruby lib\n", rubyGem{"puma", "6.4.2"}, ""},
		{"other block variable, single quotes, Gem::Version", "Gem::Specification.new do |spec|\n  spec.name = 'my_gem'\n  spec.version = Gem::Version.new('1.0.0.pre1')\nend\n", rubyGem{"my_gem", "1.0.0.pre1"}, ""},
		{"assignment wins over stub", "# stub: a 1.0 ruby lib\nGem::Specification.new do |s|\n  s.name = \"b\"\n  s.version = \"2.0\"\nend\n", rubyGem{"b", "2.0"}, ""},
		{"first assignment wins", "Gem::Specification.new do |s|\n  s.name = \"a\"\n  s.version = \"1\"\n  s.name = \"z\"\nend\n", rubyGem{"a", "1"}, ""},
		{"other receiver ignored", "Gem::Specification.new do |s|\n  x.name = \"evil\"\n  s.name = \"good\"\n  s.version = \"1\"\nend\n", rubyGem{"good", "1"}, ""},
		{"computed name not evaluated", "Gem::Specification.new do |s|\n  s.name = File.read(\"/etc/passwd\")\n  s.version = \"1\"\nend\n", rubyGem{Version: "1"}, "no name"},
		{"empty", "", rubyGem{}, "no name"},
		{"no version", "Gem::Specification.new do |s|\n  s.name = \"a\"\nend\n", rubyGem{Name: "a"}, "has no version"},
		{"bad name", "Gem::Specification.new do |s|\n  s.name = \"../etc\"\n  s.version = \"1\"\nend\n", rubyGem{Name: "../etc", Version: "1"}, "invalid gem name"},
		{"bad version", "Gem::Specification.new do |s|\n  s.name = \"a\"\n  s.version = \"1 2\"\nend\n", rubyGem{"a", "1 2"}, "invalid version"},
		{"unterminated", "Gem::Specification.new do |s|\n  s.name = \"a\n  s.version = \"1\"\nend\n", rubyGem{Version: "1"}, "no name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, err := parseGemspec([]byte(c.in))
			if g != c.want {
				t.Errorf("got %+v, want %+v", g, c.want)
			}
			switch {
			case c.err == "" && err != nil:
				t.Errorf("error %v", err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Errorf("error %v, want one containing %q", err, c.err)
			}
		})
	}
}

// TestRubyDamagedFile: a damaged or oversized gemspec is an error for that file, the others are still reported.
func TestRubyDamagedFile(t *testing.T) {
	fsys := fstest.MapFS{
		"gems/specifications/a-1.gemspec": {Data: []byte("# stub: a 1 ruby lib\n")},
		"gems/specifications/b-1.gemspec": {Data: []byte("\x00\x01garbage")},
		"gems/specifications/c-1.gemspec": {Data: make([]byte, 100)},
	}
	res := Run(context.Background(), fsys, []Analyzer{&rubyAnalyzer{maxSize: 64}})
	var errs []string
	for _, e := range res.Errors {
		errs = append(errs, e.Path+": "+e.Err)
	}
	want := []string{
		"gems/specifications/b-1.gemspec: gemspec has no name (neither s.name nor a stub line)",
		"read gems/specifications/c-1.gemspec: file exceeds size limit: 100 > 64 bytes",
	}
	if len(res.Packages) != 1 || res.Packages[0].Name != "a" || len(errs) != 2 || errs[0] != want[0] || !strings.HasSuffix(errs[1], want[1]) {
		t.Errorf("packages %+v errors %q", res.Packages, errs)
	}
}

func FuzzParseGemspec(f *testing.F) {
	for _, s := range []string{
		"# stub: rack 2.2.22 ruby lib\n\nGem::Specification.new do |s|\n  s.name = \"rack\".freeze\n  s.version = \"2.2.22\"\nend\n",
		"Gem::Specification.new do |s|\n  s.name = %q{rake}\n  s.version = Gem::Version.new('1')\nend\n",
		"Gem::Specification.new { |x| x.name = %q<",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := parseGemspec(data)
		if err != nil {
			return
		}
		if !validGemName(g.Name) || !rubyVersion.MatchString(g.Version) || strings.ContainsAny(g.Name+g.Version, " \t\r\n/\x00") {
			t.Fatalf("accepted %+v", g)
		}
	})
}
