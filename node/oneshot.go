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
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/inuse"
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
	// ProcRoot is the host's /proc, where compliance's process resources (InSpec's os_env, mount, processes,
	// kernel_parameter) read a running container's init; empty leaves them skipped.
	ProcRoot  string
	Digests   DigestResolver      // optional
	Configs   ImageConfigResolver // optional: image configs for compliance controls
	Analyzers []scan.Analyzer
	// Drift, when set, also lists what each container changed on top of its image (Result.Drift), from the upper dir
	// and image views Views opens: one more mount per container.
	Drift DriftFunc
	Views Views
	// PerTarget, when set, adds analyzers made for each target (compliance).
	PerTarget TargetAnalyzers
	// ImageCheck, when set with Views, checks containers instead of PerTarget, evaluating each image once per scan
	// and each container only where its own layer differs (see checkByImage).
	ImageCheck ImageCheck
	// Enrichers run on each report once its target is read, as in the daemon (vulnerability matching).
	Enrichers []Enricher
	// Usage, when set, marks each container's findings in use (Vulnerability.InUse) from the files its processes
	// executed or mapped; UsageOptions bound the ownership index built from the root for it.
	Usage        UsageSource
	UsageOptions inuse.Options
	// Options bound the reads of --dir and --oci roots (containers are bounded by their RootOpener).
	Options fsaccess.Options
	// ScratchDir is where --oci layers are unpacked (removed afterwards).
	ScratchDir string
	// MaxExtractBytes bounds what an --oci layout may unpack into ScratchDir (fsaccess.OCIOptions.MaxExtractBytes;
	// zero means fsaccess.DefaultMaxExtractBytes).
	MaxExtractBytes int64
	// CheckBudget bounds each container's scan (deadline, memory); a scan past a bound stops, and its report says
	// which and where (Report.Incomplete) next to what was found until then.
	CheckBudget CheckBudget
	// Concurrency bounds how many containers are mounted and scanned at once (default 2): each holds a mount and
	// reads disk, and a node agent must not starve the workloads it watches.
	Concurrency int
	Node        string
	Log         *slog.Logger
	// Progress, when set, is told when a target starts (current names it) and when one is done (current is "").
	// Calls are serialized.
	Progress func(done, total int, current string)

	imageEvals imageEvals // ImageCheck's evaluations of the images of this scan
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
	ctx, stopWatch := withMemWatch(ctx, s.CheckBudget)
	defer stopWatch()
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	p := progress{report: s.Progress, total: len(cs)}
	for _, i := range byImage(cs) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				p.start(cs[i].DisplayName())
				reports[i] = s.ScanContainer(ctx, cs[i])
				<-sem
			case <-ctx.Done():
				reports[i] = report.Report{Target: s.target(cs[i]), StartedAt: time.Now(), Error: fmt.Sprintf("not scanned: %v", ctx.Err())}
			}
			p.done()
		}()
	}
	wg.Wait()
	return reports
}

// progress serializes the Progress calls of concurrent scans.
type progress struct {
	report func(done, total int, current string)
	mu     sync.Mutex
	total  int
	n      int
}

func (p *progress) start(name string) {
	if p.report == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.report(p.n, p.total, name)
}

func (p *progress) done() {
	if p.report == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	p.report(p.n, p.total, "")
}

// ScanContainer mounts one container read-only, analyzes it and unmounts it again, whatever happens in between.
func (s *Scanner) ScanContainer(ctx context.Context, c cri.Container) report.Report {
	log := s.logger().With("container", c.ID, "name", c.DisplayName())
	ctx = withProcess(ctx, s.ProcRoot, c)
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
	rep.Incomplete = s.withinBudget(ctx, c.ID, func(ctx context.Context) {
		if ic := s.imageCheckFor(); ic != nil && access != "proc-root" {
			rep.Result = scan.Run(ctx, root, s.Analyzers)
			s.checkByImage(ctx, c, root, &rep, log) // a snapshot's merged root: what the image and upper views describe
		} else {
			rep.Result = s.run(ctx, root, rep.Target)
		}
		if s.Drift != nil {
			s.addDrift(ctx, c, rep.Target.Mounts, rep.Result, log)
		}
	})
	mark := func(*report.Result) {}
	if s.Usage != nil {
		mark = markInUse(ctx, s.Usage, s.UsageOptions, c, root, rep.Result)
	}
	if err := root.Close(); err != nil {
		// The result stands; the leftover mount is the operator's problem to know about.
		log.Error("release root filesystem", "err", err)
		rep.Result.Errors = append(rep.Result.Errors, report.FileError{Analyzer: "fsaccess", Err: fmt.Sprintf("release root filesystem: %v", err)})
	}
	s.enrich(ctx, &rep)
	mark(rep.Result)
	rep.Duration = time.Since(rep.StartedAt)
	log.Debug("container scanned", "packages", len(rep.Result.Packages), "errors", len(rep.Result.Errors), "duration", rep.Duration)
	return rep
}

// addDrift fills res.Drift; its failure (a snapshotter without an upper dir) is one error of the result, never the
// loss of the rest of the report.
func (s *Scanner) addDrift(ctx context.Context, c cri.Container, mounts []report.Mount, res *report.Result, log *slog.Logger) {
	entries, ferrs, err := s.containerDrift(ctx, c, mounts)
	res.Drift = entries
	res.Errors = append(res.Errors, ferrs...)
	if err != nil {
		log.Warn("drift not computed", "err", err)
		res.Errors = append(res.Errors, report.FileError{Analyzer: "drift", Err: err.Error()})
	}
}

// enrich runs the enrichers as the daemon does (Daemon.enrich).
func (s *Scanner) enrich(ctx context.Context, rep *report.Report) {
	if rep.Result == nil {
		return
	}
	for _, e := range s.Enrichers {
		if err := e.Enrich(ctx, rep); err != nil {
			rep.Result.Errors = append(rep.Result.Errors, report.FileError{Analyzer: "enrich", Err: err.Error()})
		}
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
