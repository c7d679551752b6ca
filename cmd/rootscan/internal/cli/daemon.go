package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/rootscan/rootscan/bpf"
	"github.com/rootscan/rootscan/compliance"
	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/exporter"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/node"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
	"github.com/rootscan/rootscan/vuln"
)

func (a *app) daemonCommand() *cobra.Command {
	c := &daemonConfig{}
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Keep the node's findings current: /metrics, /healthz, /readyz and SIEM sinks",
		Long: `Daemon runs until SIGTERM or SIGINT: it watches the node's containers through containerd's events, keeps
/metrics current and forwards finding changes to the SIEM sinks. Each image is read once (cached by chain
ID); a container is read again only when its own upper dir changed.

SIGHUP re-reads the vulnerability database and VEX (findings re-published without reading any filesystem)
and the compliance profiles (changed profiles re-check every container's root). A replaced database is
also picked up every --db-reload. With --db-url the daemon fetches the database itself at start when there is
none and refreshes it every --db-refresh, keeping the old one when an update fails.`,
		Example: `  # as a DaemonSet does it (see deploy/)
  rootscan daemon --listen :9090 --state-dir /var/lib/rootscan --sink https://siem.example/ingest?format=ecs

  # keeping its own vulnerability database current from an in-cluster mirror with a private CA
  rootscan daemon --db-url https://10.96.0.50/osv/Debian/all.zip --db-url https://10.96.0.50/osv/Go/all.zip \
    --db-ca-file /etc/rootscan-db-ca/ca.crt

  # from a configuration file, one flag overriding it
  rootscan daemon --config /etc/rootscan/daemon.yaml --log-level debug`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := c.mergeFile(cmd.Flags()); err != nil {
				return err
			}
			log, err := newLogger(c.LogLevel, a.stderr)
			if err != nil {
				return err
			}
			tuneGC()
			d, err := a.startDaemon(cmd.Context(), c, log)
			if err != nil {
				return err
			}
			return d.run(cmd.Context())
		},
	}
	c.register(cmd.Flags())
	return cmd
}

// daemonRun is a started daemon with everything it must release on the way out.
type daemonRun struct {
	log       *slog.Logger
	access    *node.Access
	dispatch  *exporter.Dispatcher
	publisher *exporter.DaemonPublisher
	loop      *node.Daemon
	reloader  *node.Reloader
	refresher *vuln.Refresher
	vulns     *vuln.Enricher
	servers   []served // the --listen server first
	budget    *node.BudgetCgroup
	monitor   *bpf.Monitor  // nil without eBPF
	runtime   *node.Runtime // nil without eBPF
}

func (a *app) startDaemon(ctx context.Context, c *daemonConfig, log *slog.Logger) (_ *daemonRun, retErr error) {
	r := &daemonRun{log: log}
	defer func() {
		if retErr != nil {
			r.close()
		}
	}()
	if err := c.DBFeed.check(); err != nil {
		return nil, err
	}
	if err := r.applyBudget(c); err != nil {
		return nil, err
	}
	opts := fsaccess.Options{MaxFileSize: c.MaxFileSize}
	var err error
	if r.access, err = node.Dial(ctx, node.AccessOptions{RuntimeEndpoint: c.RuntimeEndpoint, ContainerdAddress: c.ContainerdAddress,
		MountDir: c.MountDir, ProcRoot: procRootIf(c.ProcRootFallback, c.ProcRoot), Options: opts, Log: log}); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
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
	reg, health, err := r.startExport(c, a.version, log)
	if err != nil {
		return nil, err
	}
	store, err := vuln.NewStore(c.DB)
	if err != nil {
		return nil, fmt.Errorf("vulnerability database %s: %w", c.DB, err)
	}
	if r.vulns, err = vuln.NewEnricher(store, c.VEX, report.SeverityFilter{}); err != nil {
		store.Close()
		return nil, err
	}
	profiles, err := c.compliance.live(log)
	if err != nil {
		return nil, err
	}
	r.loop = r.newLoop(c, analyzers, cache, health, log)
	if err := r.startEBPF(ctx, c, reg); err != nil {
		return nil, err
	}
	r.loop.CheckBudget = node.CheckBudget{Timeout: c.CheckTimeout, Memory: int64(c.CheckMemory)}
	r.loop.StateDir = filepath.Join(c.StateDir, "checks")
	if profiles.Engine() != nil {
		r.loop.Checks = []node.RootCheck{&compliance.Checker{Profiles: profiles, HostRoot: c.compliance.hostRoot, Options: opts, Log: log}}
	}
	r.reloader = &node.Reloader{Daemon: r.loop, Vulns: r.vulns, Profiles: profiles, DBDir: c.DB, Health: health, Poll: c.DBReload, Log: log}
	r.reloader.NoteDB()
	if r.refresher, err = r.newRefresher(c, reg, log); err != nil {
		return nil, err
	}
	if err := r.listen(c.Listen, &c.Metrics, node.StatusHandler(r.loop, reg, health, r.access.Mounter.Held), log); err != nil {
		return nil, err
	}
	log.Info("rootscan daemon started", "version", a.version, "node", c.NodeName, "listen", r.servers[0].listener.Addr().String(),
		"metricsTLS", c.Metrics.tlsFiles().Enabled(), "healthListen", c.Metrics.HealthListen,
		"runtime", r.access.Client.Endpoint(), "stateDir", c.StateDir, "sinks", len(c.Sinks), "leftOut", selfName(r.loop.Self))
	return r, nil
}

// selfName says which pod the daemon leaves out, for its start line.
func selfName(p node.PodRef) string {
	if p.Name == "" {
		return "none"
	}
	return p.Namespace + "/" + p.Name
}

