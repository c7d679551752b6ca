package compliance

import (
	"fmt"

	"github.com/rootscan/rootscan/report"
)

// Gate is a CI gate on control results (--fail-on-controls): the controls of the severities its filter keeps must
// not have failed.
type Gate struct {
	Filter report.SeverityFilter
}

// Failing returns the controls that break the gate, as "target: profile/id (SEVERITY, status)". A failed control
// counts, and so does one in error: a control rootscan could not evaluate (a link loop planted in the image, a file
// over the size bound) must not pass a gate. Waived controls are skipped, so they do not count; an expired waiver
// leaves the control failed, so it counts again. A nil gate passes everything.
func (g *Gate) Failing(reports []report.Report) []string {
	if g == nil {
		return nil
	}
	var out []string
	for _, r := range reports {
		if r.Result == nil {
			continue
		}
		for _, c := range r.Result.Compliance {
			if (c.Status == report.ControlFailed || c.Status == report.ControlError) && g.Filter.Keep(c.Severity) {
				out = append(out, fmt.Sprintf("%s: %s/%s (%s, %s)", r.Target.Name(), c.Profile, c.ID, c.Severity, c.Status))
			}
		}
	}
	return out
}
