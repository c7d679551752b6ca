package node

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// budgetGroup names the child cgroup, unique per process so two daemons (or a test next to a daemon) never share it.
func budgetGroup() string { return "rootscan-budget-" + strconv.Itoa(os.Getpid()) }

// ApplyBudget moves the calling process into a new child of its own cgroup, limited by b. It returns (nil, nil) for
// a zero budget. An error means the node does not allow it (not root, cgroup v2 without delegation of the
// cpu/memory/io controllers to this service, a read-only /sys/fs/cgroup in a container); the caller logs it once
// and runs without a budget: the limits are a courtesy to the node, not a condition for scanning.
func ApplyBudget(b Budget, log *slog.Logger) (*BudgetCgroup, error) {
	if b.Zero() {
		return nil, nil
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	if cgroups.Mode() == cgroups.Unified {
		return applyV2(b, log)
	}
	return applyV1(b, log)
}

// applyV1 covers legacy and hybrid hosts: the cpu, memory and blkio v1 hierarchies each get a child.
func applyV1(b Budget, log *slog.Logger) (*BudgetCgroup, error) {
	want := map[cgroup1.Name]bool{}
	res := &specs.LinuxResources{}
	if b.CPU > 0 {
		want[cgroup1.Cpu] = true
		q, p := b.quota(), uint64(cpuPeriod)
		res.CPU = &specs.LinuxCPU{Quota: &q, Period: &p}
	}
	if b.MemoryMax > 0 {
		want[cgroup1.Memory] = true
		m := b.MemoryMax
		res.Memory = &specs.LinuxMemory{Limit: &m}
	}
	if _, err := os.Stat("/sys/fs/cgroup/blkio/blkio.weight"); b.IOWeight > 0 && err != nil {
		// blkio.weight exists only with the CFQ/BFQ IO schedulers; without it there is no weight to set.
		log.Warn("io weight not applied: the blkio controller has no weight on this node (no CFQ/BFQ scheduler)", "ioWeight", b.IOWeight)
		b.IOWeight = 0
	}
	if b.IOWeight > 0 {
		want[cgroup1.Blkio] = true
		w := max(b.IOWeight, 10)
		res.BlockIO = &specs.LinuxBlockIO{Weight: &w}
	}
	hier := func() ([]cgroup1.Subsystem, error) {
		all, err := cgroup1.Default()
		if err != nil {
			return nil, err
		}
		var out []cgroup1.Subsystem
		for _, s := range all {
			if want[s.Name()] {
				out = append(out, s)
			}
		}
		if len(out) != len(want) {
			return nil, errors.New("cgroup v1: a cpu, memory or blkio hierarchy is not mounted")
		}
		return out, nil
	}
	opt := cgroup1.WithHiearchy(hier)
	pid := os.Getpid()
	orig, err := cgroup1.Load(cgroup1.PidPath(pid), opt)
	if err != nil {
		return nil, fmt.Errorf("cgroup v1: load own cgroup: %w", err)
	}
	group := budgetGroup()
	cg, err := cgroup1.New(cgroup1.NestedPath(group), res, opt)
	if err != nil {
		// New leaves the hierarchies it got to before failing: remove them.
		subs, _ := hier()
		for _, s := range subs {
			own, lerr := cgroup1.NestedPath(group)(s.Name())
			if h, ok := s.(interface{ Path(string) string }); ok && lerr == nil {
				_ = os.Remove(h.Path(own)) // rmdir: only an empty cgroup goes
			}
		}
		return nil, fmt.Errorf("cgroup v1: create %s: %w", group, err)
	}
	if err := cg.AddProc(uint64(pid)); err != nil {
		_ = cg.Delete()
		return nil, fmt.Errorf("cgroup v1: move process into %s: %w", group, err)
	}
	subs, _ := hier()
	own, err := cgroup1.PidPath(pid)(subs[0].Name())
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, s := range subs {
		if h, ok := s.(interface{ Path(string) string }); ok {
			paths = append(paths, h.Path(own))
		}
	}
	log.Info("scan budget applied", "cgroup", own, "version", 1, "cpu", b.CPU, "memoryMax", b.MemoryMax, "ioWeight", b.IOWeight)
	return &BudgetCgroup{Paths: paths, release: func() error {
		if err := orig.AddProc(uint64(pid)); err != nil {
			return fmt.Errorf("cgroup v1: move process back: %w", err)
		}
		if err := cg.Delete(); err != nil {
			return fmt.Errorf("cgroup v1: remove %s: %w", group, err)
		}
		return nil
	}}, nil
}

// applyV2 covers unified hosts. A v2 cgroup with processes cannot enable controllers for its children, so the
// process moves into its (empty, limitless) child first, then the parent hands the controllers down and the child
// gets its limits. Under systemd this needs Delegate=yes on the unit.
func applyV2(b Budget, log *slog.Logger) (_ *BudgetCgroup, retErr error) {
	const mount = "/sys/fs/cgroup"
	parent, err := cgroup2.NestedGroupPath("")
	if err != nil {
		return nil, fmt.Errorf("cgroup v2: own cgroup: %w", err)
	}
	parentDir := filepath.Join(mount, parent)
	var ctrls []string
	res := &cgroup2.Resources{}
	if b.CPU > 0 {
		ctrls = append(ctrls, "cpu")
		q, p := b.quota(), uint64(cpuPeriod)
		res.CPU = &cgroup2.CPU{Max: cgroup2.NewCPUMax(&q, &p)}
	}
	if b.MemoryMax > 0 {
		ctrls = append(ctrls, "memory")
		m := b.MemoryMax
		res.Memory = &cgroup2.Memory{Max: &m}
	}
	if b.IOWeight > 0 {
		ctrls = append(ctrls, "io")
	}
	avail, err := os.ReadFile(filepath.Join(parentDir, "cgroup.controllers"))
	if err != nil {
		return nil, fmt.Errorf("cgroup v2: %w", err)
	}
	for _, c := range ctrls {
		if !slices.Contains(strings.Fields(string(avail)), c) {
			return nil, fmt.Errorf("cgroup v2: controller %q is not delegated to %s (systemd: Delegate=yes on the unit)", c, parent)
		}
	}
	enabledBefore, err := os.ReadFile(filepath.Join(parentDir, "cgroup.subtree_control"))
	if err != nil {
		return nil, fmt.Errorf("cgroup v2: %w", err)
	}
	group := filepath.Join(parent, budgetGroup())
	cg, err := cgroup2.NewManager(mount, group, &cgroup2.Resources{})
	if err != nil {
		return nil, fmt.Errorf("cgroup v2: create %s: %w", group, err)
	}
	pid := uint64(os.Getpid())
	var toDisable []string
	back := func() error {
		if len(toDisable) > 0 {
			_ = os.WriteFile(filepath.Join(parentDir, "cgroup.subtree_control"), []byte("-"+strings.Join(toDisable, " -")), 0)
		}
		if err := os.WriteFile(filepath.Join(parentDir, "cgroup.procs"), []byte(strconv.FormatUint(pid, 10)), 0); err != nil {
			return fmt.Errorf("cgroup v2: move process back to %s: %w", parent, err)
		}
		if err := cg.Delete(); err != nil {
			return fmt.Errorf("cgroup v2: remove %s: %w", group, err)
		}
		return nil
	}
	defer func() {
		if retErr != nil {
			_ = back()
		}
	}()
	if err := cg.AddProc(pid); err != nil {
		return nil, fmt.Errorf("cgroup v2: move process into %s: %w", group, err)
	}
	for _, c := range ctrls {
		if !slices.Contains(strings.Fields(string(enabledBefore)), c) {
			toDisable = append(toDisable, c)
		}
	}
	if len(toDisable) > 0 {
		// Fails with EBUSY if the parent still holds other processes: then the node's layout does not allow it.
		if err := os.WriteFile(filepath.Join(parentDir, "cgroup.subtree_control"), []byte("+"+strings.Join(toDisable, " +")), 0); err != nil {
			toDisable = nil
			return nil, fmt.Errorf("cgroup v2: enable %v for children of %s: %w", ctrls, parent, err)
		}
	}
	if err := cg.Update(res); err != nil {
		return nil, fmt.Errorf("cgroup v2: set limits on %s: %w", group, err)
	}
	dir := filepath.Join(mount, group)
	if b.IOWeight > 0 {
		// cgroups/v3 sets only io.bfq.weight; io.weight is the controller's own knob.
		if err := os.WriteFile(filepath.Join(dir, "io.weight"), []byte("default "+strconv.Itoa(int(b.IOWeight))), 0); err != nil {
			return nil, fmt.Errorf("cgroup v2: set io.weight on %s: %w", group, err)
		}
	}
	log.Info("scan budget applied", "cgroup", group, "version", 2, "cpu", b.CPU, "memoryMax", b.MemoryMax, "ioWeight", b.IOWeight)
	return &BudgetCgroup{Paths: []string{dir}, release: back}, nil
}
