package exporter

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rootscan/rootscan/report"
)

// shopReport is one container's report with at least one finding of every kind, including values the metrics must
// fold (an empty and a bogus severity, a control without severity, an unknown control status).
func shopReport() report.Report {
	return report.Report{
		Target: report.Target{
			Kind: "container", Node: "node-1", ContainerID: "c1", Container: "app", Pod: "web-0", Namespace: "shop",
			Image: "registry.example/shop/web:1.2", ImageDigest: "sha256:abc", State: "running",
		},
		StartedAt: time.Unix(1700000000, 0),
		Duration:  1500 * time.Millisecond,
		Result: &report.Result{
			OS:         &report.OS{ID: "debian", VersionID: "12", Source: "etc/os-release"},
			Distroless: &report.Distroless{Distroless: true, Flavour: "base"},
			Packages: []report.Package{
				{Name: "libc6", Ecosystem: report.EcosystemDebian}, {Name: "base-files", Ecosystem: report.EcosystemDebian},
				{Name: "tzdata", Ecosystem: report.EcosystemDebian}, {Name: "stdlib", Ecosystem: report.EcosystemGo},
				{Name: "left-pad", Ecosystem: report.EcosystemNpm}, {Name: "lodash", Ecosystem: report.EcosystemNpm},
			},
			Vulnerabilities: []report.Vulnerability{
				{ID: "CVE-1", Severity: report.SeverityCritical, FixedVersion: "2", InUse: report.InUseTrue},
				{ID: "CVE-2", Severity: report.SeverityCritical, InUse: report.InUseFalse},
				{ID: "CVE-3", Severity: report.SeverityHigh, FixedVersion: "2"},
				{ID: "CVE-4", Severity: report.SeverityHigh, FixedVersion: "3"},
				{ID: "CVE-5"},
				{ID: "CVE-6", Severity: report.SeverityMedium, FixedVersion: "2",
					Suppressed: &report.Suppression{Status: "not_affected"}},
				{ID: "CVE-7", Severity: "BOGUS"},
				{ID: "GO-8", Severity: report.SeverityLow, FixedVersion: "1.22.1", Ecosystem: report.EcosystemGo, Reachable: report.ReachableTrue},
				{ID: "GO-9", Severity: report.SeverityLow, FixedVersion: "1.22.2", Ecosystem: report.EcosystemGo, Reachable: report.ReachableFalse},
			},
			Compliance: []report.ControlResult{
				{ID: "a", Status: report.ControlFailed, Severity: report.SeverityCritical, Impact: 1},
				{ID: "b", Status: report.ControlFailed, Impact: 0.7},
				{ID: "c", Status: report.ControlPassed, Impact: 0.5},
				{ID: "d", Status: report.ControlPassed, Severity: report.SeverityLow},
				{ID: "e", Status: report.ControlSkipped, Severity: report.SeverityNone, Waiver: &report.Waiver{}},
				{ID: "f", Status: "weird", Severity: report.SeverityHigh},
			},
			Drift: []report.DriftEntry{
				{Path: "/usr/bin/nc", Change: report.DriftAdded, Executable: true},
				{Path: "/tmp/x", Change: report.DriftAdded},
				{Path: "/bin/ls", Change: report.DriftChanged, Executable: true},
				{Path: "/etc/motd", Change: report.DriftDeleted},
			},
		},
	}
}

