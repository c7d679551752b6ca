package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rootscan/rootscan/compliance"
	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/exporter"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/inuse"
	"github.com/rootscan/rootscan/node"
	"github.com/rootscan/rootscan/output"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/sbom"
	"github.com/rootscan/rootscan/scan"
	"github.com/rootscan/rootscan/vuln"
)

// targetFlags choose and reach a target; `scan` and `sbom` share them.
type targetFlags struct {
	endpoint    string
	ctrdAddress string
	container   string
	dir         string
	oci         string
	ociRef      string
	mountDir    string
	scratchDir  string
	maxUnpacked byteSize
	maxFileSize int64
	nodeName    string
	logLevel    string
	procRoot    string
	// procRootFallback turns on the /proc/<pid>/root fallback; procRoot alone does not.
	procRootFallback bool
	// checkTimeout and checkMemory bound each target's scan (node.CheckBudget).
	checkTimeout time.Duration
	checkMemory  budgetSize
}

func (f *targetFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.endpoint, "runtime-endpoint", cri.DefaultEndpoint, "CRI runtime endpoint: unix:///path or a socket path")
	fs.StringVar(&f.ctrdAddress, "containerd-address", "", "containerd API socket for snapshot access (default: the runtime endpoint's socket)")
	fs.StringVar(&f.container, "container", "", "the container with this ID (or unique ID prefix) on this node")
	fs.StringVar(&f.dir, "dir", "", "a directory holding a root filesystem, instead of the node's containers")
	fs.StringVar(&f.oci, "oci", "", "an OCI image layout directory, instead of the node's containers")
	fs.StringVar(&f.ociRef, "oci-ref", "", "with --oci: the image ref name to pick when the layout holds several")
	fs.StringVar(&f.mountDir, "mount-dir", "/run/rootscan/mounts", "private directory for the read-only mounts (stale ones are removed at start)")
	fs.StringVar(&f.scratchDir, "scratch-dir", os.TempDir(), "where --oci layers are unpacked (removed afterwards)")
	f.maxUnpacked = fsaccess.DefaultMaxExtractBytes
	fs.Var(&f.maxUnpacked, "max-unpacked-size", "with --oci: most bytes unpacked into --scratch-dir from all layers, sparse files counted at their full size (2GiB, 512MiB, or bytes); a larger image is refused")
	fs.Int64Var(&f.maxFileSize, "max-file-size", 64<<20, "largest file read, in bytes")
	fs.StringVar(&f.nodeName, "node-name", hostname(), "node name put in reports")
	fs.StringVar(&f.logLevel, "log-level", "warn", "log level: debug, info, warn, error (logs go to stderr)")
	fs.StringVar(&f.procRoot, "proc-root", "/proc", "host /proc: container processes' maps for scan --in-use, InSpec's os_env, mount, processes and kernel_parameter of running containers, and /proc/<pid>/root with --proc-root-fallback")
	fs.BoolVar(&f.procRootFallback, "proc-root-fallback", false, "for snapshotters whose mounts cannot be re-mounted, read a running container through /proc/<pid>/root under --proc-root (off by default: a reused pid, or an init that chroots into a clean directory, would show another filesystem than the container's)")
	f.checkMemory = budgetSize(node.DefaultCheckBudget.Memory)
	fs.DurationVar(&f.checkTimeout, "check-timeout", node.DefaultCheckBudget.Timeout, "deadline of each target's scan; a scan past it stops and its report says incomplete, which budget and where (0 = none)")
	fs.Var(&f.checkMemory, "check-memory", "how far the live heap may grow during each target's scan (64MiB; 0 = no bound); a scan past it stops and its report says incomplete")
	withEnv(fs, legacyEnv, "runtime-endpoint", "containerd-address", "mount-dir", "scratch-dir", "max-file-size", "node-name", "log-level", "proc-root")
}

// checkBudget is what each target's scan may cost.
func (f *targetFlags) checkBudget() node.CheckBudget {
	return node.CheckBudget{Timeout: f.checkTimeout, Memory: int64(f.checkMemory)}
}

// count is how many targets the flags name, for each command's own rule on how many it takes.
func (f *targetFlags) count() int {
	n := 0
	for _, v := range []string{f.container, f.dir, f.oci} {
		if v != "" {
			n++
		}
	}
	return n
}

