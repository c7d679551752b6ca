package node

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// markEnricher records that it ran, as vulnerability matching does: after the analyzers, on the report's result.
type markEnricher struct{ seen []string }

func (m *markEnricher) Enrich(_ context.Context, rep *report.Report) error {
	m.seen = append(m.seen, rep.Target.Kind)
	rep.Result.Vulnerabilities = append(rep.Result.Vulnerabilities, report.Vulnerability{ID: "TEST-1", Package: rep.Result.OS.ID})
	return nil
}

// A --dir scan runs the analyzers, the target's own analyzers and the enrichers, as a container scan and the daemon
// do, and tells Progress which target it is reading.
func TestScanDirRunsEnrichersAndTargetAnalyzers(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/os-release"), []byte("ID=debian\nVERSION_ID=12\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	enr := &markEnricher{}
	var perTarget []report.Target
	var progress []string
	released := false
	s := &Scanner{
		Analyzers: scan.DefaultAnalyzers(),
		Enrichers: []Enricher{enr},
		PerTarget: func(_ context.Context, t report.Target) ([]scan.Analyzer, func()) {
			perTarget = append(perTarget, t)
			return nil, func() { released = true }
		},
		Progress: func(done, total int, current string) { progress = append(progress, current) },
		Node:     "n1",
	}
	rep := s.ScanDir(context.Background(), dir)
	if rep.Error != "" || rep.Result == nil || rep.Result.OS == nil || rep.Result.OS.ID != "debian" {
		t.Fatalf("report: error %q, result %+v", rep.Error, rep.Result)
	}
	if len(enr.seen) != 1 || len(rep.Result.Vulnerabilities) != 1 || rep.Result.Vulnerabilities[0].Package != "debian" {
		t.Errorf("enricher saw %v, vulnerabilities %+v", enr.seen, rep.Result.Vulnerabilities)
	}
	if len(perTarget) != 1 || perTarget[0].Path != dir || perTarget[0].Node != "n1" || !released {
		t.Errorf("target analyzers asked for %+v, released %v", perTarget, released)
	}
	if len(progress) != 1 || progress[0] != rep.Target.Name() {
		t.Errorf("progress %q, want the target's name %q", progress, rep.Target.Name())
	}
	// A root that cannot be opened is the report's error; enrichers skip a report without a result.
	rep = s.ScanDir(context.Background(), filepath.Join(dir, "missing"))
	if rep.Error == "" || rep.Result != nil || len(enr.seen) != 1 {
		t.Errorf("missing root: error %q, result %v, enricher runs %d", rep.Error, rep.Result, len(enr.seen))
	}
}
