package sbom

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/rootscan/rootscan/report"
)

// SARIF 2.1.0 (OASIS), the format GitHub code scanning, GitLab and Azure DevOps import. Written with local types:
// rootscan needs a dozen fields, and the Go SARIF libraries (owenrumney/go-sarif) add nothing but a dependency.
//
// One run; one rule per advisory (id, summary, osv.dev link, "security-severity" as GitHub ranks it); one result
// per (advisory, package, target) located at the files that say the package is installed, with the target in a
// logical location. VEX-suppressed findings carry an external, accepted suppression instead of being dropped.

type sarifLog struct {
	Version string     `json:"version"`
	Schema  string     `json:"$schema"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifRule struct {
	ID                   string         `json:"id"`
	ShortDescription     sarifText      `json:"shortDescription"`
	FullDescription      *sarifText     `json:"fullDescription,omitempty"`
	HelpURI              string         `json:"helpUri,omitempty"`
	Help                 *sarifText     `json:"help,omitempty"`
	DefaultConfiguration sarifConfig    `json:"defaultConfiguration"`
	Properties           map[string]any `json:"properties"`
}

type sarifConfig struct {
	Level string `json:"level"`
}

type sarifResult struct {
	RuleID              string             `json:"ruleId"`
	RuleIndex           int                `json:"ruleIndex"`
	Level               string             `json:"level"`
	Message             sarifText          `json:"message"`
	Locations           []sarifLocation    `json:"locations"`
	PartialFingerprints map[string]string  `json:"partialFingerprints"`
	Suppressions        []sarifSuppression `json:"suppressions,omitempty"`
	Properties          map[string]any     `json:"properties,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation *sarifPhysical `json:"physicalLocation,omitempty"`
	LogicalLocations []sarifLogical `json:"logicalLocations,omitempty"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifLogical struct {
	Name               string `json:"name"`
	FullyQualifiedName string `json:"fullyQualifiedName,omitempty"`
	Kind               string `json:"kind"`
}

type sarifSuppression struct {
	Kind          string `json:"kind"`
	Status        string `json:"status"`
	Justification string `json:"justification,omitempty"`
}

// SARIFSchema is the schema URI SARIF documents declare.
const SARIFSchema = "https://json.schemastore.org/sarif-2.1.0.json"

// securitySeverity is the number GitHub reads to rank a result (>= 9 critical, >= 7 high, >= 4 medium, else
// low): the CVSS score when there is one, else the middle of the severity's band.
func securitySeverity(v report.Vulnerability) string {
	if v.Score > 0 {
		return fmt.Sprintf("%.1f", v.Score)
	}
	switch v.Severity {
	case report.SeverityCritical:
		return "9.5"
	case report.SeverityHigh:
		return "8.0"
	case report.SeverityMedium:
		return "5.5"
	case report.SeverityLow:
		return "2.0"
	}
	return "0.0"
}

// sarifLevel maps severities onto SARIF's levels: critical and high are errors, medium warnings, the rest notes.
func sarifLevel(s report.Severity) string {
	switch s {
	case report.SeverityCritical, report.SeverityHigh:
		return "error"
	case report.SeverityMedium:
		return "warning"
	}
	return "note"
}

// SARIF writes the vulnerabilities of the reports as one SARIF 2.1.0 run.
func SARIF(w io.Writer, reps []report.Report, opts Options) error {
	run := sarifRun{
		Tool: sarifTool{Driver: sarifDriver{
			Name: "rootscan", Version: opts.version(), InformationURI: "https://github.com/rootscan/rootscan", Rules: []sarifRule{},
		}},
		Results: []sarifResult{},
	}
	ruleIndex := map[string]int{}
	for _, rep := range reps {
		if rep.Result == nil {
			continue
		}
		target := targetName(rep.Target)
		for _, v := range rep.Result.Vulnerabilities {
			idx, ok := ruleIndex[v.ID]
			if !ok {
				idx = len(run.Tool.Driver.Rules)
				ruleIndex[v.ID] = idx
				run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sarifRuleFor(v))
			}
			run.Results = append(run.Results, sarifResultFor(v, idx, rep, target))
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(sarifLog{Version: "2.1.0", Schema: SARIFSchema, Runs: []sarifRun{run}}); err != nil {
		return fmt.Errorf("encode SARIF: %w", err)
	}
	return nil
}

func sarifRuleFor(v report.Vulnerability) sarifRule {
	short := v.Summary
	if short == "" {
		short = v.ID
	}
	r := sarifRule{
		ID:                   v.ID,
		ShortDescription:     sarifText{Text: short},
		HelpURI:              "https://osv.dev/vulnerability/" + v.ID,
		DefaultConfiguration: sarifConfig{Level: sarifLevel(v.Severity)},
		Properties: map[string]any{
			"security-severity": securitySeverity(v),
			"tags":              []string{"vulnerability", "security", string(v.Severity)},
		},
	}
	if len(v.Aliases) > 0 {
		r.FullDescription = &sarifText{Text: short + " (" + strings.Join(v.Aliases, ", ") + ")"}
	}
	help := fmt.Sprintf("%s, severity %s", v.ID, v.Severity)
	if v.Vector != "" {
		help += fmt.Sprintf(" (CVSS %.1f %s)", v.Score, v.Vector)
	}
	r.Help = &sarifText{Text: help + ". See https://osv.dev/vulnerability/" + v.ID}
	return r
}

func sarifResultFor(v report.Vulnerability, idx int, rep report.Report, target string) sarifResult {
	msg := fmt.Sprintf("%s %s (%s) in %s is affected by %s", v.Package, v.Version, v.Ecosystem, target, v.ID)
	if v.FixedVersion != "" {
		msg += "; fixed in " + v.FixedVersion
	} else {
		msg += "; no fix available"
	}
	logical := sarifLogical{Name: target, FullyQualifiedName: target + "/" + v.Package + "@" + v.Version, Kind: "module"}
	var locs []sarifLocation
	for _, p := range packageLocations(rep.Result, v) {
		locs = append(locs, sarifLocation{PhysicalLocation: &sarifPhysical{ArtifactLocation: sarifArtifact{URI: p}}, LogicalLocations: []sarifLogical{logical}})
	}
	if len(locs) == 0 {
		locs = []sarifLocation{{LogicalLocations: []sarifLogical{logical}}}
	}
	// The fingerprint keeps a finding's identity across scans (code scanning de-duplicates on it): target, package,
	// advisory; not the version, so an upgrade that does not fix it stays the same alert.
	sum := sha256.Sum256([]byte(rep.Target.ContainerID + "|" + rep.Target.ImageDigest + "|" + rep.Target.Path + "|" + v.Ecosystem + "|" + v.Package + "|" + v.ID))
	res := sarifResult{
		RuleID: v.ID, RuleIndex: idx, Level: sarifLevel(v.Severity), Message: sarifText{Text: msg}, Locations: locs,
		PartialFingerprints: map[string]string{"rootscanFinding/v1": hex.EncodeToString(sum[:16])},
		Properties: map[string]any{
			"package": v.Package, "installedVersion": v.Version, "ecosystem": v.Ecosystem, "purl": v.PURL,
			"fixedVersion": v.FixedVersion, "severity": string(v.Severity), "target": target,
		},
	}
	if v.Reachable != "" {
		res.Properties["reachable"] = string(v.Reachable)
	}
	if v.InUse != "" {
		res.Properties["inUse"] = string(v.InUse)
	}
	if s := v.Suppressed; s != nil {
		res.Suppressions = []sarifSuppression{{Kind: "external", Status: "accepted", Justification: strings.TrimSpace(s.Status + ": " + s.Justification + " (" + s.Source + ")")}}
	}
	return res
}

// packageLocations are the files that list the finding's package, relative to the root.
func packageLocations(res *report.Result, v report.Vulnerability) []string {
	for _, p := range res.Packages {
		if p.Name == v.Package && p.Version == v.Version && p.Ecosystem == v.Ecosystem && (v.PURL == "" || p.PURL == v.PURL) {
			return p.Locations
		}
	}
	return nil
}
