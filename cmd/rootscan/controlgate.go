package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/rootscan/rootscan/report"
)

// exitControls is the exit code of --fail-on-controls when --exit-code is not given: distinct from exitPartial
// and exitFatal, so a CI gate can tell "the image breaks policy" from "rootscan could not scan".
const exitControls = 3

// controlGate is --fail-on-controls: the same severity syntax as --severity (one level means that level and above,
// a comma list means exactly those), applied to control results instead of vulnerabilities.
type controlGate struct {
	on     bool
	filter severityFilter
}

func parseControlGate(s string) (controlGate, error) {
	if s == "" {
		return controlGate{}, nil
	}
	f, err := parseSeverityFilter(s)
	if err != nil {
		return controlGate{}, usageError{fmt.Sprintf("--fail-on-controls %q: want CRITICAL, HIGH, MEDIUM, LOW or NONE, or a comma list of them", s)}
	}
	return controlGate{on: true, filter: f}, nil
}

// maxGateNames bounds how many failing controls the gate names on stderr; the full list is in the output.
const maxGateNames = 10

// failing returns the controls that break the gate, as "target: profile/id (SEVERITY)". A failed control counts,
// and so does one in error: a control rootscan could not evaluate (a link loop planted in the image, a file over
// the size bound) must not pass a gate. Waived controls are skipped, so they do not count; an expired waiver leaves
// the control failed, so it counts again.
func (g controlGate) failing(reports []report.Report) []string {
	if !g.on {
		return nil
	}
	var out []string
	for _, r := range reports {
		if r.Result == nil {
			continue
		}
		for _, c := range r.Result.Compliance {
			if (c.Status == report.ControlFailed || c.Status == report.ControlError) && g.filter.keep(c.Severity) {
				out = append(out, fmt.Sprintf("%s: %s/%s (%s, %s)", r.Target.Name(), c.Profile, c.ID, c.Severity, c.Status))
			}
		}
	}
	return out
}

// report tells stderr why the gate closed, naming the first few controls.
func (g controlGate) report(w io.Writer, failing []string) {
	names := failing
	more := ""
	if len(names) > maxGateNames {
		names, more = names[:maxGateNames], fmt.Sprintf(", and %d more", len(failing)-maxGateNames)
	}
	fmt.Fprintf(w, "rootscan: %d compliance controls failed at --fail-on-controls: %s%s\n", len(failing), strings.Join(names, "; "), more)
}
