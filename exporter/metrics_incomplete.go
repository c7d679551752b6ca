package exporter

import (
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootscan/rootscan/report"
)

// Metric names of checks that stopped at a budget or were not run because the container is quarantined.
const (
	MetricScanIncompleteTotal = "rootscan_scan_incomplete_total"
	MetricContainerIncomplete = "rootscan_container_scan_incomplete"
)

// IncompleteMetrics counts checks that did not finish (by reason: deadline, memory, crashed) and shows which
// containers are currently incomplete or quarantined, so an alert can name them. Only such containers have a gauge
// series, at most one each (the reason of their last check). The identity labels follow MetricsOptions.Labels like
// the other per-container series: containers that differ only in dropped labels share a series, whose value is how
// many of them are incomplete for that reason.
type IncompleteMetrics struct {
	node  string
	keep  [3]bool // namespace, pod, container
	names []string
	total *prometheus.CounterVec
	now   *prometheus.GaugeVec

	mu     sync.Mutex
	byID   map[string]string    // container key -> its series key
	groups map[string]*incGroup // series key -> labels and how many containers
}

type incGroup struct {
	values []string
	n      int
}

// NewIncompleteMetrics makes the collectors for one node, with the identity labels opts keeps.
func NewIncompleteMetrics(node string, opts MetricsOptions) (*IncompleteMetrics, error) {
	f, err := newFleetLimits(node, opts)
	if err != nil {
		return nil, err
	}
	m := &IncompleteMetrics{node: cleanLabel(node), byID: map[string]string{}, groups: map[string]*incGroup{}}
	copy(m.keep[:], f.keep[:3])
	names := []string{"node"}
	for i, n := range IdentityLabels()[:3] {
		if m.keep[i] {
			names = append(names, n)
		}
	}
	m.names = append(names, "reason")
	m.total = prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricScanIncompleteTotal,
		Help: "Container checks that did not finish: stopped at a budget (reason deadline or memory) or not run because the scanner died during an earlier check of the container or its image (crashed, quarantined)."},
		[]string{"reason"})
	m.now = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricContainerIncomplete,
		Help: "Containers whose last check is incomplete (reason deadline or memory) or that are quarantined (crashed); their other series keep the last full check's values."},
		m.names)
	return m, nil
}

// Register adds both collectors to reg.
func (m *IncompleteMetrics) Register(reg prometheus.Registerer) error {
	if err := reg.Register(m.total); err != nil {
		return err
	}
	return reg.Register(m.now)
}

// Observe records a published report: an incomplete one counts and marks its container, any other clears it.
func (m *IncompleteMetrics) Observe(rep report.Report) {
	key := containerKey(rep.Target)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clearLocked(key)
	inc := rep.Incomplete
	if inc == nil {
		return
	}
	m.total.WithLabelValues(inc.Reason).Inc()
	t := rep.Target
	values := []string{m.node}
	for i, v := range []string{t.Namespace, t.Pod, t.Container} {
		if m.keep[i] {
			values = append(values, cleanLabel(v))
		}
	}
	values = append(values, inc.Reason)
	gk := strings.Join(values, "\x00")
	g, ok := m.groups[gk]
	if !ok {
		g = &incGroup{values: values}
		m.groups[gk] = g
	}
	g.n++
	m.now.WithLabelValues(values...).Set(float64(g.n))
	m.byID[key] = gk
}

// Delete drops a container that is gone.
func (m *IncompleteMetrics) Delete(containerID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clearLocked(containerID)
}

// clearLocked takes a container out of its series (removing the series when it was the last one in it).
func (m *IncompleteMetrics) clearLocked(key string) {
	gk, ok := m.byID[key]
	if !ok {
		return
	}
	delete(m.byID, key)
	g := m.groups[gk]
	if g.n--; g.n > 0 {
		m.now.WithLabelValues(g.values...).Set(float64(g.n))
		return
	}
	m.now.DeleteLabelValues(g.values...)
	delete(m.groups, gk)
}
