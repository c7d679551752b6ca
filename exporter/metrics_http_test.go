package exporter

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rootscan/rootscan/report"
)

// serve registers m and h in a fresh registry and serves it through promhttp on a real loopback listener, the way
// the daemon's /metrics does.
func serve(t testing.TB, cs ...prometheus.Collector) *httptest.Server {
	t.Helper()
	reg := prometheus.NewRegistry()
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	t.Cleanup(srv.Close)
	return srv
}

// scrape GETs url as Prometheus does (text format) and parses the answer.
func scrape(t testing.TB, url string) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape %s: %s: %s", url, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("scrape %s: Content-Type %q, want text/plain", url, ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse scrape of %s: %v", url, err)
	}
	return mfs
}

// value finds the series of family name whose labels include all of want.
func value(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	mf, ok := mfs[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		have := make(map[string]string)
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		return m.GetGauge().GetValue() + m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount()), true
	}
	return 0, false
}

// TestMetricsHTTPScrape serves both collectors over HTTP and checks what a Prometheus scrape sees: the findings of
// two containers, the health series, and the first container gone after Delete.
func TestMetricsHTTPScrape(t *testing.T) {
	m := NewMetrics("node-1")
	h := NewHealth(HealthOptions{Node: "node-1", Version: "v0.1.0"})
	srv := serve(t, m, h)

	m.Update(shopReport())
	other := shopReport()
	other.Target.ContainerID, other.Target.Namespace, other.Target.Pod = "c2", "ops", "db-0"
	other.Result.Vulnerabilities = other.Result.Vulnerabilities[:1]
	m.Update(other)
	h.ObserveScan(true, time.Second)
	h.SetContainersKnown(m.Len())

	mfs := scrape(t, srv.URL+"/metrics")
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{MetricVulnerabilities, map[string]string{"namespace": "shop", "pod": "web-0", "severity": "high", "fixable": "true"}, 2},
		{MetricVulnerabilities, map[string]string{"namespace": "ops", "pod": "db-0", "severity": "critical", "fixable": "true"}, 1},
		{MetricVulnerabilities, map[string]string{"namespace": "ops", "pod": "db-0", "severity": "high", "fixable": "true"}, 0},
		{MetricDriftPaths, map[string]string{"pod": "web-0", "change": "added", "executable": "true"}, 1},
		{MetricImageInfo, map[string]string{"pod": "db-0", "container_id": "c2", "distroless_flavour": "base"}, 1},
		{MetricScansTotal, map[string]string{"node": "node-1", "result": "ok"}, 1},
		{MetricScanDuration, map[string]string{"node": "node-1"}, 1},
		{MetricContainersKnown, map[string]string{"node": "node-1"}, 2},
		{MetricBuildInfo, map[string]string{"version": "v0.1.0"}, 1},
	} {
		got, ok := value(mfs, tc.name, tc.labels)
		if !ok || got != tc.want {
			t.Errorf("%s%v = %v (present %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}

	m.Delete("c1")
	mfs = scrape(t, srv.URL+"/metrics")
	for name, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if lp.GetName() == "pod" && lp.GetValue() == "web-0" {
					t.Errorf("%s still has a series of the deleted container: %v", name, mt.GetLabel())
				}
			}
		}
	}
	if _, ok := value(mfs, MetricLastScanSuccess, map[string]string{"pod": "db-0"}); !ok {
		t.Error("the remaining container's series went too")
	}
}

// TestMetricsScrapeConsistent scrapes over HTTP while one container's report is replaced over and over: each scrape
// must show one report's counts, never a mix (the report with n criticals always has n Debian packages).
func TestMetricsScrapeConsistent(t *testing.T) {
	m := NewMetrics("node-1")
	srv := serve(t, m)
	withCriticals := func(n int) report.Report {
		rep := shopReport()
		rep.Result.Vulnerabilities = nil
		rep.Result.Packages = nil
		for i := range n {
			rep.Result.Vulnerabilities = append(rep.Result.Vulnerabilities,
				report.Vulnerability{ID: fmt.Sprint(i), Severity: report.SeverityCritical})
			rep.Result.Packages = append(rep.Result.Packages, report.Package{Ecosystem: report.EcosystemDebian})
		}
		return rep
	}
	m.Update(withCriticals(1))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for n := 1; ; n = n%50 + 1 {
			select {
			case <-stop:
				return
			default:
			}
			m.Update(withCriticals(n))
			if n%7 == 0 {
				other := withCriticals(n)
				other.Target.ContainerID, other.Target.Pod = "tmp", "tmp-0"
				m.Update(other)
				m.Delete("tmp")
			}
		}
	})
	for range 50 {
		mfs := scrape(t, srv.URL+"/metrics")
		crit, _ := value(mfs, MetricVulnerabilities, map[string]string{"pod": "web-0", "severity": "critical", "fixable": "false"})
		pkgs, _ := value(mfs, MetricPackages, map[string]string{"pod": "web-0", "ecosystem": "Debian"})
		if crit == 0 || crit != pkgs {
			t.Errorf("scrape mixes reports: %v critical vulnerabilities but %v Debian packages", crit, pkgs)
		}
	}
	close(stop)
	wg.Wait()
}
