package cli

import (
	"strings"
	"testing"

	"github.com/rootscan/rootscan/report"
)

func TestControlGate(t *testing.T) {
	ctl := func(id, status string, sev report.Severity) report.ControlResult {
		return report.ControlResult{Profile: "p", ID: id, Status: status, Severity: sev}
	}
	reports := []report.Report{
		{Target: report.Target{Kind: "dir", Path: "/r"}, Result: &report.Result{Compliance: []report.ControlResult{
			ctl("crit-failed", report.ControlFailed, report.SeverityCritical),
			ctl("high-error", report.ControlError, report.SeverityHigh),
			ctl("high-waived", report.ControlSkipped, report.SeverityHigh),
			ctl("high-passed", report.ControlPassed, report.SeverityHigh),
			ctl("medium-failed", report.ControlFailed, report.SeverityMedium),
			ctl("low-failed", report.ControlFailed, report.SeverityLow),
			ctl("none-failed", report.ControlFailed, report.SeverityNone),
		}}},
		{Target: report.Target{Kind: "dir", Path: "/broken"}, Error: "cannot open"},
	}
	tests := []struct {
		flag string
		want string // failing control ids, comma separated
	}{
		{"", ""},
		{"CRITICAL", "crit-failed"},
		{"high", "crit-failed,high-error"},
		{"MEDIUM", "crit-failed,high-error,medium-failed"},
		{"LOW", "crit-failed,high-error,medium-failed,low-failed"},
		{"NONE", "crit-failed,high-error,medium-failed,low-failed,none-failed"},
		{"LOW,MEDIUM", "medium-failed,low-failed"},
	}
	for _, tt := range tests {
		g, err := parseControlGate(tt.flag)
		if err != nil {
			t.Fatalf("%q: %v", tt.flag, err)
		}
		var ids []string
		for _, f := range g.Failing(reports) {
			// "/r: p/ID (SEVERITY, status)"
			id := strings.TrimPrefix(f, "/r: p/")
			ids = append(ids, id[:strings.Index(id, " ")])
		}
		if got := strings.Join(ids, ","); got != tt.want {
			t.Errorf("--fail-on-controls %q fails on %q, want %q", tt.flag, got, tt.want)
		}
	}
	g, _ := parseControlGate("CRITICAL")
	if got := g.Failing(reports); len(got) != 1 || got[0] != "/r: p/crit-failed (CRITICAL, failed)" {
		t.Errorf("failing = %q", got)
	}
	for _, bad := range []string{"SEVERE", "HIGH,", "1"} {
		if _, err := parseControlGate(bad); err == nil || !strings.Contains(err.Error(), "--fail-on-controls") {
			t.Errorf("--fail-on-controls %q: %v", bad, err)
		}
	}
}

func TestControlGateReportBounded(t *testing.T) {
	var failing []string
	for i := range 25 {
		failing = append(failing, strings.Repeat("x", i+1))
	}
	var b strings.Builder
	reportGate(&b, failing)
	if !strings.HasPrefix(b.String(), "rootscan: 25 compliance controls failed at --fail-on-controls: x; xx;") || !strings.HasSuffix(b.String(), "xxxxxxxxxx, and 15 more\n") {
		t.Errorf("report = %q", b.String())
	}
}
