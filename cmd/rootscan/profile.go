package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/rootscan/rootscan/compliance"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
)

// complianceFlags choose the profiles `rootscan scan` evaluates and where HDF goes.
type complianceFlags struct {
	profiles   stringList
	noBaseline bool
	waivers    string
	scope      string
	hdfDir     string
	hostRoot   string
}

func (c *complianceFlags) register(fs *flag.FlagSet) {
	fs.Var(&c.profiles, "profile", "compliance profile: a YAML file, a folder of them, or builtin:NAME (repeatable; "+compliance.Baseline+" is always added unless --no-baseline)")
	fs.BoolVar(&c.noBaseline, "no-baseline", false, "do not evaluate "+compliance.Baseline)
	fs.StringVar(&c.waivers, "waivers", "", "InSpec-style waiver file (control id: justification, expiration_date, run)")
	fs.StringVar(&c.scope, "profile-scope", "", "YAML file choosing profiles per namespace and pod labels")
	fs.StringVar(&c.hdfDir, "hdf-dir", "", "also write one HDF (Heimdall Data Format) JSON file per target into this directory")
	fs.StringVar(&c.hostRoot, "host-root", "", "where the node's filesystem is mounted when rootscan runs in a pod (e.g. /host), for reading container volumes")
}

// sources are the profiles, waivers and scope the flags name, the baseline first unless --no-baseline.
func (c *complianceFlags) sources() compliance.Sources {
	srcs := append([]string{}, c.profiles...)
	if !c.noBaseline {
		srcs = append([]string{compliance.Baseline}, srcs...)
	}
	return compliance.Sources{Profiles: srcs, Waivers: c.waivers, Scope: c.scope}
}

// engine loads the chosen profiles; nil when there are none (--no-baseline and no --profile).
func (c *complianceFlags) engine(log *slog.Logger) (*compliance.Engine, error) {
	e, err := c.sources().Load(log)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	return e, nil
}

// live loads the chosen profiles for the daemon, which reloads them on SIGHUP.
func (c *complianceFlags) live(log *slog.Logger) (*compliance.Live, error) {
	l, err := compliance.NewLive(c.sources(), log)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	return l, nil
}

// openVolumes opens each of a container's volumes as a confined root, so controls on /etc/nginx/nginx.conf see the
// ConfigMap mounted there. A host path is the kubelet's, not the image's, so joining it to --host-root is safe;
// names inside the volume are resolved by the confined root. A volume that cannot be opened is logged and left
// out: the control then sees the image's file, and says so through its result.
func openVolumes(t report.Target, hostRoot string, opts fsaccess.Options, log *slog.Logger) ([]compliance.Volume, func()) {
	opts.NoXDev = true // a hostPath volume may be the node's own /: never wander into /proc or other mounts
	var vols []compliance.Volume
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
			log.Warn("volume not readable for compliance controls", "container", t.Name(), "path", m.ContainerPath, "host_path", hp, "err", err)
			continue
		}
		roots = append(roots, r)
		vols = append(vols, compliance.Volume{ContainerPath: m.ContainerPath, FS: r, Sub: sub})
	}
	return vols, func() {
		for _, r := range roots {
			_ = r.Close()
		}
	}
}

// writeHDF writes the HDF document of a single target, or a JSON array of them for a node scan.
func writeHDF(w io.Writer, e *compliance.Engine, doc output, single bool) error {
	if e == nil {
		return usageError{"-o hdf needs at least one profile (drop --no-baseline or add --profile)"}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if single && len(doc.Reports) == 1 {
		return enc.Encode(e.HDF(doc.Reports[0]))
	}
	docs := make([]compliance.HDF, 0, len(doc.Reports))
	for _, r := range doc.Reports {
		docs = append(docs, e.HDF(r))
	}
	return enc.Encode(docs)
}

// writeHDFDir writes one HDF file per scanned target, named like the SBOMs of --sbom-dir.
func writeHDFDir(dir string, e *compliance.Engine, reports []report.Report) ([]string, error) {
	if e == nil {
		return nil, usageError{"--hdf-dir needs at least one profile (drop --no-baseline or add --profile)"}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create HDF dir: %w", err)
	}
	var files []string
	used := map[string]int{}
	for _, r := range reports {
		if r.Result == nil {
			continue
		}
		base := sbomFileBase(r.Target)
		used[base]++
		if n := used[base]; n > 1 {
			base = fmt.Sprintf("%s_%d", base, n)
		}
		b, err := json.MarshalIndent(e.HDF(r), "", "  ")
		if err != nil {
			return files, fmt.Errorf("encode HDF of %s: %w", r.Target.Name(), err)
		}
		name := filepath.Join(dir, base+".hdf.json")
		if err := os.WriteFile(name, append(b, '\n'), 0o644); err != nil {
			return files, fmt.Errorf("write HDF: %w", err)
		}
		files = append(files, name)
	}
	return files, nil
}

// complianceSummary counts a target's control results by status for the table ("9 passed, 2 failed").
func complianceSummary(res *report.Result) string {
	if res == nil || len(res.Compliance) == 0 {
		return "-"
	}
	counts := map[string]int{}
	for _, c := range res.Compliance {
		counts[c.Status]++
	}
	var parts []string
	for _, s := range []string{report.ControlPassed, report.ControlFailed, report.ControlError, report.ControlSkipped} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	return strings.Join(parts, ", ")
}

// cmdProfile is `rootscan profile check PATH...`: load and type-check profiles without scanning anything, so CI
// can reject a broken profile before it reaches a node.
func cmdProfile(_ context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	if len(args) == 0 || args[0] != "check" {
		return exitFatal, usageError{"usage: rootscan profile check PATH|builtin:NAME..."}
	}
	fs := flag.NewFlagSet("rootscan profile check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, errHelp
		}
		return exitFatal, usageError{err.Error()}
	}
	if fs.NArg() == 0 {
		return exitFatal, usageError{"profile check: name at least one profile file, folder or builtin:NAME"}
	}
	l, err := compliance.NewLoader(compliance.Limits{})
	if err != nil {
		return exitFatal, err
	}
	code := exitOK
	for _, src := range fs.Args() {
		ps, err := l.Load(src)
		for _, p := range ps {
			fmt.Fprintf(stdout, "%s: profile %s %s: %d controls OK\n", p.Source, p.Name, p.Version, len(p.Controls))
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			code = exitPartial
		}
	}
	return code, nil
}
