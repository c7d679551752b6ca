package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"gopkg.in/yaml.v3"

	"github.com/rootscan/rootscan/compliance"
	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/exporter"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/node"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
	"github.com/rootscan/rootscan/vuln"
)

// daemonConfig is the daemon's configuration file; every field has a flag of the same meaning, and a flag given on
// the command line wins over the file.
type daemonConfig struct {
	RuntimeEndpoint   string        `yaml:"runtimeEndpoint"`
	ContainerdAddress string        `yaml:"containerdAddress"`
	Listen            string        `yaml:"listen"`
	StateDir          string        `yaml:"stateDir"`
	MountDir          string        `yaml:"mountDir"`
	Namespace         string        `yaml:"namespace"`
	NodeName          string        `yaml:"nodeName"`
	Workers           int           `yaml:"workers"`
	Resync            time.Duration `yaml:"resync"`
	Sinks             []string      `yaml:"sinks"`
	LogLevel          string        `yaml:"logLevel"`
	ProcRoot          string        `yaml:"procRoot"`
	MaxFileSize       int64         `yaml:"maxFileSize"`
	DB                string        `yaml:"db"`
	VEX               string        `yaml:"vex"`
	// DBReload is how often the database file is checked for replacement (db update swaps it atomically).
	DBReload time.Duration `yaml:"dbReload"`
	// Budget limits the daemon's own CPU, memory and IO through a child cgroup (outside Kubernetes only).
	CPUMax    float64 `yaml:"cpuMax"`
	IOWeight  uint    `yaml:"ioWeight"`
	MemoryMax int64   `yaml:"memoryMax"`
	// compliance flags are command-line only for now (profiles are files; the config file names them with flags).
	compliance complianceFlags
}

