package exporter

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// MetricSeriesCapped counts the per-container series a scrape left out because of MetricsOptions.MaxSeries.
const MetricSeriesCapped = "rootscan_metrics_series_capped_total"

// MetricsOptions fit the per-container series to a large fleet, where one series set per pod is more than a
// Prometheus can hold (Tetragon's metricsLabelFilter exists because 305k series took one down).
type MetricsOptions struct {
	// Labels are the identity labels the per-container series keep, of IdentityLabels; nil keeps them all. Series
	// of containers that differ only in dropped labels are combined, not duplicated: counts are summed (the three
	// replicas of a Deployment without pod become one series of their total), a last scan time or success is the
	// oldest or worst of them (so the stale-scan and failed-scan alerts still fire), an image info is 1. The
	// finding labels (severity, fixable, status, ...) and node are always kept.
	Labels []string
	// MaxSeries caps the per-container series one scrape exposes (0: no cap). Over it, whole containers (after
	// combining) are left out, a fair share for every namespace, so one namespace's thousand pods cannot push
	// another's series out; MetricSeriesCapped counts what was left out.
	MaxSeries int
}

// IdentityLabels are the labels that say which container a series is about, the ones MetricsOptions.Labels may
// drop; container_id is on the image info series only.
func IdentityLabels() []string {
	return []string{"namespace", "pod", "container", "image", "container_id"}
}

// fleetLimits is MetricsOptions made ready for Update and Collect.
type fleetLimits struct {
	keep            [4]bool // namespace, pod, container, image
	keepContainerID bool
	combine         bool // some identity label is dropped
	maxSeries       int
	cappedDesc      *prometheus.Desc
	capped          *atomic.Uint64
}

func newFleetLimits(node string, opts MetricsOptions) (fleetLimits, error) {
	f := fleetLimits{maxSeries: max(opts.MaxSeries, 0), capped: new(atomic.Uint64),
		cappedDesc: prometheus.NewDesc(MetricSeriesCapped,
			"Per-container series left out of scrapes because the node has more than --metrics-max-series, summed over scrapes.",
			nil, prometheus.Labels{"node": cleanLabel(node)})}
	names := IdentityLabels()
	labels := opts.Labels
	if labels == nil {
		labels = names
	}
	for _, l := range labels {
		i := slices.Index(names, strings.TrimSpace(l))
		switch {
		case i < 0:
			return fleetLimits{}, fmt.Errorf("metrics label %q: want some of %s", l, strings.Join(names, ","))
		case i < len(f.keep):
			f.keep[i] = true
		default:
			f.keepContainerID = true
		}
	}
	f.combine = !f.keepContainerID || slices.Contains(f.keep[:], false)
	return f, nil
}

// baseNames are the label names every per-container series has.
func (f *fleetLimits) baseNames() []string {
	out := []string{"node"}
	for i, name := range IdentityLabels()[:len(f.keep)] {
		if f.keep[i] {
			out = append(out, name)
		}
	}
	return out
}

// infoNames are the image info series' own label names: extra, and container_id when kept.
func (f *fleetLimits) infoNames(extra ...string) []string {
	if f.keepContainerID {
		return append(extra, "container_id")
	}
	return extra
}

// base returns a container's base label pairs (node first) from its namespace, pod, container and image, and the
// key of the group it is combined in.
func (f *fleetLimits) base(node string, values []string) ([]*dto.LabelPair, string) {
	pairs := []*dto.LabelPair{labelPair("node", node)}
	var group []byte
	for i, name := range IdentityLabels()[:len(f.keep)] {
		if f.keep[i] {
			pairs = append(pairs, labelPair(name, values[i]))
			group = appendKey(group, values[i])
		}
	}
	return pairs, string(group)
}

// appendKey appends v to a key of several values, length first, so that no value (a NUL in an os-release field of
// a hostile image) can make two different lists of values one key.
func appendKey(key []byte, v string) []byte {
	key = strconv.AppendInt(key, int64(len(v)), 10)
	key = append(key, ':')
	return append(key, v...)
}

// seriesGroup is the series of the containers that share the kept identity labels, combined.
type seriesGroup struct {
	key, namespace string
	series         []prometheus.Metric
}

// collectFleet sends the winners' series, combined and capped as the options say, and the capped counter.
func (m *Metrics) collectFleet(winners map[string]*containerSeries, ch chan<- prometheus.Metric) {
	if m.fleet.maxSeries > 0 {
		// Present from the first scrape whenever there is a cap, so an alert on its increase has a series to watch.
		defer func() {
			ch <- prometheus.MustNewConstMetric(m.fleet.cappedDesc, prometheus.CounterValue, float64(m.fleet.capped.Load()))
		}()
	}
	total := 0
	for _, s := range winners {
		total += len(s.status) + len(s.findings)
	}
	if !m.fleet.combine && (m.fleet.maxSeries == 0 || total <= m.fleet.maxSeries) {
		for _, s := range winners {
			sendAll(ch, s.status, s.findings)
		}
		return
	}
	groups := m.groups(winners)
	if m.fleet.maxSeries > 0 {
		var capped int
		groups, capped = fairShare(groups, m.fleet.maxSeries)
		m.fleet.capped.Add(uint64(capped))
	}
	for _, g := range groups {
		sendAll(ch, g.series)
	}
}

