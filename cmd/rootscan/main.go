// Command rootscan scans the containers of a Kubernetes node from outside: it lists them through the CRI, mounts
// each one's root filesystem read-only from containerd's snapshotter and reads it without exec or any pod change.
// The command line itself is package cli.
package main

import (
	"os"

	"github.com/rootscan/rootscan/cmd/rootscan/internal/cli"
	"github.com/rootscan/rootscan/scan"
)

// version is set at link time by the Makefile (-X main.version=...); the build info fills in otherwise.
var version = ""

func main() {
	// The rpm database parser child (scan.RPMSubprocess) is this binary re-run; it must not start anything else.
	if len(os.Args) > 1 && os.Args[1] == scan.RPMChildCommand {
		os.Exit(scan.RunRPMChild(os.Args[2:]))
	}
	os.Exit(cli.Main(version))
}