func parseDaemonFlags(args []string, stderr io.Writer) (*daemonConfig, error) {
	c := &daemonConfig{}
	fs := flag.NewFlagSet("rootscan daemon", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var configFile string
	var sinks stringList
	fs.StringVar(&configFile, "config", "", "YAML configuration file (flags given on the command line override it)")
	fs.StringVar(&c.RuntimeEndpoint, "runtime-endpoint", envOr("CONTAINER_RUNTIME_ENDPOINT", cri.DefaultEndpoint), "CRI runtime endpoint (env CONTAINER_RUNTIME_ENDPOINT)")
	fs.StringVar(&c.ContainerdAddress, "containerd-address", "", "containerd API socket for snapshots and events (default: the runtime endpoint's socket)")
	fs.StringVar(&c.Listen, "listen", ":9090", "address of the /metrics, /healthz and /readyz HTTP server (the only listener)")
	fs.StringVar(&c.StateDir, "state-dir", "/var/lib/rootscan", "image analysis cache, finding state and SIEM spools")
	fs.StringVar(&c.MountDir, "mount-dir", "/run/rootscan/mounts", "private directory for the read-only mounts (stale ones are removed at start)")
	fs.StringVar(&c.Namespace, "namespace", "", "only watch containers of pods in this Kubernetes namespace")
	fs.StringVar(&c.NodeName, "node-name", envOr("NODE_NAME", hostname()), "node name in metrics and events (env NODE_NAME)")
	fs.IntVar(&c.Workers, "workers", min(2, runtime.NumCPU()), "containers checked at once")
	fs.DurationVar(&c.Resync, "resync", 5*time.Minute, "full reconcile period, the safety net for missed events")
	fs.Var(&sinks, "sink", "SIEM sink URL, repeatable: stdout, file:/path, syslog+udp|tcp|tls://host:port, http(s)://... (see docs)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.ProcRoot, "proc-root", "/proc", "host /proc, for the /proc/<pid>/root fallback; empty disables it")
	fs.Int64Var(&c.MaxFileSize, "max-file-size", 64<<20, "largest file read, in bytes")
	fs.StringVar(&c.DB, "db", dbDirDefault(), "vulnerability database directory (env ROOTSCAN_DB); replaced databases are picked up without restart")
	fs.StringVar(&c.VEX, "vex", "", "folder of OpenVEX documents (or a mounted ConfigMap), re-read on SIGHUP")
	fs.DurationVar(&c.DBReload, "db-reload", 30*time.Second, "how often to look for a replaced vulnerability database")
	const budgetNote = "; for a daemon run by systemd or by hand (it moves itself into a child cgroup, removed on exit); " +
		"in a Kubernetes pod leave it unset and use the container's resources.limits instead"
	fs.Float64Var(&c.CPUMax, "cpu-max", 0, "CPU the daemon may use, in cores (0.5 = half a core; 0 = unlimited)"+budgetNote)
	fs.Int64Var(&c.MemoryMax, "memory-max", 0, "memory limit in bytes (0 = unlimited)"+budgetNote)
	fs.UintVar(&c.IOWeight, "io-weight", 0, "relative block IO weight 1..1000 (0 = unchanged)"+budgetNote)
	c.compliance.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, errHelp
		}
		return nil, usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Sprintf("unexpected arguments: %s", strings.Join(fs.Args(), " "))}
	}
	c.Sinks = sinks
	if configFile == "" {
		return c, nil
	}
	// The file fills what the command line did not set.
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	fromFile, err := readDaemonConfig(configFile)
	if err != nil {
		return nil, err
	}
	merge := func(flagName string, apply func()) {
		if !set[flagName] {
			apply()
		}
	}
	merge("runtime-endpoint", func() { c.RuntimeEndpoint = or(fromFile.RuntimeEndpoint, c.RuntimeEndpoint) })
	merge("containerd-address", func() { c.ContainerdAddress = or(fromFile.ContainerdAddress, c.ContainerdAddress) })
	merge("listen", func() { c.Listen = or(fromFile.Listen, c.Listen) })
	merge("state-dir", func() { c.StateDir = or(fromFile.StateDir, c.StateDir) })
	merge("mount-dir", func() { c.MountDir = or(fromFile.MountDir, c.MountDir) })
	merge("namespace", func() { c.Namespace = or(fromFile.Namespace, c.Namespace) })
	merge("node-name", func() { c.NodeName = or(fromFile.NodeName, c.NodeName) })
	merge("log-level", func() { c.LogLevel = or(fromFile.LogLevel, c.LogLevel) })
	merge("proc-root", func() { c.ProcRoot = or(fromFile.ProcRoot, c.ProcRoot) })
	merge("workers", func() {
		if fromFile.Workers > 0 {
			c.Workers = fromFile.Workers
		}
	})
	merge("resync", func() {
		if fromFile.Resync > 0 {
			c.Resync = fromFile.Resync
		}
	})
	merge("max-file-size", func() {
		if fromFile.MaxFileSize > 0 {
			c.MaxFileSize = fromFile.MaxFileSize
		}
	})
	merge("sink", func() { c.Sinks = fromFile.Sinks })
	merge("db", func() { c.DB = or(fromFile.DB, c.DB) })
	merge("vex", func() { c.VEX = or(fromFile.VEX, c.VEX) })
	merge("cpu-max", func() { c.CPUMax = cmp.Or(fromFile.CPUMax, c.CPUMax) })
	merge("memory-max", func() { c.MemoryMax = cmp.Or(fromFile.MemoryMax, c.MemoryMax) })
	merge("io-weight", func() { c.IOWeight = cmp.Or(fromFile.IOWeight, c.IOWeight) })
	merge("db-reload", func() {
		if fromFile.DBReload > 0 {
			c.DBReload = fromFile.DBReload
		}
	})
	return c, nil
}

