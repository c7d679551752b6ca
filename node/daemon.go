package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rootscan/rootscan/compliance"
	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/inuse"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// Publisher receives the node's current state: a report each time a container's findings may have changed, and
// the removal of containers that are gone. The Prometheus collector and the SIEM event tracker are publishers.
type Publisher interface {
	Publish(ctx context.Context, rep report.Report)
	Remove(ctx context.Context, t report.Target)
}

// ContainerLookup finds one container by ID; cri.Client is the real one. It returns an error wrapping
// cri.ErrNotFound for containers the runtime no longer has.
type ContainerLookup interface {
	ContainerSource
	Container(ctx context.Context, id string) (cri.Container, error)
}

// EventSource tells the daemon which containers changed; cri.Watcher is the real one. resync asks for a full
// reconcile (the first time, and after every reconnect, when events may have been lost).
type EventSource interface {
	Watch(ctx context.Context, changed func(id string), resync func()) error
}

// Enricher adds findings that need only the inventory (vulnerability matching). It runs on every publish, so a
// new vulnerability database applies to every container without re-reading any filesystem.
type Enricher interface {
	Enrich(ctx context.Context, rep *report.Report) error
}

// RootCheck adds findings that need the container's merged root (compliance profiles). It runs only when the
// container is (re)analyzed, while the root is mounted.
type RootCheck interface {
	Check(ctx context.Context, root scan.FS, rep *report.Report) error
}

// ContainerTracker follows the daemon's containers: Track for each container checked (running or not), Forget for
// each one gone. *Runtime is the real one.
type ContainerTracker interface {
	Track(c cri.Container, t report.Target)
	Forget(id string)
}

// Daemon keeps the findings of every container on the node current. It reacts to containerd events, re-lists all
// containers every Resync as a safety net, analyzes each image once (cached by chain ID), and for each container
// re-checks only its own upper dir: an unchanged container costs one walk of that (usually tiny) directory.
type Daemon struct {
	Containers ContainerLookup
	Events     EventSource // optional: without it the daemon only resyncs
	Views      Views
	// Roots opens a container's merged root; also the fallback for snapshotters Views cannot mount.
	Roots RootOpener
	// ProcRoot is the host's /proc, where compliance's process resources (InSpec's os_env, mount, processes,
	// kernel_parameter) read a running container's init; empty leaves them skipped.
	ProcRoot  string
	Digests   DigestResolver      // optional
	Configs   ImageConfigResolver // optional: image configs for compliance controls
	Analyzers []scan.Analyzer
	Enrichers []Enricher
	Checks    []RootCheck
	Drift     DriftFunc // optional
	// Runtime, when set, is kept in step with the containers the daemon watches (runtime signals from eBPF).
	Runtime   ContainerTracker
	Cache     *ImageCache
	Publisher Publisher
	Node      string
	// Namespace limits the daemon to pods of one Kubernetes namespace ("" = all).
	Namespace string
	// Self is the daemon's own pod (from the downward API), whose containers it leaves out: a scanner that must run
	// as root fails the baseline by design, and its own volumes and state are no workload's findings. Zero = none.
	// Other pods of its DaemonSet (see sibling) are left out too.
	Self PodRef
	// Workers bounds concurrent container checks (default 2).
	Workers int
	// Resync is the full reconcile period (default 5m).
	Resync time.Duration
	Log    *slog.Logger
	// OnScan, when set, observes each container check: outcome is "analyzed", "unchanged", "refreshed" (unchanged,
	// published again with a new scan time) or "failed".
	OnScan func(outcome string, d time.Duration)
	// OnCache, when set, observes each image cache lookup.
	OnCache func(hit bool)
	// OnImageEval, when set, observes where each container's image evaluation for an image check came from
	// (EvalFromMemory, EvalFromDisk, EvalNew).
	OnImageEval func(source string)
	// CheckBudget bounds each container check (deadline, memory); zero fields leave that bound off.
	CheckBudget CheckBudget
	// StateDir keeps the crash records (quarantine.go) and the image checks' evaluations (imageevals_disk.go); ""
	// keeps none, so a crash in a check may repeat and a restart evaluates every image again.
	StateDir string
	// QuarantineFor is how long an unchanged container stays quarantined (default DefaultQuarantineFor).
	QuarantineFor time.Duration

	// InUse, when set, is the record of the files each container used (*Runtime): findings are marked in use from
	// it (see inuse_daemon.go); without it every finding is in use "unknown".
	InUse        FileUsage
	InUseOptions inuse.Options

	queue *workQueue
	// selfLabels are the own pod's labels, from the first list that holds it (for sibling).
	selfLabels atomic.Pointer[map[string]string]
	// listedOnce is closed by the first successful resync. Workers wait for it: an event can name a container
	// before the daemon has listed its own pod, and until then a sibling scanner pod (an older revision exiting in
	// a rolling update) cannot be told from a neighbour.
	listedOnce chan struct{}
	listedDone sync.Once

	mu       sync.Mutex
	tracked  map[string]*tracked
	listed   map[string]cri.Container // from the last resync's list, not yet checked
	ready    atomic.Bool
	cacheHit atomic.Uint64
	cacheMis atomic.Uint64
	inFlight sync.Mutex // serializes image scans of the same chain (see imageResult)
	chains   map[string]*sync.Mutex
	// retry asks Run for a resync after a backoff: a resync or a lookup failed because the runtime was unreachable
	// (containerd restarting), and the event that led there is not coming again.
	retry chan struct{}
	gen   atomic.Uint64 // bumped by Recheck: a container checked under an older generation is checked again
	// mounts counts the image views and merged roots checks mounted (see checkViews): what a node scan costs in
	// mount syscalls and mountinfo churn.
	mounts atomic.Uint64
	mem    *memWatch   // CheckBudget.Memory's watch, nil without one
	quar   *quarantine // crash records, nil without StateDir
	// imageEvals are the image checks' evaluations per image (imagecontrols.go).
	imageEvals imageEvals
	inUse      inUseIndexes
}

