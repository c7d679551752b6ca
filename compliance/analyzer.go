package compliance

import (
	"context"
	"io/fs"

	"github.com/rootscan/rootscan/scan"
)

// Analyzer runs an Engine's controls as one scan analyzer, for one target: it must come after the package
// analyzers (packages() reads their inventory) and adds its results to Result.Compliance.
type Analyzer struct {
	engine  *Engine
	target  scan.Target
	volumes []Volume
}

// Analyzer returns the analyzer for one target, with the container's volumes (nil for images and directories).
func (e *Engine) Analyzer(t scan.Target, vols []Volume) *Analyzer {
	return &Analyzer{engine: e, target: t, volumes: vols}
}

// Name implements scan.Analyzer.
func (a *Analyzer) Name() string { return "compliance" }

// Paths implements scan.Analyzer; Wants answers for changed paths instead (any file can matter to a control).
func (a *Analyzer) Paths() []string { return nil }

// Wants implements scan.FileAnalyzer so that a change anywhere in a container's upper dir re-runs the controls
// (d == nil), while taking nothing from the shared walk: files() walks on its own, only when a control asks.
func (a *Analyzer) Wants(_ string, d fs.DirEntry) bool { return d == nil }

// AnalyzeFile implements scan.FileAnalyzer; it is never called since Wants refuses every walked entry.
func (a *Analyzer) AnalyzeFile(context.Context, scan.FS, string, *scan.Result) error { return nil }

// Analyze implements scan.Analyzer.
func (a *Analyzer) Analyze(ctx context.Context, fsys scan.FS, out *scan.Result) error {
	out.Compliance = append(out.Compliance, a.engine.Evaluate(ctx, fsys, a.target, a.volumes, out)...)
	return ctx.Err()
}
