package report

import "testing"

func TestSeverityFilter(t *testing.T) {
	all := []Severity{SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow, SeverityUnknown, SeverityNone}
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
		f, err := ParseSeverityFilter(tt.flag)
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
		if _, err := ParseSeverityFilter(bad); err == nil {
			t.Errorf("--severity %q accepted", bad)
		}
	}
}
