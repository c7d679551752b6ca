package exporter

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names of the daemon's own vulnerability database updates (rootscan daemon --db-url).
const (
	MetricVulnDBUpdateFailures = "rootscan_vuln_db_update_failures_total"
	MetricVulnDBLastUpdate     = "rootscan_vuln_db_last_update_timestamp_seconds"
	MetricVulnDBAdvisories     = "rootscan_vuln_db_advisories"
)

// VulnDBMetrics are the series of the daemon's database updater. rootscan_vuln_db_age_seconds (Health) says how
// old the loaded database is, which grows while an unchanged feed answers 304; the last successful check says
// whether the updater still reaches the feed, and the failure counter why an alert on either should fire. The
// advisory count is read at scrape time from the loaded database, so a database that lost its records (a feed that
// serves a near-empty archive) shows as a drop.
type VulnDBMetrics struct {
	failures   prometheus.Counter
	lastUpdate prometheus.Gauge
	advisories prometheus.Collector
}

// NewVulnDBMetrics returns the updater's series for node; advisories reports the loaded database's advisory count,
// false when none is loaded (the series is then absent).
func NewVulnDBMetrics(node string, advisories func() (int, bool)) *VulnDBMetrics {
	labels := prometheus.Labels{"node": cleanLabel(node)}
	return &VulnDBMetrics{
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricVulnDBUpdateFailures, ConstLabels: labels,
			Help: "Vulnerability database updates that failed (network, HTTP status, checksum, damaged or empty archive); the database in use stayed.",
		}),
		lastUpdate: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricVulnDBLastUpdate, ConstLabels: labels,
			Help: "Unix time of the last successful vulnerability database update or not-modified check; 0 before the first.",
		}),
		advisories: &advisoryCount{
			desc: prometheus.NewDesc(MetricVulnDBAdvisories, "Advisories in the loaded vulnerability database; absent when none is loaded.", nil, labels),
			read: advisories,
		},
	}
}

// Register adds the series to reg.
func (m *VulnDBMetrics) Register(reg prometheus.Registerer) error { return reg.Register(m) }

// Describe implements prometheus.Collector.
func (m *VulnDBMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *VulnDBMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

func (m *VulnDBMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.failures, m.lastUpdate, m.advisories}
}

// ObserveUpdate records one finished update attempt at t.
func (m *VulnDBMetrics) ObserveUpdate(ok bool, t time.Time) {
	if !ok {
		m.failures.Inc()
		return
	}
	m.lastUpdate.Set(float64(t.UnixNano()) / 1e9)
}

// advisoryCount is a gauge read from the loaded database at scrape time, absent when there is none.
type advisoryCount struct {
	desc *prometheus.Desc
	read func() (int, bool)
}

func (a *advisoryCount) Describe(ch chan<- *prometheus.Desc) { ch <- a.desc }

func (a *advisoryCount) Collect(ch chan<- prometheus.Metric) {
	if a.read == nil {
		return
	}
	if n, ok := a.read(); ok {
		ch <- prometheus.MustNewConstMetric(a.desc, prometheus.GaugeValue, float64(n))
	}
}
