package inspec

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootscan/rootscan/compliance"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
)

// debianRoot is the testbed's debootstrapped Debian root (minbase), or "" when the testbed has not built it.
func debianRoot() string {
	cache := os.Getenv("ROOTSCAN_TESTBED_CACHE")
	if cache == "" {
		cache = "/var/cache/rootscan-testbed"
	}
	dir := filepath.Join(cache, "roots", "debian-minbase")
	if _, err := os.Stat(filepath.Join(dir, "etc", "passwd")); err != nil {
		return ""
	}
	return dir
}

// BenchmarkEvaluateProfile450 evaluates the generated 450-control STIG-like profile on a Debian root, with the
// container guard left out so that every control runs its describes (file, parse_config_file, cmp, loops over an
// input). It reports controls evaluated per second.
func BenchmarkEvaluateProfile450(b *testing.B) {
	dir := debianRoot()
	if dir == "" {
		b.Skip("no Debian root in the testbed cache (roots/debian-minbase)")
	}
	files := stigLikeProfile(450)
	for name, src := range files {
		if i := strings.Index(string(src), "  only_if("); i >= 0 {
			j := strings.Index(string(src[i:]), "  end\n")
			files[name] = append(append([]byte{}, src[:i]...), src[i+j+len("  end\n"):]...)
		}
	}
	p, err := FromFiles("generated", files, Limits{})
	if err != nil {
		b.Fatal(err)
	}
	root, err := fsaccess.OpenDir(dir, fsaccess.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer root.Close()
	r := NewRunner(p, nil, EvalLimits{})
	ctx := context.Background()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		t := compliance.NewTarget(ctx, root, report.Target{Kind: "dir"}, nil, &report.Result{}, compliance.Limits{}, nil)
		rs := r.Evaluate(ctx, t)
		if len(rs) != 450 || rs[0].Status == report.ControlSkipped || rs[0].Status == report.ControlError {
			b.Fatalf("%d results, first %+v", len(rs), rs[0])
		}
		n += len(rs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "controls/s")
}
