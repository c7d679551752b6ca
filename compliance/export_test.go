package compliance

import (
	"context"
	"testing"

	"github.com/rootscan/rootscan/report"

	"github.com/rootscan/rootscan/scan"
)

// Test helpers for the external test package (compliance_test), which evaluates InSpec profiles through the
// engine: compliance cannot import compliance/inspec, its tests in package compliance_test can.
var (
	InspecjsForTest       = inspecjs
	InspecjsScriptForTest = inspecjsScript
)

// FixtureForTest is newFixture's root: real files, modes and links opened through fsaccess.
func FixtureForTest(t testing.TB, files map[string]string) scan.FS { return newFixture(t, files).root }

// ImageDeltaForTest is the differential test for an engine the external package builds (with InSpec runners): for
// each seed, random upper-dir changes (nOps of them) to a copy of the test image, evaluated in full and as the
// image's evaluation plus the delta, compared control by control (t fails on a difference), twice per layer. It
// returns how many results the first container of each layer kept from the image and evaluated again.
func ImageDeltaForTest(t testing.TB, e *Engine, seeds, nOps int) (kept, evaluated int) {
	f := deltaFixture(t)
	ie := e.EvaluateImage(context.Background(), f.root, imageTarget(), &report.Result{Packages: []report.Package{{Name: "gcc-12"}}})
	for seed := range seeds {
		st := checkDelta(t, e, f, ie, uint64(seed), nOps, imageTarget(), nil)
		kept, evaluated = kept+st.Kept, evaluated+st.Evaluated
	}
	return kept, evaluated
}