// scanFlags are `rootscan scan`'s flags.
type scanFlags struct {
	targetFlags
	namespace    string
	output       string
	concurrency  int
	showPackages bool
	verify       bool
	sbomDir      string
	sbomFormat   string
	drift        bool
	dbDir        string
	severity     string
	exitCode     int
	vexDir       string
	quiet        bool
	failControls string
	// reachableOnly drops Go findings whose vulnerable code is not in the program; vexUnreachable states them
	// not_affected in the VEX outputs instead.
	reachableOnly  bool
	vexUnreachable bool
	// inUse marks running containers' findings from their processes' maps; inUseOnly drops those not in use.
	inUse      bool
	inUseOnly  bool
	compliance complianceFlags
	forward    forwardFlags
	// parsed from the flags above
	sevFilter report.SeverityFilter
	gate      *compliance.Gate
}

func (a *app) scanCommand() *cobra.Command {
	f := &scanFlags{}
	cmd := &cobra.Command{
		Use:   "scan",
		Short: "Scan every container on this node, one container, a directory or an OCI layout",
		Long: `Scan reads each target's root filesystem read-only and reports its packages, their vulnerabilities
(when a database is present, see 'rootscan db'), compliance control results (builtin:container-baseline
unless --no-baseline) and, with --drift, what each container changed on top of its image.

Without --container, --dir or --oci it scans every container the CRI lists on this node. On a terminal
a progress line on stderr shows the containers done and the one being read (--quiet turns it off).`,
		Example: `  # every container of the node, as a table
  rootscan scan

  # one namespace, as JSON, failing a CI gate on HIGH and CRITICAL vulnerabilities
  rootscan scan --namespace shop -o json --severity HIGH --exit-code 4

  # a directory or an OCI layout, on any machine
  rootscan scan --dir ./rootfs
  rootscan scan --oci ./image-layout --sbom-dir ./sboms

  # compliance: a profile besides the baseline, HDF for Heimdall, and a gate on failed controls
  rootscan scan --profile ./cis.yaml -o hdf --fail-on-controls HIGH`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			tuneGC()
			code, err := a.runScan(cmd.Context(), f)
			a.code = code
			return err
		},
	}
	f.register(cmd.Flags())
	return cmd
}

func (f *scanFlags) register(fs *pflag.FlagSet) {
	shortAliases(fs)
	f.targetFlags.register(fs)
	fs.StringVar(&f.namespace, "namespace", "", "only scan containers of pods in this Kubernetes namespace")
	fs.StringVarP(&f.output, "output", "o", "table", "output format: table, json, sarif (SARIF 2.1.0 vulnerability results), cyclonedx-vex (CycloneDX 1.6 with the vulnerabilities), openvex (OpenVEX 0.2.0 statements) or hdf (Heimdall Data Format compliance results: one document, or an array for a node scan)")
	fs.StringVar(&f.dbDir, "db", defaultDBDir, "vulnerability database directory; without one, vulnerabilities are not checked")
	fs.StringVar(&f.severity, "severity", "", "only report vulnerabilities of this severity and above (HIGH), or of exactly these (LOW,UNKNOWN)")
	fs.IntVar(&f.exitCode, "exit-code", 0, "exit with this code when open (not VEX-suppressed) vulnerabilities remain after --severity")
	fs.StringVar(&f.vexDir, "vex", "", "folder of OpenVEX documents (or a mounted ConfigMap): not_affected/fixed statements suppress findings")
	fs.IntVar(&f.concurrency, "concurrency", min(4, runtime.NumCPU()), "containers scanned at once")
	fs.BoolVar(&f.showPackages, "packages", true, "list each target's packages in table output")
	fs.BoolVar(&f.verify, "verify-packages", false, "check every dpkg and rpm package file against the digests its package database recorded, like debsums and rpm -V (reads every package file: about 35-50 s on a 700-package Debian root, well under a second on distroless)")
	fs.StringVar(&f.sbomDir, "sbom-dir", "", "also write one SBOM per scanned target into this directory")
	fs.StringVar(&f.sbomFormat, "sbom-format", output.SBOMCycloneDX, "with --sbom-dir: cyclonedx or spdx")
	fs.BoolVar(&f.drift, "drift", false, "also list what each container added, changed or deleted on top of its image (containers only)")
	fs.BoolVar(&f.reachableOnly, "reachable-only", false, "leave out Go findings whose vulnerable code is not compiled into the program (reachable false); unknown ones stay")
	fs.BoolVar(&f.inUse, "in-use", true, "mark each running container's findings in use (true, false) from the files its processes map executable now (/proc/<pid>/maps under --proc-root); off, or for stopped containers, directories and images, they are unknown")
	fs.BoolVar(&f.inUseOnly, "in-use-only", false, "leave out findings whose package was not seen in use (in use false: none of its files is mapped by the container's processes); unknown ones stay")
	fs.BoolVar(&f.vexUnreachable, "vex-unreachable-not-affected", false, "with -o cyclonedx-vex or openvex: state Go findings whose vulnerable code is not in the program as not_affected (vulnerable_code_not_in_execute_path) instead of affected")
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "no progress line on stderr (there is none when stderr is not a terminal)")
	f.compliance.register(fs)
	f.forward.register(fs)
	fs.StringVar(&f.failControls, "fail-on-controls", "", "exit with --exit-code (3 when not given) when compliance controls of this severity and above (HIGH), or of exactly these (LOW,MEDIUM), failed or could not be evaluated; waived controls do not count")
	withEnv(fs, nil, "namespace", "db", "vex", "concurrency", "quiet", "host-root")
}

