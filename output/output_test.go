package output

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/vuln"
)

func TestWriteDrift(t *testing.T) {
	var b bytes.Buffer
	writeDrift(&b, []report.DriftEntry{
		{Path: "etc/issue", Change: report.DriftChanged, Type: "file"},
		{Path: "tmp/x", Change: report.DriftAdded, Type: "file", Executable: true, SHA256: "ab12"},
		{Path: "usr/bin/gone", Change: report.DriftDeleted, Type: "file", Executable: true},
		{Path: "usr/local/bin/big", Change: report.DriftAdded, Type: "file", Executable: true},
	})
	want := "  drift: 2 added, 1 changed, 1 deleted\n" +
		"  drift: added executable tmp/x (sha256 ab12)\n" +
		"  drift: added executable usr/local/bin/big (sha256 -)\n"
	if b.String() != want {
		t.Errorf("writeDrift:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	writeDrift(&b, nil)
	if b.Len() != 0 {
		t.Errorf("no drift printed %q", b.String())
	}
}

func TestSBOMFileBase(t *testing.T) {
	tests := []struct {
		t    report.Target
		want string
	}{
		{report.Target{Kind: "container", ContainerID: "0123456789abcdef0123", Namespace: "shop", Pod: "web-0", Container: "app"}, "shop_web-0_app_0123456789ab"},
		{report.Target{Kind: "container", ContainerID: "abc", Pod: "p/../x", Container: "c d"}, "p-..-x_c-d_abc"},
		{report.Target{Kind: "oci", Path: "/srv/images/layout"}, "oci_layout"},
		{report.Target{Kind: "dir", Path: "/"}, "dir_-"},
		{report.Target{Kind: "dir", Path: "/srv/.hidden"}, "dir_.hidden"},
		{report.Target{}, "target"},
	}
	for _, tt := range tests {
		if got := fileBase(tt.t); got != tt.want {
			t.Errorf("fileBase(%+v) = %q, want %q", tt.t, got, tt.want)
		}
	}
}

func TestEcosystemCounts(t *testing.T) {
	pkgs := []report.Package{{Ecosystem: "Debian"}, {Ecosystem: "Go"}, {Ecosystem: "Go"}, {Ecosystem: "npm"},
		{Ecosystem: "npm", Evidence: report.EvidenceLockFile}}
	if got, want := ecosystemCounts(pkgs), "2 Go, 2 npm (1 declared), 1 Debian"; got != want {
		t.Errorf("ecosystemCounts = %q, want %q", got, want)
	}
	if got := ecosystemCounts(nil); got != "0" {
		t.Errorf("no packages: %q", got)
	}
}

func TestVulnCounts(t *testing.T) {
	vs := []report.Vulnerability{
		{Severity: report.SeverityLow}, {Severity: report.SeverityHigh}, {Severity: report.SeverityLow},
		{Severity: report.SeverityUnknown}, {Severity: report.SeverityCritical, Suppressed: &report.Suppression{Status: "not_affected"}},
	}
	if got, want := vulnCounts(vs), "1 HIGH, 2 LOW, 1 UNKNOWN (+1 suppressed)"; got != want {
		t.Errorf("vulnCounts = %q, want %q", got, want)
	}
	if got := vulnCounts(nil); got != "0" {
		t.Errorf("no findings: %q", got)
	}
}

// TestJSONLeavesOutSymbols: the JSON document has no function sets, and the document it was given keeps them (the
// daemon's cache and --sbom-dir read the same reports).
func TestJSONLeavesOutSymbols(t *testing.T) {
	syms := report.NewGoSymbols([]uint64{1, 2, 3})
	res := &report.Result{GoBinaries: []report.GoBinary{{Path: "/app", GOOS: "linux", GOARCH: "amd64", Symbols: syms, SymbolsFrom: "pclntab"}}}
	doc := Document{Node: "n", Reports: []report.Report{{Result: res}, {Error: "failed"}}}
	var b bytes.Buffer
	if err := Write(&b, "json", doc, Options{}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), `"symbols"`) {
		t.Errorf("JSON holds the function set:\n%s", b.String())
	}
	for _, want := range []string{`"path": "/app"`, `"goos": "linux"`, `"goarch": "amd64"`, `"symbolsFrom": "pclntab"`, `"error": "failed"`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("JSON lacks %s:\n%s", want, b.String())
		}
	}
	if doc.Reports[0].Result != res || res.GoBinaries[0].Symbols != syms {
		t.Error("writing the JSON changed the reports")
	}
}

