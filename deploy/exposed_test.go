package deploy

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/rootscan/rootscan/exporter"
	"github.com/rootscan/rootscan/report"
)

// exposed is what rootscan's /metrics really serves: for each series name, its label names and the values seen.
type exposed map[string]map[string]map[string]bool

// targetLabels are added by Prometheus to every scraped series and may be used in any expression.
func targetLabels() []string { return []string{"job", "instance"} }

// exposedMetrics runs the real exporter on a report holding every kind of finding with every severity, status,
// change and flag, and gathers what it exposes, so the rules and the dashboard are checked against the exporter,
// not against a list that could drift from it.
func exposedMetrics(t *testing.T) exposed {
	t.Helper()
	r := &report.Result{
		OS:         &report.OS{ID: "debian", VersionID: "12"},
		Distroless: &report.Distroless{Distroless: true, Flavour: "static"},
		Packages:   []report.Package{{Name: "libc6", Ecosystem: report.EcosystemDebian}},
	}
	sevs := []report.Severity{report.SeverityCritical, report.SeverityHigh, report.SeverityMedium, report.SeverityLow,
		report.SeverityNone, report.SeverityUnknown}
	for _, sev := range sevs {
		r.Vulnerabilities = append(r.Vulnerabilities,
			report.Vulnerability{Severity: sev}, report.Vulnerability{Severity: sev, FixedVersion: "1"},
			report.Vulnerability{Severity: sev, Suppressed: &report.Suppression{Status: "fixed"}},
			report.Vulnerability{Severity: sev, FixedVersion: "1", InUse: report.InUseTrue},
			report.Vulnerability{Severity: sev, InUse: report.InUseFalse})
		for _, st := range []string{report.ControlPassed, report.ControlFailed, report.ControlSkipped, report.ControlError} {
			r.Compliance = append(r.Compliance, report.ControlResult{Status: st, Severity: sev})
		}
	}
	for _, ch := range []string{report.DriftAdded, report.DriftChanged, report.DriftDeleted} {
		r.Drift = append(r.Drift, report.DriftEntry{Change: ch}, report.DriftEntry{Change: ch, Executable: true})
	}
	target := report.Target{Kind: "container", ContainerID: "c1", Namespace: "ns", Pod: "p", Container: "c", Image: "i"}
	// With a cap, so the capped counter is exposed too.
	m, err := exporter.NewFleetMetrics("n", exporter.MetricsOptions{MaxSeries: 1000})
	if err != nil {
		t.Fatal(err)
	}
	m.Update(report.Report{Target: target, StartedAt: time.Now(), Result: r})
	failed := target
	failed.ContainerID, failed.Pod = "c2", "p2"
	m.Update(report.Report{Target: failed, StartedAt: time.Now(), Error: "boom"})

	h := exporter.NewHealth(exporter.HealthOptions{Node: "n", Version: "v"})
	h.SetVulnDB(time.Now())
	h.ObserveScan(true, time.Second)

	db := exporter.NewVulnDBMetrics("n", func() (int, bool) { return 1, true })
	db.ObserveUpdate(true, time.Now())
	rt := exporter.NewRuntimeMetrics("n")
	rt.SetEBPF(exporter.EBPFState{Available: true, Reason: "loaded"})
	rt.ExecDrift(target)

	// A quarantined container and one per budget, so every reason of the incomplete series is exposed.
	inc, err := exporter.NewIncompleteMetrics("n", exporter.MetricsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, reason := range []string{report.IncompleteCrashed, report.IncompleteDeadline, report.IncompleteMemory} {
		it := target
		it.ContainerID, it.Pod = fmt.Sprintf("i%d", i), fmt.Sprintf("pi%d", i)
		inc.Observe(report.Report{Target: it, StartedAt: time.Now(), Result: r, Incomplete: &report.Incomplete{Reason: reason}})
	}

	reg := prometheus.NewPedanticRegistry()
	for _, c := range []prometheus.Collector{m, h, db, rt} {
		if err := reg.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := inc.Register(reg); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := make(exposed)
	add := func(name string, lps []*dto.LabelPair, extra ...string) {
		if out[name] == nil {
			out[name] = make(map[string]map[string]bool)
		}
		for _, lp := range lps {
			if out[name][lp.GetName()] == nil {
				out[name][lp.GetName()] = make(map[string]bool)
			}
			out[name][lp.GetName()][lp.GetValue()] = true
		}
		for _, l := range extra {
			if out[name][l] == nil {
				out[name][l] = make(map[string]bool)
			}
		}
	}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			if mf.GetType() == dto.MetricType_HISTOGRAM {
				add(mf.GetName()+"_bucket", mt.GetLabel(), "le")
				add(mf.GetName()+"_sum", mt.GetLabel())
				add(mf.GetName()+"_count", mt.GetLabel())
				continue
			}
			add(mf.GetName(), mt.GetLabel())
		}
	}
	return out
}

// enumerated are the labels whose values the exporter fixes; a matcher on them must use values it emits
// (severity="critical", not "CRITICAL").
func enumerated() []string {
	return []string{"severity", "fixable", "in_use", "status", "change", "executable", "result", "distroless"}
}