// check validates the flags together, before anything is opened.
func (f *scanFlags) check() error {
	if err := output.CheckFormat(f.output); err != nil {
		return usageError{"-o " + err.Error()}
	}
	var err error
	if f.sevFilter, err = report.ParseSeverityFilter(f.severity); err != nil {
		return usageError{"--severity " + err.Error()}
	}
	if f.gate, err = parseControlGate(f.failControls); err != nil {
		return err
	}
	if err := checkSBOMFormat("--sbom-format", f.sbomFormat); err != nil {
		return err
	}
	if f.count() > 1 {
		return usageError{"--container, --dir and --oci are exclusive"}
	}
	if f.vexUnreachable && f.output != "cyclonedx-vex" && f.output != "openvex" {
		return usageError{"--vex-unreachable-not-affected needs -o cyclonedx-vex or -o openvex"}
	}
	if f.drift && (f.dir != "" || f.oci != "") {
		return usageError{"--drift needs containers: a --dir or --oci root has no image to compare with"}
	}
	return f.forward.check()
}

// parseControlGate reads --fail-on-controls: the same severity syntax as --severity, applied to control results.
func parseControlGate(s string) (*compliance.Gate, error) {
	if s == "" {
		return nil, nil
	}
	filter, err := report.ParseSeverityFilter(s)
	if err != nil {
		return nil, usageError{fmt.Sprintf("--fail-on-controls %q: want CRITICAL, HIGH, MEDIUM, LOW or NONE, or a comma list of them", s)}
	}
	return &compliance.Gate{Filter: filter}, nil
}