func sendAll(ch chan<- prometheus.Metric, sets ...[]prometheus.Metric) {
	for _, set := range sets {
		for _, mt := range set {
			ch <- mt
		}
	}
}

// groups combines the winners' series by group: without combining, one group per container.
func (m *Metrics) groups(winners map[string]*containerSeries) []*seriesGroup {
	byKey := make(map[string][]*containerSeries)
	for _, s := range winners {
		k := s.key
		if m.fleet.combine {
			k = s.group
		}
		byKey[k] = append(byKey[k], s)
	}
	out := make([]*seriesGroup, 0, len(byKey))
	for k, members := range byKey {
		// In ID order, so the combined series (and a group's namespace) are the same at every scrape.
		slices.SortFunc(members, func(a, b *containerSeries) int { return cmp.Compare(a.id, b.id) })
		g := &seriesGroup{key: k, namespace: members[0].namespace}
		if len(members) == 1 {
			g.series = append(append(g.series, members[0].status...), members[0].findings...)
		} else {
			g.series = m.combine(members)
		}
		out = append(out, g)
	}
	return out
}

// combine merges the series of containers whose kept labels are equal, series by series: the same metric and the
// same label values become one series. It runs at every scrape, so a key is built in one reused buffer and
// allocated only for a series not seen before, and a merged series is built once, from its final value.
func (m *Metrics) combine(members []*containerSeries) []prometheus.Metric {
	type merged struct {
		first *series
		v     float64
		n     int
	}
	var (
		acc   []merged
		index = make(map[*prometheus.Desc]map[string]int)
		key   []byte
	)
	for _, s := range members {
		for _, set := range [][]prometheus.Metric{s.status, s.findings} {
			for _, mt := range set {
				ser := mt.(*series)
				key = key[:0]
				for _, l := range ser.labels {
					key = appendKey(key, l.GetValue())
				}
				byValues := index[ser.desc]
				if byValues == nil {
					byValues = make(map[string]int)
					index[ser.desc] = byValues
				}
				if i, seen := byValues[string(key)]; seen {
					acc[i].v, acc[i].n = m.merge(ser.desc, acc[i].v, ser.gauge.GetValue()), acc[i].n+1
					continue
				}
				byValues[string(key)] = len(acc)
				acc = append(acc, merged{first: ser, v: ser.gauge.GetValue(), n: 1})
			}
		}
	}
	out := make([]prometheus.Metric, len(acc))
	for i, a := range acc {
		out[i] = a.first
		if a.n > 1 {
			out[i] = &series{desc: a.first.desc, labels: a.first.labels, gauge: m.shared.gauge(a.v)}
		}
	}
	return out
}

// merge is how two containers' values of one series combine: counts add up, the last scan is the oldest, success is
// the worst, an info series stays 1.
func (m *Metrics) merge(d *prometheus.Desc, a, b float64) float64 {
	switch d {
	case m.d.lastScan, m.d.success:
		return min(a, b)
	case m.d.info:
		return 1
	}
	return a + b
}

// fairShare keeps whole groups until limit series: round after round, one group of every namespace in turn (the
// namespaces in name order, their groups in key order), so every namespace gets its share before any gets a second;
// a group that no longer fits is left out and smaller ones may still be kept. It returns what it kept and how many
// series it left out.
func fairShare(groups []*seriesGroup, limit int) ([]*seriesGroup, int) {
	total := 0
	for _, g := range groups {
		total += len(g.series)
	}
	if total <= limit {
		return groups, 0
	}
	slices.SortFunc(groups, func(a, b *seriesGroup) int {
		return cmp.Or(cmp.Compare(a.namespace, b.namespace), cmp.Compare(a.key, b.key))
	})
	var queues [][]*seriesGroup
	for i, g := range groups {
		if i == 0 || g.namespace != groups[i-1].namespace {
			queues = append(queues, nil)
		}
		queues[len(queues)-1] = append(queues[len(queues)-1], g)
	}
	kept, left, capped := make([]*seriesGroup, 0, len(groups)), limit, 0
	for round := 0; ; round++ {
		progressed := false
		for _, q := range queues {
			if round >= len(q) {
				continue
			}
			progressed = true
			if n := len(q[round].series); n <= left {
				kept, left = append(kept, q[round]), left-n
			} else {
				capped += n
			}
		}
		if !progressed {
			return kept, capped
		}
	}
}