func readDaemonConfig(name string) (*daemonConfig, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var c daemonConfig
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	return &c, nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// cmdDaemon runs until SIGTERM/SIGINT: it watches the node's containers, keeps /metrics current and forwards
// finding changes to the SIEM sinks. SIGHUP re-reads the vulnerability database and VEX (findings re-published
// without reading any filesystem) and the compliance profiles (changed profiles re-check every container's root).
func cmdDaemon(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	c, err := parseDaemonFlags(args, stderr)
	if err != nil {
		return exitFatal, err
	}
	log, err := newLogger(c.LogLevel, stderr)
	if err != nil {
		return exitFatal, err
	}
	d, err := startDaemon(ctx, c, log, stdout)
	if err != nil {
		return exitFatal, err
	}
	return exitOK, d.run(ctx)
}

// daemonRun is a started daemon with everything it must release on the way out.
type daemonRun struct {
	log      *slog.Logger
	cfg      *daemonConfig
	client   *cri.Client
	snaps    *fsaccess.Snapshots
	mounter  *fsaccess.Mounter
	dispatch *exporter.Dispatcher
	tracker  *exporter.Tracker
	metrics  *exporter.Metrics
	health   *exporter.Health
	loop     *node.Daemon
	vulns    *vulnEnricher
	profiles *compliance.Live
	server   *http.Server
	listener net.Listener
	budget   *node.BudgetCgroup
}

func startDaemon(ctx context.Context, c *daemonConfig, log *slog.Logger, stdout io.Writer) (_ *daemonRun, retErr error) {
	r := &daemonRun{log: log, cfg: c}
	defer func() {
		if retErr != nil {
			r.close()
		}
	}()
	var err error
	if c.IOWeight > 1000 {
		return nil, usageError{fmt.Sprintf("--io-weight %d: want 1..1000", c.IOWeight)}
	}
	budget := node.Budget{CPU: c.CPUMax, IOWeight: uint16(c.IOWeight), MemoryMax: c.MemoryMax}
	if err := budget.Validate(); err != nil {
		return nil, usageError{err.Error()}
	}
	if r.budget, err = node.ApplyBudget(budget, log); err != nil {
		// The limits are a courtesy to the node; scanning goes on without them.
		log.Warn("scan budget not applied: this node does not let the daemon create its own cgroup; "+
			"scanning without CPU/memory/IO limits (in a pod, set resources.limits instead)", "err", err)
	}
	if r.client, err = cri.Dial(ctx, c.RuntimeEndpoint); err != nil {
		return nil, err
	}
	address := c.ContainerdAddress
	if address == "" {
		address = strings.TrimPrefix(r.client.Endpoint(), "unix://")
	}
	if r.snaps, err = fsaccess.DialSnapshots(ctx, address); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	if r.mounter, err = fsaccess.NewMounter(ctx, c.MountDir, log); err != nil {
		return nil, err
	}
	analyzers := scan.DefaultAnalyzers(analyzerOptions(log)...)
	key, err := node.CacheKey(analyzers)
	if err != nil {
		return nil, err
	}
	cache, err := node.NewImageCache(filepath.Join(c.StateDir, "images"), key)
	if err != nil {
		return nil, err
	}

	var sinks []exporter.Sink
	for _, raw := range c.Sinks {
		s, err := exporter.ParseSink(raw)
		if err != nil {
			for _, s := range sinks {
				s.Close()
			}
			return nil, usageError{err.Error()}
		}
		sinks = append(sinks, s)
	}
	if r.dispatch, err = exporter.NewDispatcher(c.StateDir, sinks, exporter.DispatcherOptions{Logger: log}); err != nil {
		return nil, err
	}
	if r.tracker, err = exporter.NewTracker(filepath.Join(c.StateDir, "findings"), r.dispatch, log); err != nil {
		return nil, err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r.metrics = exporter.NewMetrics(c.NodeName)
	r.health = exporter.NewHealth(exporter.HealthOptions{Node: c.NodeName, Version: version})
	r.health.SetEventsDropped(r.dispatch.Dropped)
	if err := r.metrics.Register(reg); err != nil {
		return nil, err
	}
	if err := r.health.Register(reg); err != nil {
		return nil, err
	}
	if err := reg.Register(exporter.NewSinkCollector(r.dispatch)); err != nil {
		return nil, err
	}

	r.vulns = &vulnEnricher{log: log}
	if r.vulns.store, err = vuln.NewStore(c.DB); err != nil {
		return nil, fmt.Errorf("vulnerability database %s: %w", c.DB, err)
	}
	r.vulns.vexDir = c.VEX
	if err := r.vulns.loadVEX(); err != nil {
		return nil, err
	}
	r.noteDB()
	if r.profiles, err = c.compliance.live(log); err != nil {
		return nil, err
	}
	var checks []node.RootCheck
	if r.profiles.Engine() != nil {
		checks = append(checks, &complianceCheck{profiles: r.profiles, hostRoot: c.compliance.hostRoot, opts: fsaccess.Options{MaxFileSize: c.MaxFileSize}, log: log})
	}

	roots := &node.ContainerRoots{Snapshots: r.snaps, Mounter: r.mounter, ProcRoot: c.ProcRoot, Options: fsaccess.Options{MaxFileSize: c.MaxFileSize}}
	r.loop = &node.Daemon{
		Containers: r.client,
		Events:     &cri.Watcher{Address: address, Namespace: fsaccess.CRINamespace, Log: log},
		Views:      roots,
		Roots:      roots,
		Digests:    r.snaps,
		Configs:    r.snaps,
		Analyzers:  analyzers,
		Enrichers:  []node.Enricher{r.vulns},
		Checks:     checks,
		Cache:      cache,
		Drift: func(ctx context.Context, upper, image scan.FS) ([]report.DriftEntry, []report.FileError, error) {
			return scan.Drift(ctx, upper, image, scan.DriftOptions{})
		},
		Publisher: &daemonPublisher{metrics: r.metrics, tracker: r.tracker, log: log},
		Node:      c.NodeName,
		Namespace: c.Namespace,
		Workers:   c.Workers,
		Resync:    c.Resync,
		Log:       log,
		OnScan: func(outcome string, d time.Duration) {
			if outcome == "analyzed" || outcome == "failed" {
				r.health.ObserveScan(outcome != "failed", d)
			}
		},
		OnCache: func(hit bool) {
			if hit {
				r.health.CacheHit()
			} else {
				r.health.CacheMiss()
			}
		},
	}

	mux := http.NewServeMux()
	metricsHandler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	mux.Handle("/metrics", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// Gauges of the loop's own state are read at scrape time, so they are never stale.
		st := r.loop.Stats()
		r.health.SetQueueDepth(st.QueueDepth)
		r.health.SetContainersKnown(st.Containers)
		r.health.SetMountsHeld(r.mounter.Held())
		metricsHandler.ServeHTTP(w, req)
	}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !r.loop.Ready() {
			http.Error(w, "initial scan in progress", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	if r.listener, err = net.Listen("tcp", c.Listen); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", c.Listen, err)
	}
	r.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute}
	log.Info("rootscan daemon started", "version", version, "node", c.NodeName, "listen", r.listener.Addr().String(),
		"runtime", r.client.Endpoint(), "stateDir", c.StateDir, "sinks", len(sinks))
	return r, nil
}

// run serves and loops until ctx ends, then shuts down in order: stop checking (unmounting), flush events, close.
func (r *daemonRun) run(ctx context.Context) error {
	defer r.close()
	go func() {
		if err := r.server.Serve(r.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.log.Error("metrics server", "err", err)
		}
	}()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	dbTick := time.NewTicker(max(r.cfg.DBReload, time.Second))
	defer dbTick.Stop()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				r.log.Info("SIGHUP: reloading the vulnerability database, VEX and compliance profiles, re-publishing findings")
				if _, err := r.vulns.store.Reload(); err != nil && !errors.Is(err, vuln.ErrNoDatabase) {
					r.log.Warn("reload vulnerability database", "err", err)
				}
				if err := r.vulns.loadVEX(); err != nil {
					r.log.Warn("reload VEX", "err", err)
				}
				r.noteDB()
				r.loop.Republish(ctx)
				if changed, _ := r.profiles.Reload(); changed {
					r.loop.Recheck() // profiles need the roots: every container is evaluated again
				}
			case <-dbTick.C:
				swapped, err := r.vulns.store.Reload()
				if err != nil && !errors.Is(err, vuln.ErrNoDatabase) {
					r.log.Warn("reload vulnerability database", "err", err)
				}
				if swapped {
					r.log.Info("vulnerability database replaced; re-matching every container")
					r.noteDB()
					r.loop.Republish(ctx)
				}
			}
		}
	}()
	go r.forgetVanished(ctx)
	err := r.loop.Run(ctx)
	r.log.Info("rootscan daemon stopping")
	return err
}

