package output

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/rootscan/rootscan/report"
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