const shopExposition = `
# HELP rootscan_container_compliance_controls Compliance control results in the container, by status and severity (from the control's impact).
# TYPE rootscan_container_compliance_controls gauge
rootscan_container_compliance_controls{container="app",image="registry.example/shop/web:1.2",namespace="shop",node="node-1",pod="web-0",severity="critical",status="failed"} 1
rootscan_container_compliance_controls{container="app",image="registry.example/shop/web:1.2",namespace="shop",node="node-1",pod="web-0",severity="high",status="error"} 1
rootscan_container_compliance_controls{container="app",image="registry.example/shop/web:1.2",namespace="shop",node="node-1",pod="web-0",severity="high",status="failed"} 1
rootscan_container_compliance_controls{container="app",image="registry.example/shop/web:1.2",namespace="shop",node="node-1",pod="web-0",severity="low",status="passed"} 1
rootscan_container_compliance_controls{container="app",image="registry.example/shop/web:1.2",namespace="shop",node="node-1",pod="web-0",severity="medium",status="passed"} 1
rootscan_container_compliance_controls{container="app",image="registry.example/shop/web:1.2",namespace="shop",node="node-1",pod="web-0",severity="none",status="skipped"} 1
# HELP rootscan_container_drift_paths Paths the container added, changed or deleted on top of its image, by change and whether executable.
# TYPE rootscan_container_drift_paths gauge
rootscan_container_drift_paths{change="added",container="app",executable="false",image="registry.example/shop/web:1.2",namespace="shop",node="node-1",pod="web-0"} 1
rootscan_container_drift_paths{change="added",container="app",executable="true",image="registry.example/shop/web:1.2",namespace="shop",node="node-1",pod="web-0"} 1
rootscan_container_drift_paths{change="changed",container="app",executable="true",image="registry.example/shop/web:1.2",namespace="shop",node="node-1",pod="web-0"} 1
rootscan_container_drift_paths{change="deleted",container="app",executable="false",image="registry.example/shop/web:1.2",namespace="shop",node="node-1",pod="web-0"} 1
# HELP rootscan_container_image_info Facts about the container's image (always 1): digest, OS and distroless flavour.
# TYPE rootscan_container_image_info gauge
rootscan_container_image_info{container="app",container_id="c1",distroless="true",distroless_flavour="base",image="registry.example/shop/web:1.2",image_digest="sha256:abc",namespace="shop",node="node-1",os="debian",os_version="12",pod="web-0"} 1
# HELP rootscan_container_last_scan_success Whether the container's last scan succeeded (1) or failed (0); on failure the findings series keep the last successful scan's values.
# TYPE rootscan_container_last_scan_success gauge
rootscan_container_last_scan_success{container="app",image="registry.example/shop/web:1.2",namespace="shop",node="node-1",pod="web-0"} 1
# HELP rootscan_container_last_scan_timestamp_seconds Unix time the container's last scan finished, successful or not.
# TYPE rootscan_container_last_scan_timestamp_seconds gauge
rootscan_container_last_scan_timestamp_seconds{container="app",image="registry.example/shop/web:1.2",namespace="shop",node="node-1",pod="web-0"} 1.7000000015e+09
# HELP rootscan_container_packages Installed packages in the container, by ecosystem.
# TYPE rootscan_container_packages gauge
rootscan_container_packages{container="app",ecosystem="Debian",image="registry.example/shop/web:1.2",namespace="shop",node="node-1",pod="web-0"} 3
rootscan_container_packages{container="app",ecosystem="Go",image="registry.example/shop/web:1.2",namespace="shop",node="node-1",pod="web-0"} 1
rootscan_container_packages{container="app",ecosystem="npm",image="registry.example/shop/web:1.2",namespace="shop",node="node-1",pod="web-0"} 2
# HELP rootscan_container_vulnerabilities Open (not VEX-suppressed) vulnerabilities in the container, by severity, whether a fixed version exists, whether the vulnerable code is in the program (Go: true or false; unknown otherwise) and whether the package was seen in use at run time (with eBPF: true or false; unknown otherwise).
# TYPE rootscan_container_vulnerabilities gauge
rootscan_container_vulnerabilities{container="app",fixable="false",image="registry.example/shop/web:1.2",in_use="false",namespace="shop",node="node-1",pod="web-0",reachable="unknown",severity="critical"} 1
rootscan_container_vulnerabilities{container="app",fixable="false",image="registry.example/shop/web:1.2",in_use="unknown",namespace="shop",node="node-1",pod="web-0",reachable="unknown",severity="critical"} 0
rootscan_container_vulnerabilities{container="app",fixable="true",image="registry.example/shop/web:1.2",in_use="true",namespace="shop",node="node-1",pod="web-0",reachable="unknown",severity="critical"} 1
rootscan_container_vulnerabilities{container="app",fixable="true",image="registry.example/shop/web:1.2",in_use="unknown",namespace="shop",node="node-1",pod="web-0",reachable="unknown",severity="critical"} 0
rootscan_container_vulnerabilities{container="app",fixable="false",image="registry.example/shop/web:1.2",in_use="unknown",namespace="shop",node="node-1",pod="web-0",reachable="unknown",severity="high"} 0
rootscan_container_vulnerabilities{container="app",fixable="true",image="registry.example/shop/web:1.2",in_use="unknown",namespace="shop",node="node-1",pod="web-0",reachable="unknown",severity="high"} 2
rootscan_container_vulnerabilities{container="app",fixable="false",image="registry.example/shop/web:1.2",in_use="unknown",namespace="shop",node="node-1",pod="web-0",reachable="unknown",severity="medium"} 0
rootscan_container_vulnerabilities{container="app",fixable="true",image="registry.example/shop/web:1.2",in_use="unknown",namespace="shop",node="node-1",pod="web-0",reachable="unknown",severity="medium"} 0
rootscan_container_vulnerabilities{container="app",fixable="false",image="registry.example/shop/web:1.2",in_use="unknown",namespace="shop",node="node-1",pod="web-0",reachable="unknown",severity="low"} 0
rootscan_container_vulnerabilities{container="app",fixable="true",image="registry.example/shop/web:1.2",in_use="unknown",namespace="shop",node="node-1",pod="web-0",reachable="false",severity="low"} 1
rootscan_container_vulnerabilities{container="app",fixable="true",image="registry.example/shop/web:1.2",in_use="unknown",namespace="shop",node="node-1",pod="web-0",reachable="true",severity="low"} 1
rootscan_container_vulnerabilities{container="app",fixable="true",image="registry.example/shop/web:1.2",in_use="unknown",namespace="shop",node="node-1",pod="web-0",reachable="unknown",severity="low"} 0
rootscan_container_vulnerabilities{container="app",fixable="false",image="registry.example/shop/web:1.2",in_use="unknown",namespace="shop",node="node-1",pod="web-0",reachable="unknown",severity="none"} 0
rootscan_container_vulnerabilities{container="app",fixable="true",image="registry.example/shop/web:1.2",in_use="unknown",namespace="shop",node="node-1",pod="web-0",reachable="unknown",severity="none"} 0
rootscan_container_vulnerabilities{container="app",fixable="false",image="registry.example/shop/web:1.2",in_use="unknown",namespace="shop",node="node-1",pod="web-0",reachable="unknown",severity="unknown"} 2
rootscan_container_vulnerabilities{container="app",fixable="true",image="registry.example/shop/web:1.2",in_use="unknown",namespace="shop",node="node-1",pod="web-0",reachable="unknown",severity="unknown"} 0
# HELP rootscan_container_vulnerabilities_suppressed Vulnerabilities in the container that a VEX statement suppressed, by severity.
# TYPE rootscan_container_vulnerabilities_suppressed gauge
rootscan_container_vulnerabilities_suppressed{container="app",image="registry.example/shop/web:1.2",namespace="shop",node="node-1",pod="web-0",severity="medium"} 1
`