// checkExpr parses a PromQL expression and checks every series it selects, every label it matches on and every
// label it aggregates by against what the exporter exposes. Names outside rootscan_ must be in foreign (metrics of
// other exporters the expression joins with, like kube-state-metrics).
func checkExpr(ex exposed, expr string, foreign map[string][]string) error {
	// A regex on an enumerated label must be a plain list of alternatives (a|b|c), so each can be checked.
	simpleAlternation := regexp.MustCompile(`^[A-Za-z0-9_.-]+(\|[A-Za-z0-9_.-]+)*$`)
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return fmt.Errorf("parse %q: %w", expr, err)
	}
	var errs []string
	labelsOf := func(name string) (map[string]bool, bool) {
		if ls, ok := ex[name]; ok {
			set := make(map[string]bool)
			for l := range ls {
				set[l] = true
			}
			for _, l := range targetLabels() {
				set[l] = true
			}
			return set, true
		}
		if ls, ok := foreign[name]; ok {
			set := make(map[string]bool)
			for _, l := range append(slices.Clone(ls), targetLabels()...) {
				set[l] = true
			}
			return set, true
		}
		return nil, false
	}
	selected := func(n parser.Node) []string {
		var names []string
		parser.Inspect(n, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				names = append(names, vs.Name)
			}
			return nil
		})
		return names
	}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			if n.Name == "" {
				errs = append(errs, fmt.Sprintf("selector %s has no metric name", n))
				return nil
			}
			ls, ok := labelsOf(n.Name)
			if !ok {
				errs = append(errs, fmt.Sprintf("metric %s is not exposed by rootscan", n.Name))
				return nil
			}
			for _, m := range n.LabelMatchers {
				if m.Name == labels.MetricName {
					continue
				}
				if !ls[m.Name] {
					errs = append(errs, fmt.Sprintf("%s has no label %q", n.Name, m.Name))
					continue
				}
				if !slices.Contains(enumerated(), m.Name) || ex[n.Name] == nil {
					continue
				}
				values := ex[n.Name][m.Name]
				switch m.Type {
				case labels.MatchEqual, labels.MatchNotEqual:
					if !values[m.Value] {
						errs = append(errs, fmt.Sprintf("%s{%s} never has value %q (it has %v)", n.Name, m.Name, m.Value, keys(values)))
					}
				case labels.MatchRegexp, labels.MatchNotRegexp:
					if !simpleAlternation.MatchString(m.Value) {
						errs = append(errs, fmt.Sprintf("%s{%s=~%q}: use a plain a|b list on enumerated labels", n.Name, m.Name, m.Value))
						continue
					}
					for _, v := range strings.Split(m.Value, "|") {
						if !values[v] {
							errs = append(errs, fmt.Sprintf("%s{%s} never has value %q (it has %v)", n.Name, m.Name, v, keys(values)))
						}
					}
				}
			}
		case *parser.AggregateExpr:
			if n.Without {
				return nil
			}
			for _, name := range selected(n.Expr) {
				ls, ok := labelsOf(name)
				if !ok {
					continue // reported at the selector
				}
				for _, g := range n.Grouping {
					if !ls[g] {
						errs = append(errs, fmt.Sprintf("%s by (%s): %s has no label %q", n.Op, strings.Join(n.Grouping, ", "), name, g))
					}
				}
			}
		}
		return nil
	})
	if len(errs) > 0 {
		return fmt.Errorf("%s:\n  %s", strings.TrimSpace(expr), strings.Join(errs, "\n  "))
	}
	return nil
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestCheckExprCatches: the expression check must reject the mistakes it exists for.
func TestCheckExprCatches(t *testing.T) {
	ex := exposedMetrics(t)
	for _, tc := range []struct {
		expr string
		ok   bool
	}{
		{`sum by (node, pod) (rootscan_container_vulnerabilities{severity="critical", fixable="true"}) > 0`, true},
		{`rate(rootscan_scans_total{result="failed"}[5m])`, true},
		{`histogram_quantile(0.9, sum by (le, node) (rate(rootscan_scan_duration_seconds_bucket[5m])))`, true},
		{`rootscan_container_vulnerabilitys > 0`, false},                       // misspelt name
		{`rootscan_container_vulnerabilities{severity="CRITICAL"} > 0`, false}, // value never emitted
		{`rootscan_container_vulnerabilities{cve="CVE-2024-1"} > 0`, false},    // label not exposed
		{`sum by (ecosystem) (rootscan_container_vulnerabilities) > 0`, false}, // grouping label not there
		{`rootscan_container_drift_paths{change=~"added|moved"}`, false},       // one alternative unknown
		{`rootscan_container_drift_paths{change=~"add.*"}`, false},             // regex on an enum
		{`kube_node_info unless on (node) rootscan_build_info`, false},         // foreign name not declared
		{`rootscan_container_image_info{distroless="true", distroless_flavour="static"}`, true},
	} {
		err := checkExpr(ex, tc.expr, nil)
		if (err == nil) != tc.ok {
			t.Errorf("checkExpr(%s) = %v, want ok=%v", tc.expr, err, tc.ok)
		}
	}
}
