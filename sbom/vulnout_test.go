package sbom

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/rootscan/rootscan/internal/testbed/sbomtest"
	"github.com/rootscan/rootscan/report"
)

func vulnReport() report.Report {
	return report.Report{
		Target: report.Target{Kind: "oci", Path: "/layouts/distroless", Image: "rootscan.test/distroless-base:1", ImageDigest: "sha256:4b9475e08c5180d4e7417dc6a18a26dcce7691e4311e5353dbb952645c5ff43f"},
		Result: &report.Result{
			OS: &report.OS{ID: "debian", VersionID: "12"},
			Packages: []report.Package{
				{Name: "libssl3", Version: "3.0.9-1", Ecosystem: "Debian", PURL: "pkg:deb/debian/libssl3@3.0.9-1?arch=amd64&distro=debian-12", Locations: []string{"var/lib/dpkg/status.d/libssl3"}},
				{Name: "requests", Version: "2.28.1", Ecosystem: "PyPI", PURL: "pkg:pypi/requests@2.28.1", Locations: []string{"usr/lib/python3/dist-packages/requests-2.28.1.egg-info/PKG-INFO"}},
			},
			Vulnerabilities: []report.Vulnerability{
				{ID: "GHSA-j8r2-6x86-q33q", Aliases: []string{"CVE-2023-32681"}, Summary: "Unintended leak of Proxy-Authorization header in requests",
					Severity: report.SeverityMedium, Score: 6.1, Vector: "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N",
					Package: "requests", Version: "2.28.1", Ecosystem: "PyPI", PURL: "pkg:pypi/requests@2.28.1", FixedVersion: "2.31.0"},
				{ID: "DSA-5532-1", Aliases: []string{"CVE-2023-4807", "CVE-2023-5363"}, Summary: "openssl - security update",
					Severity: report.SeverityMedium, Package: "libssl3", Version: "3.0.9-1", Ecosystem: "Debian", PURL: "pkg:deb/debian/libssl3@3.0.9-1?arch=amd64&distro=debian-12",
					FixedVersion: "3.0.11-1~deb12u1", Suppressed: &report.Suppression{Status: "not_affected", Justification: "vulnerable_code_not_in_execute_path", Source: "vex/a.json"}},
				{ID: "DEBIAN-CVE-2023-45853", Severity: report.SeverityUnknown, Package: "libssl3", Version: "3.0.9-1", Ecosystem: "Debian", PURL: "pkg:deb/debian/libssl3@3.0.9-1?arch=amd64&distro=debian-12"},
			},
		},
	}
}

func TestSARIF(t *testing.T) {
	var buf bytes.Buffer
	if err := SARIF(&buf, []report.Report{vulnReport(), {Target: report.Target{Kind: "dir", Path: "/x"}, Error: "boom"}}, Options{ToolVersion: "1.2.3"}); err != nil {
		t.Fatal(err)
	}
	if err := sbomtest.ValidateSARIF(buf.Bytes()); err != nil {
		t.Fatalf("SARIF 2.1.0 schema: %v\n%s", err, buf.String())
	}
	var doc sarifLog
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != "2.1.0" || len(doc.Runs) != 1 {
		t.Fatalf("doc = %+v", doc)
	}
	run := doc.Runs[0]
	if run.Tool.Driver.Name != "rootscan" || run.Tool.Driver.Version != "1.2.3" || len(run.Tool.Driver.Rules) != 3 || len(run.Results) != 3 {
		t.Fatalf("run: %+v", run)
	}
	rule := run.Tool.Driver.Rules[0]
	if rule.ID != "GHSA-j8r2-6x86-q33q" || rule.Properties["security-severity"] != "6.1" || rule.HelpURI != "https://osv.dev/vulnerability/GHSA-j8r2-6x86-q33q" {
		t.Errorf("rule: %+v", rule)
	}
	if got := run.Tool.Driver.Rules[2].Properties["security-severity"]; got != "0.0" {
		t.Errorf("unknown severity ranks %v", got)
	}
	r0 := run.Results[0]
	if r0.Level != "warning" || r0.Message.Text != "requests 2.28.1 (PyPI) in rootscan.test/distroless-base:1 is affected by GHSA-j8r2-6x86-q33q; fixed in 2.31.0" ||
		r0.Locations[0].PhysicalLocation.ArtifactLocation.URI != "usr/lib/python3/dist-packages/requests-2.28.1.egg-info/PKG-INFO" || len(r0.Suppressions) != 0 {
		t.Errorf("result 0: %+v", r0)
	}
	r1 := run.Results[1]
	if r1.RuleIndex != 1 || len(r1.Suppressions) != 1 || r1.Suppressions[0].Kind != "external" || r1.Suppressions[0].Status != "accepted" {
		t.Errorf("suppressed result: %+v", r1)
	}
	if run.Results[2].Level != "note" || run.Results[2].Message.Text[len(run.Results[2].Message.Text)-len("no fix available"):] != "no fix available" {
		t.Errorf("unknown result: %+v", run.Results[2])
	}
}

