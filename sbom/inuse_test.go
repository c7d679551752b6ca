package sbom

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/rootscan/rootscan/internal/testbed/sbomtest"
	"github.com/rootscan/rootscan/report"
)

// TestInUseProperties: the runtime verdict is a SARIF result property and a CycloneDX vulnerability property next to
// reachability; a finding never marked has neither.
func TestInUseProperties(t *testing.T) {
	rep := goReport()
	vs := rep.Result.Vulnerabilities
	want := map[string]any{}
	for i := range vs {
		switch vs[i].ID {
		case "GO-2024-2687":
			vs[i].InUse = report.InUseTrue
		case "GO-2023-1571":
			vs[i].InUse = report.InUseFalse
		default:
			continue
		}
		want[vs[i].ID] = string(vs[i].InUse)
	}
	if len(want) != 2 {
		t.Fatalf("the report lost its Go findings: %+v", vs)
	}
	var sarifBuf, cdxBuf bytes.Buffer
	if err := SARIF(&sarifBuf, []report.Report{rep}, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := sbomtest.ValidateSARIF(sarifBuf.Bytes()); err != nil {
		t.Fatalf("SARIF schema: %v", err)
	}
	var sl sarifLog
	if err := json.Unmarshal(sarifBuf.Bytes(), &sl); err != nil {
		t.Fatal(err)
	}
	for _, r := range sl.Runs[0].Results {
		if got := r.Properties["inUse"]; got != want[r.RuleID] {
			t.Errorf("SARIF %s inUse = %v, want %v", r.RuleID, got, want[r.RuleID])
		}
		if _, ok := want[r.RuleID]; ok && r.Properties["reachable"] == nil {
			t.Errorf("SARIF %s lost reachable: %v", r.RuleID, r.Properties)
		}
	}

	if err := CycloneDXVEX(&cdxBuf, []report.Report{rep}, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := sbomtest.ValidateCycloneDX(cdxBuf.Bytes()); err != nil {
		t.Fatalf("CycloneDX schema: %v", err)
	}
	var doc struct {
		Vulnerabilities []struct {
			ID         string
			Properties []struct{ Name, Value string }
		}
	}
	if err := json.Unmarshal(cdxBuf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, v := range doc.Vulnerabilities {
		got := map[string]string{}
		for _, p := range v.Properties {
			got[p.Name] = p.Value
		}
		if w, ok := want[v.ID]; ok != (got["rootscan:vulnerability:in-use"] != "") || (ok && got["rootscan:vulnerability:in-use"] != w) {
			t.Errorf("CycloneDX %s properties %v, want in-use %v", v.ID, got, w)
		}
	}
}
