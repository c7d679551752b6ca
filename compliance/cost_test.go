package compliance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
)

// A container can write a tree of long paths into its upper dir. The baseline's tree-wide controls must still
// evaluate over it with the default limits and name the credentials and key planted in it: under CEL's own cost
// model (a regex match charged by path length times pattern length) 28,000 paths of 1,000 bytes cost more than the
// limit, and the controls turned into errors that named nothing.
func TestBaselineOverLongPathsWithinCostLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 28,000 files")
	}
	dir := t.TempDir()
	long := filepath.Join(dir, strings.Repeat("a", 240), strings.Repeat("b", 240), strings.Repeat("c", 240))
	if err := os.MkdirAll(long, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 28_000 {
		name := fmt.Sprintf("%05d-%s", i, strings.Repeat("x", 240))
		if err := os.WriteFile(filepath.Join(long, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	planted := map[string]string{
		"root/.netrc":          "machine example.com login x password y\n",
		"root/.ssh/id_ed25519": "-----BEGIN OPENSSH PRIVATE KEY-----\n",
	}
	for p, content := range planted {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	root, err := fsaccess.OpenDir(dir, fsaccess.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	want := map[string]string{"container-baseline-09": "/root/.ssh/id_ed25519", "container-baseline-10": "/root/.netrc"}
	for _, r := range baselineEngine(t).Evaluate(context.Background(), root, report.Target{}, nil, &report.Result{}) {
		if r.Status == report.ControlError {
			t.Errorf("%s: error: %s", r.ID, r.Message)
		}
		if p, ok := want[r.ID]; ok && (r.Status != report.ControlFailed || !strings.Contains(r.Message, p)) {
			t.Errorf("%s: %s %q, want failed naming %s", r.ID, r.Status, r.Message, p)
		}
	}
}

// The cost model still stops what grows faster than the listing: a loop over files() inside a loop over files(),
// and regex matches over every file's content, charged by the bytes they scan.
func TestCostLimitStopsProductsAndContentScans(t *testing.T) {
	files := map[string]string{}
	for i := range 40 {
		files[fmt.Sprintf("data/f%02d", i)] = strings.Repeat("y", 256<<10)
	}
	f := newFixture(t, files)
	for _, c := range []struct {
		name, expr string
	}{
		{"files() inside files()", `files("/").map(a, files("/").map(b, a.path)).size() > 0`},
		{"content scans", `files("/data").filter(f, f.type == "file" && f.content.matches("z")) == []`},
		{"content equality", `files("/data").all(f, f.type != "file" || f.content == f.content)`},
	} {
		r := evalWith(t, Limits{CostLimit: 20_000}, f.root, report.Target{}, nil, c.expr)
		if r.Status != report.ControlError || !strings.Contains(r.Message, "cost limit exceeded") {
			t.Errorf("%s: got %s %q, want the cost limit", c.name, r.Status, r.Message)
		}
		// And the same check over the same tree runs to its end under a limit of its size.
		if r := evalWith(t, Limits{CostLimit: 10_000_000}, f.root, report.Target{}, nil, c.expr); r.Status == report.ControlError {
			t.Errorf("%s under a large limit: %s", c.name, r.Message)
		}
	}
}