// forgetVanished resolves the findings of containers that were removed while the daemon was down: once the first
// reconcile is done, every container the tracker knows but the runtime no longer lists is forgotten.
func (r *daemonRun) forgetVanished(ctx context.Context) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for !r.loop.Ready() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	known, err := r.tracker.Known()
	if err != nil {
		r.log.Warn("list tracked containers", "err", err)
		return
	}
	live, err := r.client.List(ctx, cri.Filter{PodNamespace: r.cfg.Namespace})
	if err != nil {
		return
	}
	ids := map[string]bool{}
	for _, c := range live {
		ids[c.ID] = true
	}
	for _, id := range known {
		if !ids[id] {
			if _, err := r.tracker.Forget(ctx, id); err != nil {
				r.log.Warn("forget vanished container", "container", id, "err", err)
			}
		}
	}
}

func (r *daemonRun) close() {
	if r.server != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r.server.Shutdown(sctx)
		cancel()
	} else if r.listener != nil {
		r.listener.Close()
	}
	if r.dispatch != nil {
		// Deliver what can be delivered in a few seconds; the rest stays spooled for the next start.
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := r.dispatch.Close(dctx); err != nil {
			r.log.Warn("close SIEM sinks", "err", err)
		}
		cancel()
	}
	if r.mounter != nil {
		if err := r.mounter.Close(); err != nil {
			r.log.Error("release mounts", "err", err)
		}
	}
	if r.snaps != nil {
		r.snaps.Close()
	}
	if r.vulns != nil && r.vulns.store != nil {
		r.vulns.store.Close()
	}
	if r.client != nil {
		r.client.Close()
	}
	if err := r.budget.Close(); err != nil {
		r.log.Warn("remove scan budget cgroup", "err", err)
	}
}