// tracked is what the daemon remembers of one container between checks.
type tracked struct {
	target report.Target
	chain  string
	upper  string // upperState digest; "" forces a full check
	report report.Report
	gen    uint64 // Daemon.gen when the check that made this started
}

// Stats are the daemon's own health figures, for metrics.
type Stats struct {
	Containers  int
	QueueDepth  int
	CacheHits   uint64
	CacheMisses uint64
	Images      int
	// Mounts is how many image views and merged roots checks have mounted since Run started (upper dirs are read
	// in place).
	Mounts uint64
}

// Stats reports current figures; safe to call from a metrics scrape.
func (d *Daemon) Stats() Stats {
	d.mu.Lock()
	n := len(d.tracked)
	d.mu.Unlock()
	s := Stats{Containers: n, CacheHits: d.cacheHit.Load(), CacheMisses: d.cacheMis.Load(), Mounts: d.mounts.Load()}
	if d.queue != nil {
		s.QueueDepth = d.queue.len()
	}
	if d.Cache != nil {
		s.Images = d.Cache.Len()
	}
	return s
}

// refreshAfter is how often an unchanged container's report is published again with a new scan time.
const refreshAfter = time.Hour

// settleDelay is when a container is looked at a second time after an event: the CRI plugin handles containerd's
// events itself, so its view of the container (state, exit code) can trail the event we got by a moment.
const settleDelay = time.Second

func (d *Daemon) changed(id string) {
	d.queue.add(id)
	time.AfterFunc(settleDelay, func() { d.queue.add(id) })
}

// Nudge queues a check of one container now, for signals the event stream does not carry (an eBPF exec event, a
// file watch). Unknown IDs are looked up and dropped if the runtime does not list them.
func (d *Daemon) Nudge(id string) {
	if q := d.queue; q != nil {
		q.add(id)
	}
}

// Ready is true once the first full reconcile has been checked, for /readyz.
func (d *Daemon) Ready() bool { return d.ready.Load() }

