package compliance

import (
	"testing"

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