// applyBudget moves the daemon into a child cgroup with the --cpu-max, --memory-max and --io-weight limits.
func (r *daemonRun) applyBudget(c *daemonConfig) error {
	if c.IOWeight > 1000 {
		return usageError{fmt.Sprintf("--io-weight %d: want 1..1000", c.IOWeight)}
	}
	budget := node.Budget{CPU: c.CPUMax, IOWeight: uint16(c.IOWeight), MemoryMax: c.MemoryMax}
	if err := budget.Validate(); err != nil {
		return usageError{err.Error()}
	}
	var err error
	if r.budget, err = node.ApplyBudget(budget, r.log); err != nil {
		// The limits are a courtesy to the node; scanning goes on without them.
		r.log.Warn("scan budget not applied: this node does not let the daemon create its own cgroup; "+
			"scanning without CPU/memory/IO limits (in a pod, set resources.limits instead)", "err", err)
	}
	return nil
}

// startExport opens the SIEM sinks, their dispatcher and finding tracker, and the metrics registry.
func (r *daemonRun) startExport(c *daemonConfig, version string, log *slog.Logger) (*prometheus.Registry, *exporter.Health, error) {
	sinks, err := exporter.OpenSinks(c.Sinks)
	if err != nil {
		return nil, nil, usageError{err.Error()}
	}
	if r.dispatch, err = exporter.NewDispatcher(c.StateDir, sinks, exporter.DispatcherOptions{Logger: log}); err != nil {
		return nil, nil, err
	}
	tracker, err := exporter.NewTracker(filepath.Join(c.StateDir, "findings"), r.dispatch, log)
	if err != nil {
		return nil, nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := exporter.NewFleetMetrics(c.NodeName, c.Metrics.options())
	if err != nil {
		return nil, nil, usageError{err.Error()}
	}
	health := exporter.NewHealth(exporter.HealthOptions{Node: c.NodeName, Version: version})
	health.SetEventsDropped(r.dispatch.Dropped)
	for _, col := range []interface {
		Register(prometheus.Registerer) error
	}{metrics, health} {
		if err := col.Register(reg); err != nil {
			return nil, nil, err
		}
	}
	if err := reg.Register(exporter.NewSinkCollector(r.dispatch)); err != nil {
		return nil, nil, err
	}
	incomplete, err := exporter.NewIncompleteMetrics(c.NodeName, c.Metrics.options())
	if err != nil {
		return nil, nil, usageError{err.Error()}
	}
	if err := incomplete.Register(reg); err != nil {
		return nil, nil, err
	}
	r.publisher = &exporter.DaemonPublisher{Metrics: metrics, Tracker: tracker, Incomplete: incomplete, Log: log}
	return reg, health, nil
}

func (r *daemonRun) newLoop(c *daemonConfig, analyzers []scan.Analyzer, cache *node.ImageCache, health *exporter.Health, log *slog.Logger) *node.Daemon {
	acc := r.access
	return &node.Daemon{
		Containers: acc.Client,
		Events:     &cri.Watcher{Address: acc.Address, Namespace: fsaccess.CRINamespace, Log: log},
		Views:      acc.Roots,
		Roots:      acc.Roots,
		ProcRoot:   c.ProcRoot,
		Digests:    acc.Snapshots,
		Configs:    acc.Snapshots,
		Analyzers:  analyzers,
		Enrichers:  []node.Enricher{r.vulns},
		Cache:      cache,
		Drift:      node.ScanDrift(scan.DriftOptions{}),
		Publisher:  r.publisher,
		Node:       c.NodeName,
		Namespace:  c.Namespace,
		Self:       c.self(),
		Workers:    c.Workers,
		Resync:     c.Resync,
		Log:        log,
		OnScan: func(outcome string, d time.Duration) {
			if outcome == "analyzed" || outcome == "failed" {
				health.ObserveScan(outcome != "failed", d)
			}
		},
		OnImageEval: health.ImageEvaluation,
		OnCache: func(hit bool) {
			if hit {
				health.CacheHit()
			} else {
				health.CacheMiss()
			}
		},
	}
}

// run serves and loops until ctx ends, then shuts down in order: stop checking (unmounting), flush events, close.
func (r *daemonRun) run(ctx context.Context) error {
	defer r.close()
	for _, s := range r.servers {
		go func() {
			if err := s.server.Serve(s.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
				r.log.Error("metrics server", "addr", s.listener.Addr().String(), "err", err)
			}
		}()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	r.reloader.Hangup = hup
	go r.reloader.Run(ctx)
	if r.refresher != nil {
		go r.refresher.Run(ctx)
	}
	go r.loop.ForgetVanished(ctx, r.publisher)
	if r.runtime != nil {
		go r.runtime.Run(ctx)
	}
	err := r.loop.Run(ctx)
	r.log.Info("rootscan daemon stopping")
	return err
}

func (r *daemonRun) close() {
	for _, s := range r.servers {
		// Shutdown closes the listener even when Serve never ran (a start that failed later).
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.server.Shutdown(sctx)
		s.listener.Close()
		cancel()
	}
	if r.dispatch != nil {
		// Deliver what can be delivered in a few seconds; the rest stays spooled for the next start.
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := r.dispatch.Close(dctx); err != nil {
			r.log.Warn("close SIEM sinks", "err", err)
		}
		cancel()
	}
	if r.monitor != nil {
		r.monitor.Close()
	}
	if r.access != nil {
		r.access.Close()
	}
	if r.vulns != nil {
		r.vulns.Close()
	}
	if err := r.budget.Close(); err != nil {
		r.log.Warn("remove scan budget cgroup", "err", err)
	}
}
