package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rootscan/rootscan/compliance"
	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/node"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

var errHelp = flag.ErrHelp

type scanFlags struct {
	endpoint     string
	ctrdAddress  string
	namespace    string
	container    string
	dir          string
	oci          string
	ociRef       string
	output       string
	mountDir     string
	scratchDir   string
	concurrency  int
	maxFileSize  int64
	nodeName     string
	logLevel     string
	procRoot     string
	showPackages bool
	verify       bool
	sbomDir      string
	sbomFormat   string
	drift        bool
	dbDir        string
	severity     string
	exitCode     int
	vexDir       string
	sevFilter    severityFilter
	compliance   complianceFlags
	failControls string
	controlGate  controlGate
	// engine evaluates the compliance profiles; nil for commands and flags that evaluate none.
	engine  *compliance.Engine
	forward forwardFlags
}

// targetFlags registers the flags that choose and reach a target, shared by `scan` and `sbom`.
func (f *scanFlags) targetFlags(fs *flag.FlagSet) {
	fs.StringVar(&f.endpoint, "runtime-endpoint", envOr("CONTAINER_RUNTIME_ENDPOINT", cri.DefaultEndpoint), "CRI runtime endpoint: unix:///path or a socket path (env CONTAINER_RUNTIME_ENDPOINT)")
	fs.StringVar(&f.ctrdAddress, "containerd-address", "", "containerd API socket for snapshot access (default: the runtime endpoint's socket)")
	fs.StringVar(&f.container, "container", "", "the container with this ID (or unique ID prefix) on this node")
	fs.StringVar(&f.dir, "dir", "", "a directory holding a root filesystem, instead of the node's containers")
	fs.StringVar(&f.oci, "oci", "", "an OCI image layout directory, instead of the node's containers")
	fs.StringVar(&f.ociRef, "oci-ref", "", "with --oci: the image ref name to pick when the layout holds several")
	fs.StringVar(&f.mountDir, "mount-dir", "/run/rootscan/mounts", "private directory for the read-only mounts (stale ones are removed at start)")
	fs.StringVar(&f.scratchDir, "scratch-dir", os.TempDir(), "where --oci layers are unpacked (removed afterwards)")
	fs.Int64Var(&f.maxFileSize, "max-file-size", 64<<20, "largest file read, in bytes")
	fs.StringVar(&f.nodeName, "node-name", envOr("NODE_NAME", hostname()), "node name put in reports (env NODE_NAME)")
	fs.StringVar(&f.logLevel, "log-level", "warn", "log level: debug, info, warn, error (logs go to stderr)")
	fs.StringVar(&f.procRoot, "proc-root", "/proc", "host /proc, for the /proc/<pid>/root fallback; empty disables it")
}

// parseFlags parses args and counts the targets named, for the caller's own rule on how many it takes.
func parseFlags(fs *flag.FlagSet, args []string, f *scanFlags) (targets int, err error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, errHelp
		}
		return 0, usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return 0, usageError{fmt.Sprintf("unexpected arguments: %s", strings.Join(fs.Args(), " "))}
	}
	for _, v := range []string{f.container, f.dir, f.oci} {
		if v != "" {
			targets++
		}
	}
	return targets, nil
}

