package sbom

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/rootscan/rootscan/report"
)

// CycloneDXVEX writes the vulnerabilities of the reports as a CycloneDX 1.6 document: each target is a component
// with the affected packages nested in it, each finding a vulnerability entry (ratings with the CVSS method and
// vector, aliases as references, the fix as recommendation) whose analysis carries the VEX state: not_affected or
// resolved for VEX-suppressed findings (and not_affected for unreachable Go findings with
// Options.UnreachableNotAffected), exploitable-unknown (no analysis) for open ones; Go findings carry their
// reachability as the property rootscan:vulnerability:reachable. Tools such as Dependency-Track import it as a
// VEX/VDR.
func CycloneDXVEX(w io.Writer, reps []report.Report, opts Options) error {
	bom := cdx.NewBOM()
	bom.SerialNumber = "urn:uuid:" + opts.uuid()
	bom.Metadata = &cdx.Metadata{
		Timestamp: opts.now().Format(time.RFC3339),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: "rootscan", Version: opts.version(),
		}}},
	}
	if len(reps) == 1 {
		bom.Metadata.Component = cdxTarget(reps[0].Target)
	}
	comps := []cdx.Component{}
	vulns := []cdx.Vulnerability{}
	for ti, rep := range reps {
		if rep.Result == nil || len(rep.Result.Vulnerabilities) == 0 {
			continue
		}
		targetRef := "target"
		if len(reps) > 1 {
			t := cdxTarget(rep.Target)
			targetRef = "target:" + strconv.Itoa(ti)
			t.BOMRef = targetRef
			comps = append(comps, *t)
		}
		refs := map[string]string{}
		var nested []cdx.Component
		for _, v := range rep.Result.Vulnerabilities {
			key := v.Ecosystem + "/" + v.Package + "@" + v.Version + "|" + v.PURL
			ref, ok := refs[key]
			if !ok {
				ref = fmt.Sprintf("%s/pkg:%d", targetRef, len(refs))
				refs[key] = ref
				nested = append(nested, cdx.Component{BOMRef: ref, Type: cdx.ComponentTypeLibrary, Name: v.Package, Version: v.Version, PackageURL: v.PURL})
			}
			vulns = append(vulns, cdxVuln(v, ref, len(vulns), opts))
		}
		if len(reps) > 1 {
			comps[len(comps)-1].Components = &nested
		} else {
			comps = append(comps, nested...)
		}
	}
	bom.Components = &comps
	bom.Vulnerabilities = &vulns
	return encodeCycloneDX(w, bom, "CycloneDX VEX")
}

func cdxVuln(v report.Vulnerability, ref string, i int, opts Options) cdx.Vulnerability {
	cv := cdx.Vulnerability{
		BOMRef:      fmt.Sprintf("vuln:%d", i),
		ID:          v.ID,
		Source:      &cdx.Source{Name: "OSV", URL: "https://osv.dev/vulnerability/" + v.ID},
		Description: v.Summary,
		Affects: &[]cdx.Affects{{Ref: ref, Range: &[]cdx.AffectedVersions{{
			Version: v.Version, Status: cdx.VulnerabilityStatusAffected,
		}}}},
	}
	rating := cdx.VulnerabilityRating{Severity: cdxSeverity(v.Severity)}
	if v.Vector != "" {
		score := v.Score
		rating.Score = &score
		rating.Vector = v.Vector
		rating.Method = cdxMethod(v.Vector)
	}
	cv.Ratings = &[]cdx.VulnerabilityRating{rating}
	if len(v.Aliases) > 0 {
		refs := make([]cdx.VulnerabilityReference, 0, len(v.Aliases))
		for _, a := range v.Aliases {
			refs = append(refs, cdx.VulnerabilityReference{ID: a, Source: &cdx.Source{URL: "https://osv.dev/vulnerability/" + a}})
		}
		cv.References = &refs
	}
	if v.FixedVersion != "" {
		cv.Recommendation = fmt.Sprintf("Upgrade %s to %s or later.", v.Package, v.FixedVersion)
	}
	var props []cdx.Property
	if v.Reachable != "" {
		props = append(props, cdx.Property{Name: "rootscan:vulnerability:reachable", Value: string(v.Reachable)})
	}
	if v.InUse != "" {
		props = append(props, cdx.Property{Name: "rootscan:vulnerability:in-use", Value: string(v.InUse)})
	}
	if props != nil {
		cv.Properties = &props
	}
	switch status, justification, detail := vexVerdict(v, opts); status {
	case vexFixed:
		cv.Analysis = &cdx.VulnerabilityAnalysis{State: cdx.IASResolved, Detail: detail}
	case vexNotAffected:
		cv.Analysis = &cdx.VulnerabilityAnalysis{State: cdx.IASNotAffected, Justification: cdxJustification(justification), Detail: detail}
	}
	return cv
}

func cdxSeverity(s report.Severity) cdx.Severity {
	switch s {
	case report.SeverityCritical:
		return cdx.SeverityCritical
	case report.SeverityHigh:
		return cdx.SeverityHigh
	case report.SeverityMedium:
		return cdx.SeverityMedium
	case report.SeverityLow:
		return cdx.SeverityLow
	case report.SeverityNone:
		return cdx.SeverityNone
	}
	return cdx.SeverityUnknown
}

func cdxMethod(vector string) cdx.ScoringMethod {
	switch {
	case strings.HasPrefix(vector, "CVSS:4.0/"):
		return cdx.ScoringMethodCVSSv4
	case strings.HasPrefix(vector, "CVSS:3.1/"):
		return cdx.ScoringMethodCVSSv31
	case strings.HasPrefix(vector, "CVSS:3.0/"):
		return cdx.ScoringMethodCVSSv3
	}
	return cdx.ScoringMethodCVSSv2
}

// cdxJustification maps OpenVEX justifications onto CycloneDX's (CISA's VEX minimum requirements pair them so).
func cdxJustification(j string) cdx.ImpactAnalysisJustification {
	switch j {
	case "component_not_present", "vulnerable_code_not_present":
		return cdx.IAJCodeNotPresent
	case "vulnerable_code_not_in_execute_path":
		return cdx.IAJCodeNotReachable
	case "vulnerable_code_cannot_be_controlled_by_adversary":
		return cdx.IAJRequiresEnvironment
	case "inline_mitigations_already_exist":
		return cdx.IAJProtectedByMitigatingControl
	}
	return ""
}
