package exporter

import "github.com/prometheus/client_golang/prometheus"

// SinkCollector exposes the Dispatcher's per-sink delivery counters to Prometheus, read at scrape time from the
// same counters Stats returns (no second bookkeeping to drift). One series per sink and metric: the label is the
// sink's credential-free name, bounded by the configuration.
type SinkCollector struct {
	d                                          *Dispatcher
	sent, failed, rejected, dropped, pend, byt *prometheus.Desc
	up                                         *prometheus.Desc
}

// NewSinkCollector collects d's sink statistics; register it with the daemon's registry.
func NewSinkCollector(d *Dispatcher) *SinkCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("rootscan_siem_"+name, help, []string{"sink"}, nil)
	}
	return &SinkCollector{
		d:        d,
		sent:     desc("events_sent_total", "Events the SIEM sink accepted."),
		failed:   desc("send_failures_total", "Failed delivery attempts to the SIEM sink (each is retried)."),
		rejected: desc("events_rejected_total", "Events the SIEM sink refused for good (skipped)."),
		dropped:  desc("events_dropped_total", "Undelivered events dropped from the sink's spool (full or damaged)."),
		pend:     desc("events_spooled", "Events waiting in the sink's disk spool."),
		byt:      desc("spool_bytes", "Bytes the sink's disk spool holds."),
		up:       desc("sink_up", "1 when the last delivery attempt to the sink succeeded."),
	}
}

// Describe sends every metric description.
func (c *SinkCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.sent, c.failed, c.rejected, c.dropped, c.pend, c.byt, c.up} {
		ch <- d
	}
}

// Collect reads the current statistics.
func (c *SinkCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.d.Stats() {
		up := 0.0
		if s.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(c.sent, prometheus.CounterValue, float64(s.Sent), s.Sink)
		ch <- prometheus.MustNewConstMetric(c.failed, prometheus.CounterValue, float64(s.Failed), s.Sink)
		ch <- prometheus.MustNewConstMetric(c.rejected, prometheus.CounterValue, float64(s.Rejected), s.Sink)
		ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(s.Dropped), s.Sink)
		ch <- prometheus.MustNewConstMetric(c.pend, prometheus.GaugeValue, float64(s.Pending), s.Sink)
		ch <- prometheus.MustNewConstMetric(c.byt, prometheus.GaugeValue, float64(s.SpoolBytes), s.Sink)
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, s.Sink)
	}
}
