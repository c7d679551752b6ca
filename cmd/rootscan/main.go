// Command rootscan scans the containers of a Kubernetes node from outside: it lists them through the CRI, mounts
// each one's root filesystem read-only from containerd's snapshotter and reads it without exec or any pod change.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rootscan/rootscan/scan"
)

// Exit codes, as scripts and CI jobs rely on them.
const (
	exitOK      = 0
	exitPartial = 1 // some targets could not be scanned; the others were
	exitFatal   = 2 // nothing could be scanned: bad flags, runtime unreachable, not a CRI
)

// usageError marks errors caused by how rootscan was called.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	// The rpm database parser child (scan.RPMSubprocess) is this binary re-run; it must not start anything else.
	if len(os.Args) > 1 && os.Args[1] == scan.RPMChildCommand {
		os.Exit(scan.RunRPMChild(os.Args[2:]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitFatal
	}
	var err error
	code := exitOK
	switch args[0] {
	case "scan":
		tuneOneShotGC()
		code, err = cmdScan(ctx, args[1:], stdout, stderr)
	case "sbom":
		tuneOneShotGC()
		code, err = cmdSBOM(ctx, args[1:], stdout, stderr)
	case "daemon":
		code, err = cmdDaemon(ctx, args[1:], stdout, stderr)
	case "db":
		code, err = cmdDB(ctx, args[1:], stdout, stderr)
	case "profile":
		code, err = cmdProfile(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		err = cmdVersion(stdout)
	case "help", "-h", "--help":
		usage(stdout)
		return exitOK
	default:
		err = usageError{fmt.Sprintf("unknown command %q", args[0])}
	}
	if err != nil {
		if errors.Is(err, errHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "rootscan: %v\n", err)
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(stderr, "Run 'rootscan help' for usage.")
		}
		return exitFatal
	}
	return code
}

func usage(w io.Writer) {
	fmt.Fprint(w, `rootscan scans the containers of a node from outside: no exec, no pod change, any image.

Usage:
  rootscan scan [flags]                 scan every container on this node (CRI + containerd snapshots)
  rootscan scan --container ID          scan one container
  rootscan scan --dir PATH              scan a directory as a root filesystem
  rootscan scan --oci PATH              scan an OCI image layout
  rootscan scan --sbom-dir DIR          also write one SBOM per target into DIR
  rootscan sbom --dir|--oci|--container TARGET [-f cyclonedx|spdx] [-o FILE]
                                        write a CycloneDX 1.6 or SPDX 2.3 JSON SBOM of one target
  rootscan daemon [flags]               keep the node's findings current: /metrics, /healthz, /readyz, SIEM sinks
  rootscan scan --db DIR --severity HIGH --exit-code 3 [--vex DIR] [-o table|json|sarif|cyclonedx-vex]
                                        also match against the offline OSV database (default /var/lib/rootscan/db,
                                        env ROOTSCAN_DB) and fail CI gates on open findings
  rootscan db import [--db DIR] PATH... build the database from OSV JSON files, folders or osv.dev all.zip archives
  rootscan db update [--db DIR] --url URL...
                                        fetch OSV archives (ETag/If-Modified-Since) and swap the database in
  rootscan db status [--db DIR] [--max-age 168h]
                                        what the database holds and how old it is (exit 1 when older than max-age)
  rootscan scan --profile P [-o hdf]   evaluate compliance profiles (builtin:container-baseline is always on
                                        unless --no-baseline); -o hdf writes Heimdall Data Format JSON
  rootscan scan --fail-on-controls HIGH [--waivers FILE] [--exit-code N]
                                        fail CI gates (exit N, 3 when not given) on failed controls of that severity
  rootscan profile check PATH...        validate profiles (YAML, CEL checks) without scanning
  rootscan version                      print the version

Run 'rootscan scan -h', 'rootscan sbom -h' and 'rootscan daemon -h' for the flags.
`)
}
