package vuln

import (
	"encoding/json"
	"testing"

	"github.com/rootscan/rootscan/report"
)

// Scores from the FIRST calculators (v2, v3.1, v4.0) for the same vectors.
func TestRateCVSS(t *testing.T) {
	tests := []struct {
		vector string
		score  float64
		sev    report.Severity
	}{
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, report.SeverityCritical},
		{"CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N", 6.1, report.SeverityMedium},
		{"CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:H/I:H/A:N", 5.6, report.SeverityMedium},
		{"CVSS:3.1/AV:N/AC:H/PR:H/UI:N/S:U/C:H/I:N/A:N", 4.4, report.SeverityMedium},
		{"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8, report.SeverityHigh},
		{"CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:U/C:L/I:N/A:N", 4.3, report.SeverityMedium},
		{"CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6, report.SeverityLow},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0, report.SeverityNone},
		{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", 9.3, report.SeverityCritical},
		{"CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", 8.5, report.SeverityHigh},
		{"AV:N/AC:L/Au:N/C:P/I:P/A:P", 7.5, report.SeverityHigh},
		{"AV:N/AC:L/Au:N/C:C/I:C/A:C", 10, report.SeverityHigh}, // v2 has no critical
	}
	for _, tt := range tests {
		r, ok := RateCVSS(tt.vector)
		if !ok || r.Score != tt.score || r.Severity != tt.sev || r.Vector != tt.vector {
			t.Errorf("RateCVSS(%s) = %+v, %v; want %.1f %s", tt.vector, r, ok, tt.score, tt.sev)
		}
	}
	for _, bad := range []string{"", "CVSS:3.1/AV:N", "CVSS:4.0/AV:X/AC:L", "CVSS:9.9/AV:N", "high"} {
		if r, ok := RateCVSS(bad); ok {
			t.Errorf("RateCVSS(%q) = %+v, want rejected", bad, r)
		}
	}
}

func TestRate(t *testing.T) {
	v31 := Severity{Type: "CVSS_V3", Score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}
	v40 := Severity{Type: "CVSS_V4", Score: "CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	tests := []struct {
		name string
		r    Record
		a    Affected
		want report.Severity
	}{
		{"v3 preferred over v4", Record{Severity: []Severity{v40, v31}}, Affected{}, report.SeverityCritical},
		{"v4 when alone", Record{Severity: []Severity{v40}}, Affected{}, report.SeverityHigh},
		{"per-package severity first", Record{Severity: []Severity{v31}}, Affected{Severity: []Severity{v40}}, report.SeverityHigh},
		{"Debian urgency", Record{}, Affected{EcosystemSpecific: raw(`{"urgency":"unimportant"}`)}, report.SeverityLow},
		{"Debian inferred urgency", Record{}, Affected{EcosystemSpecific: raw(`{"urgency":"medium*"}`)}, report.SeverityMedium},
		{"Debian not yet assigned", Record{}, Affected{EcosystemSpecific: raw(`{"urgency":"not yet assigned"}`)}, report.SeverityUnknown},
		{"GHSA word", Record{DatabaseSpecific: raw(`{"severity":"MODERATE"}`)}, Affected{}, report.SeverityMedium},
		{"Ubuntu priority", Record{Severity: []Severity{{Type: "Ubuntu", Score: "negligible"}}}, Affected{}, report.SeverityLow},
		{"bad vector falls through", Record{Severity: []Severity{{Type: "CVSS_V3", Score: "garbage"}}, DatabaseSpecific: raw(`{"severity":"HIGH"}`)}, Affected{}, report.SeverityHigh},
		{"nothing", Record{}, Affected{}, report.SeverityUnknown},
	}
	for _, tt := range tests {
		if got := rate(&tt.r, &tt.a); got.Severity != tt.want {
			t.Errorf("%s: %+v, want %s", tt.name, got, tt.want)
		}
	}
}
