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
	analyzer    string
	maxFindings int
	maxErrors   int
	findings    []report.IntegrityFinding
	errs        []report.FileError
	suppressed  int // problems beyond maxErrors
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
	if l.suppressed > 0 {
		out.Errors = append(out.Errors, report.FileError{Analyzer: l.analyzer, Err: fmt.Sprintf("%d more problems not listed", l.suppressed)})
	}
	return nil
}

func (l *integrityLog) fail(p, msg string) {
	if len(l.errs) >= l.maxErrors {
		l.suppressed++
		return
	}
	l.errs = append(l.errs, report.FileError{Analyzer: l.analyzer, Path: p, Err: msg})
}

func (l *integrityLog) report(f report.IntegrityFinding) {
	if len(l.findings) >= l.maxFindings {
		l.dropped++
		return
	}
	l.findings = append(l.findings, f)
}