// Run blocks until ctx ends. In-flight checks see the cancelled context and unmount before Run returns.
func (d *Daemon) Run(ctx context.Context) error {
	if d.Containers == nil || d.Roots == nil || d.Publisher == nil {
		return errors.New("daemon: Containers, Roots and Publisher are required")
	}
	d.setup()
	if err := d.setupBudgets(ctx); err != nil {
		return err
	}
	if err := d.setupImageEvals(); err != nil {
		return err
	}
	workers := d.Workers
	if workers <= 0 {
		workers = 2
	}
	resyncEvery := d.Resync
	if resyncEvery <= 0 {
		resyncEvery = 5 * time.Minute
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-d.listedOnce:
			case <-ctx.Done():
				return
			}
			for {
				id, ok := d.queue.get(ctx)
				if !ok {
					return
				}
				d.check(ctx, id)
				d.queue.done(id)
			}
		}()
	}

	resyncNow := make(chan struct{}, 1)
	askResync := func() {
		select {
		case resyncNow <- struct{}{}:
		default:
		}
	}
	if d.Events != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := d.Events.Watch(ctx, d.changed, askResync)
			if err != nil && ctx.Err() == nil {
				d.logger().Error("event watch ended", "err", err)
			}
		}()
	} else {
		askResync()
	}

	tick := time.NewTicker(resyncEvery)
	defer tick.Stop()
	// A failed resync is retried with backoff instead of waiting for the next tick (minutes away): after a
	// containerd restart the watcher's resync can race the runtime's return, and its events cannot be replayed.
	retryTimer := time.NewTimer(0)
	<-retryTimer.C
	retrying := false
	backoff := minRetry
	resync := func() {
		if d.resync(ctx) {
			backoff = minRetry
			return
		}
		if !retrying {
			retrying = true
			retryTimer.Reset(backoff)
			backoff = min(2*backoff, maxRetry)
		}
	}
	for {
		select {
		case <-ctx.Done():
			retryTimer.Stop()
			d.queue.close()
			wg.Wait()
			d.imageEvals.flush()
			return nil
		case <-tick.C:
			resync()
		case <-resyncNow:
			resync()
		case <-d.retry:
			if !retrying {
				retrying = true
				retryTimer.Reset(backoff)
				backoff = min(2*backoff, maxRetry)
			}
		case <-retryTimer.C:
			retrying = false
			resync()
		}
	}
}

// setup makes the state Run works on.
func (d *Daemon) setup() {
	d.tracked = map[string]*tracked{}
	d.listed = map[string]cri.Container{}
	d.chains = map[string]*sync.Mutex{}
	d.queue = newWorkQueue()
	d.listedOnce = make(chan struct{})
	d.retry = make(chan struct{}, 1)
	if d.Cache == nil {
		d.Cache, _ = NewImageCache("", "")
	}
}

// minRetry and maxRetry bound the wait before a resync that failed, or that a failed lookup asked for, is retried.
const (
	minRetry = 500 * time.Millisecond
	maxRetry = 30 * time.Second
)

// retrySoon asks Run for a resync after the current backoff; repeated asks while one is pending cost nothing.
func (d *Daemon) retrySoon() {
	select {
	case d.retry <- struct{}{}:
	default:
	}
}

// PodRef names a Kubernetes pod.
type PodRef struct {
	Namespace, Name string
}

// watches says whether c is one of the containers the daemon reports on: in its namespace, if it has one, and not of
// its own pod. A container left out is never read, so it has no series, no events and no mounts.
func (d *Daemon) watches(c cri.Container) bool {
	if d.Namespace != "" && c.PodNamespace != d.Namespace {
		return false
	}
	if d.Self.Name == "" || c.PodNamespace != d.Self.Namespace {
		return true
	}
	return c.PodName != d.Self.Name && !d.sibling(c)
}

// sibling says whether c is of another pod of the daemon's own DaemonSet in its namespace: an older revision still
// terminating in a rolling update, or an exited pod a crash loop left. Such a pod carries the daemon's own pod labels,
// those the controller sets per revision and the kubelet's io.kubernetes.* aside; a pod with other labels is a
// neighbour and is reported.
func (d *Daemon) sibling(c cri.Container) bool {
	own := d.selfLabels.Load()
	if own == nil {
		return false
	}
	compared := 0
	for k, v := range *own {
		if k == "controller-revision-hash" || k == "pod-template-generation" || strings.HasPrefix(k, "io.kubernetes.") {
			continue
		}
		if c.PodLabels[k] != v {
			return false
		}
		compared++
	}
	return compared > 0
}

