package sbom

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rootscan/rootscan/report"
)

// OpenVEX statuses and the justification rootscan states for Go findings whose vulnerable code is not in the
// program.
const (
	vexAffected    = "affected"
	vexNotAffected = "not_affected"
	vexFixed       = "fixed"
	vexNotInPath   = "vulnerable_code_not_in_execute_path"
)

// unreachableDetail says what the not_affected verdict of an unreachable Go finding rests on.
const unreachableDetail = "rootscan: none of the advisory's vulnerable functions is compiled into the program " +
	"(govulncheck's binary analysis of its function table)"

// vexVerdict is a finding's VEX status, justification and the detail behind it: a VEX statement's when one
// suppressed it; not_affected for a Go finding known unreachable when opts ask for it; affected otherwise.
func vexVerdict(v report.Vulnerability, opts Options) (status, justification, detail string) {
	if s := v.Suppressed; s != nil {
		detail = strings.TrimSpace(s.Justification + " (" + s.Source + ")")
		if s.Status == vexFixed {
			return vexFixed, "", detail
		}
		return vexNotAffected, s.Justification, detail
	}
	if opts.UnreachableNotAffected && v.Reachable == report.ReachableFalse {
		return vexNotAffected, vexNotInPath, unreachableDetail
	}
	return vexAffected, "", ""
}

type openVEXDoc struct {
	Context    string        `json:"@context"`
	ID         string        `json:"@id"`
	Author     string        `json:"author"`
	Timestamp  string        `json:"timestamp"`
	Version    int           `json:"version"`
	Tooling    string        `json:"tooling"`
	Statements []openVEXStmt `json:"statements"`
}

type openVEXStmt struct {
	Vulnerability   openVEXVuln      `json:"vulnerability"`
	Products        []openVEXProduct `json:"products"`
	Status          string           `json:"status"`
	Justification   string           `json:"justification,omitempty"`
	ImpactStatement string           `json:"impact_statement,omitempty"`
	ActionStatement string           `json:"action_statement,omitempty"`
}

type openVEXVuln struct {
	Name    string   `json:"name"`
	Aliases []string `json:"aliases,omitempty"`
}

type openVEXProduct struct {
	ID            string             `json:"@id"`
	Subcomponents []openVEXComponent `json:"subcomponents,omitempty"`
}

type openVEXComponent struct {
	ID string `json:"@id"`
}

// OpenVEX writes the vulnerabilities of the reports as one OpenVEX 0.2.0 document: a statement per finding whose
// product is the target's image (its digest, with the package's purl as subcomponent) or, for a target without an
// image, the package's purl. Findings a VEX document suppressed keep that document's status and justification;
// with Options.UnreachableNotAffected, Go findings whose vulnerable code is not in the program are not_affected
// (vulnerable_code_not_in_execute_path); all others are affected, with the fix as action. A finding with neither
// an image nor a purl names no product and is left out. rootscan reads its own output back with --vex.
func OpenVEX(w io.Writer, reps []report.Report, opts Options) error {
	doc := openVEXDoc{
		Context: "https://openvex.dev/ns/v0.2.0", ID: "urn:uuid:" + opts.uuid(), Author: "rootscan",
		Timestamp: opts.now().Format(time.RFC3339), Version: 1, Tooling: "rootscan " + opts.version(),
		Statements: []openVEXStmt{},
	}
	for _, rep := range reps {
		if rep.Result == nil {
			continue
		}
		for _, v := range rep.Result.Vulnerabilities {
			prod, ok := openVEXProductOf(rep.Target, v)
			if !ok {
				continue
			}
			st := openVEXStmt{Vulnerability: openVEXVuln{Name: v.ID, Aliases: v.Aliases}, Products: []openVEXProduct{prod}}
			st.Status, st.Justification, st.ImpactStatement = vexVerdict(v, opts)
			if st.Status == vexAffected {
				st.ActionStatement = "No fixed version is known."
				if v.FixedVersion != "" {
					st.ActionStatement = fmt.Sprintf("Upgrade %s to %s or later.", v.Package, v.FixedVersion)
				}
			}
			doc.Statements = append(doc.Statements, st)
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("encode OpenVEX: %w", err)
	}
	return nil
}

func openVEXProductOf(t report.Target, v report.Vulnerability) (openVEXProduct, bool) {
	if t.ImageDigest != "" {
		p := openVEXProduct{ID: t.ImageDigest}
		if v.PURL != "" {
			p.Subcomponents = []openVEXComponent{{ID: v.PURL}}
		}
		return p, true
	}
	return openVEXProduct{ID: v.PURL}, v.PURL != ""
}
