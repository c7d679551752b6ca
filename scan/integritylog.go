package scan

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/rootscan/rootscan/report"
)

// integrityLog collects one integrity run's findings and per-file problems under the analyzer's caps, and hands
// them to the result sorted, with a count of what the caps cut: a huge or hostile root yields a bounded report that
// still says it is incomplete. The dpkg and rpm checks share it.
type integrityLog struct {
	cappedErrors
	maxFindings int
	findings    []report.IntegrityFinding
	dropped     int // findings beyond maxFindings
}

func (l *integrityLog) flush(out *report.Result) error {
	slices.SortStableFunc(l.findings, func(x, y report.IntegrityFinding) int {
		return cmp.Or(strings.Compare(x.Package, y.Package), strings.Compare(x.Path, y.Path))
	})
	out.Integrity = append(out.Integrity, l.findings...)
	out.Errors = append(out.Errors, l.errs...)
	if l.dropped > 0 {
		out.Errors = append(out.Errors, report.FileError{Analyzer: l.analyzer, Err: fmt.Sprintf("%d more integrity findings not listed", l.dropped)})
	}
	l.noteSuppressed(out)
	return nil
}

func (l *integrityLog) report(f report.IntegrityFinding) {
	if len(l.findings) >= l.maxFindings {
		l.dropped++
		return
	}
	l.findings = append(l.findings, f)
}

// cappedErrors keeps a bounded list of one analyzer's per-file problems and counts the ones beyond it, so that a
// hostile root cannot grow the report without bound and the report still says it is incomplete.
type cappedErrors struct {
	analyzer   string
	maxErrors  int
	errs       []report.FileError
	suppressed int // problems beyond maxErrors
}

func (c *cappedErrors) fail(p, msg string) {
	if len(c.errs) >= c.maxErrors {
		c.suppressed++
		return
	}
	c.errs = append(c.errs, report.FileError{Analyzer: c.analyzer, Path: p, Err: msg})
}

// noteSuppressed adds the line that counts the problems beyond the cap, if any.
func (c *cappedErrors) noteSuppressed(out *report.Result) {
	if c.suppressed > 0 {
		out.Errors = append(out.Errors, report.FileError{Analyzer: c.analyzer, Err: fmt.Sprintf("%d more problems not listed", c.suppressed)})
	}
}