// resync lists every container, queues each for a check and removes the ones that are gone. The first successful
// resync makes the daemon ready once its checks are done. It reports whether the list succeeded.
func (d *Daemon) resync(ctx context.Context) bool {
	cs, err := d.Containers.List(ctx, cri.Filter{PodNamespace: d.Namespace})
	if err != nil {
		if ctx.Err() == nil {
			d.logger().Warn("resync: list containers; retrying", "err", err)
		}
		return false
	}
	live := make(map[string]bool, len(cs))
	d.mu.Lock()
	for _, c := range cs {
		if d.Self.Name != "" && c.PodName == d.Self.Name && c.PodNamespace == d.Self.Namespace && d.selfLabels.Load() == nil {
			labels := c.PodLabels
			d.selfLabels.Store(&labels)
		}
		live[c.ID] = true
		// The list already holds each container's status: checking it needs no second CRI round trip per container.
		d.listed[c.ID] = c
	}
	d.mu.Unlock()
	d.listedDone.Do(func() { close(d.listedOnce) })
	for _, c := range cs {
		d.queue.add(c.ID)
	}
	d.mu.Lock()
	var gone []string
	for id := range d.tracked {
		if !live[id] {
			gone = append(gone, id)
		}
	}
	for id := range d.listed {
		if !live[id] {
			delete(d.listed, id)
		}
	}
	d.mu.Unlock()
	for _, id := range gone {
		d.remove(ctx, id)
	}
	d.pruneCache()
	start := time.Now()
	mounts0 := d.mounts.Load()
	go func() {
		if !d.queue.waitIdle(ctx) {
			return
		}
		// How long a whole-node check takes: the first one reads every image, later ones only upper dirs.
		mounts := d.mounts.Load() - mounts0
		if !d.ready.Swap(true) {
			d.logger().Info("initial scan done", "containers", len(cs), "mounts", mounts, "duration", time.Since(start))
		} else {
			d.logger().Debug("node checked", "containers", len(cs), "mounts", mounts, "duration", time.Since(start))
		}
	}()
	d.logger().Debug("resync", "containers", len(cs), "removed", len(gone))
	return true
}

// cacheGrace is how long an image no container uses stays cached: a pod recreated within it (a rollout, a crash
// loop) costs no image read.
const cacheGrace = time.Hour

// pruneCache drops cached images no tracked container uses.
func (d *Daemon) pruneCache() {
	keep := map[string]bool{}
	d.mu.Lock()
	for _, t := range d.tracked {
		if t.chain != "" {
			keep[t.chain] = true
		}
	}
	d.mu.Unlock()
	d.imageEvals.prune(keep, cacheGrace)
	d.inUse.prune(keep, cacheGrace)
	if n := d.Cache.Prune(keep, cacheGrace); n > 0 {
		d.logger().Debug("image cache pruned", "entries", n)
	}
}

// Republish re-runs the enrichers on every container's last result and publishes again: after the vulnerability
// database or VEX documents changed, no filesystem needs reading.
func (d *Daemon) Republish(ctx context.Context) {
	d.mu.Lock()
	var reps []report.Report
	for _, t := range d.tracked {
		if t.report.Result != nil {
			reps = append(reps, t.report)
		}
	}
	d.mu.Unlock()
	for _, rep := range reps {
		res := *rep.Result
		res.Vulnerabilities = nil
		rep.Result = &res
		d.enrich(ctx, &rep)
		d.store(rep, nil)
		d.Publisher.Publish(ctx, rep)
	}
}

func (d *Daemon) remove(ctx context.Context, id string) {
	d.mu.Lock()
	t, ok := d.tracked[id]
	delete(d.tracked, id)
	d.mu.Unlock()
	d.quar.lift(id)
	if d.Runtime != nil {
		d.Runtime.Forget(id)
	}
	d.inUse.forget(id)
	if f, ok := d.Views.(viewForgetter); ok {
		f.Forget(id)
	}
	if ok {
		d.Publisher.Remove(ctx, t.target)
		d.logger().Info("container gone", "container", id, "name", t.target.Name())
	}
}

// viewForgetter is a Views that holds something of a container between checks (ContainerRoots keeps its upper dir
// open) and lets go of it when the container is gone.
type viewForgetter interface {
	Forget(containerID string)
}

