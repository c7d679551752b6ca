package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/cgroups/v3"

	"github.com/rootscan/rootscan/internal/testbed"
)

// `rootscan daemon --cpu-max 0.5 --memory-max 256MiB` on a host (no pod limits to lean on) moves the
// daemon into a child cgroup of its own with exactly those limits, and removes that cgroup when it exits.
func TestDaemonScanBudget(t *testing.T) {
	bed := testbed.StartT(t, testbed.Options{})
	const mem = 256 << 20
	d, _ := startReadyDaemon(t, bed, "--db", filepath.Join(t.TempDir(), "db"), "--cpu-max", "0.5", "--memory-max", fmt.Sprint(mem))
	pid := d.cmd.Process.Pid
	group := fmt.Sprintf("rootscan-budget-%d", pid)

	own, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]string{} // controller ("" for v2) -> cgroup path
	for _, line := range strings.Split(strings.TrimSpace(string(own)), "\n") {
		f := strings.SplitN(line, ":", 3)
		for _, ctrl := range strings.Split(f[1], ",") {
			paths[ctrl] = f[2]
		}
	}
	var dirs []string
	read := func(dir, file string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	if cgroups.Mode() == cgroups.Unified {
		p := paths[""]
		if filepath.Base(p) != group {
			t.Fatalf("/proc/%d/cgroup: %q, want the daemon in its own %s", pid, own, group)
		}
		dir := filepath.Join("/sys/fs/cgroup", p)
		dirs = append(dirs, dir)
		if got := read(dir, "cpu.max"); got != "50000 100000" {
			t.Errorf("cpu.max = %q, want %q", got, "50000 100000")
		}
		if got := read(dir, "memory.max"); got != fmt.Sprint(mem) {
			t.Errorf("memory.max = %q, want %d", got, mem)
		}
	} else {
		for _, ctrl := range []string{"cpu", "memory"} {
			if filepath.Base(paths[ctrl]) != group {
				t.Fatalf("/proc/%d/cgroup: %s is %q, want the daemon in its own %s:\n%s", pid, ctrl, paths[ctrl], group, own)
			}
			dirs = append(dirs, filepath.Join("/sys/fs/cgroup", ctrl, paths[ctrl]))
		}
		for file, want := range map[string]string{"cpu.cfs_quota_us": "50000", "cpu.cfs_period_us": "100000"} {
			if got := read(dirs[0], file); got != want {
				t.Errorf("%s = %q, want %q", file, got, want)
			}
		}
		if got := read(dirs[1], "memory.limit_in_bytes"); got != fmt.Sprint(mem) {
			t.Errorf("memory.limit_in_bytes = %q, want %d", got, mem)
		}
	}
	if strings.Contains(d.stderr.String(), "scan budget not applied") {
		t.Errorf("daemon warned although the budget applies:\n%s", tail(d.stderr.String(), 10))
	}

	d.terminate(t)
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
	for _, dir := range dirs {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("budget cgroup %s left after exit (%v)", dir, err)
		}
	}
}
