package scan

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
)

// limitSelf sets the child's own resource limits before it reads anything. RLIMIT_CPU ends a spinning parser with
// SIGKILL (soft = hard: the SIGXCPU a lower soft limit sends is ignored by Go programs). RLIMIT_AS makes an
// allocation past the bound fail, which the Go runtime turns into a fatal "out of memory"; since the Go runtime has
// already reserved about 1 GiB of address space it never uses by the time main runs, mem is counted on top of the
// address space the child has now. The Go memory limit at half of mem makes the collector work harder before that.
func limitSelf(cpuSecs, mem int64) error {
	if cpuSecs > 0 {
		if err := syscall.Setrlimit(syscall.RLIMIT_CPU, &syscall.Rlimit{Cur: uint64(cpuSecs), Max: uint64(cpuSecs)}); err != nil {
			return fmt.Errorf("set RLIMIT_CPU: %w", err)
		}
	}
	if mem > 0 {
		as, err := addressSpace()
		if err != nil {
			return err
		}
		if err := syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: uint64(as + mem), Max: uint64(as + mem)}); err != nil {
			return fmt.Errorf("set RLIMIT_AS: %w", err)
		}
		debug.SetMemoryLimit(mem / 2)
	}
	return nil
}

// addressSpace is this process's virtual memory size (VmSize) in bytes.
func addressSpace() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read address space size: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmSize:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmSize %q: %w", v, err)
			}
			return kib << 10, nil
		}
	}
	return 0, errors.New("no VmSize in /proc/self/status")
}
