package exporter

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rootscan/rootscan/report"
)

// benchReport is a container with 200 vulnerabilities over every severity, 300 packages, 20 controls and 10 drift
// entries: a busy but realistic container.
func benchReport(i int) report.Report {
	rep := shopReport()
	rep.Target.ContainerID = fmt.Sprintf("c%04d", i)
	rep.Target.Pod = fmt.Sprintf("web-%d", i)
	r := rep.Result
	sevs := []report.Severity{report.SeverityCritical, report.SeverityHigh, report.SeverityMedium, report.SeverityLow,
		report.SeverityUnknown}
	r.Vulnerabilities = make([]report.Vulnerability, 200)
	for j := range r.Vulnerabilities {
		r.Vulnerabilities[j] = report.Vulnerability{ID: fmt.Sprintf("CVE-2024-%d", j), Severity: sevs[j%len(sevs)]}
		if j%3 == 0 {
			r.Vulnerabilities[j].FixedVersion = "1"
		}
	}
	r.Packages = make([]report.Package, 300)
	for j := range r.Packages {
		r.Packages[j] = report.Package{Name: fmt.Sprint(j), Ecosystem: []string{"Debian", "Go", "npm"}[j%3]}
	}
	for j := range 20 {
		r.Compliance = append(r.Compliance, report.ControlResult{ID: fmt.Sprint(j), Status: report.ControlFailed,
			Severity: sevs[j%len(sevs)]})
	}
	for j := range 10 {
		r.Drift = append(r.Drift, report.DriftEntry{Path: fmt.Sprint(j), Change: report.DriftAdded, Executable: j%2 == 0})
	}
	return rep
}

// BenchmarkMetricsUpdate is the cost of one container's report reaching the metrics.
func BenchmarkMetricsUpdate(b *testing.B) {
	m := NewMetrics("node-1")
	rep := benchReport(0)
	b.ReportAllocs()
	for b.Loop() {
		m.Update(rep)
	}
}

// nodeMetrics is a node with 500 containers of 200 vulnerabilities each.
func nodeMetrics() *Metrics {
	m := NewMetrics("node-1")
	for i := range 500 {
		m.Update(benchReport(i))
	}
	return m
}

// BenchmarkMetricsGather is one scrape of a 500-container node without the HTTP and text encoding: as it is, with
// pod dropped (the 500 containers are 100 Deployments of 5 replicas, so the combined path runs), and with a cap
// that leaves out half of the series.
func BenchmarkMetricsGather(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts MetricsOptions
	}{
		{"all-labels", MetricsOptions{}},
		{"without-pod", MetricsOptions{Labels: []string{"namespace", "container", "image"}}},
		{"capped-half", MetricsOptions{MaxSeries: 500 * 31 / 2}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			m, err := NewFleetMetrics("node-1", tc.opts)
			if err != nil {
				b.Fatal(err)
			}
			for i := range 500 {
				rep := benchReport(i)
				rep.Target.Namespace = fmt.Sprintf("team-%d", i/25)
				rep.Target.Container = fmt.Sprintf("app-%d", i/5)
				m.Update(rep)
			}
			reg := prometheus.NewRegistry()
			if err := reg.Register(m); err != nil {
				b.Fatal(err)
			}
			var series int
			b.ReportAllocs()
			for b.Loop() {
				mfs, err := reg.Gather()
				if err != nil {
					b.Fatal(err)
				}
				series = 0
				for _, mf := range mfs {
					series += len(mf.GetMetric())
				}
			}
			b.ReportMetric(float64(series), "series")
		})
	}
}

// BenchmarkMetricsScrapeHTTP is one full Prometheus scrape of a 500-container node (plus the health series)
// through promhttp on a loopback listener, text format, uncompressed; it reports the exposition size.
func BenchmarkMetricsScrapeHTTP(b *testing.B) {
	srv := serve(b, nodeMetrics(), NewHealth(HealthOptions{Node: "node-1", Now: time.Now}))
	var size int64
	b.ReportAllocs()
	for b.Loop() {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Accept", "text/plain;version=0.0.4")
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		size, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("scrape: %v %s", err, resp.Status)
		}
	}
	b.ReportMetric(float64(size), "bytes/scrape")
}

// BenchmarkMetricsHeld reports the heap a 500-container node's series keep alive between scrapes.
func BenchmarkMetricsHeld(b *testing.B) {
	var held float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m := nodeMetrics()
		runtime.GC()
		runtime.ReadMemStats(&after)
		held = float64(after.HeapAlloc) - float64(before.HeapAlloc)
		runtime.KeepAlive(m)
	}
	b.ReportMetric(held/(1<<20), "MiB-held")
}
