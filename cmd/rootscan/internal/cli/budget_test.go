package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/rootscan/rootscan/output"
	"github.com/rootscan/rootscan/report"
)

// --check-timeout reaches the scan: a target past it is reported incomplete (JSON: which budget; table:
// INCOMPLETE), and the exit code says the scan is partial.
func TestScanCheckTimeout(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/os-release"), []byte("ID=debian\nVERSION_ID=12\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := run(t, "scan", "--dir", dir, "--no-baseline", "--db", t.TempDir(), "-o", "json", "--check-timeout", "1ns")
	if code != exitPartial {
		t.Fatalf("exit %d, want %d (partial): %s", code, exitPartial, stderr)
	}
	var doc output.Document
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Reports) != 1 || doc.Reports[0].Incomplete == nil || doc.Reports[0].Incomplete.Reason != report.IncompleteDeadline {
		t.Fatalf("reports %+v; want one incomplete at its deadline", doc.Reports)
	}
	stdout, _, _ = run(t, "scan", "--dir", dir, "--no-baseline", "--db", t.TempDir(), "--check-timeout", "1ns")
	if !strings.Contains(stdout, "INCOMPLETE") || !strings.Contains(stdout, "scan incomplete: deadline") {
		t.Errorf("table does not say the target is incomplete:\n%s", stdout)
	}
	stdout, _, _ = run(t, "scan", "--dir", dir, "--no-baseline", "--db", t.TempDir(), "-o", "json")
	if strings.Contains(stdout, `"incomplete"`) {
		t.Errorf("a small root is incomplete with the default budgets:\n%s", stdout)
	}
}

// The budget flags: sizes as people write them, 0 turns a bound off, and the daemon's config file sets them unless
// the command line does.
func TestCheckBudgetFlags(t *testing.T) {
	if _, stderr, code := run(t, "scan", "--dir", t.TempDir(), "--check-memory", "lots"); code != exitFatal || !strings.Contains(stderr, "check-memory") {
		t.Errorf("--check-memory lots: exit %d, %s", code, stderr)
	}
	var f targetFlags
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	f.register(fs)
	if b := f.checkBudget(); b.Timeout != 2*time.Minute || b.Memory != 64<<20 {
		t.Errorf("defaults %+v", b)
	}
	if err := fs.Parse([]string{"--check-memory", "0", "--check-timeout", "0"}); err != nil {
		t.Fatal(err)
	}
	if b := f.checkBudget(); b.Timeout != 0 || b.Memory != 0 {
		t.Errorf("0 and 0: %+v; want both bounds off", b)
	}
	if err := fs.Parse([]string{"--check-memory", "128MiB"}); err != nil || f.checkBudget().Memory != 128<<20 {
		t.Errorf("128MiB: %+v, %v", f.checkBudget(), err)
	}

	cfg := filepath.Join(t.TempDir(), "daemon.yaml")
	if err := os.WriteFile(cfg, []byte("checkTimeout: 30s\ncheckMemory: 33554432\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &daemonConfig{}
	dfs := pflag.NewFlagSet("daemon", pflag.ContinueOnError)
	c.register(dfs)
	if err := dfs.Parse([]string{"--config", cfg, "--check-timeout", "5s"}); err != nil {
		t.Fatal(err)
	}
	if err := c.mergeFile(dfs); err != nil {
		t.Fatal(err)
	}
	if c.CheckTimeout != 5*time.Second || c.CheckMemory != 32<<20 {
		t.Errorf("config with a flag over it: timeout %v, memory %d; want the flag's 5s and the file's 32MiB", c.CheckTimeout, c.CheckMemory)
	}
}
