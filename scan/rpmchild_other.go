//go:build !linux

package scan

import "runtime/debug"

// limitSelf only sets the Go memory limit (half of mem) outside Linux: RLIMIT_AS is not enforced on macOS and does
// not exist on Windows, and the parent's wall-clock timeout stands in for RLIMIT_CPU.
func limitSelf(_, mem int64) error {
	if mem > 0 {
		debug.SetMemoryLimit(mem / 2)
	}
	return nil
}
