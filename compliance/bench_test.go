package compliance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// baselineRoot is a root of about 10,000 files, the size of a Debian slim image, with the accounts and configs of
// testFiles.
func baselineRoot(b *testing.B) *fixture {
	files := map[string]string{}
	for k, v := range testFiles {
		files[k] = v
	}
	f := newFixture(b, files)
	for d := range 100 {
		dir := filepath.Join(f.dir, "usr/share/doc", fmt.Sprintf("pkg%03d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for i := range 100 {
			name := fmt.Sprintf("file%03d.txt", i)
			if i%10 == 0 {
				name = fmt.Sprintf("cert%03d.pem", i) // key-like names make the key control read content
			}
			if i%25 == 1 {
				name = fmt.Sprintf("tool%03d", i) // executables, which the shared walk's analyzers stat too
			}
			if err := os.WriteFile(filepath.Join(dir, name), []byte("-----BEGIN CERTIFICATE-----\n"), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	return f
}

// BenchmarkScanWithBaseline is `rootscan scan` on that root: every default analyzer plus the baseline, whose
// files() controls take the shared walk's entries instead of walking and statting the tree again.
func BenchmarkScanWithBaseline(b *testing.B) {
	f := baselineRoot(b)
	e := baselineEngine(b)
	uid := int64(1000)
	target := report.Target{Config: &report.ImageConfig{User: "app"}, Security: &report.SecurityContext{RunAsUser: &uid}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res := scan.Run(context.Background(), f.root, append(scan.DefaultAnalyzers(), e.Analyzer(target, nil)))
		if len(res.Compliance) != 12 {
			b.Fatalf("%d control results", len(res.Compliance))
		}
		noControlErrors(b, res.Compliance)
	}
}

// BenchmarkBaseline evaluates the built-in baseline (12 controls, four of them walking the whole tree) on a root
// of about 10,000 files, the size of a Debian slim image, and reports controls per second.
func BenchmarkBaseline(b *testing.B) {
	f := baselineRoot(b)
	e := baselineEngine(b)
	uid := int64(1000)
	target := report.Target{Config: &report.ImageConfig{User: "app"}, Security: &report.SecurityContext{RunAsUser: &uid}}
	b.ReportAllocs()
	b.ResetTimer()
	controls := 0
	for b.Loop() {
		rs := e.Evaluate(context.Background(), f.root, target, nil, &report.Result{})
		noControlErrors(b, rs)
		controls += len(rs)
	}
	b.ReportMetric(float64(controls)/b.Elapsed().Seconds(), "controls/s")
}

// BenchmarkFileControl is the cost of a control that stats and reads one file, without the tree walk.
func BenchmarkFileControl(b *testing.B) {
	f := newFixture(b, testFiles)
	l, _ := NewLoader(Limits{})
	p, err := l.Parse("b.yaml", []byte("name: b\ncontrols:\n  - id: a\n    checks:\n      - expr: file('/etc/passwd').mode_octal == '0644' && file('/etc/passwd').content.contains('root')\n      - expr: parse_config('/etc/ssh/sshd_config', 'sshd').permitrootlogin == 'no'\n"))
	if err != nil {
		b.Fatal(err)
	}
	e := NewEngine(l, []*Profile{p})
	b.ReportAllocs()
	controls := 0
	for b.Loop() {
		rs := e.Evaluate(context.Background(), f.root, report.Target{}, nil, nil)
		if rs[0].Status != report.ControlPassed {
			b.Fatal(rs[0].Message)
		}
		controls++
	}
	b.ReportMetric(float64(controls)/b.Elapsed().Seconds(), "controls/s")
}

// BenchmarkBaselineRealRoot is BenchmarkBaseline and BenchmarkScanWithBaseline on a real image root named by
// ROOTSCAN_BENCH_ROOT (for instance the testbed's /var/cache/rootscan-testbed/roots/debian-apps, 72,776 entries),
// which is where the per-entry costs of the tree-wide controls show; it is skipped when the variable is unset.
func BenchmarkBaselineRealRoot(b *testing.B) {
	dir := os.Getenv("ROOTSCAN_BENCH_ROOT")
	if dir == "" {
		b.Skip("ROOTSCAN_BENCH_ROOT is not set")
	}
	root, err := fsaccess.OpenDir(dir, fsaccess.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer root.Close()
	e := baselineEngine(b)
	target := report.Target{}
	b.Run("evaluate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, r := range e.Evaluate(context.Background(), root, target, nil, &report.Result{}) {
				if r.Status == report.ControlError {
					b.Fatalf("%s: %s", r.ID, r.Message)
				}
			}
		}
	})
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			res := scan.Run(context.Background(), root, append(scan.DefaultAnalyzers(), e.Analyzer(target, nil)))
			noControlErrors(b, res.Compliance)
		}
	})
	b.Run("scan-no-baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			scan.Run(context.Background(), root, scan.DefaultAnalyzers())
		}
	})
}

// baselineEngine loads the built-in baseline, as `rootscan scan` does by default.
func baselineEngine(tb testing.TB) *Engine {
	tb.Helper()
	l, err := NewLoader(Limits{})
	if err != nil {
		tb.Fatal(err)
	}
	ps, err := l.Load(Baseline)
	if err != nil {
		tb.Fatal(err)
	}
	return NewEngine(l, ps)
}

// noControlErrors stops the benchmark when a control could not be evaluated: its time would not be the baseline's.
func noControlErrors(b *testing.B, rs []report.ControlResult) {
	b.Helper()
	for _, r := range rs {
		if r.Status == report.ControlError {
			b.Fatalf("%s: %s", r.ID, r.Message)
		}
	}
}
