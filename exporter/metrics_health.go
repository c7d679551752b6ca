package exporter

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names of the scanner's own health series, exported so the alert rules and dashboard in deploy/ are checked
// against them.
const (
	MetricScansTotal         = "rootscan_scans_total"
	MetricScanDuration       = "rootscan_scan_duration_seconds"
	MetricQueueDepth         = "rootscan_queue_depth"
	MetricCacheHitsTotal     = "rootscan_cache_hits_total"
	MetricCacheMissesTotal   = "rootscan_cache_misses_total"
	MetricImageEvalsTotal    = "rootscan_compliance_image_evaluations_total"
	MetricVulnDBAge          = "rootscan_vuln_db_age_seconds"
	MetricVulnDBLoaded       = "rootscan_vuln_db_loaded"
	MetricMountsHeld         = "rootscan_mounts_held"
	MetricEventsDroppedTotal = "rootscan_events_dropped_total"
	MetricContainersKnown    = "rootscan_containers_known"
	MetricBuildInfo          = "rootscan_build_info"
)

// Scan results, the values of rootscan_scans_total's result label.
const (
	ScanOK     = "ok"
	ScanFailed = "failed"
)

// Where a container's compliance image evaluation came from, the values of rootscan_compliance_image_evaluations_total's
// source label (node.EvalFromMemory, EvalFromDisk, EvalNew).
var ImageEvalSources = []string{"memory", "disk", "evaluated"}

// HealthOptions say what Health reports about the build and how it reads the clock.
type HealthOptions struct {
	// Node is the node label of every health series, as on the per-container series.
	Node string
	// Version and Revision go into rootscan_build_info, so a dashboard shows which build runs where.
	Version  string
	Revision string
	// Now is the clock the DB age is computed with at scrape time; time.Now when nil (tests pin it).
	Now func() time.Time
}

// Health is the scanner's own state as Prometheus series: is it scanning, how fast, how far behind, is its
// vulnerability database fresh, is it leaking mounts, is it losing SIEM events. It is a separate type from Metrics
// because the daemon's loop, cache, mounter and SIEM spool feed it, not scan reports.
//
// Every method is safe for concurrent use; the plain counters and gauges are client_golang's own, and the DB age and
// dropped events are computed at scrape time so they are never stale.
type Health struct {
	now func() time.Time

	scans       *prometheus.CounterVec
	duration    prometheus.Histogram
	queueDepth  prometheus.Gauge
	cacheHits   prometheus.Counter
	cacheMisses prometheus.Counter
	imageEvals  *prometheus.CounterVec
	mountsHeld  prometheus.Gauge
	containers  prometheus.Gauge
	buildInfo   prometheus.Gauge
	dbLoaded    prometheus.Gauge
	dbAgeDesc   *prometheus.Desc
	droppedDesc *prometheus.Desc

	mu      sync.Mutex
	dbBuilt time.Time // zero when no DB is loaded

	dropped atomic.Pointer[func() uint64]
}

// ScanDurationBuckets are the histogram buckets of rootscan_scan_duration_seconds: from 5 ms (a container whose
// upper dir did not change) to 5 min (a large image scanned cold), about 2.5x apart.
func ScanDurationBuckets() []float64 {
	return []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}
}

// NewHealth returns the scanner's health series, all at zero, with the scans_total results pre-created so a rate()
// over them works from the first scrape.
func NewHealth(opts HealthOptions) *Health {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	node := prometheus.Labels{"node": cleanLabel(opts.Node)}
	h := &Health{
		now: now,
		scans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricScansTotal, ConstLabels: node,
			Help: "Scans finished (image and container parts), by result.",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: MetricScanDuration, ConstLabels: node, Buckets: ScanDurationBuckets(),
			Help: "How long one scan took, successful or not.",
		}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricQueueDepth, ConstLabels: node,
			Help: "Scans waiting for a worker.",
		}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricCacheHitsTotal, ConstLabels: node,
			Help: "Image scans answered from the per-node cache (by chain ID).",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricCacheMissesTotal, ConstLabels: node,
			Help: "Image scans the cache could not answer, so the image was scanned.",
		}),
		imageEvals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricImageEvalsTotal, ConstLabels: node,
			Help: "Container checks by where their image's compliance evaluation came from: memory, disk (stored before a restart), or evaluated.",
		}, []string{"source"}),
		mountsHeld: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricMountsHeld, ConstLabels: node,
			Help: "Read-only root file system mounts the scanner holds right now; it should return to 0 between scans.",
		}),
		containers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricContainersKnown, ConstLabels: node,
			Help: "Containers the scanner knows on this node (from the CRI).",
		}),
		buildInfo: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricBuildInfo,
			Help: "The scanner's build (always 1).",
			ConstLabels: prometheus.Labels{"node": node["node"], "version": cleanLabel(opts.Version),
				"revision": cleanLabel(opts.Revision), "goversion": runtime.Version()},
		}),
		dbLoaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricVulnDBLoaded, ConstLabels: node,
			Help: "Whether a vulnerability database is loaded (1) or not (0).",
		}),
		dbAgeDesc: prometheus.NewDesc(MetricVulnDBAge,
			"Seconds since the loaded vulnerability database was built; absent when none is loaded.", nil, node),
		droppedDesc: prometheus.NewDesc(MetricEventsDroppedTotal,
			"SIEM events dropped because the spool was full (oldest first).", nil, node),
	}
	h.scans.WithLabelValues(ScanOK)
	h.scans.WithLabelValues(ScanFailed)
	for _, s := range ImageEvalSources {
		h.imageEvals.WithLabelValues(s)
	}
	h.buildInfo.Set(1)
	return h
}

