package exporter

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootscan/rootscan/report"
)

// Metric names of the runtime (eBPF) signals.
const (
	MetricEBPFAvailable       = "rootscan_ebpf_available"
	MetricEBPFStatus          = "rootscan_ebpf_status"
	MetricEBPFEventsLost      = "rootscan_ebpf_events_lost_total"
	MetricEBPFEventsMalformed = "rootscan_ebpf_events_malformed_total"
	MetricEBPFWatched         = "rootscan_ebpf_watched_containers"
	MetricEBPFEvents          = "rootscan_ebpf_events_total"
	MetricEBPFNewContainers   = "rootscan_ebpf_new_containers_total"
	MetricExecDrift           = "rootscan_container_exec_drift_total"
)

// EBPFState is what the daemon says of its kernel side. Reason is one of a fixed set of values (the caller's), so
// the status series stays bounded.
type EBPFState struct {
	Available bool
	Reason    string
	// Lost and Malformed read the kernel's drop counter and the undecodable records; nil when nothing is loaded.
	Lost      func() (uint64, error)
	Malformed func() uint64
	// Watched counts the containers whose processes the kernel reports; Events the kernel events taken.
	Watched func() int
	Events  func() uint64
	// NewContainers counts the containers found from the kernel's report of their first exec.
	NewContainers func() uint64
}

// RuntimeMetrics exposes the eBPF status and the exec drift counters per container (labels node, namespace, pod,
// container, image, as the other per-container series).
type RuntimeMetrics struct {
	node                                            string
	execs                                           *prometheus.CounterVec
	avail, status, lost, malformed, watched, events *prometheus.Desc
	newContainers                                   *prometheus.Desc

	mu    sync.Mutex
	state EBPFState
}

// NewRuntimeMetrics makes the collector for node.
func NewRuntimeMetrics(node string) *RuntimeMetrics {
	nodeLabel := prometheus.Labels{"node": cleanLabel(node)}
	return &RuntimeMetrics{
		node: cleanLabel(node),
		execs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricExecDrift,
			Help: "Executions, by processes of the container, of files from its writable layer that its image does not have (exec drift)."},
			[]string{"node", "namespace", "pod", "container", "image"}),
		avail: prometheus.NewDesc(MetricEBPFAvailable, "1 when the eBPF runtime signals (exec drift, files in use) run, 0 when not.", nil, nodeLabel),
		status: prometheus.NewDesc(MetricEBPFStatus,
			"Why the eBPF runtime signals run or not: 1 on the series whose reason label says it.", []string{"reason"}, nodeLabel),
		lost: prometheus.NewDesc(MetricEBPFEventsLost,
			"Kernel events dropped because the ring buffer was full (the runtime signals missed them).", nil, nodeLabel),
		malformed: prometheus.NewDesc(MetricEBPFEventsMalformed, "Kernel ring buffer records that did not decode.", nil, nodeLabel),
		events:    prometheus.NewDesc(MetricEBPFEvents, "Kernel events (executions, executable mappings) the daemon took from the ring buffer.", nil, nodeLabel),
		newContainers: prometheus.NewDesc(MetricEBPFNewContainers,
			"Containers found from the kernel's report of their first exec, before containerd's event or a resync did.", nil, nodeLabel),
		watched: prometheus.NewDesc(MetricEBPFWatched,
			"Containers whose processes the kernel reports (attributed by cgroup id); fewer than the containers scanned means some could not be attributed.", nil, nodeLabel),
	}
}

// SetEBPF records the kernel side's state.
func (m *RuntimeMetrics) SetEBPF(s EBPFState) {
	m.mu.Lock()
	m.state = s
	m.mu.Unlock()
}

// ExecDrift counts one exec drift execution in t.
func (m *RuntimeMetrics) ExecDrift(t report.Target) {
	m.execs.WithLabelValues(m.labels(t)...).Inc()
}

// Forget drops the series of a container that is gone.
func (m *RuntimeMetrics) Forget(t report.Target) {
	m.execs.DeleteLabelValues(m.labels(t)...)
}

func (m *RuntimeMetrics) labels(t report.Target) []string {
	return []string{m.node, cleanLabel(t.Namespace), cleanLabel(t.Pod), cleanLabel(t.Container), cleanLabel(t.Image)}
}

// Register adds the collector to reg.
func (m *RuntimeMetrics) Register(reg prometheus.Registerer) error { return reg.Register(m) }

// Describe implements prometheus.Collector.
func (m *RuntimeMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.execs.Describe(ch)
	for _, d := range []*prometheus.Desc{m.avail, m.status, m.lost, m.malformed, m.watched, m.events, m.newContainers} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *RuntimeMetrics) Collect(ch chan<- prometheus.Metric) {
	m.execs.Collect(ch)
	m.mu.Lock()
	s := m.state
	m.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(m.avail, prometheus.GaugeValue, boolValue(s.Available))
	if s.Reason != "" {
		ch <- prometheus.MustNewConstMetric(m.status, prometheus.GaugeValue, 1, s.Reason)
	}
	// The counters are there (at 0) without eBPF too, so alert rules on them need no absent() guard.
	var lost, malformed, events uint64
	if s.Events != nil {
		events = s.Events()
	}
	ch <- prometheus.MustNewConstMetric(m.events, prometheus.CounterValue, float64(events))
	var found uint64
	if s.NewContainers != nil {
		found = s.NewContainers()
	}
	ch <- prometheus.MustNewConstMetric(m.newContainers, prometheus.CounterValue, float64(found))
	watched := 0
	if s.Watched != nil {
		watched = s.Watched()
	}
	ch <- prometheus.MustNewConstMetric(m.watched, prometheus.GaugeValue, float64(watched))
	if s.Lost != nil {
		lost, _ = s.Lost()
	}
	if s.Malformed != nil {
		malformed = s.Malformed()
	}
	ch <- prometheus.MustNewConstMetric(m.lost, prometheus.CounterValue, float64(lost))
	ch <- prometheus.MustNewConstMetric(m.malformed, prometheus.CounterValue, float64(malformed))
}
