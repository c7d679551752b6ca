package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/vuln"
)

// vulnDBStatus tells JSON consumers whether vulnerabilities were checked, and against what: an empty vulnerability
// list means "none known" only when Checked is true.
type vulnDBStatus struct {
	Checked    bool      `json:"checked"`
	Path       string    `json:"path,omitempty"`
	Built      time.Time `json:"built,omitzero"`
	Advisories int       `json:"advisories,omitempty"`
	Reason     string    `json:"reason,omitempty"`
}

// severityFilter is --severity: one level means that level and above ("HIGH": HIGH and CRITICAL); a comma list
// means exactly those levels ("LOW,UNKNOWN"), as trivy reads it.
type severityFilter struct {
	min int
	set map[report.Severity]bool
}

var allSeverities = []report.Severity{report.SeverityCritical, report.SeverityHigh, report.SeverityMedium, report.SeverityLow, report.SeverityUnknown, report.SeverityNone}

func parseSeverityFilter(s string) (severityFilter, error) {
	if s == "" {
		return severityFilter{}, nil
	}
	var levels []report.Severity
	for _, part := range strings.Split(s, ",") {
		sev := report.Severity(strings.ToUpper(strings.TrimSpace(part)))
		if !slices.Contains(allSeverities, sev) {
			return severityFilter{}, usageError{fmt.Sprintf("--severity %q: want CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN or NONE, or a comma list of them", part)}
		}
		levels = append(levels, sev)
	}
	if len(levels) == 1 {
		return severityFilter{min: levels[0].Rank()}, nil
	}
	f := severityFilter{set: map[report.Severity]bool{}}
	for _, l := range levels {
		f.set[l] = true
	}
	return f, nil
}

func (f severityFilter) keep(s report.Severity) bool {
	if f.set != nil {
		return f.set[s]
	}
	return s.Rank() >= f.min
}

// matchVulns adds every report's vulnerabilities from the database in dir, applies the VEX documents of vexDir
// and the severity filter, and returns the number of open (not suppressed) findings left. Without a database it
// says so once on stderr; the reports are left without findings and the status says why.
func matchVulns(ctx context.Context, dir, vexDir string, filter severityFilter, reports []report.Report, stderr io.Writer) (*vulnDBStatus, int, error) {
	var vex *vuln.VEX
	if vexDir != "" {
		var err error
		if vex, err = vuln.LoadVEX(vexDir); err != nil {
			return nil, 0, err
		}
	}
	db := openVulnDB(dir, stderr)
	if db == nil {
		return &vulnDBStatus{Reason: "no usable vulnerability database in " + dir}, 0, nil
	}
	defer db.Close()
	info := db.Info()
	st := &vulnDBStatus{Checked: true, Path: db.Path(), Built: info.Built, Advisories: info.Advisories}
	open := 0
	for i := range reports {
		res := reports[i].Result
		if res == nil {
			continue
		}
		if err := db.Match(ctx, res); err != nil {
			res.Errors = append(res.Errors, report.FileError{Analyzer: "vuln", Err: err.Error()})
			continue
		}
		vex.Apply(reports[i].Target, res.Vulnerabilities)
		res.Vulnerabilities = slices.DeleteFunc(res.Vulnerabilities, func(v report.Vulnerability) bool { return !filter.keep(v.Severity) })
		for _, v := range res.Vulnerabilities {
			if v.Suppressed == nil {
				open++
			}
		}
	}
	return st, open, nil
}

// vulnCounts reads "1 HIGH, 2 LOW" (open findings by severity, most severe first), "0" when none, plus the
// VEX-suppressed count.
func vulnCounts(vs []report.Vulnerability) string {
	counts := map[report.Severity]int{}
	suppressed := 0
	for _, v := range vs {
		if v.Suppressed != nil {
			suppressed++
			continue
		}
		counts[v.Severity]++
	}
	var parts []string
	for _, s := range allSeverities {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	out := strings.Join(parts, ", ")
	if out == "" {
		out = "0"
	}
	if suppressed > 0 {
		out += fmt.Sprintf(" (+%d suppressed)", suppressed)
	}
	return out
}
