package compliance

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// Checker evaluates the profiles on a target's root, with a container's volumes (ConfigMaps, Secrets) layered over it
// as the container sees them. The one-shot scan and the daemon use the same Checker: the scan runs it as an analyzer of
// the target's own walk (Analyzers), the daemon, whose image analyses come from a cache, on the mounted root after
// the analyzers (Check).
type Checker struct {
	Profiles *Live
	// HostRoot is where the node's filesystem is mounted when rootscan runs in a pod (e.g. /host), for the volumes.
	HostRoot string
	Options  fsaccess.Options
	Log      *slog.Logger
}

// Check evaluates the current profiles on root and sets rep.Result.Compliance; it is node.RootCheck.
func (c *Checker) Check(ctx context.Context, root scan.FS, rep *report.Report) error {
	e := c.Profiles.Engine()
	if e == nil {
		return nil
	}
	vols, release := OpenVolumes(rep.Target, c.HostRoot, c.Options, c.logger())
	defer release()
	rep.Result.Compliance = e.Evaluate(ctx, root, rep.Target, vols, rep.Result)
	return nil
}

// Analyzers returns the compliance analyzer of one target, to run after the package analyzers (packages() reads
// their inventory), and the release of the volumes it opened; none when there are no profiles. It is
// node.TargetAnalyzers.
func (c *Checker) Analyzers(_ context.Context, t report.Target) ([]scan.Analyzer, func()) {
	e := c.Profiles.Engine()
	if e == nil {
		return nil, nil
	}
	vols, release := OpenVolumes(t, c.HostRoot, c.Options, c.logger())
	return []scan.Analyzer{e.Analyzer(t, vols)}, release
}

func (c *Checker) logger() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

// OpenVolumes opens each of a container's volumes as a confined root, so controls on /etc/nginx/nginx.conf see the
// ConfigMap mounted there. A host path is the kubelet's, not the image's, so joining it to hostRoot is safe; names
// inside the volume are resolved by the confined root. A volume that cannot be opened is logged and left out: the
// control then sees the image's file, and says so through its result.
func OpenVolumes(t report.Target, hostRoot string, opts fsaccess.Options, log *slog.Logger) ([]Volume, func()) {
	opts.NoXDev = true // a hostPath volume may be the node's own /: never wander into /proc or other mounts
	var vols []Volume
	var roots []*fsaccess.Root
	for _, m := range t.Mounts {
		if m.HostPath == "" || m.ContainerPath == "" {
			continue
		}
		hp := filepath.Join("/", hostRoot, m.HostPath)
		dir, sub := hp, ""
		if fi, err := os.Stat(hp); err == nil && !fi.IsDir() {
			dir, sub = filepath.Dir(hp), filepath.Base(hp)
		}
		r, err := fsaccess.OpenDir(dir, opts)
		if err != nil {
			// The kubelet tears down the volumes of a finished pod (a completed Job) while its exited containers
			// stay listed: nothing is wrong then, and warning about every finished pod on each resync is noise.
			level := slog.LevelWarn
			if t.State == "exited" && errors.Is(err, fs.ErrNotExist) {
				level = slog.LevelDebug
			}
			log.Log(context.Background(), level, "volume not readable for compliance controls", "container", t.Name(), "path", m.ContainerPath,
				"host_path", hp, "state", t.State, "err", err)
			continue
		}
		roots = append(roots, r)
		vols = append(vols, Volume{ContainerPath: m.ContainerPath, FS: r, Sub: sub})
	}
	return vols, func() {
		for _, r := range roots {
			_ = r.Close()
		}
	}
}

// Fresh says whether img was made with the profiles in use now (a reload makes every image evaluation stale).
func (c *Checker) Fresh(img *ImageEval) bool {
	return img != nil && img.Engine() == c.Profiles.Engine()
}

// NewImageEval makes the evaluation of one image's controls with the current profiles, filled as its containers are
// checked (CheckDelta); nil when there are no profiles.
func (c *Checker) NewImageEval() *ImageEval {
	e := c.Profiles.Engine()
	if e == nil {
		return nil
	}
	return e.NewImageEval()
}

// CheckDelta sets rep.Result.Compliance for a container of img's image whose own layer changed d, the same as
// Check on its merged root gives: the image's results where nothing the control read changed, new ones for the
// rest. image and merged open the image's own root and the container's merged root, and are called only when
// needed. A stale or missing img means a full evaluation.
func (c *Checker) CheckDelta(ctx context.Context, img *ImageEval, image, merged func() (scan.FS, error), d Delta, rep *report.Report) (DeltaStats, error) {
	if !c.Fresh(img) {
		root, err := merged()
		if err != nil {
			return DeltaStats{}, err
		}
		return DeltaStats{}, c.Check(ctx, root, rep)
	}
	vols, release := OpenVolumes(rep.Target, c.HostRoot, c.Options, c.logger())
	defer release()
	res, st, err := img.Evaluate(ctx, image, merged, rep.Target, vols, rep.Result, d)
	if err != nil {
		return st, err
	}
	rep.Result.Compliance = res
	return st, nil
}

// LoadImageEval decodes an image evaluation stored with ImageEval.Encode under key, for the profiles in use now.
func (c *Checker) LoadImageEval(b []byte, key string) (*ImageEval, error) {
	e := c.Profiles.Engine()
	if e == nil {
		return nil, errStale
	}
	return e.DecodeImageEval(b, key)
}
