package exporter

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/rootscan/rootscan/report"
)

// Bounds on what one finding carries: advisories and control messages can be long, and every byte is spooled once
// per sink and sent over syslog, where many receivers cut messages at 8 KiB or 64 KiB.
const (
	maxSummary = 1024
	maxMessage = 2048
)

// MaxFindingsPerTarget bounds the findings tracked for one target: a container that creates files without end (a
// cache under a drift-watched path) must not grow the tracker's state or the spool without end. Past it the
// remaining findings (lowest severity last) are not tracked.
const MaxFindingsPerTarget = 20000

// Findings lists the open findings of a report: unsuppressed vulnerabilities, failed controls, drift entries,
// integrity findings and unowned executables, each with its stable ID, sorted by ID. A report without a result (a
// failed scan) has none. Suppressed vulnerabilities are not open findings (see suppressedIDs).
func Findings(rep report.Report) []Finding {
	r := rep.Result
	if r == nil {
		return nil
	}
	key := targetKey(rep.Target)
	seen := make(map[string]bool)
	var out []Finding
	add := func(f Finding, subject ...string) {
		f.ID = stableID(append([]string{key, string(f.Kind)}, subject...)...)
		if seen[f.ID] {
			return // the same advisory on the same package twice (two binaries with one module): one finding
		}
		seen[f.ID] = true
		out = append(out, f)
	}
	for _, v := range r.Vulnerabilities {
		if v.Suppressed != nil {
			continue
		}
		add(vulnFinding(v), vulnSubject(v)...)
	}
	for _, c := range r.Compliance {
		if c.Status != report.ControlFailed || c.Waiver != nil {
			continue
		}
		c.Message = truncate(c.Message, maxMessage)
		c.Title = truncate(c.Title, maxSummary)
		title := c.ID
		if c.Title != "" {
			title += ": " + c.Title
		}
		add(Finding{Kind: KindCompliance, Title: title, Severity: c.Severity, Control: &c}, c.Profile, c.ID)
	}
	for _, d := range r.Drift {
		sev := report.SeverityLow
		if d.Executable && d.Change != report.DriftDeleted {
			sev = report.SeverityHigh
		}
		title := fmt.Sprintf("%s %s %s", d.Type, d.Path, d.Change)
		if d.Executable {
			title = fmt.Sprintf("executable %s %s", d.Path, d.Change)
		}
		add(Finding{Kind: KindDrift, Title: title, Severity: sev, Drift: &d}, d.Path, d.Change)
	}
	for _, i := range r.Integrity {
		title := fmt.Sprintf("%s of package %s modified", i.Path, i.Package)
		if i.Found == "" {
			title = fmt.Sprintf("%s of package %s missing", i.Path, i.Package)
		}
		add(Finding{Kind: KindIntegrity, Title: title, Severity: report.SeverityMedium, Integrity: &i}, i.Ecosystem, i.Package, i.Path)
	}
	for _, f := range r.Files {
		add(Finding{Kind: KindUnownedFile, Title: "executable " + f.Path + " owned by no package", Severity: report.SeverityLow, File: &f}, f.Path)
	}
	if len(out) > MaxFindingsPerTarget {
		slices.SortStableFunc(out, func(a, b Finding) int { return b.Severity.Rank() - a.Severity.Rank() })
		out = out[:MaxFindingsPerTarget]
	}
	slices.SortFunc(out, func(a, b Finding) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// suppressedIDs are the finding IDs of VEX-suppressed vulnerabilities, so a finding that resolves because of a VEX
// statement says so (ReasonSuppressed) instead of looking fixed.
func suppressedIDs(rep report.Report) map[string]bool {
	if rep.Result == nil {
		return nil
	}
	key := targetKey(rep.Target)
	ids := make(map[string]bool)
	for _, v := range rep.Result.Vulnerabilities {
		if v.Suppressed != nil {
			ids[stableID(append([]string{key, string(KindVulnerability)}, vulnSubject(v)...)...)] = true
		}
	}
	return ids
}

// vulnSubject is advisory + package, not version: an upgrade that leaves the package vulnerable keeps the finding.
func vulnSubject(v report.Vulnerability) []string { return []string{v.ID, v.Ecosystem, v.Package} }

func vulnFinding(v report.Vulnerability) Finding {
	v.Summary = truncate(v.Summary, maxSummary)
	if len(v.Aliases) > 16 {
		v.Aliases = v.Aliases[:16]
	}
	return Finding{Kind: KindVulnerability, Title: fmt.Sprintf("%s in %s %s", v.ID, v.Package, v.Version),
		Severity: v.Severity, Vulnerability: &v}
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence, marking the cut with an ellipsis.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.ToValidUTF8(s[:cut], "") + "…"
}