// noteDB tells the health metrics which database is loaded (its build time gives the age alert its input), and logs
// once when there is none: a daemon without a database still reports everything else.
func (r *daemonRun) noteDB() {
	db := r.vulns.store.Current()
	if db == nil {
		r.health.SetVulnDB(time.Time{})
		r.log.Warn("no vulnerability database; vulnerabilities are not checked", "db", r.cfg.DB)
		return
	}
	info := db.Info()
	r.health.SetVulnDB(info.Built)
	r.log.Info("vulnerability database loaded", "path", db.Path(), "built", info.Built, "advisories", info.Advisories)
}

// vulnEnricher matches every published report against the current database and applies VEX, so a new database
// or VEX document changes findings without any filesystem being read again.
type vulnEnricher struct {
	store  *vuln.Store
	vexDir string
	vex    atomic.Pointer[vuln.VEX]
	log    *slog.Logger
}

func (v *vulnEnricher) loadVEX() error {
	if v.vexDir == "" {
		return nil
	}
	x, err := vuln.LoadVEX(v.vexDir)
	if err != nil {
		return fmt.Errorf("load VEX %s: %w", v.vexDir, err)
	}
	v.vex.Store(x)
	return nil
}

func (v *vulnEnricher) Enrich(ctx context.Context, rep *report.Report) error {
	if rep.Result == nil || v.store.Current() == nil {
		return nil
	}
	rep.Result.Vulnerabilities = nil
	if err := v.store.Match(ctx, rep.Result); err != nil {
		return fmt.Errorf("match vulnerabilities: %w", err)
	}
	v.vex.Load().Apply(rep.Target, rep.Result.Vulnerabilities)
	return nil
}

// complianceCheck evaluates the profiles on a container's mounted root, with its volumes (ConfigMaps, Secrets)
// layered over it as the container sees them.
type complianceCheck struct {
	profiles *compliance.Live
	hostRoot string
	opts     fsaccess.Options
	log      *slog.Logger
}

func (c *complianceCheck) Check(ctx context.Context, root scan.FS, rep *report.Report) error {
	vols, release := openVolumes(rep.Target, c.hostRoot, c.opts, c.log)
	defer release()
	if e := c.profiles.Engine(); e != nil {
		rep.Result.Compliance = e.Evaluate(ctx, root, rep.Target, vols, rep.Result)
	}
	return nil
}

// daemonPublisher hands each report to the metrics (current state) and the tracker (change events).
type daemonPublisher struct {
	metrics *exporter.Metrics
	tracker *exporter.Tracker
	log     *slog.Logger
}

func (p *daemonPublisher) Publish(ctx context.Context, rep report.Report) {
	p.metrics.Update(rep)
	if _, err := p.tracker.Observe(ctx, rep); err != nil {
		p.log.Warn("record finding changes", "container", rep.Target.ContainerID, "err", err)
	}
}

func (p *daemonPublisher) Remove(ctx context.Context, t report.Target) {
	p.metrics.Delete(t.ContainerID)
	if _, err := p.tracker.Forget(ctx, t.ContainerID); err != nil {
		p.log.Warn("record container removal", "container", t.ContainerID, "err", err)
	}
}