func TestMetricsExposition(t *testing.T) {
	m := NewMetrics("node-1")
	m.Update(shopReport())
	if err := testutil.CollectAndCompare(m, strings.NewReader(shopExposition)); err != nil {
		t.Fatal(err)
	}
}

func TestMetricsLint(t *testing.T) {
	m := NewMetrics("node-1")
	m.Update(shopReport())
	problems, err := testutil.CollectAndLint(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

// seriesOf gathers m through a registry (which also checks for duplicate series) and returns the label sets of
// the named metric's series, as "name{k=v,...}" strings.
func seriesOf(t *testing.T, m prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(m); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]float64)
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			var b strings.Builder
			b.WriteString(mf.GetName())
			for _, lp := range mt.GetLabel() {
				fmt.Fprintf(&b, ",%s=%s", lp.GetName(), lp.GetValue())
			}
			v := mt.GetGauge().GetValue() + mt.GetCounter().GetValue()
			out[b.String()] = v
		}
	}
	return out
}

func TestMetricsDelete(t *testing.T) {
	m := NewMetrics("node-1")
	m.Update(shopReport())
	other := shopReport()
	other.Target.ContainerID, other.Target.Pod = "c2", "web-1"
	m.Update(other)
	if n := testutil.CollectAndCount(m); n != 2*33 {
		t.Fatalf("two containers: %d series, want %d", n, 2*33)
	}
	m.Delete("c1")
	for s := range seriesOf(t, m) {
		if strings.Contains(s, "pod=web-0") {
			t.Errorf("series of deleted container c1 still exposed: %s", s)
		}
	}
	if n := testutil.CollectAndCount(m); n != 33 {
		t.Errorf("after Delete(c1): %d series, want 33 (c2's)", n)
	}
	m.Delete("c2")
	m.Delete("never-seen")
	if n := testutil.CollectAndCount(m); n != 0 || m.Len() != 0 {
		t.Errorf("after deleting both: %d series, %d containers; want none", n, m.Len())
	}
}

func TestMetricsRetain(t *testing.T) {
	m := NewMetrics("node-1")
	for _, id := range []string{"a", "b", "c"} {
		rep := shopReport()
		rep.Target.ContainerID, rep.Target.Pod = id, "pod-"+id
		m.Update(rep)
	}
	listed := map[string]bool{"b": true, "x": true}
	if n := m.Retain(func(id string) bool { return listed[id] }); n != 2 {
		t.Errorf("Retain dropped %d containers, want 2 (a and c)", n)
	}
	for s := range seriesOf(t, m) {
		if !strings.Contains(s, "pod=pod-b") {
			t.Errorf("series of a container the runtime no longer lists: %s", s)
		}
	}
	if m.Len() != 1 {
		t.Errorf("%d containers left, want 1", m.Len())
	}
}

// TestMetricsCardinality feeds one container tens of thousands of distinct CVEs, controls, drifted files and
// ecosystems: its series count must stay at the fixed bound, whatever the report holds.
func TestMetricsCardinality(t *testing.T) {
	rep := shopReport()
	r := rep.Result
	sevs := []report.Severity{report.SeverityCritical, report.SeverityHigh, report.SeverityMedium, report.SeverityLow,
		report.SeverityNone, report.SeverityUnknown, "", "x"}
	statuses := []string{report.ControlPassed, report.ControlFailed, report.ControlSkipped, report.ControlError, "?"}
	changes := []string{report.DriftAdded, report.DriftChanged, report.DriftDeleted, "moved"}
	r.Vulnerabilities, r.Compliance, r.Drift, r.Packages = nil, nil, nil, nil
	for i := range 20000 {
		v := report.Vulnerability{ID: fmt.Sprintf("CVE-2024-%05d", i), Severity: sevs[i%len(sevs)],
			Package: fmt.Sprintf("p%d", i)}
		if i%2 == 0 {
			v.FixedVersion = "1"
		}
		if i%3 == 0 {
			v.Suppressed = &report.Suppression{Status: "fixed"}
		}
		r.Vulnerabilities = append(r.Vulnerabilities, v)
		r.Compliance = append(r.Compliance, report.ControlResult{ID: fmt.Sprint(i), Status: statuses[i%len(statuses)],
			Severity: sevs[i%len(sevs)]})
		r.Drift = append(r.Drift, report.DriftEntry{Path: fmt.Sprintf("/f%d", i), Change: changes[i%len(changes)],
			Executable: (i/len(changes))%2 == 1})
		r.Packages = append(r.Packages, report.Package{Name: "p", Ecosystem: fmt.Sprintf("eco%d", i%1000)})
	}
	m := NewMetrics("node-1")
	m.Update(rep)
	got := seriesOf(t, m)
	// 12 open vulnerability + 6 suppressed + 4x6 compliance + 3x2 drift + 16 ecosystem series (15 + other),
	// last scan time, success, image info.
	const bound = 12 + 6 + 24 + 6 + maxEcosystems + 3
	if len(got) != bound {
		t.Errorf("%d series, want exactly %d", len(got), bound)
	}
	byName := make(map[string]int)
	for s := range got {
		name, _, _ := strings.Cut(s, ",")
		byName[name]++
		if strings.Contains(s, "CVE-") || strings.Contains(s, "/f") {
			t.Errorf("series with a per-CVE or per-file label: %s", s)
		}
	}
	want := map[string]int{MetricVulnerabilities: 12, MetricVulnerabilitiesSuppressed: 6, MetricComplianceControls: 24,
		MetricDriftPaths: 6, MetricPackages: maxEcosystems, MetricLastScanTimestamp: 1, MetricLastScanSuccess: 1,
		MetricImageInfo: 1}
	for name, n := range want {
		if byName[name] != n {
			t.Errorf("%s: %d series, want %d", name, byName[name], n)
		}
	}
	// The "other" bucket holds the 1000-15 ecosystems past the cap, 20 packages each.
	other := got[MetricPackages+",container=app,ecosystem=other,image=registry.example/shop/web:1.2,namespace=shop,node=node-1,pod=web-0"]
	if other != (1000-maxEcosystems+1)*20 {
		t.Errorf("packages{ecosystem=other} = %v, want %d", other, (1000-maxEcosystems+1)*20)
	}
	var total float64
	for s, v := range got {
		if strings.HasPrefix(s, MetricVulnerabilities+",") || strings.HasPrefix(s, MetricVulnerabilitiesSuppressed+",") {
			total += v
		}
	}
	if total != 20000 {
		t.Errorf("open + suppressed vulnerabilities sum to %v, want every one of the 20000 counted", total)
	}
}

// TestMetricsFailedScanKeepsFindings: a failed scan flips success and the scan time but keeps the last good
// findings; the next good scan replaces them, down to series that went to zero disappearing.
func TestMetricsFailedScanKeepsFindings(t *testing.T) {
	m := NewMetrics("node-1")
	m.Update(shopReport())
	before := seriesOf(t, m)

	failed := shopReport()
	failed.Result, failed.Error = nil, "mount: no such snapshot"
	failed.StartedAt = failed.StartedAt.Add(time.Minute)
	m.Update(failed)
	after := seriesOf(t, m)
	const base = ",container=app,image=registry.example/shop/web:1.2,namespace=shop,node=node-1,pod=web-0"
	if len(after) != len(before) {
		t.Errorf("failed scan: %d series, want the %d of the last good scan", len(after), len(before))
	}
	for s, v := range before {
		switch {
		case strings.HasPrefix(s, MetricLastScanSuccess):
			if after[s] != 0 {
				t.Errorf("%s = %v after a failed scan, want 0", s, after[s])
			}
		case strings.HasPrefix(s, MetricLastScanTimestamp):
			if after[s] != 1700000061.5 {
				t.Errorf("%s = %v, want the failed scan's end 1700000061.5", s, after[s])
			}
		default:
			if after[s] != v {
				t.Errorf("%s = %v after a failed scan, want the last good %v", s, after[s], v)
			}
		}
	}

	clean := shopReport()
	clean.Result.Vulnerabilities, clean.Result.Drift = nil, nil
	m.Update(clean)
	now := seriesOf(t, m)
	if v, ok := now[MetricVulnerabilities+",container=app,fixable=true"+strings.Replace(strings.TrimPrefix(base, ",container=app"), ",namespace=", ",in_use=unknown,namespace=", 1)+",reachable=unknown,severity=critical"]; !ok || v != 0 {
		t.Errorf("critical fixable after a clean scan = %v (present %v), want a 0 series", v, ok)
	}
	for s := range now {
		if strings.HasPrefix(s, MetricDriftPaths) || strings.HasPrefix(s, MetricVulnerabilitiesSuppressed) {
			t.Errorf("series %s still exposed after a scan without any", s)
		}
	}
	if now[MetricLastScanSuccess+base] != 1 {
		t.Errorf("success after a good scan = %v, want 1", now[MetricLastScanSuccess+base])
	}

	// A failure with no earlier good scan has only the scan status series.
	m2 := NewMetrics("node-1")
	m2.Update(failed)
	if n := testutil.CollectAndCount(m2); n != 2 {
		t.Errorf("first scan failed: %d series, want 2 (time and success)", n)
	}
}

// TestMetricsSameLabels: a restarted container and its exited predecessor share every label; exposing both would be
// a duplicate series and fail the whole scrape, so only the running one is exposed, and the other once it is gone.
func TestMetricsSameLabels(t *testing.T) {
	m := NewMetrics("node-1")
	old := shopReport()
	old.Target.ContainerID, old.Target.State = "c0", "exited"
	old.StartedAt = old.StartedAt.Add(time.Hour) // scanned later, but not running
	old.Result.Packages = old.Result.Packages[:1]
	m.Update(old)
	m.Update(shopReport())
	got := seriesOf(t, m)
	const key = MetricPackages + ",container=app,ecosystem=Debian,image=registry.example/shop/web:1.2,namespace=shop,node=node-1,pod=web-0"
	if got[key] != 3 {
		t.Errorf("Debian packages = %v, want the running container's 3", got[key])
	}
	m.Delete("c1")
	got = seriesOf(t, m)
	if got[key] != 1 {
		t.Errorf("after the running one is deleted: Debian packages = %v, want the exited one's 1", got[key])
	}

	// Same state: the later scan wins.
	m.Update(shopReport())
	old.Target.State = "running"
	m.Update(old)
	if got := seriesOf(t, m); got[key] != 1 {
		t.Errorf("both running: Debian packages = %v, want the later scan's 1", got[key])
	}
}

// TestMetricsHostileLabels: label values come from the image (os-release) and the CRI; invalid UTF-8 or a huge
// value must neither panic nor break the scrape.
func TestMetricsHostileLabels(t *testing.T) {
	rep := shopReport()
	rep.Target.Image = strings.Repeat("é", 1000)
	rep.Target.Pod = "bad\xff\xfe"
	rep.Result.OS.ID = "\xc3"
	rep.Result.Packages = append(rep.Result.Packages, report.Package{Ecosystem: "\x00\xff"})
	m := NewMetrics("node\xff")
	m.Update(rep)
	for s := range seriesOf(t, m) {
		if strings.Contains(s, "image=") && !strings.Contains(s, "image="+strings.Repeat("é", maxLabelLen/2)+",") {
			t.Errorf("image label not cut to %d bytes on a rune boundary: %.80s", maxLabelLen, s)
		}
		if !strings.Contains(s, "pod=bad\uFFFD") {
			t.Errorf("invalid pod label not replaced: %.200q", s)
		}
	}
}

func TestCleanLabel(t *testing.T) {
	long := strings.Repeat("a", maxLabelLen-1) + "é" // the cut would split é
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"web-0", "web-0"},
		{"a\xffb", "a\uFFFDb"},
		{strings.Repeat("x", maxLabelLen+10), strings.Repeat("x", maxLabelLen)},
		{long, strings.Repeat("a", maxLabelLen-1)},
	} {
		if got := cleanLabel(tc.in); got != tc.want {
			t.Errorf("cleanLabel(%.20q...) = %.20q... (len %d), want len %d", tc.in, got, len(got), len(tc.want))
		}
	}
}

func TestSeverityMapping(t *testing.T) {
	labels := severityLabels()
	for _, tc := range []struct {
		sev  report.Severity
		want string
	}{
		{report.SeverityCritical, "critical"}, {report.SeverityHigh, "high"}, {report.SeverityMedium, "medium"},
		{report.SeverityLow, "low"}, {report.SeverityNone, "none"}, {report.SeverityUnknown, "unknown"},
		{"", "unknown"}, {"critical", "unknown"},
	} {
		if got := labels[severityIndex(tc.sev)]; got != tc.want {
			t.Errorf("severity %q -> %q, want %q", tc.sev, got, tc.want)
		}
	}
	for _, tc := range []struct {
		impact float64
		want   string
	}{
		{1, "critical"}, {0.9, "critical"}, {0.89, "high"}, {0.7, "high"}, {0.5, "medium"}, {0.4, "medium"},
		{0.1, "low"}, {0, "none"}, {-1, "unknown"},
	} {
		if got := labels[impactIndex(tc.impact)]; got != tc.want {
			t.Errorf("impact %v -> %q, want %q", tc.impact, got, tc.want)
		}
	}
}

// FuzzMetricsUpdate: whatever strings a report carries, Update and a scrape neither panic nor produce an invalid
// or duplicate series.
func FuzzMetricsUpdate(f *testing.F) {
	f.Add("shop", "web-0", "app", "img:1", "CRITICAL", "failed", "added", "Debian", "debian", "base")
	f.Add("", "", "", "", "", "", "", "", "", "")
	f.Add("\xff", "a\x00b", "\"", "\\n", "x", "?", "moved", "\xc3", "é", "\n")
	f.Fuzz(func(t *testing.T, ns, pod, ctr, image, sev, status, change, eco, osID, flavour string) {
		rep := report.Report{
			Target: report.Target{Kind: "container", ContainerID: pod + ctr, Namespace: ns, Pod: pod, Container: ctr,
				Image: image, ImageDigest: image},
			Result: &report.Result{
				OS:              &report.OS{ID: osID, VersionID: osID},
				Distroless:      &report.Distroless{Flavour: flavour},
				Packages:        []report.Package{{Ecosystem: eco}, {Ecosystem: eco + "2"}},
				Vulnerabilities: []report.Vulnerability{{Severity: report.Severity(sev)}},
				Compliance:      []report.ControlResult{{Status: status, Severity: report.Severity(sev)}},
				Drift:           []report.DriftEntry{{Change: change}},
			},
		}
		m := NewMetrics(ns)
		m.Update(rep)
		rep.Target.ContainerID += "-restarted"
		m.Update(rep)
		reg := prometheus.NewPedanticRegistry()
		if err := reg.Register(m); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Gather(); err != nil {
			t.Fatal(err)
		}
	})
}
