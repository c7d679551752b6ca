package report

import (
	"fmt"
	"slices"
	"strings"
)

// Severities lists every severity, most severe first: the order tables and counts print them in.
var Severities = []Severity{SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow, SeverityUnknown, SeverityNone}

// SeverityFilter is the --severity and --fail-on-controls syntax: one level means that level and above ("HIGH":
// HIGH and CRITICAL); a comma list means exactly those levels ("LOW,UNKNOWN"), as trivy reads it. The zero value
// keeps everything.
type SeverityFilter struct {
	min int
	set map[Severity]bool
}

// ParseSeverityFilter reads s ("" keeps everything); the error names the part it could not read.
func ParseSeverityFilter(s string) (SeverityFilter, error) {
	if s == "" {
		return SeverityFilter{}, nil
	}
	var levels []Severity
	for _, part := range strings.Split(s, ",") {
		sev := Severity(strings.ToUpper(strings.TrimSpace(part)))
		if !slices.Contains(Severities, sev) {
			return SeverityFilter{}, fmt.Errorf("%q: want CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN or NONE, or a comma list of them", part)
		}
		levels = append(levels, sev)
	}
	if len(levels) == 1 {
		return SeverityFilter{min: levels[0].Rank()}, nil
	}
	f := SeverityFilter{set: map[Severity]bool{}}
	for _, l := range levels {
		f.set[l] = true
	}
	return f, nil
}

// Keep says whether findings of severity s pass the filter.
func (f SeverityFilter) Keep(s Severity) bool {
	if f.set != nil {
		return f.set[s]
	}
	return s.Rank() >= f.min
}
