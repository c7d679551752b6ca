package exporter

import (
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// series is one gauge sample of a container, built once in Update and sent as is at every scrape.
//
// It replaces prometheus.MustNewConstMetric, which gives every series its own copy of every label pair: here the
// container's five label pairs are made once and shared by all of its series, the pairs of the fixed-value labels
// (severity="critical", fixable="true", ...) and the 0 and 1 values are shared by every container, so a 500-container
// node's series hold a few MiB instead of 14. The registry treats what Write hands it as read-only (it copies before
// sorting) and still checks every series for valid, sorted, unique labels at each scrape.
type series struct {
	desc   *prometheus.Desc
	labels []*dto.LabelPair // sorted by name
	gauge  *dto.Gauge
}

// Desc implements prometheus.Metric.
func (s *series) Desc() *prometheus.Desc { return s.desc }

// Write implements prometheus.Metric.
func (s *series) Write(out *dto.Metric) error {
	out.Label, out.Gauge = s.labels, s.gauge
	return nil
}

// sharedLabels holds the label pairs and values every container's series can share. Built by NewMetrics and
// read-only afterwards, so it needs no lock.
type sharedLabels struct {
	pairs     map[[2]string]*dto.LabelPair
	zero, one *dto.Gauge
}

func newSharedLabels() sharedLabels {
	sh := sharedLabels{pairs: make(map[[2]string]*dto.LabelPair), zero: gaugeValue(0), one: gaugeValue(1)}
	add := func(name string, values ...string) {
		for _, v := range values {
			sh.pairs[[2]string{name, v}] = labelPair(name, v)
		}
	}
	sevs, statuses, changes := severityLabels(), controlStatuses(), driftChanges()
	add("severity", sevs[:]...)
	add("status", statuses[:]...)
	add("change", changes[:]...)
	add("fixable", "false", "true")
	reach := reachableLabels()
	add("reachable", reach[:]...)
	add("in_use", reach[:]...)
	add("executable", "false", "true")
	add("distroless", "", "false", "true")
	return sh
}

// pair returns the shared pair for name=value, or a new one for a value that cannot be shared.
func (sh sharedLabels) pair(name, value string) *dto.LabelPair {
	if p, ok := sh.pairs[[2]string{name, value}]; ok {
		return p
	}
	return labelPair(name, value)
}

// gauge returns the shared 0 or 1, or a new value.
func (sh sharedLabels) gauge(v float64) *dto.Gauge {
	switch v {
	case 0:
		return sh.zero
	case 1:
		return sh.one
	}
	return gaugeValue(v)
}

// newSeries builds one series from the container's base pairs and the series' own.
func (sh sharedLabels) newSeries(d *prometheus.Desc, v float64, base []*dto.LabelPair, extra ...*dto.LabelPair) prometheus.Metric {
	ls := make([]*dto.LabelPair, 0, len(base)+len(extra))
	ls = append(append(ls, base...), extra...)
	slices.SortFunc(ls, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
	return &series{desc: d, labels: ls, gauge: sh.gauge(v)}
}

func labelPair(name, value string) *dto.LabelPair {
	return &dto.LabelPair{Name: &name, Value: &value}
}

func gaugeValue(v float64) *dto.Gauge { return &dto.Gauge{Value: &v} }
