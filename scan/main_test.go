package scan

import (
	"os"
	"testing"
)

// TestMain lets the test binary act as the rpm parser child: RPMSubprocess re-executes /proc/self/exe, which in a
// test is this binary, with RPMChildCommand, as cmd/rootscan's main does it.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == RPMChildCommand {
		os.Exit(RunRPMChild(os.Args[2:]))
	}
	os.Exit(m.Run())
}
