package vuln

import (
	"slices"
	"strings"
	"testing"

	"github.com/rootscan/rootscan/report"
)

func langPkg(eco, name, ver string) report.Package {
	return report.Package{Name: name, Version: ver, Ecosystem: eco}
}

// TestMatchLanguageEcosystems matches real GitHub advisories (testdata/osv/{rubygems,nuget,packagist,crates}) against
// the versions of the scan/testdata fixtures (rack 2.2.22 and cgi 0.3.7 gemspecs, the .deps.json of a .NET app, a
// composer installed.json, ripgrep's crates) and against older versions where the ecosystem's ordering decides:
// four-part RubyGems security releases, NuGet ids in another case, composer's "v" prefix and dev branches.
func TestMatchLanguageEcosystems(t *testing.T) {
	db := buildDB(t, "testdata/osv")
	rb := func(n, v string) report.Package { return langPkg(report.EcosystemRubyGems, n, v) }
	nu := func(n, v string) report.Package { return langPkg(report.EcosystemNuGet, n, v) }
	php := func(n, v string) report.Package { return langPkg(report.EcosystemPackagist, n, v) }
	rs := func(n, v string) report.Package { return langPkg(report.EcosystemCratesIO, n, v) }
	mvn := func(n, v string, e report.Evidence) report.Package {
		p := langPkg(report.EcosystemMaven, n, v)
		p.Evidence = e
		return p
	}
	tests := []struct {
		name string
		pkgs []report.Package
		want []string
	}{
		{
			// The fixture's rack 2.2.22 is after every fix ("2.2.22" < "2.2.8.1" as strings would invent two).
			name: "RubyGems fixture versions are clean",
			pkgs: []report.Package{rb("rack", "2.2.22"), rb("cgi", "0.3.7"), rb("json", "2.6.3"), rb("net-smtp", "0.3.1.1")},
		},
		{
			name: "RubyGems four-part security releases",
			pkgs: []report.Package{rb("rack", "2.2.8"), rb("rack", "2.2.8.1"), rb("rack", "3.0.9"), rb("cgi", "0.3.6"), rb("cgi", "0.3.5"), rb("cgi", "0.3.5.1")},
			want: []string{
				"GHSA-54rr-7fvw-6x8f rack 2.2.8 MEDIUM 5.3 fixed=2.2.8.1",
				"GHSA-54rr-7fvw-6x8f rack 3.0.9 MEDIUM 5.3 fixed=3.0.9.1",
				"GHSA-gh9q-2xrm-x6qv cgi 0.3.5 LOW 0.0 fixed=0.3.5.1",
				"GHSA-gh9q-2xrm-x6qv cgi 0.3.6 LOW 0.0 fixed=0.3.7",
				"GHSA-gjh7-p2fx-99vx rack 2.2.8 HIGH 7.5 fixed=2.2.14",
				"GHSA-gjh7-p2fx-99vx rack 2.2.8.1 HIGH 7.5 fixed=2.2.14",
				"GHSA-gjh7-p2fx-99vx rack 3.0.9 HIGH 7.5 fixed=3.0.16",
			},
		},
		{
			// System.Text.Json 8.0.4 (MyApp.deps.json) has CVE-2024-30105's fix but not CVE-2024-43485's; NuGet ids
			// compare case-insensitively; a four-part legacy version orders on its parts.
			name: "NuGet",
			pkgs: []report.Package{
				nu("System.Text.Json", "8.0.4"), nu("Newtonsoft.Json", "13.0.3"), nu("Serilog", "3.1.1"),
				nu("newtonsoft.json", "12.0.3"), nu("System.Text.Json", "6.0.9.1"), nu("System.Text.Json", "8.0.5-rc.1"),
			},
			want: []string{
				"GHSA-5crp-9r3c-p9vr newtonsoft.json 12.0.3 HIGH 7.5 fixed=13.0.1",
				"GHSA-8g4q-xg66-9fp4 System.Text.Json 6.0.9.1 HIGH 7.5 fixed=6.0.10",
				"GHSA-8g4q-xg66-9fp4 System.Text.Json 8.0.4 HIGH 7.5 fixed=8.0.5",
				"GHSA-8g4q-xg66-9fp4 System.Text.Json 8.0.5-rc.1 HIGH 7.5 fixed=8.0.5",
			},
		},
		{
			// The legacy composer fixture's guzzle 6.5.5 is affected, its psr7 1.9.1 is the fix; "v6.5.5" is 6.5.5 to
			// composer; a dev branch is never matched.
			name: "Packagist",
			pkgs: []report.Package{
				php("guzzlehttp/guzzle", "6.5.5"), php("guzzlehttp/psr7", "1.9.1"), php("psr/log", "1.1.4"),
				php("guzzlehttp/guzzle", "v6.5.5"), php("GuzzleHttp/Guzzle", "7.4.4"), php("guzzlehttp/guzzle", "6.5.8"),
				php("guzzlehttp/psr7", "1.9.0"), php("guzzlehttp/guzzle", "dev-main"), php("guzzlehttp/psr7", "2.4.5"),
			},
			want: []string{
				"GHSA-25mq-v84q-4j7r GuzzleHttp/Guzzle 7.4.4 HIGH 0.0 fixed=7.4.5",
				"GHSA-25mq-v84q-4j7r guzzlehttp/guzzle 6.5.5 HIGH 0.0 fixed=6.5.8",
				"GHSA-25mq-v84q-4j7r guzzlehttp/guzzle v6.5.5 HIGH 0.0 fixed=6.5.8",
				"GHSA-wxmh-65f7-jcvw guzzlehttp/psr7 1.9.0 MEDIUM 0.0 fixed=1.9.1",
			},
		},
		{
			// ripgrep 13.0.0's crates: atty has no fix (last_affected), regex 1.7.0 is after 1.5.5.
			name: "crates.io",
			pkgs: []report.Package{rs("atty", "0.2.14"), rs("regex", "1.7.0"), rs("regex", "1.5.4"), rs("atty", "0.3.0")},
			want: []string{
				"GHSA-g98v-hv3f-hcfr atty 0.2.14 LOW 0.0 fixed=",
				"GHSA-m5pq-gvj9-9vr8 regex 1.5.4 HIGH 7.5 fixed=1.5.5",
			},
		},
		{
			// A package a lock file only declares is inventoried, not matched: the same atty installed is.
			name: "declared packages are not matched",
			pkgs: []report.Package{
				{Name: "atty", Version: "0.2.14", Ecosystem: report.EcosystemCratesIO, Evidence: report.EvidenceLockFile},
				{Name: "regex", Version: "1.5.4", Ecosystem: report.EcosystemCratesIO, Evidence: report.EvidenceFileName},
			},
			want: []string{"GHSA-m5pq-gvj9-9vr8 regex 1.5.4 HIGH 7.5 fixed=1.5.5"},
		},
		{
			// Only a real group:artifact is looked up, whatever the evidence; a jar named by its manifest or file
			// name ("commons-text", "org.apache.commons.text") has no group and is never matched.
			name: "Maven coordinates without a group are not matched",
			pkgs: []report.Package{
				mvn("org.apache.commons:commons-text", "1.9", report.EvidenceInstalled),
				mvn("org.apache.commons:commons-text", "1.10.0", report.EvidenceInstalled),
				mvn("org.apache.commons:commons-text", "1.8", report.EvidenceJarManifest),
				mvn("commons-text", "1.9", report.EvidenceFileName),
				mvn("org.apache.commons.text", "1.9", report.EvidenceJarManifest),
				mvn(":commons-text", "1.9", report.EvidenceJarManifest),
			},
			want: []string{
				"GHSA-599f-7c49-w659 org.apache.commons:commons-text 1.8 CRITICAL 9.8 fixed=1.10.0",
				"GHSA-599f-7c49-w659 org.apache.commons:commons-text 1.9 CRITICAL 9.8 fixed=1.10.0",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := matchLines(t, db, nil, tt.pkgs...)
			if !slices.Equal(got, tt.want) {
				t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestMatchLanguageNoErrors checks that the fixtures' versions all parse in their ecosystems: a version the
// comparator refused would be reported in Result.Errors and silently never matched.
func TestMatchLanguageNoErrors(t *testing.T) {
	db := buildDB(t, "testdata/osv")
	res := &report.Result{Packages: []report.Package{
		langPkg(report.EcosystemRubyGems, "rack", "2.2.22"), langPkg(report.EcosystemNuGet, "System.Text.Json", "8.0.4"),
		langPkg(report.EcosystemPackagist, "guzzlehttp/guzzle", "6.5.5"), langPkg(report.EcosystemPackagist, "guzzlehttp/guzzle", "dev-main"),
		langPkg(report.EcosystemCratesIO, "regex", "1.7.0"),
	}}
	if err := db.Match(t.Context(), res); err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) != 0 {
		t.Errorf("errors: %+v", res.Errors)
	}
}

// TestMatchMavenWithoutGroupNoted: the jars left unmatched for want of a groupId are said so, once per scan.
func TestMatchMavenWithoutGroupNoted(t *testing.T) {
	db := buildDB(t, "testdata/osv")
	res := &report.Result{Packages: []report.Package{
		{Name: "asm", Version: "9.4", Ecosystem: report.EcosystemMaven, Evidence: report.EvidenceFileName},
		{Name: "hamcrest", Version: "2.2", Ecosystem: report.EcosystemMaven, Evidence: report.EvidenceJarManifest},
		langPkg(report.EcosystemMaven, "org.apache.commons:commons-text", "1.10.0"),
	}}
	if err := db.Match(t.Context(), res); err != nil {
		t.Fatal(err)
	}
	want := []report.FileError{{Analyzer: "vuln", Err: "Maven artifacts without a groupId (named from a jar's MANIFEST.MF or file name) are not matched against advisories"}}
	if !slices.Equal(res.Errors, want) || len(res.Vulnerabilities) != 0 {
		t.Errorf("errors %+v, findings %+v", res.Errors, res.Vulnerabilities)
	}
}
