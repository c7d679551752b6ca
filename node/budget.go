package node

import (
	"fmt"
)

// Budget caps what the scanner process may use, so a node scan never competes with the workloads it watches. In a
// pod the container's resources.limits do this and Budget stays zero; on a host where the daemon runs as a systemd
// unit (or by hand), ApplyBudget puts the process into a child cgroup of its own with these limits.
type Budget struct {
	// CPU is the share of one CPU the process may use (0.5 = half a core); 0 = unlimited.
	CPU float64
	// IOWeight is the relative block IO weight, 1..1000 (cgroup v1 blkio takes 10..1000; smaller values are raised);
	// 0 = unchanged.
	IOWeight uint16
	// MemoryMax is the memory limit in bytes; 0 = unlimited.
	MemoryMax int64
}

// Zero reports whether no limit is asked for.
func (b Budget) Zero() bool { return b.CPU == 0 && b.IOWeight == 0 && b.MemoryMax == 0 }

// cpuPeriod is the CFS period the CPU quota is expressed in (the kernel default, 100ms).
const cpuPeriod = 100000

// quota is the CFS quota in microseconds per cpuPeriod.
func (b Budget) quota() int64 { return int64(b.CPU * cpuPeriod) }

// Validate rejects limits the kernel would refuse or that would starve the scanner outright.
func (b Budget) Validate() error {
	switch {
	case b.CPU < 0 || (b.CPU > 0 && b.quota() < 1000):
		return fmt.Errorf("cpu budget %v: want 0 (unlimited) or at least 0.01 CPU", b.CPU)
	case b.IOWeight > 1000:
		return fmt.Errorf("io weight %d: want 1..1000", b.IOWeight)
	case b.MemoryMax < 0 || (b.MemoryMax > 0 && b.MemoryMax < 32<<20):
		return fmt.Errorf("memory budget %d bytes: want 0 (unlimited) or at least 32MiB", b.MemoryMax)
	}
	return nil
}

// BudgetCgroup is the child cgroup ApplyBudget moved the process into. Close moves the process back and removes it.
type BudgetCgroup struct {
	// Paths are the cgroup's directories (one per v1 controller hierarchy, or the one v2 directory).
	Paths   []string
	release func() error
}

// Close moves the process back to the cgroup it came from and removes the budget cgroup, so a stopped daemon leaves
// no cgroup behind. It is safe on a nil BudgetCgroup.
func (g *BudgetCgroup) Close() error {
	if g == nil || g.release == nil {
		return nil
	}
	err := g.release()
	g.release = nil
	return err
}
