package integration

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// The scan/testdata fixtures of RubyGems (rack 2.2.22, cgi 0.3.7 gemspecs), composer (a legacy vendor/ with
// guzzle 6.5.5 and psr7 1.9.1) and .NET (.deps.json with System.Text.Json 8.0.4) are matched by the built binary
// against real GitHub advisories: only the affected versions are reported, no version is refused.
func TestVulnLanguageFixtures(t *testing.T) {
	db := vulnImportDB(t)
	for _, tt := range []struct {
		root string
		want []string
	}{
		{"../scan/testdata/ruby/root", nil},
		{"../scan/testdata/composer/root", []string{"GHSA-25mq-v84q-4j7r guzzlehttp/guzzle 6.5.5 HIGH fixed=6.5.8"}},
		{"../scan/testdata/dotnet/root", []string{"GHSA-8g4q-xg66-9fp4 System.Text.Json 8.0.4 HIGH fixed=8.0.5"}},
	} {
		t.Run(tt.root, func(t *testing.T) {
			res := runRootscan(t, time.Minute, "scan", "--dir", tt.root, "--db", db, "-o", "json")
			if res.code != 0 {
				t.Fatalf("scan exit %d: %s", res.code, res.stderr)
			}
			r := decode(t, res).Reports[0]
			if got := vulnLines(r.Result.Vulnerabilities); !slices.Equal(got, tt.want) {
				t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			for _, e := range r.Result.Errors {
				if e.Analyzer == "vuln" {
					t.Errorf("vuln error: %s", e.Err)
				}
			}
			if len(r.Result.Packages) == 0 {
				t.Error("no packages found: the fixture was not scanned")
			}
		})
	}
}

// `rootscan db import --append` extends the database: Debian's records first, then the NuGet ones added.
func TestVulnDBImportAppend(t *testing.T) {
	dir := t.TempDir() + "/db"
	for _, args := range [][]string{
		{"db", "import", "--db", dir, vulnTestdata + "/debian"},
		{"db", "import", "--append", "--db", dir, vulnTestdata + "/nuget"},
	} {
		if res := runRootscan(t, time.Minute, args...); res.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, res.code, res.stderr)
		}
	}
	res := runRootscan(t, time.Minute, "db", "status", "--db", dir)
	if res.code != 0 || !strings.Contains(res.stdout, "advisories: 9 ") {
		t.Errorf("db status exit %d:\n%s", res.code, res.stdout)
	}
}