func (a *app) runScan(ctx context.Context, f *scanFlags) (int, error) {
	log, err := newLogger(f.logLevel, a.stderr)
	if err != nil {
		return exitFatal, err
	}
	profiles, err := f.compliance.live(log)
	if err != nil {
		return exitFatal, err
	}
	if f.gate != nil && profiles.Engine() == nil {
		return exitFatal, usageError{"--fail-on-controls needs at least one profile (drop --no-baseline or add --profile)"}
	}
	vulns, dbNote, err := openEnricher(f.dbDir, f.vexDir, f.sevFilter)
	if err != nil {
		return exitFatal, err
	}
	defer vulns.Close()
	s := &node.Scanner{
		Analyzers:       analyzers(log, f.verify),
		Enrichers:       []node.Enricher{vulns},
		Options:         fsaccess.Options{MaxFileSize: f.maxFileSize},
		ScratchDir:      f.scratchDir,
		MaxExtractBytes: int64(f.maxUnpacked),
		Node:            f.nodeName,
		ProcRoot:        f.procRoot,
		Log:             log,
		Concurrency:     f.concurrency,
	}
	s.CheckBudget = f.checkBudget()
	if f.inUse {
		s.Usage, s.UsageOptions = node.ProcUsage{ProcRoot: f.procRoot}, inuse.Options{Analyzer: analyzerOptions(log)}
	}
	if profiles.Engine() != nil {
		check := &compliance.Checker{Profiles: profiles, HostRoot: f.compliance.hostRoot, Options: s.Options, Log: log}
		s.PerTarget, s.ImageCheck = check.Analyzers, check
	}
	endProgress := func() {}
	if p := newProgressLine(a.stderr, f.quiet); p != nil {
		s.Progress, endProgress = p.update, p.close
	}
	doc := output.Document{Node: f.nodeName, Reports: []report.Report{}}
	err = scanTargets(ctx, &f.targetFlags, f.namespace, f.drift, s, &doc, log)
	endProgress() // the line is gone before anything else is written
	if err != nil {
		return exitFatal, err
	}
	fmt.Fprint(a.stderr, dbNote) // after the scan, as the findings it qualifies: a scan that could not start needs no note
	defer func() { log.Debug("scan finished", "targets", len(doc.Reports), "peak_rss_kib", peakRSSKiB()) }()
	st := vulns.Status(f.dbDir)
	doc.VulnDB = &st
	if f.reachableOnly {
		dropUnreachable(doc.Reports)
	}
	if f.inUseOnly {
		dropNotInUse(doc.Reports)
	}
	return a.finishScan(ctx, f, doc, profiles.Engine(), log)
}

// finishScan writes what the scan found where the flags say and decides the exit code.
func (a *app) finishScan(ctx context.Context, f *scanFlags, doc output.Document, engine *compliance.Engine, log *slog.Logger) (int, error) {
	oopts := output.Options{ShowPackages: f.showPackages, Single: f.count() == 1, Engine: engine, ToolVersion: toolVersion(a.version),
		UnreachableNotAffected: f.vexUnreachable}
	if err := output.Write(a.stdout, f.output, doc, oopts); err != nil {
		return exitFatal, usageIf(fmt.Errorf("write output: %w", err))
	}
	if f.sbomDir != "" {
		files, err := output.WriteSBOMDir(f.sbomDir, f.sbomFormat, doc.Reports, sbom.Options{ToolVersion: oopts.ToolVersion})
		if err != nil {
			return exitFatal, err
		}
		log.Info("SBOMs written", "dir", f.sbomDir, "files", len(files))
	}
	if len(f.forward.sinks) > 0 {
		fw := exporter.Forward{Sinks: f.forward.sinks, StateDir: f.forward.stateDir, Timeout: f.forward.timeout, Node: f.nodeName, Log: log}
		if err := fw.Send(ctx, doc.Reports); err != nil {
			log.Error("forward events", "err", err)
			return exitPartial, nil
		}
	}
	if f.compliance.hdfDir != "" {
		files, err := output.WriteHDFDir(f.compliance.hdfDir, engine, doc.Reports)
		if err != nil {
			return exitFatal, usageIf(err)
		}
		log.Info("HDF written", "dir", f.compliance.hdfDir, "files", len(files))
	}
	// Findings decide the exit code first, as CI gates expect (trivy, grype): a partly failed scan that found
	// vulnerabilities still fails the gate.
	if f.exitCode != 0 && vuln.OpenFindings(doc.Reports) > 0 {
		return f.exitCode, nil
	}
	if failing := f.gate.Failing(doc.Reports); len(failing) > 0 {
		reportGate(a.stderr, failing)
		if f.exitCode != 0 {
			return f.exitCode, nil
		}
		return exitControls, nil
	}
	for _, r := range doc.Reports {
		// An incomplete target's findings are partial: a clean gate over them must not read as a clean node.
		if r.Error != "" || r.Incomplete != nil {
			return exitPartial, nil
		}
	}
	if ctx.Err() != nil {
		return exitPartial, nil
	}
	return exitOK, nil
}

// dropUnreachable applies --reachable-only to every report, before any output and the --exit-code gate: a finding
// left out is neither shown nor counted.
func dropUnreachable(reps []report.Report) {
	for _, r := range reps {
		if r.Result != nil {
			r.Result.Vulnerabilities = vuln.DropUnreachable(r.Result.Vulnerabilities)
		}
	}
}

