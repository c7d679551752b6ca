// Package bpf reports, from the kernel, what processes in watched containers execute and which files they map
// executable: the runtime signals behind exec drift (a binary the image never had) and packages in use. It loads
// the programs under exec/ and mmap/ (compiled by bpf2go; `make bpf` regenerates them), keeps the set of watched
// cgroup ids in a kernel map, and hands decoded events to the caller. It imports nothing of rootscan's.
//
// The hooks are tracepoints only: a BTF tracepoint (tp_btf/sched_process_exec) for executions and a syscall
// tracepoint (syscalls/sys_enter_mmap, which needs tracefs) for executable mappings. BPF LSM and fentry would be
// the natural hooks for mappings, but kernels like the one this was built on (6.18, lockdown=integrity, BPF LSM
// active) refuse every trampoline-based program (LSM, fentry, fexit) with EPERM even to root, and have no
// kprobes; tracepoints load everywhere BTF does. Privileges: CAP_BPF and CAP_PERFMON, plus uid 0 or
// CAP_DAC_READ_SEARCH to read the tracepoint's id from tracefs; not CAP_SYS_ADMIN.
//
// Nothing is pinned: closing the Monitor (or the process exiting) unloads everything.
package bpf

import (
	"fmt"
	"os"
)

// Options tune Open. The zero value is usable.
type Options struct {
	// RingBufferBytes is the size of the kernel ring buffer shared by all programs: a power of two and a multiple
	// of the page size. 0 means DefaultRingBufferBytes.
	RingBufferBytes uint32
	// NoMappings leaves the executable-mapping program out. Its syscall tracepoint routes every syscall of every
	// process on the host through the kernel's tracing slow path (about +50 ns a syscall, measured by
	// BenchmarkSyscall), so a node that only wants exec drift can spare that.
	NoMappings bool
	// Buffer is the capacity of the Events channel. 0 means 1024. When the channel is full the reader waits, the
	// ring buffer fills and the kernel counts what it drops (Lost).
	Buffer int
}

// DefaultRingBufferBytes holds about 700 exec or 950 mapping events (1.1 to 1.4 KiB each, the path buffer
// included) before the kernel drops any, on top of the Events channel the reader fills. The reader keeps up with a
// flood of mappings from one process (BenchmarkEventDelivery: none lost at 1 MiB). The buffer is kernel memory for
// the daemon's whole life and, mapped twice for the reader, counts twice in its RSS: 4 MiB cost 8 MiB of the
// daemon's resident set at rest, a seventh of it.
const DefaultRingBufferBytes = 1 << 20

// CheckRingBufferBytes says why n cannot be Options.RingBufferBytes: the kernel wants a power of two and a multiple
// of the page size.
func CheckRingBufferBytes(n uint32) error {
	if n&(n-1) != 0 || int(n) < os.Getpagesize() {
		return fmt.Errorf("ebpf: ring buffer size %d is not a power of two of at least a page", n)
	}
	return nil
}

// UnavailableError says why the kernel side cannot run (no privileges, no BTF, no BPF LSM, ...). The daemon logs
// it once and keeps scanning without runtime signals.
type UnavailableError struct {
	Reason string
	Err    error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("ebpf: unavailable (%s): %v", e.Reason, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }
