package exporter

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/rootscan/rootscan/report"
)

// replica is shopReport as pod web-<i> of a Deployment with three replicas, whose container has i+1 critical
// fixable vulnerabilities, finished scanning at second i.
func replica(i int) report.Report {
	rep := shopReport()
	rep.Target.ContainerID = fmt.Sprintf("c%d", i)
	rep.Target.Pod = fmt.Sprintf("web-%d", i)
	rep.StartedAt = time.Unix(int64(1700000000+i), 0)
	rep.Duration = 0
	rep.Result.Vulnerabilities = nil
	for j := range i + 1 {
		rep.Result.Vulnerabilities = append(rep.Result.Vulnerabilities,
			report.Vulnerability{ID: fmt.Sprint("CVE-", j), Severity: report.SeverityCritical, FixedVersion: "2"})
	}
	return rep
}

func fleetMetrics(t *testing.T, opts MetricsOptions) *Metrics {
	t.Helper()
	m, err := NewFleetMetrics("node-1", opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestMetricsLabelFilter: without pod, the replicas of a Deployment are one set of series whose counts are their
// sums, scraped over HTTP; nothing is duplicated and the registry's consistency checks pass.
func TestMetricsLabelFilter(t *testing.T) {
	m := fleetMetrics(t, MetricsOptions{Labels: []string{"namespace", "container", "image"}})
	for i := range 3 {
		m.Update(replica(i))
	}
	other := replica(0)
	other.Target.ContainerID, other.Target.Namespace = "c-other", "billing"
	m.Update(other)
	// A failed scan of one replica makes the combined success 0, and its older time the combined last scan.
	failed := replica(2)
	failed.Result, failed.Error, failed.StartedAt = nil, "mount failed", time.Unix(1600000000, 0)
	m.Update(failed)

	if problems, err := testutil.CollectAndLint(m); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	mfs := scrape(t, serve(t, m).URL)
	for name, mf := range mfs {
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "pod" || l.GetName() == "container_id" {
					t.Errorf("%s has label %s=%s, which was dropped", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
	shop := map[string]string{"namespace": "shop", "container": "app", "node": "node-1"}
	with := func(extra ...string) map[string]string {
		out := maps.Clone(shop)
		for _, kv := range extra {
			k, v, _ := strings.Cut(kv, "=")
			out[k] = v
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		// 1+2+3 criticals: the failed scan keeps replica 2's findings.
		{MetricVulnerabilities, with("severity=critical", "fixable=true", "reachable=unknown", "in_use=unknown"), 6},
		{MetricVulnerabilities, with("namespace=billing", "severity=critical", "fixable=true", "reachable=unknown", "in_use=unknown"), 1},
		{MetricPackages, with("ecosystem=Debian"), 9},
		{MetricLastScanSuccess, with(), 0},
		{MetricLastScanTimestamp, with(), 1600000000},
		{MetricImageInfo, with("os=debian"), 1},
	} {
		if got, ok := value(mfs, tc.name, tc.labels); !ok || got != tc.want {
			t.Errorf("%s%v = %v (found %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}
	if n := len(mfs[MetricImageInfo].GetMetric()); n != 2 {
		t.Errorf("%d image info series, want one per namespace", n)
	}
	if n := len(mfs[MetricLastScanSuccess].GetMetric()); n != 2 {
		t.Errorf("%d last scan series, want one per namespace", n)
	}
}

// TestMetricsLabelFilterKeepsRestartWinner: a restarted container's exited predecessor is still left out before
// combining, so dropping pod does not count a container twice.
func TestMetricsLabelFilterKeepsRestartWinner(t *testing.T) {
	m := fleetMetrics(t, MetricsOptions{Labels: []string{"namespace", "container"}})
	old := replica(4) // 5 criticals, exited
	old.Target.ContainerID, old.Target.Pod, old.Target.State = "c-old", "web-0", "exited"
	m.Update(old)
	m.Update(replica(0)) // 1 critical, running, same pod
	got := seriesOf(t, m)
	key := MetricVulnerabilities + ",container=app,fixable=true,in_use=unknown,namespace=shop,node=node-1,reachable=unknown,severity=critical"
	if got[key] != 1 {
		t.Errorf("%s = %v, want 1 (the running container only)", key, got[key])
	}
}

// TestMetricsNodeTotals: with no identity label at all, each metric is the node's total.
func TestMetricsNodeTotals(t *testing.T) {
	m := fleetMetrics(t, MetricsOptions{Labels: []string{}})
	for i := range 3 {
		m.Update(replica(i))
	}
	got := seriesOf(t, m)
	key := MetricVulnerabilities + ",fixable=true,in_use=unknown,node=node-1,reachable=unknown,severity=critical"
	if got[key] != 6 {
		t.Errorf("%s = %v, want 6; series: %v", key, got[key], got)
	}
}

func TestMetricsLabelsRefused(t *testing.T) {
	for _, labels := range [][]string{{"severity"}, {"namespace", "in_use"}, {"node"}, {"Pod"}} {
		if _, err := NewFleetMetrics("n", MetricsOptions{Labels: labels}); err == nil {
			t.Errorf("labels %q accepted; only identity labels may be chosen", labels)
		}
	}
}

// flood is a node where namespace "a-flood" runs 40 containers and "b-team" and "c-team" two each.
func flood(t *testing.T, maxSeries int) (*Metrics, int) {
	t.Helper()
	m := fleetMetrics(t, MetricsOptions{MaxSeries: maxSeries})
	n := 0
	add := func(ns string, count int) {
		for i := range count {
			rep := replica(i % 3)
			rep.Target.ContainerID = fmt.Sprintf("%s-%d", ns, i)
			rep.Target.Namespace, rep.Target.Pod = ns, fmt.Sprintf("p-%d", i)
			m.Update(rep)
			n++
		}
	}
	add("a-flood", 40)
	add("b-team", 2)
	add("c-team", 2)
	return m, n
}

// perContainer is how many series one replica() container has.
func perContainer(t *testing.T) int {
	t.Helper()
	m := NewMetrics("node-1")
	m.Update(replica(0))
	return testutil.CollectAndCount(m)
}

// TestMetricsSeriesCap: over the cap, whole containers are left out, every namespace keeps its share, the counter
// says how many series were left out at each scrape, and the same containers are kept scrape after scrape.
func TestMetricsSeriesCap(t *testing.T) {
	per := perContainer(t)
	limit := 10 * per
	m, n := flood(t, limit)
	srv := serve(t, m)

	first := scrape(t, srv.URL)
	pods := make(map[string]bool)
	total := 0
	for name, mf := range first {
		if name == MetricSeriesCapped {
			continue
		}
		for _, s := range mf.GetMetric() {
			total++
			pods[labelOf(s, "namespace")+"/"+labelOf(s, "pod")] = true
		}
	}
	if total > limit {
		t.Errorf("%d series exposed, cap %d", total, limit)
	}
	if len(pods) != 10 {
		t.Errorf("%d containers exposed, want 10: %v", len(pods), pods)
	}
	for _, p := range []string{"b-team/p-0", "b-team/p-1", "c-team/p-0", "c-team/p-1"} {
		if !pods[p] {
			t.Errorf("%s left out: a flooding namespace pushed another's series out", p)
		}
	}
	leftOut := float64((n - 10) * per)
	if got, ok := value(first, MetricSeriesCapped, map[string]string{"node": "node-1"}); !ok || got != leftOut {
		t.Errorf("%s = %v (found %v), want %v", MetricSeriesCapped, got, ok, leftOut)
	}

	second := scrape(t, srv.URL)
	if got, _ := value(second, MetricSeriesCapped, nil); got != 2*leftOut {
		t.Errorf("after two scrapes %s = %v, want %v", MetricSeriesCapped, got, 2*leftOut)
	}
	for _, s := range second[MetricLastScanSuccess].GetMetric() {
		if p := labelOf(s, "namespace") + "/" + labelOf(s, "pod"); !pods[p] {
			t.Errorf("second scrape exposes %s, which the first left out", p)
		}
	}

	// Under the cap nothing is left out, and the counter is there at 0.
	m, _ = flood(t, 1000*per)
	got := seriesOf(t, m)
	if v, ok := got[MetricSeriesCapped+",node=node-1"]; !ok || v != 0 {
		t.Errorf("under the cap: counter %v (found %v), want 0", v, ok)
	}
	if len(got) != n*per+1 {
		t.Errorf("under the cap: %d series, want %d", len(got), n*per+1)
	}
}

// TestMetricsCapAfterCombining: the cap counts the combined series, so dropping pod can bring a node under it.
func TestMetricsCapAfterCombining(t *testing.T) {
	per := perContainer(t)
	m := fleetMetrics(t, MetricsOptions{Labels: []string{"namespace", "container", "image"}, MaxSeries: 3 * per})
	for i := range 20 {
		rep := replica(0)
		rep.Target.ContainerID, rep.Target.Pod = fmt.Sprint("c", i), fmt.Sprint("web-", i)
		m.Update(rep)
	}
	got := seriesOf(t, m)
	if v := got[MetricSeriesCapped+",node=node-1"]; v != 0 {
		t.Errorf("20 replicas combined into one set still capped %v series", v)
	}
	key := MetricVulnerabilities + ",container=app,fixable=true,image=registry.example/shop/web:1.2,in_use=unknown,namespace=shop,node=node-1,reachable=unknown,severity=critical"
	if got[key] != 20 {
		t.Errorf("%s = %v, want 20", key, got[key])
	}
}

func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// TestMetricsCombineHostileValues: label values with NULs (an os-release field of a hostile image) cannot make two
// different series one when combining.
func TestMetricsCombineHostileValues(t *testing.T) {
	m := fleetMetrics(t, MetricsOptions{Labels: []string{"namespace", "container", "image"}})
	for i, os := range [][2]string{{"a\x00b", "c"}, {"a", "b\x00c"}} {
		rep := replica(0)
		rep.Target.ContainerID, rep.Target.Pod = fmt.Sprint("c", i), fmt.Sprint("web-", i)
		rep.Result.OS = &report.OS{ID: os[0], VersionID: os[1]}
		m.Update(rep)
	}
	n := 0
	for k := range seriesOf(t, m) {
		if strings.HasPrefix(k, MetricImageInfo+",") {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d image info series, want 2: the two images' os labels differ", n)
	}
}

// totals sums each counting metric's values over all of m's series.
func totals(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	out := make(map[string]float64)
	for k, v := range seriesOf(t, m) {
		switch name, _, _ := strings.Cut(k, ","); name {
		case MetricVulnerabilities, MetricVulnerabilitiesSuppressed, MetricComplianceControls, MetricDriftPaths, MetricPackages:
			out[name] += v
		}
	}
	return out
}

// FuzzFleetMetrics: whatever identity labels are kept and whatever two containers' label values are, the combined
// series are valid and unique (the pedantic registry checks), and no finding is lost or counted twice: each counting
// metric's total is the one with every label.
func FuzzFleetMetrics(f *testing.F) {
	f.Add(uint8(0b11101), "shop", "web-0", "web-1", "app", "img:1", "debian", "12")
	f.Add(uint8(0), "", "", "", "", "", "", "")
	f.Add(uint8(0b00010), "a\x00b", "\xff", "p", "\"", "\\n", "a\x00", "\x00b")
	f.Fuzz(func(t *testing.T, keep uint8, ns, pod0, pod1, ctr, image, osID, osVersion string) {
		var labels []string
		for i, l := range IdentityLabels() {
			if keep&(1<<i) != 0 {
				labels = append(labels, l)
			}
		}
		if labels == nil {
			labels = []string{}
		}
		all := NewMetrics("n")
		fleet := fleetMetrics(t, MetricsOptions{Labels: labels, MaxSeries: int(keep) * 4})
		for i, pod := range []string{pod0, pod1} {
			rep := replica(i)
			rep.Target.ContainerID = fmt.Sprint("c", i)
			rep.Target.Namespace, rep.Target.Pod, rep.Target.Container, rep.Target.Image = ns, pod, ctr, image
			rep.Result.OS = &report.OS{ID: osID, VersionID: osVersion + fmt.Sprint(i)}
			if i == 1 && pod0 == pod1 {
				// The same labels: a restart, where only one of the two counts.
				rep.Target.State = "exited"
			}
			all.Update(rep)
			fleet.Update(rep)
		}
		want, got := totals(t, all), totals(t, fleet)
		capped := fleet.fleet.capped.Load() > 0
		for name, n := range want {
			if got[name] != n && !capped {
				t.Errorf("%s: total %v with labels %v, %v with every label", name, got[name], labels, n)
			}
			if got[name] > n {
				t.Errorf("%s: total %v with labels %v, more than the %v with every label", name, got[name], labels, n)
			}
		}
	})
}
