package cli

import (
	"testing"

	"github.com/rootscan/rootscan/report"
)

func TestSeverityFilter(t *testing.T) {
	all := []report.Severity{report.SeverityCritical, report.SeverityHigh, report.SeverityMedium, report.SeverityLow, report.SeverityUnknown, report.SeverityNone}
	tests := []struct {
		flag string
		keep string // one letter per severity in all's order
	}{
		{"", "CHMLUN"},
		{"HIGH", "CH"},
		{"medium", "CHM"},
		{"LOW", "CHML"},
		{"UNKNOWN", "CHMLU"},
		{"LOW,UNKNOWN", "LU"},
		{"CRITICAL, HIGH", "CH"},
	}
	for _, tt := range tests {
		f, err := report.ParseSeverityFilter(tt.flag)
		if err != nil {
			t.Fatalf("%q: %v", tt.flag, err)
		}
		got := ""
		for _, s := range all {
			if f.Keep(s) {
				got += string(s[0])
			}
		}
		if got != tt.keep {
			t.Errorf("--severity %q keeps %q, want %q", tt.flag, got, tt.keep)
		}
	}
	for _, bad := range []string{"SEVERE", "HIGH,", "7"} {
		if _, err := report.ParseSeverityFilter(bad); err == nil {
			t.Errorf("--severity %q accepted", bad)
		}
	}
}

func TestVulnCounts(t *testing.T) {
	vs := []report.Vulnerability{
		{Severity: report.SeverityLow}, {Severity: report.SeverityHigh}, {Severity: report.SeverityLow},
		{Severity: report.SeverityUnknown}, {Severity: report.SeverityCritical, Suppressed: &report.Suppression{Status: "not_affected"}},
	}
	if got, want := vulnCounts(vs), "1 HIGH, 2 LOW, 1 UNKNOWN (+1 suppressed)"; got != want {
		t.Errorf("vulnCounts = %q, want %q", got, want)
	}
	if got := vulnCounts(nil); got != "0" {
		t.Errorf("no findings: %q", got)
	}
}