func parseScanFlags(args []string, stderr io.Writer) (*scanFlags, error) {
	f := &scanFlags{}
	fs := flag.NewFlagSet("rootscan scan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.targetFlags(fs)
	fs.StringVar(&f.namespace, "namespace", "", "only scan containers of pods in this Kubernetes namespace")
	fs.StringVar(&f.output, "o", "table", "output format: table, json, sarif (SARIF 2.1.0 vulnerability results), cyclonedx-vex (CycloneDX 1.6 with the vulnerabilities) or hdf (Heimdall Data Format compliance results: one document, or an array for a node scan)")
	fs.StringVar(&f.dbDir, "db", dbDirDefault(), "vulnerability database directory (env ROOTSCAN_DB); without one, vulnerabilities are not checked")
	fs.StringVar(&f.severity, "severity", "", "only report vulnerabilities of this severity and above (HIGH), or of exactly these (LOW,UNKNOWN)")
	fs.IntVar(&f.exitCode, "exit-code", 0, "exit with this code when open (not VEX-suppressed) vulnerabilities remain after --severity")
	fs.StringVar(&f.vexDir, "vex", "", "folder of OpenVEX documents (or a mounted ConfigMap): not_affected/fixed statements suppress findings")
	fs.IntVar(&f.concurrency, "concurrency", min(4, runtime.NumCPU()), "containers scanned at once")
	fs.BoolVar(&f.showPackages, "packages", true, "list each target's packages in table output")
	fs.BoolVar(&f.verify, "verify-packages", false, "check every dpkg and rpm package file against the digests its package database recorded, like debsums and rpm -V (reads every package file: about 35-50 s on a 700-package Debian root, well under a second on distroless)")
	fs.StringVar(&f.sbomDir, "sbom-dir", "", "also write one SBOM per scanned target into this directory")
	fs.StringVar(&f.sbomFormat, "sbom-format", formatCycloneDX, "with --sbom-dir: cyclonedx or spdx")
	fs.BoolVar(&f.drift, "drift", false, "also list what each container added, changed or deleted on top of its image (containers only)")
	f.compliance.register(fs)
	f.forward.register(fs)
	fs.StringVar(&f.failControls, "fail-on-controls", "", "exit with --exit-code (3 when not given) when compliance controls of this severity and above (HIGH), or of exactly these (LOW,MEDIUM), failed or could not be evaluated; waived controls do not count")
	n, err := parseFlags(fs, args, f)
	if err != nil {
		return nil, err
	}
	if !slices.Contains([]string{"table", "json", "sarif", "cyclonedx-vex", "hdf"}, f.output) {
		return nil, usageError{fmt.Sprintf("-o %q: want table, json, sarif, cyclonedx-vex or hdf", f.output)}
	}
	if f.sevFilter, err = parseSeverityFilter(f.severity); err != nil {
		return nil, err
	}
	if f.controlGate, err = parseControlGate(f.failControls); err != nil {
		return nil, err
	}
	if err := checkSBOMFormat("--sbom-format", f.sbomFormat); err != nil {
		return nil, err
	}
	if n > 1 {
		return nil, usageError{"--container, --dir and --oci are exclusive"}
	}
	if f.drift && (f.dir != "" || f.oci != "") {
		return nil, usageError{"--drift needs containers: a --dir or --oci root has no image to compare with"}
	}
	if err := f.forward.check(); err != nil {
		return nil, err
	}
	return f, nil
}

func cmdScan(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	f, err := parseScanFlags(args, stderr)
	if err != nil {
		return exitFatal, err
	}
	log, err := newLogger(f.logLevel, stderr)
	if err != nil {
		return exitFatal, err
	}
	if f.engine, err = f.compliance.engine(log); err != nil {
		return exitFatal, err
	}
	if f.controlGate.on && f.engine == nil {
		return exitFatal, usageError{"--fail-on-controls needs at least one profile (drop --no-baseline or add --profile)"}
	}
	doc, err := scanTargets(ctx, f, log, stderr)
	if err != nil {
		return exitFatal, err
	}
	defer func() { log.Debug("scan finished", "targets", len(doc.Reports), "peak_rss_kib", peakRSSKiB()) }()
	var open int
	if doc.VulnDB, open, err = matchVulns(ctx, f.dbDir, f.vexDir, f.sevFilter, doc.Reports, stderr); err != nil {
		return exitFatal, err
	}
	if err := writeOutput(stdout, f, doc); err != nil {
		return exitFatal, fmt.Errorf("write output: %w", err)
	}
	if f.sbomDir != "" {
		files, err := writeSBOMDir(f.sbomDir, f.sbomFormat, doc.Reports)
		if err != nil {
			return exitFatal, err
		}
		log.Info("SBOMs written", "dir", f.sbomDir, "files", len(files))
	}
	if len(f.forward.sinks) > 0 {
		if err := forwardEvents(ctx, f.forward, f.nodeName, doc.Reports, log); err != nil {
			log.Error("forward events", "err", err)
			return exitPartial, nil
		}
	}
	if f.compliance.hdfDir != "" {
		files, err := writeHDFDir(f.compliance.hdfDir, f.engine, doc.Reports)
		if err != nil {
			return exitFatal, err
		}
		log.Info("HDF written", "dir", f.compliance.hdfDir, "files", len(files))
	}
	// Findings decide the exit code first, as CI gates expect (trivy, grype): a partly failed scan that found
	// vulnerabilities still fails the gate.
	if f.exitCode != 0 && open > 0 {
		return f.exitCode, nil
	}
	if failing := f.controlGate.failing(doc.Reports); len(failing) > 0 {
		f.controlGate.report(stderr, failing)
		if f.exitCode != 0 {
			return f.exitCode, nil
		}
		return exitControls, nil
	}
	for _, r := range doc.Reports {
		if r.Error != "" {
			return exitPartial, nil
		}
	}
	if ctx.Err() != nil {
		return exitPartial, nil
	}
	return exitOK, nil
}

// newLogger is the logger every command writes to stderr with, at the --log-level the user chose.
func newLogger(level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Sprintf("--log-level: %v", err)}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// scanTargets scans what the flags name (--dir, --oci, one --container or the whole node) with every analyzer. The
// error is for a scan that could not start at all; a target's own failure is in its report.
func scanTargets(ctx context.Context, f *scanFlags, log *slog.Logger, progress io.Writer) (output, error) {
	aopts := analyzerOptions(log)
	analyzers := scan.DefaultAnalyzers(aopts...)
	if f.verify {
		analyzers = append(analyzers, scan.NewDebIntegrity(), scan.NewRPMIntegrity(aopts...))
	}
	opts := fsaccess.Options{MaxFileSize: f.maxFileSize}
	doc := output{Node: f.nodeName, Reports: []report.Report{}}
	switch {
	case f.dir != "":
		doc.Reports = append(doc.Reports, scanDir(ctx, f, opts, analyzers))
	case f.oci != "":
		doc.Reports = append(doc.Reports, scanOCI(ctx, f, opts, analyzers))
	default:
		reps, rt, err := scanNode(ctx, f, opts, analyzers, log, progress)
		if err != nil {
			return doc, err
		}
		doc.Runtime, doc.Reports = rt, reps
	}
	return doc, nil
}

func scanNode(ctx context.Context, f *scanFlags, opts fsaccess.Options, analyzers []scan.Analyzer, log *slog.Logger, stderr io.Writer) ([]report.Report, string, error) {
	client, err := cri.Dial(ctx, f.endpoint)
	if err != nil {
		return nil, "", err
	}
	defer client.Close()
	name, ver := client.Runtime()
	addr := f.ctrdAddress
	if addr == "" {
		addr = client.Endpoint()
	}
	snaps, err := fsaccess.DialSnapshots(ctx, addr)
	if err != nil {
		return nil, "", err
	}
	defer snaps.Close()
	mounter, err := fsaccess.NewMounter(ctx, f.mountDir, log)
	if err != nil {
		return nil, "", err
	}
	defer func() {
		if err := mounter.Close(); err != nil {
			log.Error("release mounts", "dir", f.mountDir, "err", err)
		}
	}()
	roots := &node.ContainerRoots{Snapshots: snaps, Mounter: mounter, ProcRoot: f.procRoot, Options: opts}
	s := &node.Scanner{
		Containers:  client,
		Roots:       roots,
		Digests:     snaps,
		Configs:     snaps,
		Analyzers:   analyzers,
		Concurrency: f.concurrency,
		Node:        f.nodeName,
		Log:         log,
	}
	if f.drift {
		s.Drift = roots
	}
	if f.engine != nil {
		s.PerTarget = func(_ context.Context, t report.Target) ([]scan.Analyzer, func()) {
			vols, release := openVolumes(t, f.compliance.hostRoot, opts, log)
			return []scan.Analyzer{f.engine.Analyzer(t, vols)}, release
		}
	}
	if isTerminal(stderr) {
		s.Progress = func(done, total int) {
			fmt.Fprintf(stderr, "\rscanning containers %d/%d", done, total)
			if done == total {
				fmt.Fprint(stderr, "\r\033[K")
			}
		}
	}
	filter := cri.Filter{PodNamespace: f.namespace, ID: f.container}
	if f.container != "" {
		c, err := client.Container(ctx, f.container)
		if err != nil {
			return nil, "", err
		}
		return []report.Report{s.ScanContainer(ctx, c)}, name + " " + ver, nil
	}
	reps, err := s.ScanNode(ctx, filter)
	return reps, name + " " + ver, err
}

func scanDir(ctx context.Context, f *scanFlags, opts fsaccess.Options, analyzers []scan.Analyzer) report.Report {
	abs, _ := filepath.Abs(f.dir)
	rep := report.Report{Target: report.Target{Kind: "dir", Node: f.nodeName, Path: abs, Access: "dir"}, StartedAt: time.Now()}
	root, err := fsaccess.OpenDir(abs, opts)
	if err != nil {
		rep.Error = err.Error()
	} else {
		rep.Result = scan.Run(ctx, root, withCompliance(f, analyzers, rep.Target))
		_ = root.Close()
	}
	rep.Duration = time.Since(rep.StartedAt)
	return rep
}

func scanOCI(ctx context.Context, f *scanFlags, opts fsaccess.Options, analyzers []scan.Analyzer) report.Report {
	abs, _ := filepath.Abs(f.oci)
	rep := report.Report{Target: report.Target{Kind: "oci", Node: f.nodeName, Path: abs, Access: "oci-extract"}, StartedAt: time.Now()}
	root, img, err := fsaccess.OpenOCI(ctx, abs, f.scratchDir, fsaccess.OCIOptions{Ref: f.ociRef, Root: opts})
	if err != nil {
		rep.Error = err.Error()
	} else {
		rep.Target.Image = img.RefName
		rep.Target.ImageDigest = img.ManifestDigest.String()
		rep.Target.ImageID = img.ConfigDigest.String()
		rep.Target.Config = node.ImageConfigOf(img.Config.Config)
		rep.Result = scan.Run(ctx, root, withCompliance(f, analyzers, rep.Target))
		if err := root.Close(); err != nil {
			rep.Result.Errors = append(rep.Result.Errors, report.FileError{Analyzer: "fsaccess", Err: err.Error()})
		}
	}
	rep.Duration = time.Since(rep.StartedAt)
	return rep
}

// withCompliance adds the compliance analyzer for one target, last: packages() reads the others' inventory.
func withCompliance(f *scanFlags, analyzers []scan.Analyzer, t report.Target) []scan.Analyzer {
	if f.engine == nil {
		return analyzers
	}
	return append(append([]scan.Analyzer{}, analyzers...), f.engine.Analyzer(t, nil))
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// peakRSSKiB is this process's high-water resident set (VmHWM), logged at debug level so memory bounds can be checked
// from outside: the rusage a parent gets for a vfork'd child counts the parent's own pages.
func peakRSSKiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var n int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &n)
			return n
		}
	}
	return -1
}