// dropNotInUse applies --in-use-only like dropUnreachable applies --reachable-only.
func dropNotInUse(reps []report.Report) {
	for _, r := range reps {
		if r.Result != nil {
			r.Result.Vulnerabilities = inuse.DropNotInUse(r.Result.Vulnerabilities)
		}
	}
}

// usageIf makes an output that needs profiles none of which was evaluated a usage error.
func usageIf(err error) error {
	if errors.Is(err, output.ErrNoProfiles) {
		return usageError{err.Error()}
	}
	return err
}

// scanTargets scans what the flags name (--dir, --oci, one --container or the whole node) with s into doc. The
// error is for a scan that could not start at all; a target's own failure is in its report.
func scanTargets(ctx context.Context, f *targetFlags, namespace string, drift bool, s *node.Scanner, doc *output.Document, log *slog.Logger) error {
	switch {
	case f.dir != "":
		doc.Reports = append(doc.Reports, s.ScanDir(ctx, f.dir))
		return nil
	case f.oci != "":
		doc.Reports = append(doc.Reports, s.ScanOCI(ctx, f.oci, f.ociRef))
		return nil
	}
	acc, err := node.Dial(ctx, node.AccessOptions{
		RuntimeEndpoint: f.endpoint, ContainerdAddress: f.ctrdAddress, MountDir: f.mountDir, ProcRoot: procRootIf(f.procRootFallback, f.procRoot),
		Options: s.Options, Log: log,
	})
	if err != nil {
		return err
	}
	defer acc.Close()
	s.Containers, s.Roots, s.Digests, s.Configs, s.Views = acc.Client, acc.Roots, acc.Snapshots, acc.Snapshots, acc.Roots
	if drift {
		s.Drift = node.ScanDrift(scan.DriftOptions{})
	}
	doc.Runtime = acc.Runtime()
	if f.container != "" {
		c, err := acc.Client.Container(ctx, f.container)
		if err != nil {
			return err
		}
		doc.Reports = []report.Report{s.ScanContainer(ctx, c)}
		return nil
	}
	reps, err := s.ScanNode(ctx, cri.Filter{PodNamespace: namespace})
	if err != nil {
		return err
	}
	doc.Reports = reps
	return nil
}

// procRootIf is the ProcRoot node.AccessOptions gets: none (the fallback off) unless it was asked for.
func procRootIf(fallback bool, procRoot string) string {
	if !fallback {
		return ""
	}
	return procRoot
}

// openEnricher opens the vulnerability database for a one-shot command. With none (or a broken one) the scan still
// runs, reporting targets without vulnerability findings; note says why, for stderr once the scan has run.
func openEnricher(dir, vexDir string, filter report.SeverityFilter) (_ *vuln.Enricher, note string, _ error) {
	store, err := vuln.NewStore(dir)
	switch {
	case err != nil:
		note = fmt.Sprintf("rootscan: vulnerabilities not checked: %v\n", err)
		store = nil
	case store.Current() == nil:
		note = fmt.Sprintf("rootscan: vulnerabilities not checked: no database in %s (run 'rootscan db import' or 'rootscan db update', or set --db / ROOTSCAN_DB)\n", dir)
	}
	e, err := vuln.NewEnricher(store, vexDir, filter)
	return e, note, err
}

// analyzers are the analyzers every one-shot command runs; verify adds the package file checks.
func analyzers(log *slog.Logger, verify bool) []scan.Analyzer {
	aopts := analyzerOptions(log)
	as := scan.DefaultAnalyzers(aopts...)
	if verify {
		as = append(as, scan.NewDebIntegrity(), scan.NewRPMIntegrity(aopts...))
	}
	return as
}

// analyzerOptions are the options every command builds its analyzers with. rpm databases are parsed in a child
// process (the rootscan binary re-run with scan.RPMChildCommand, dispatched in main): go-rpmdb panics and loops in
// goroutines of its own, and a hostile image must not be able to end or wedge a scan or the daemon.
func analyzerOptions(log *slog.Logger) []scan.AnalyzerOption {
	return []scan.AnalyzerOption{scan.WithRPMParser(&scan.RPMSubprocess{Log: log})}
}

func hostname() string {
	h, _ := os.Hostname()
	return h
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