// check brings one container up to date.
func (d *Daemon) check(ctx context.Context, id string) {
	start := time.Now()
	d.mu.Lock()
	c, listed := d.listed[id]
	delete(d.listed, id)
	d.mu.Unlock()
	var err error
	if !listed {
		c, err = d.Containers.Container(ctx, id)
	}
	if err != nil {
		if errors.Is(err, cri.ErrNotFound) {
			d.remove(ctx, id) // deleted, or a sandbox ID from an event
		} else if ctx.Err() == nil {
			// The runtime did not answer (restarting?): the event that queued this check is spent, so only a
			// resync brings the container up to date; ask for one once the runtime is likely back.
			d.logger().Warn("look up container; resyncing later", "container", id, "err", err)
			d.retrySoon()
		}
		return
	}
	if !d.watches(c) {
		return
	}
	if d.Runtime != nil {
		d.Runtime.Track(c, containerTarget(d.Node, c))
	}
	cctx, run, end := d.beginCheck(ctx, c.ID)
	outcome, rep := d.checkContainer(cctx, c)
	end()
	if ctx.Err() != nil {
		return // cancelled mid-check: publish nothing half-done
	}
	if inc := run.stoppedBy(cctx); inc != nil {
		outcome, rep = "incomplete", d.incomplete(run, rep, inc, d.logger())
	}
	if d.OnScan != nil {
		d.OnScan(outcome, time.Since(start))
	}
	if outcome == "unchanged" || outcome == "refreshed" {
		// The files in use may have grown since the findings were marked (Runtime.OnUse nudged this check).
		var moved bool
		if rep, moved = d.remarkInUse(rep); !moved && outcome == "unchanged" {
			return
		}
	}
	d.Publisher.Publish(ctx, rep)
}

func (d *Daemon) last(id string) *tracked {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t, ok := d.tracked[id]; ok {
		cp := *t
		return &cp
	}
	return nil
}

func (d *Daemon) store(rep report.Report, t *tracked) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t == nil {
		if cur, ok := d.tracked[rep.Target.ContainerID]; ok {
			cur.report = rep
		}
		return
	}
	t.report = rep
	t.target = rep.Target
	d.tracked[rep.Target.ContainerID] = t
}

