package vuln

import (
	"encoding/json"
	"math"
	"strings"

	gocvss20 "github.com/pandatix/go-cvss/20"
	gocvss30 "github.com/pandatix/go-cvss/30"
	gocvss31 "github.com/pandatix/go-cvss/31"
	gocvss40 "github.com/pandatix/go-cvss/40"
	"github.com/rootscan/rootscan/report"
)

// Rating is the severity rootscan reports for an advisory, with the CVSS score and vector it came from (empty when
// it came from an ecosystem's own rating).
type Rating struct {
	Severity report.Severity `json:"s"`
	Score    float64         `json:"sc,omitempty"`
	Vector   string          `json:"v,omitempty"`
}

// cvssPreference is the order vectors are used in when a record has several: v3.x first, as NVD, GHSA and the
// scanners users compare with (trivy, grype) show it; v4 next; v2 only for old records that have nothing else.
var cvssPreference = []string{"CVSS_V3", "CVSS_V4", "CVSS_V2"}

// RateCVSS computes the base score of a CVSS v2, v3.0, v3.1 or v4.0 vector with github.com/pandatix/go-cvss (a
// spec-complete implementation, fuzzed upstream) and maps it to the qualitative scale of the CVSS v3/v4
// specifications: 0 none, 0.1-3.9 low, 4.0-6.9 medium, 7.0-8.9 high, 9.0-10 critical. ok is false for a vector the
// library rejects.
func RateCVSS(vector string) (r Rating, ok bool) {
	var score float64
	switch {
	case strings.HasPrefix(vector, "CVSS:4.0/"):
		c, err := gocvss40.ParseVector(vector)
		if err != nil {
			return Rating{}, false
		}
		score = c.Score()
	case strings.HasPrefix(vector, "CVSS:3.1/"):
		c, err := gocvss31.ParseVector(vector)
		if err != nil {
			return Rating{}, false
		}
		score = c.BaseScore()
	case strings.HasPrefix(vector, "CVSS:3.0/"):
		c, err := gocvss30.ParseVector(vector)
		if err != nil {
			return Rating{}, false
		}
		score = c.BaseScore()
	default:
		// CVSS v2 vectors have no prefix; NVD sometimes wraps them in parentheses.
		c, err := gocvss20.ParseVector(strings.Trim(vector, "()"))
		if err != nil {
			return Rating{}, false
		}
		score = c.BaseScore()
		if math.IsNaN(score) || score < 0 || score > 10 {
			return Rating{}, false
		}
		// CVSS v2 has no "critical" and no "none": 0-3.9 low, 4.0-6.9 medium, 7.0-10 high.
		sev := scoreSeverity(score)
		if sev == report.SeverityCritical {
			sev = report.SeverityHigh
		}
		if sev == report.SeverityNone {
			sev = report.SeverityLow
		}
		return Rating{Severity: sev, Score: score, Vector: vector}, true
	}
	if math.IsNaN(score) || score < 0 || score > 10 {
		return Rating{}, false
	}
	return Rating{Severity: scoreSeverity(score), Score: score, Vector: vector}, true
}

func scoreSeverity(score float64) report.Severity {
	switch {
	case score >= 9.0:
		return report.SeverityCritical
	case score >= 7.0:
		return report.SeverityHigh
	case score >= 4.0:
		return report.SeverityMedium
	case score > 0:
		return report.SeverityLow
	}
	return report.SeverityNone
}

// ratingWords maps the words ecosystems rate with to the scale: GHSA's database_specific.severity (LOW, MODERATE,
// HIGH, CRITICAL), Debian's urgency (unimportant, low, medium, high; "not yet assigned" stays unknown), Ubuntu's
// priority (negligible, low, medium, high, critical).
var ratingWords = map[string]report.Severity{
	"critical":    report.SeverityCritical,
	"high":        report.SeverityHigh,
	"important":   report.SeverityHigh,
	"moderate":    report.SeverityMedium,
	"medium":      report.SeverityMedium,
	"low":         report.SeverityLow,
	"unimportant": report.SeverityLow,
	"negligible":  report.SeverityLow,
}

// ratingWord reads "high", "medium*" (Debian marks an urgency it inferred with a star) and the like.
func ratingWord(s string) (report.Severity, bool) {
	w := strings.ToLower(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "*")))
	sev, ok := ratingWords[w]
	return sev, ok
}

// rateEntries rates from OSV severity entries: a CVSS vector by preference, else an ecosystem rating ("Ubuntu").
func rateEntries(entries []Severity) (Rating, bool) {
	for _, typ := range cvssPreference {
		for _, e := range entries {
			if e.Type == typ {
				if r, ok := RateCVSS(e.Score); ok {
					return r, true
				}
			}
		}
	}
	for _, e := range entries {
		if sev, ok := ratingWord(e.Score); ok {
			return Rating{Severity: sev}, true
		}
	}
	return Rating{}, false
}

// rateSpecific reads the severity words databases put in ecosystem_specific / database_specific: "severity" (GHSA,
// Go, Alpine), "urgency" (Debian).
func rateSpecific(raw json.RawMessage) (Rating, bool) {
	if len(raw) == 0 {
		return Rating{}, false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return Rating{}, false
	}
	for _, key := range []string{"severity", "urgency"} {
		var s string
		if json.Unmarshal(m[key], &s) == nil {
			if sev, ok := ratingWord(s); ok {
				return Rating{Severity: sev}, true
			}
		}
	}
	return Rating{}, false
}

// rate decides the severity of one affected entry of a record: the entry's own CVSS (OSV 1.5 allows per-package
// severity), then the record's CVSS, then the entry's and the record's ecosystem ratings, else UNKNOWN (counted,
// never dropped).
func rate(r *Record, a *Affected) Rating {
	if rt, ok := rateEntries(a.Severity); ok {
		return rt
	}
	if rt, ok := rateEntries(r.Severity); ok {
		return rt
	}
	for _, raw := range []json.RawMessage{a.EcosystemSpecific, a.DatabaseSpecific, r.DatabaseSpecific} {
		if rt, ok := rateSpecific(raw); ok {
			return rt
		}
	}
	return Rating{Severity: report.SeverityUnknown}
}
