package exporter

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootscan/rootscan/report"
)

// Metric names of checks that stopped at a budget or were not run because the container is quarantined.
const (
	MetricScanIncompleteTotal = "rootscan_scan_incomplete_total"
	MetricContainerIncomplete = "rootscan_container_scan_incomplete"
)

// IncompleteMetrics counts checks that did not finish (by reason: deadline, memory, crashed) and shows, per container,
// which of them are currently incomplete or quarantined, so an alert can name the container. Its cardinality is
// bounded by the containers that are incomplete right now, three reasons at most each.
type IncompleteMetrics struct {
	node  string
	total *prometheus.CounterVec
	now   *prometheus.GaugeVec

	mu     sync.Mutex
	labels map[string]prometheus.Labels // by container key, for the container's current gauge
}

// NewIncompleteMetrics makes the collectors for one node.
func NewIncompleteMetrics(node string) *IncompleteMetrics {
	return &IncompleteMetrics{
		node: node,
		total: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricScanIncompleteTotal,
			Help: "Container checks that did not finish: stopped at a budget (reason deadline or memory) or not run because the scanner died during an earlier check of the container (crashed, quarantined)."},
			[]string{"reason"}),
		now: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricContainerIncomplete,
			Help: "1 while a container's last check is incomplete (reason deadline or memory) or the container is quarantined (crashed); its other series keep the last full check's values."},
			[]string{"node", "namespace", "pod", "container", "reason"}),
		labels: map[string]prometheus.Labels{},
	}
}

// Register adds both collectors to reg.
func (m *IncompleteMetrics) Register(reg prometheus.Registerer) error {
	if err := reg.Register(m.total); err != nil {
		return err
	}
	return reg.Register(m.now)
}

// Observe records a published report: an incomplete one counts and sets its container's gauge, any other clears it.
func (m *IncompleteMetrics) Observe(rep report.Report) {
	key := containerKey(rep.Target)
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.labels[key]; ok {
		m.now.Delete(old)
		delete(m.labels, key)
	}
	inc := rep.Incomplete
	if inc == nil {
		return
	}
	m.total.WithLabelValues(inc.Reason).Inc()
	t := rep.Target
	l := prometheus.Labels{"node": m.node, "namespace": cleanLabel(t.Namespace), "pod": cleanLabel(t.Pod),
		"container": cleanLabel(t.Container), "reason": inc.Reason}
	m.now.With(l).Set(1)
	m.labels[key] = l
}

// Delete drops the gauge of a container that is gone.
func (m *IncompleteMetrics) Delete(containerID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.labels[containerID]; ok {
		m.now.Delete(old)
		delete(m.labels, containerID)
	}
}