// checkContainer returns "unchanged" (nothing to publish), "analyzed" or "failed" with the report to publish.
func (d *Daemon) checkContainer(ctx context.Context, c cri.Container) (string, report.Report) {
	log := d.logger().With("container", c.ID, "name", c.DisplayName())
	ctx = withProcess(ctx, d.ProcRoot, c)
	gen := d.gen.Load()
	prev := d.last(c.ID)
	rep := report.Report{Target: containerTarget(d.Node, c), StartedAt: time.Now()}
	if prev != nil && prev.target.ImageDigest != "" && rep.Target.ImageDigest == "" {
		rep.Target.ImageDigest = prev.target.ImageDigest
	}
	if rep.Target.ImageDigest == "" && d.Digests != nil {
		if dg, err := d.Digests.ImageDigest(ctx, c.ID); err == nil {
			rep.Target.ImageDigest = dg
		}
	}
	if prev != nil && prev.target.Config != nil {
		rep.Target.Config = prev.target.Config
	} else if d.Configs != nil {
		if cfg, err := d.Configs.ImageConfig(ctx, c.ID); err == nil {
			rep.Target.Config = ImageConfigOf(*cfg)
		}
	}
	fail := func(err error) (string, report.Report) {
		rep.Error = err.Error()
		rep.Duration = time.Since(rep.StartedAt)
		log.Warn("container not scanned", "err", err)
		d.store(rep, &tracked{target: rep.Target})
		return "failed", rep
	}

	views := d.newCheckViews(c, log)
	defer views.close()
	if d.Views == nil {
		return d.fullCheck(ctx, views, rep, fail)
	}
	chain, err := d.Views.ChainID(ctx, c)
	if err != nil {
		if errors.Is(err, fsaccess.ErrUnsupportedMount) {
			return d.fullCheck(ctx, views, rep, fail)
		}
		return fail(fmt.Errorf("image layers: %w", err))
	}
	upper, err := views.get(ctx, fsaccess.ViewUpper)
	if err != nil {
		if errors.Is(err, fsaccess.ErrUnsupportedMount) {
			return d.fullCheck(ctx, views, rep, fail)
		}
		return fail(fmt.Errorf("open upper dir: %w", err))
	}
	scan.ProgressFrom(ctx).Set("upper", "")
	st, err := readUpper(ctx, upper)
	if err != nil {
		return fail(fmt.Errorf("read upper dir: %w", err))
	}
	if prev != nil && prev.chain == chain && prev.upper == st.digest && prev.report.Error == "" &&
		prev.target.State == rep.Target.State && prev.gen == gen && !d.needsInUseIndex(c) {
		if time.Since(prev.report.StartedAt) < refreshAfter {
			return "unchanged", prev.report
		}
		// Nothing changed, but say so: the last-scan time is how dashboards and the stale-scan alert tell a
		// checked container from a forgotten one. The findings are the same, so the SIEM gets no events.
		rep := prev.report
		rep.StartedAt, rep.Duration = time.Now(), 0
		d.store(rep, nil)
		return "refreshed", rep
	}

	if outcome, rep, stop := d.admit(ctx, c, prev, rep, chain, st.digest); stop {
		return outcome, rep
	}
	evals := d.imageChecks(chain)
	image, err := d.imageResult(ctx, views, chain, evals)
	if err != nil {
		return fail(err)
	}
	inUseErrs := d.imageInUse(ctx, views, c, chain, image)
	rep.Target.Access = "overlay-lowerdir"
	rep.Result = cloneResult(image)
	rep.Result.Errors = append(rep.Result.Errors, inUseErrs...)
	if touched := touchedAnalyzers(d.Analyzers, upper, st); touched || len(d.Checks) > 0 {
		// The merged view, mounted when its inventory differs from the image's or a root check needs it. Drift does
		// not: it compares the upper dir with the image view.
		if err := d.checkMerged(ctx, views, &rep, evals, upper, st, touched, log); err != nil {
			return fail(fmt.Errorf("open root filesystem: %w", err))
		}
		if ctx.Err() == nil {
			d.imageEvals.save(chain, evals)
		}
	}
	if d.Drift == nil {
		// Drift is the only later reader of the image view (mounted on a cache miss, or by the image checks).
		views.release(fsaccess.ViewImage)
	}
	if d.Drift != nil {
		d.drift(ctx, views, upper, rep.Target.Mounts, rep.Result)
	}
	d.enrich(ctx, &rep)
	rep.Duration = time.Since(rep.StartedAt)
	d.store(rep, &tracked{target: rep.Target, chain: chain, upper: st.digest, gen: gen})
	log.Debug("container checked", "packages", len(rep.Result.Packages), "upperEntries", len(st.entries), "duration", rep.Duration)
	return "analyzed", rep
}

// fullCheck is the path for snapshots the daemon cannot split into image and upper views: the whole container is
// analyzed on every check, with no caching.
func (d *Daemon) fullCheck(ctx context.Context, views *checkViews, rep report.Report, fail func(error) (string, report.Report)) (string, report.Report) {
	if outcome, rep, stop := d.admit(ctx, views.c, d.last(views.c.ID), rep, "", ""); stop {
		return outcome, rep
	}
	root, err := views.get(ctx, fsaccess.ViewContainer)
	if err != nil {
		return fail(fmt.Errorf("open root filesystem: %w", err))
	}
	rep.Target.Access = views.access
	rep.Result = scan.Run(ctx, root, d.Analyzers)
	d.ownInUse(ctx, rep.Target.ContainerID, root, rep.Result)
	d.runChecks(ctx, root, &rep, d.logger())
	d.enrich(ctx, &rep)
	rep.Duration = time.Since(rep.StartedAt)
	d.store(rep, &tracked{target: rep.Target})
	return "analyzed", rep
}

