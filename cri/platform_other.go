//go:build !linux

package cri

import (
	"errors"
	"fmt"
)

// nodeScanSupported fails at once, before a socket is looked for: a node's containers are scanned by mounting their
// snapshots, which only Linux can do, so a missing socket would be the wrong thing to report.
func nodeScanSupported() error {
	return fmt.Errorf("scanning a node's containers needs Linux (scan --dir and --oci work on any OS): %w", errors.ErrUnsupported)
}