// Register adds h to reg; the daemon calls it once with the registry its /metrics handler serves.
func (h *Health) Register(reg prometheus.Registerer) error {
	return reg.Register(h)
}

// ObserveScan records one finished scan: its result and how long it took.
func (h *Health) ObserveScan(ok bool, d time.Duration) {
	result := ScanOK
	if !ok {
		result = ScanFailed
	}
	h.scans.WithLabelValues(result).Inc()
	h.duration.Observe(d.Seconds())
}

// SetQueueDepth records how many scans wait for a worker.
func (h *Health) SetQueueDepth(n int) { h.queueDepth.Set(float64(n)) }

// CacheHit counts an image scan answered from the cache.
func (h *Health) CacheHit() { h.cacheHits.Inc() }

// CacheMiss counts an image scan the cache could not answer.
func (h *Health) CacheMiss() { h.cacheMisses.Inc() }

// ImageEvaluation counts a container check's image evaluation by source (see ImageEvalSources).
func (h *Health) ImageEvaluation(source string) {
	h.imageEvals.WithLabelValues(cleanLabel(source)).Inc()
}

// SetMountsHeld records how many mounts the scanner holds.
func (h *Health) SetMountsHeld(n int) { h.mountsHeld.Set(float64(n)) }

// SetContainersKnown records how many containers the scanner knows on the node.
func (h *Health) SetContainersKnown(n int) { h.containers.Set(float64(n)) }

// SetVulnDB records that a vulnerability database built at built is loaded (on start and on every reload); the age
// is computed from it at each scrape. A zero built means no database is loaded.
func (h *Health) SetVulnDB(built time.Time) {
	h.mu.Lock()
	h.dbBuilt = built
	h.mu.Unlock()
	h.dbLoaded.Set(boolValue(!built.IsZero()))
}

// SetEventsDropped gives Health the SIEM spool's count of dropped events, read at every scrape; the SIEM side owns
// the counter, so the metric can never disagree with its log lines. Until it is set the count is 0.
func (h *Health) SetEventsDropped(dropped func() uint64) {
	if dropped == nil {
		h.dropped.Store(nil)
		return
	}
	h.dropped.Store(&dropped)
}

// Describe implements prometheus.Collector.
func (h *Health) Describe(ch chan<- *prometheus.Desc) {
	h.scans.Describe(ch)
	h.imageEvals.Describe(ch)
	for _, c := range h.plain() {
		c.Describe(ch)
	}
	ch <- h.dbAgeDesc
	ch <- h.droppedDesc
}

// Collect implements prometheus.Collector.
func (h *Health) Collect(ch chan<- prometheus.Metric) {
	h.scans.Collect(ch)
	h.imageEvals.Collect(ch)
	for _, c := range h.plain() {
		c.Collect(ch)
	}
	h.mu.Lock()
	built := h.dbBuilt
	h.mu.Unlock()
	if !built.IsZero() {
		ch <- prometheus.MustNewConstMetric(h.dbAgeDesc, prometheus.GaugeValue, h.now().Sub(built).Seconds())
	}
	var dropped uint64
	if f := h.dropped.Load(); f != nil {
		dropped = (*f)()
	}
	ch <- prometheus.MustNewConstMetric(h.droppedDesc, prometheus.CounterValue, float64(dropped))
}

func (h *Health) plain() []prometheus.Collector {
	return []prometheus.Collector{h.duration, h.queueDepth, h.cacheHits, h.cacheMisses, h.mountsHeld, h.containers,
		h.buildInfo, h.dbLoaded}
}