// TestVulnTableReachable: the REACHABLE column shows for a target with a Go finding, not for others.
func TestVulnTableReachable(t *testing.T) {
	var b bytes.Buffer
	r := report.Report{Target: report.Target{Kind: "dir", Path: "/r"}, Result: &report.Result{Vulnerabilities: []report.Vulnerability{
		{ID: "GO-1", Package: "stdlib", Reachable: report.ReachableFalse}, {ID: "CVE-1", Package: "zlib"}}}}
	if err := writeVulnTable(&b, r); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^  GO-1 .* false +- `).MatchString(b.String()) || !regexp.MustCompile(`(?m)^  CVE-1 .* - +- +-`).MatchString(b.String()) {
		t.Errorf("table:\n%s", b.String())
	}
	b.Reset()
	r.Result.Vulnerabilities = r.Result.Vulnerabilities[1:]
	if err := writeVulnTable(&b, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "REACHABLE") {
		t.Errorf("REACHABLE column without a Go finding:\n%s", b.String())
	}
}

// TestVulnTableInUse: the IN USE column shows beside REACHABLE for a target with runtime data (a finding marked true
// or false), and not for one whose findings are all unknown or unmarked.
func TestVulnTableInUse(t *testing.T) {
	var b bytes.Buffer
	r := report.Report{Target: report.Target{Kind: "container", Container: "c"}, Result: &report.Result{Vulnerabilities: []report.Vulnerability{
		{ID: "GO-1", Package: "stdlib", Reachable: report.ReachableTrue, InUse: report.InUseTrue},
		{ID: "CVE-1", Package: "zlib", InUse: report.InUseFalse},
		{ID: "GHSA-1", Package: "left-pad", InUse: report.InUseUnknown}}}}
	if err := writeVulnTable(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, re := range []string{`(?m)^  ID .*REACHABLE +IN USE +ALIASES`, `(?m)^  GO-1 .* true +true +- `, `(?m)^  CVE-1 .* - +false +- `, `(?m)^  GHSA-1 .* - +unknown +- `} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("table does not match %s:\n%s", re, out)
		}
	}
	for i := range r.Result.Vulnerabilities {
		r.Result.Vulnerabilities[i].InUse = report.InUseUnknown
	}
	b.Reset()
	if err := writeVulnTable(&b, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "IN USE") || !strings.Contains(b.String(), "REACHABLE") {
		t.Errorf("without runtime data:\n%s", b.String())
	}
}

// TestTableEscapesHostileNames: every string a container controls is shown escaped in the table. A name holding a
// newline, an ANSI colour, U+2028 and U+0085 adds no line and no escape sequence, and reads back visibly escaped.
func TestTableEscapesHostileNames(t *testing.T) {
	const hostile = "evil\nFORGED LINE\x1b[31mred\u2028sep\u0085nel"
	const shown = `evil\nFORGED LINE\x1b[31mred\u2028sep\u0085nel`
	mk := func(name string) Document {
		return Document{Node: name, VulnDB: &vuln.Status{Checked: true}, Reports: []report.Report{
			{Target: report.Target{Kind: "container", ContainerID: "c1", Namespace: name, Pod: name, Container: name, Image: name, State: name},
				Result: &report.Result{
					OS:              &report.OS{ID: name, VersionID: name},
					Packages:        []report.Package{{Name: name, Version: name, Arch: name, Source: name, SourceVersion: name + "x", Ecosystem: name}},
					Vulnerabilities: []report.Vulnerability{{ID: name, Package: name, Version: name, FixedVersion: name, Aliases: []string{name}, Summary: name, Reachable: report.ReachableTrue}},
					Compliance:      []report.ControlResult{{Status: report.ControlFailed, Profile: name, ID: name, Title: name, Message: name}},
					Integrity:       []report.IntegrityFinding{{Path: name, Package: name, Algorithm: name, Expected: name, Found: name}},
					Drift:           []report.DriftEntry{{Path: name, Change: report.DriftAdded, Executable: true, SHA256: name}},
					Errors:          []report.FileError{{Analyzer: "a", Path: name, Err: name}},
				},
				Incomplete: &report.Incomplete{Reason: report.IncompleteDeadline, Analyzer: name, Path: name}},
			{Target: report.Target{Kind: "container", ContainerID: "c2", Pod: name}, Error: name},
		}}
	}
	var plain, got bytes.Buffer
	if err := Write(&plain, "table", mk("benign"), Options{ShowPackages: true}); err != nil {
		t.Fatal(err)
	}
	if err := Write(&got, "table", mk(hostile), Options{ShowPackages: true}); err != nil {
		t.Fatal(err)
	}
	out := got.String()
	if n, want := strings.Count(out, "\n"), strings.Count(plain.String(), "\n"); n != want {
		t.Errorf("hostile names: %d lines, want %d as with benign names:\n%s", n, want, out)
	}
	for _, bad := range []string{"\x1b", "\u2028", "\u0085", "\nFORGED"} {
		if strings.Contains(out, bad) {
			t.Errorf("table holds %q:\n%s", bad, out)
		}
	}
	// Each place a name is printed shows it escaped: as many escaped copies as the benign table has names.
	if n, want := strings.Count(out, shown), strings.Count(plain.String(), "benign"); n == 0 || n != want {
		t.Errorf("table shows the escaped name %d times, want %d (once per name shown):\n%s", n, want, out)
	}
}