func TestCycloneDXVEX(t *testing.T) {
	var buf bytes.Buffer
	opts := Options{ToolVersion: "1.2.3", Now: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), UUID: "6f1c0b8e-2a6b-4d55-9b7e-1f0a8c3d2e11"}
	if err := CycloneDXVEX(&buf, []report.Report{vulnReport()}, opts); err != nil {
		t.Fatal(err)
	}
	if err := sbomtest.ValidateCycloneDX(buf.Bytes()); err != nil {
		t.Fatalf("schema: %v\n%s", err, buf.String())
	}
	var doc struct {
		Components []struct {
			BOMRef string `json:"bom-ref"`
			Name   string `json:"name"`
		} `json:"components"`
		Vulnerabilities []struct {
			ID      string `json:"id"`
			Ratings []struct {
				Score    float64 `json:"score"`
				Severity string  `json:"severity"`
				Method   string  `json:"method"`
			} `json:"ratings"`
			Recommendation string `json:"recommendation"`
			Analysis       *struct {
				State, Justification string
			} `json:"analysis"`
			Affects []struct {
				Ref string `json:"ref"`
			} `json:"affects"`
		} `json:"vulnerabilities"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Components) != 2 || len(doc.Vulnerabilities) != 3 {
		t.Fatalf("components %d, vulnerabilities %d", len(doc.Components), len(doc.Vulnerabilities))
	}
	v0 := doc.Vulnerabilities[0]
	if v0.ID != "GHSA-j8r2-6x86-q33q" || v0.Ratings[0].Score != 6.1 || v0.Ratings[0].Method != "CVSSv31" || v0.Ratings[0].Severity != "medium" ||
		v0.Recommendation != "Upgrade requests to 2.31.0 or later." || v0.Analysis != nil || v0.Affects[0].Ref != doc.Components[0].BOMRef {
		t.Errorf("open finding: %+v", v0)
	}
	v1 := doc.Vulnerabilities[1]
	if v1.Analysis == nil || v1.Analysis.State != "not_affected" || v1.Analysis.Justification != "code_not_reachable" || v1.Affects[0].Ref != doc.Components[1].BOMRef {
		t.Errorf("suppressed finding: %+v", v1)
	}
	if doc.Vulnerabilities[2].Ratings[0].Severity != "unknown" || doc.Vulnerabilities[2].Affects[0].Ref != v1.Affects[0].Ref {
		t.Errorf("unknown finding: %+v", doc.Vulnerabilities[2])
	}
	// Several targets: each is a component with its packages nested.
	buf.Reset()
	two := []report.Report{vulnReport(), vulnReport()}
	two[1].Target.Path = "/other"
	if err := CycloneDXVEX(&buf, two, opts); err != nil {
		t.Fatal(err)
	}
	if err := sbomtest.ValidateCycloneDX(buf.Bytes()); err != nil {
		t.Fatalf("schema (two targets): %v", err)
	}
}
