package node

import (
	"context"
	"path/filepath"
	"time"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// ScanDir scans a directory holding a root filesystem, as one target of kind "dir". A root that cannot be opened is
// the report's Error.
func (s *Scanner) ScanDir(ctx context.Context, dir string) report.Report {
	abs, _ := filepath.Abs(dir)
	rep := report.Report{Target: report.Target{Kind: "dir", Node: s.Node, Path: abs, Access: "dir"}, StartedAt: time.Now()}
	s.progress(rep.Target.Name())
	root, err := fsaccess.OpenDir(abs, s.Options)
	if err != nil {
		rep.Error = err.Error()
	} else {
		rep.Incomplete = s.withinBudget(ctx, abs, func(ctx context.Context) { rep.Result = s.run(ctx, root, rep.Target) })
		_ = root.Close()
	}
	s.enrich(ctx, &rep)
	rep.Duration = time.Since(rep.StartedAt)
	return rep
}

// ScanOCI scans an OCI image layout, unpacked into ScratchDir and removed afterwards; ref picks the image when the
// layout holds several.
func (s *Scanner) ScanOCI(ctx context.Context, layout, ref string) report.Report {
	abs, _ := filepath.Abs(layout)
	rep := report.Report{Target: report.Target{Kind: "oci", Node: s.Node, Path: abs, Access: "oci-extract"}, StartedAt: time.Now()}
	s.progress(rep.Target.Name())
	root, img, err := fsaccess.OpenOCI(ctx, abs, s.ScratchDir, fsaccess.OCIOptions{Ref: ref, Root: s.Options, MaxExtractBytes: s.MaxExtractBytes, Log: s.Log})
	if err != nil {
		rep.Error = err.Error()
	} else {
		rep.Target.Image = img.RefName
		rep.Target.ImageDigest = img.ManifestDigest.String()
		rep.Target.ImageID = img.ConfigDigest.String()
		rep.Target.Config = ImageConfigOf(img.Config.Config)
		rep.Incomplete = s.withinBudget(ctx, abs, func(ctx context.Context) { rep.Result = s.run(ctx, root, rep.Target) })
		if err := root.Close(); err != nil {
			rep.Result.Errors = append(rep.Result.Errors, report.FileError{Analyzer: "fsaccess", Err: err.Error()})
		}
	}
	s.enrich(ctx, &rep)
	rep.Duration = time.Since(rep.StartedAt)
	return rep
}

// run runs the analyzers and the target's own (PerTarget) on root.
func (s *Scanner) run(ctx context.Context, root scan.FS, t report.Target) *report.Result {
	analyzers := s.Analyzers
	if s.PerTarget != nil {
		extra, release := s.PerTarget(ctx, t)
		if release != nil {
			defer release()
		}
		analyzers = append(append([]scan.Analyzer{}, analyzers...), extra...)
	}
	return scan.Run(ctx, root, analyzers)
}

// progress tells Progress that the single target of a --dir or --oci scan started.
func (s *Scanner) progress(name string) {
	if s.Progress != nil {
		s.Progress(0, 1, name)
	}
}