// imageResult returns the image's analysis, from the cache or by reading the check's image view (which stays
// mounted for the check's later steps). Containers of the same image that start together wait for one scan instead
// of each reading the image. The walk also collects the files() listing of evals, the image's evaluations.
func (d *Daemon) imageResult(ctx context.Context, views *checkViews, chain string, evals []*compliance.ImageEval) (*report.Result, error) {
	if r, ok := d.Cache.Get(chain); ok {
		d.cacheHit.Add(1)
		d.observeCache(true)
		return r, nil
	}
	d.inFlight.Lock()
	mu, ok := d.chains[chain]
	if !ok {
		mu = &sync.Mutex{}
		d.chains[chain] = mu
	}
	d.inFlight.Unlock()
	waiting(ctx, func() { mu.Lock() }) // not charged for the memory of the check it waits for
	defer func() {
		mu.Unlock()
		d.inFlight.Lock()
		delete(d.chains, chain)
		d.inFlight.Unlock()
	}()
	if r, ok := d.Cache.Get(chain); ok {
		d.cacheHit.Add(1)
		d.observeCache(true)
		return r, nil
	}
	d.cacheMis.Add(1)
	d.observeCache(false)
	if err := d.quar.beginImage(chain); err != nil {
		d.logger().Warn("record image analysis in flight; a crash in it would not be remembered", "chain", chain, "err", err)
	}
	defer d.quar.endImage(chain, d.logger())
	root, err := views.get(ctx, fsaccess.ViewImage)
	if err != nil {
		return nil, fmt.Errorf("open image layers: %w", err)
	}
	// The image checks' files() listing is collected in the same walk (see compliance.ListingCollector); it is no
	// part of the result the cache keeps.
	analyzers := d.Analyzers
	for _, ie := range evals {
		if ie == nil {
			continue
		}
		if lc := ie.ListingCollector(); lc != nil {
			analyzers = append(slices.Clip(analyzers), lc)
		}
	}
	r := scan.Run(ctx, root, analyzers)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err := d.Cache.Put(chain, r); err != nil {
		d.logger().Warn("image cache write", "chain", chain, "err", err)
	}
	d.logger().Debug("image analyzed", "chain", chain, "packages", len(r.Packages))
	return r, nil
}

func (d *Daemon) observeCache(hit bool) {
	if d.OnCache != nil {
		d.OnCache(hit)
	}
}

// runChecks runs the root checks on rep.Result, with the container's merged root mounted.
func (d *Daemon) runChecks(ctx context.Context, root scan.FS, rep *report.Report, log *slog.Logger) {
	for _, ch := range d.Checks {
		scan.ProgressFrom(ctx).Set("check", "")
		if err := ch.Check(ctx, root, rep); err != nil {
			log.Warn("root check failed", "err", err)
			rep.Result.Errors = append(rep.Result.Errors, report.FileError{Analyzer: "check", Err: err.Error()})
		}
	}
}

// drift compares the upper dir with the check's image view (already mounted if the image was analyzed in this
// check).
func (d *Daemon) drift(ctx context.Context, views *checkViews, upper scan.FS, mounts []report.Mount, res *report.Result) {
	image, err := views.get(ctx, fsaccess.ViewImage)
	if err != nil {
		res.Errors = append(res.Errors, report.FileError{Analyzer: "drift", Err: fmt.Sprintf("open image layers: %v", err)})
		return
	}
	scan.ProgressFrom(ctx).Set("drift", "")
	entries, ferrs, err := d.Drift(ctx, upper, image, mounts)
	res.Errors = append(res.Errors, ferrs...)
	if err != nil {
		res.Errors = append(res.Errors, report.FileError{Analyzer: "drift", Err: err.Error()})
	}
	res.Drift = entries
}

func (d *Daemon) enrich(ctx context.Context, rep *report.Report) {
	for _, e := range d.Enrichers {
		if err := e.Enrich(ctx, rep); err != nil {
			rep.Result.Errors = append(rep.Result.Errors, report.FileError{Analyzer: "enrich", Err: err.Error()})
		}
	}
	d.markInUse(rep)
}

// cloneResult copies the parts of a cached image result that a container's report may change, so the cache stays
// untouched; the package list is shared read-only.
func cloneResult(r *report.Result) *report.Result {
	cp := *r
	cp.Errors = append([]report.FileError(nil), r.Errors...)
	cp.Vulnerabilities = nil
	cp.Compliance = nil
	cp.Drift = nil
	return &cp
}

func closeRoot(log *slog.Logger, r Root) {
	if err := r.Close(); err != nil {
		log.Error("release root filesystem", "err", err)
	}
}

func (d *Daemon) logger() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log
}
