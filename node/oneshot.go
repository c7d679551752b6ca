// Package node is the scanning loop of one node: it lists the containers the runtime knows, reaches each one's root
// filesystem, runs the analyzers on it and hands out one report per container.
package node

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// ContainerSource lists containers; cri.Client is the real one.
type ContainerSource interface {
	List(ctx context.Context, f cri.Filter) ([]cri.Container, error)
}

// Root is a confined read-only root that must be closed (unmounted) after use.
type Root interface {
	scan.FS
	Close() error
}

// RootOpener reaches a container's filesystem; access names the way it did ("overlay-lowerdir", "proc-root").
type RootOpener interface {
	OpenContainer(ctx context.Context, c cri.Container) (root Root, access string, err error)
}

// DigestResolver finds an image's manifest digest when the CRI does not report one (images not pulled from a
// registry). fsaccess.Snapshots is the real one.
type DigestResolver interface {
	ImageDigest(ctx context.Context, containerID string) (string, error)
}

// Scanner runs one-shot scans of a node's containers.
type Scanner struct {
	Containers ContainerSource
	Roots      RootOpener
	Digests    DigestResolver      // optional
	Configs    ImageConfigResolver // optional: image configs for compliance controls
	Analyzers  []scan.Analyzer
	// Drift, when set, also lists what each container changed on top of its image (Result.Drift).
	Drift        DriftSource
	DriftOptions scan.DriftOptions
	// PerTarget, when set, adds analyzers made for each target (compliance).
	PerTarget TargetAnalyzers
	// Concurrency bounds how many containers are mounted and scanned at once (default 2): each holds a mount and
	// reads disk, and a node agent must not starve the workloads it watches.
	Concurrency int
	Node        string
	Log         *slog.Logger
	// Progress, when set, is called after each container is done (for a progress bar).
	Progress func(done, total int)
}

// ScanNode scans every container matching f. The error is only for failing to list: each container's own failure
// (its snapshot removed mid-scan, an unsupported snapshotter) is in its report, and the others still complete.
// Reports come back in the order the runtime listed the containers.
func (s *Scanner) ScanNode(ctx context.Context, f cri.Filter) ([]report.Report, error) {
	cs, err := s.Containers.List(ctx, f)
	if err != nil {
		return nil, err
	}
	return s.ScanContainers(ctx, cs), nil
}

// ScanContainers scans the given containers with bounded concurrency.
func (s *Scanner) ScanContainers(ctx context.Context, cs []cri.Container) []report.Report {
	n := s.Concurrency
	if n <= 0 {
		n = 2
	}
	reports := make([]report.Report, len(cs))
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for i := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
				reports[i] = s.ScanContainer(ctx, cs[i])
			case <-ctx.Done():
				reports[i] = report.Report{Target: s.target(cs[i]), StartedAt: time.Now(), Error: fmt.Sprintf("not scanned: %v", ctx.Err())}
			}
			if s.Progress != nil {
				mu.Lock()
				done++
				s.Progress(done, len(cs))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return reports
}

// ScanContainer mounts one container read-only, analyzes it and unmounts it again, whatever happens in between.
func (s *Scanner) ScanContainer(ctx context.Context, c cri.Container) report.Report {
	log := s.logger().With("container", c.ID, "name", c.DisplayName())
	rep := report.Report{Target: s.target(c), StartedAt: time.Now()}
	if rep.Target.ImageDigest == "" && s.Digests != nil {
		if d, err := s.Digests.ImageDigest(ctx, c.ID); err != nil {
			log.Debug("image digest unknown", "err", err)
		} else {
			rep.Target.ImageDigest = d
		}
	}
	if s.Configs != nil {
		if cfg, err := s.Configs.ImageConfig(ctx, c.ID); err != nil {
			log.Debug("image config unknown", "err", err)
		} else {
			rep.Target.Config = ImageConfigOf(*cfg)
		}
	}
	root, access, err := s.Roots.OpenContainer(ctx, c)
	if err != nil {
		rep.Error = fmt.Sprintf("open root filesystem: %v", err)
		log.Warn("container not scanned", "err", err)
		rep.Duration = time.Since(rep.StartedAt)
		return rep
	}
	rep.Target.Access = access
	analyzers := s.Analyzers
	if s.PerTarget != nil {
		extra, release := s.PerTarget(ctx, rep.Target)
		if release != nil {
			defer release()
		}
		analyzers = append(append([]scan.Analyzer{}, analyzers...), extra...)
	}
	rep.Result = scan.Run(ctx, root, analyzers)
	if err := root.Close(); err != nil {
		// The result stands; the leftover mount is the operator's problem to know about.
		log.Error("release root filesystem", "err", err)
		rep.Result.Errors = append(rep.Result.Errors, report.FileError{Analyzer: "fsaccess", Err: fmt.Sprintf("release root filesystem: %v", err)})
	}
	if s.Drift != nil {
		s.addDrift(ctx, c, rep.Result, log)
	}
	rep.Duration = time.Since(rep.StartedAt)
	log.Debug("container scanned", "packages", len(rep.Result.Packages), "errors", len(rep.Result.Errors), "duration", rep.Duration)
	return rep
}

// addDrift fills res.Drift; its failure (a snapshotter without an upper dir) is one error of the result, never the
// loss of the rest of the report.
func (s *Scanner) addDrift(ctx context.Context, c cri.Container, res *report.Result, log *slog.Logger) {
	entries, ferrs, err := s.Drift.ContainerDrift(ctx, c, s.DriftOptions)
	res.Drift = entries
	res.Errors = append(res.Errors, ferrs...)
	if err != nil {
		log.Warn("drift not computed", "err", err)
		res.Errors = append(res.Errors, report.FileError{Analyzer: "drift", Err: err.Error()})
	}
}

func (s *Scanner) target(c cri.Container) report.Target { return containerTarget(s.Node, c) }

// containerTarget is how a container is named in reports, metrics and events.
func containerTarget(node string, c cri.Container) report.Target {
	return report.Target{
		Kind:        "container",
		Node:        node,
		ContainerID: c.ID,
		Container:   c.Name,
		Pod:         c.PodName,
		Namespace:   c.PodNamespace,
		PodUID:      c.PodUID,
		State:       string(c.State),
		Image:       c.Image,
		ImageDigest: c.Digest(),
		ImageID:     c.ImageID,
		Security:    securityOf(c.Security),
		Mounts:      mountsOf(c.Mounts),
		PodLabels:   c.PodLabels,
	}
}

func (s *Scanner) logger() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}
