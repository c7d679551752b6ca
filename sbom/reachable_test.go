package sbom

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rootscan/rootscan/internal/testbed/sbomtest"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/vuln"
)

// goReport is vulnReport with two Go findings in a program: one whose vulnerable code is compiled in, one whose
// is not.
func goReport() report.Report {
	rep := vulnReport()
	r := rep.Result
	r.Packages = append(r.Packages, report.Package{Name: "golang.org/x/net", Version: "0.7.0", Ecosystem: "Go",
		PURL: "pkg:golang/golang.org/x/net@v0.7.0", Locations: []string{"usr/bin/app"}})
	goVuln := func(id string, reach report.Reachability) report.Vulnerability {
		return report.Vulnerability{ID: id, Severity: report.SeverityHigh, Package: "golang.org/x/net", Version: "0.7.0",
			Ecosystem: "Go", PURL: "pkg:golang/golang.org/x/net@v0.7.0", FixedVersion: "0.23.0", Reachable: reach}
	}
	r.Vulnerabilities = append(r.Vulnerabilities, goVuln("GO-2024-2687", report.ReachableTrue), goVuln("GO-2023-1571", report.ReachableFalse))
	return rep
}

// TestVEXUnreachable: unreachable Go findings are not_affected (vulnerable_code_not_in_execute_path) in CycloneDX
// VEX and OpenVEX only with UnreachableNotAffected; reachability shows as a SARIF and a CycloneDX property; and
// rootscan's own VEX reader, given the OpenVEX document, suppresses exactly the findings it states not affected.
func TestVEXUnreachable(t *testing.T) {
	for _, flag := range []bool{false, true} {
		opts := Options{UnreachableNotAffected: flag}
		var cdxBuf, vexBuf, sarifBuf bytes.Buffer
		if err := CycloneDXVEX(&cdxBuf, []report.Report{goReport()}, opts); err != nil {
			t.Fatal(err)
		}
		if err := sbomtest.ValidateCycloneDX(cdxBuf.Bytes()); err != nil {
			t.Fatalf("CycloneDX schema: %v", err)
		}
		var doc struct {
			Vulnerabilities []struct {
				ID         string
				Properties []struct{ Name, Value string }
				Analysis   *struct{ State, Justification, Detail string }
			}
		}
		if err := json.Unmarshal(cdxBuf.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		for _, v := range doc.Vulnerabilities {
			switch v.ID {
			case "GO-2023-1571":
				if len(v.Properties) != 1 || v.Properties[0].Value != "false" {
					t.Errorf("CycloneDX %s properties %+v", v.ID, v.Properties)
				}
				if flag != (v.Analysis != nil && v.Analysis.State == "not_affected" && v.Analysis.Justification == "code_not_reachable") {
					t.Errorf("CycloneDX unreachable finding with flag %v: analysis %+v", flag, v.Analysis)
				}
			case "GO-2024-2687":
				if v.Analysis != nil || len(v.Properties) != 1 || v.Properties[0].Value != "true" {
					t.Errorf("CycloneDX reachable finding: %+v", v)
				}
			}
		}

		if err := OpenVEX(&vexBuf, []report.Report{goReport()}, opts); err != nil {
			t.Fatal(err)
		}
		vexDir := t.TempDir()
		if err := os.WriteFile(filepath.Join(vexDir, "rootscan.openvex.json"), vexBuf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		x, err := vuln.LoadVEX(vexDir)
		if err != nil {
			t.Fatalf("rootscan cannot read its OpenVEX: %v\n%s", err, vexBuf.String())
		}
		rep := goReport()
		fresh := rep.Result.Vulnerabilities
		for i := range fresh {
			fresh[i].Suppressed = nil
		}
		x.Apply(rep.Target, fresh)
		var suppressed []string
		for _, v := range fresh {
			if v.Suppressed != nil {
				suppressed = append(suppressed, v.ID+":"+v.Suppressed.Justification)
			}
		}
		want := []string{"DSA-5532-1:vulnerable_code_not_in_execute_path"}
		if flag {
			want = append(want, "GO-2023-1571:vulnerable_code_not_in_execute_path")
		}
		if !slices.Equal(suppressed, want) {
			t.Errorf("OpenVEX with flag %v suppresses %v, want %v\n%s", flag, suppressed, want, vexBuf.String())
		}
		if !strings.Contains(vexBuf.String(), `"action_statement": "Upgrade golang.org/x/net to 0.23.0 or later."`) {
			t.Errorf("OpenVEX: no action for an affected finding:\n%s", vexBuf.String())
		}

		if err := SARIF(&sarifBuf, []report.Report{goReport()}, opts); err != nil {
			t.Fatal(err)
		}
		if err := sbomtest.ValidateSARIF(sarifBuf.Bytes()); err != nil {
			t.Fatalf("SARIF schema: %v", err)
		}
		var sl sarifLog
		if err := json.Unmarshal(sarifBuf.Bytes(), &sl); err != nil {
			t.Fatal(err)
		}
		got := map[string]any{}
		for _, r := range sl.Runs[0].Results {
			got[r.RuleID] = r.Properties["reachable"]
		}
		if got["GO-2024-2687"] != "true" || got["GO-2023-1571"] != "false" || got["GHSA-j8r2-6x86-q33q"] != nil {
			t.Errorf("SARIF reachable properties: %v", got)
		}
	}
}
