package cli

import (
	"os"
	"testing"

	"github.com/rootscan/rootscan/scan"
)

// TestMain dispatches the rpm parser child as main does: the commands these tests run re-execute the test binary
// (/proc/self/exe) to parse rpm databases.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == scan.RPMChildCommand {
		os.Exit(scan.RunRPMChild(os.Args[2:]))
	}
	os.Exit(m.Run())
}
