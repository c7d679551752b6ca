package main

import (
	"strings"
	"testing"

	"github.com/rootscan/rootscan/scan"
)

func TestControlGate(t *testing.T) {
	ctl := func(id, status string, sev scan.Severity) scan.ControlResult {
		return scan.ControlResult{Profile: "p", ID: id, Status: status, Severity: sev}
	}
	reports := []scan.Report{
		{Target: scan.Target{Kind: "dir", Path: "/r"}, Result: &scan.Result{Compliance: []scan.ControlResult{
			ctl("crit-failed", scan.ControlFailed, scan.SeverityCritical),
			ctl("high-error", scan.ControlError, scan.SeverityHigh),
			ctl("high-waived", scan.ControlSkipped, scan.SeverityHigh),
			ctl("high-passed", scan.ControlPassed, scan.SeverityHigh),
			ctl("medium-failed", scan.ControlFailed, scan.SeverityMedium),
			ctl("low-failed", scan.ControlFailed, scan.SeverityLow),
			ctl("none-failed", scan.ControlFailed, scan.SeverityNone),
		}}},
		{Target: scan.Target{Kind: "dir", Path: "/broken"}, Error: "cannot open"},
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
		for _, f := range g.failing(reports) {
			// "/r: p/ID (SEVERITY, status)"
			id := strings.TrimPrefix(f, "/r: p/")
			ids = append(ids, id[:strings.Index(id, " ")])
		}
		if got := strings.Join(ids, ","); got != tt.want {
			t.Errorf("--fail-on-controls %q fails on %q, want %q", tt.flag, got, tt.want)
		}
	}
	g, _ := parseControlGate("CRITICAL")
	if got := g.failing(reports); len(got) != 1 || got[0] != "/r: p/crit-failed (CRITICAL, failed)" {
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
	controlGate{}.report(&b, failing)
	if !strings.HasPrefix(b.String(), "rootscan: 25 compliance controls failed at --fail-on-controls: x; xx;") || !strings.HasSuffix(b.String(), "xxxxxxxxxx, and 15 more\n") {
		t.Errorf("report = %q", b.String())
	}
}
