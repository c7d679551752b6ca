package exporter

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/rootscan/rootscan/report"
)

func incompleteReport(reason string) report.Report {
	inc := &report.Incomplete{Reason: reason, Analyzer: "go-binary", Path: "usr/bin/\x1b[31mapp\n", Detail: "ran longer than 2m0s"}
	return report.Report{Target: target(), StartedAt: t0, Error: inc.String(), Incomplete: inc}
}

// A check stopped at a budget is one scan.incomplete event per episode, a quarantine one scan.crashed; open findings
// stay open through both, and a full check afterwards ends the episode without reopening anything.
func TestTrackerIncompleteEpisodes(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{}
	tr, err := NewTracker(t.TempDir(), rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	full := containerReport([]report.Vulnerability{vuln("CVE-1", "openssl", "3.0.1", report.SeverityCritical)}, nil)
	steps := []struct {
		name string
		rep  report.Report
		want []EventType
	}{
		{"full", full, []EventType{EventFindingOpened}},
		{"deadline", incompleteReport(report.IncompleteDeadline), []EventType{EventScanIncomplete}},
		{"deadline again", incompleteReport(report.IncompleteDeadline), nil},
		{"memory: same episode", incompleteReport(report.IncompleteMemory), nil},
		{"crashed: new episode", incompleteReport(report.IncompleteCrashed), []EventType{EventScanCrashed}},
		{"crashed again", incompleteReport(report.IncompleteCrashed), nil},
		{"failed: new episode", report.Report{Target: target(), StartedAt: t0, Error: "mount: EPERM"}, []EventType{EventScanFailed}},
		{"full again: findings still open, nothing", full, nil},
		{"partial result, incomplete: resolves nothing", func() report.Report {
			r := containerReport(nil, nil)
			r.Incomplete = &report.Incomplete{Reason: report.IncompleteMemory}
			return r
		}(), []EventType{EventScanIncomplete}},
	}
	for _, st := range steps {
		got, err := tr.Observe(ctx, st.rep)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		var types []EventType
		for _, e := range got {
			types = append(types, e.Type)
			if e.Type.scanProblem() && e.Type != EventScanFailed && (e.Incomplete == nil || e.Incomplete.Reason != st.rep.Incomplete.Reason) {
				t.Errorf("%s: event %+v lacks the report's Incomplete", st.name, e)
			}
		}
		if strings.Join(eventTypes(types), ",") != strings.Join(eventTypes(st.want), ",") {
			t.Fatalf("%s: events %v, want %v", st.name, types, st.want)
		}
	}
	// Every format renders an incomplete event as a scan problem, with the hostile path escaped.
	if _, err := tr.Observe(ctx, full); err != nil { // ends the episode
		t.Fatal(err)
	}
	ev, _ := tr.Observe(ctx, incompleteReport(report.IncompleteDeadline))
	if len(ev) != 1 {
		t.Fatalf("events: %v", ev)
	}
	for _, name := range []string{"json", "ecs", "ocsf", "cef"} {
		f, err := ParseFormat(name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := f.Marshal(ev[0])
		if err != nil {
			t.Fatal(err)
		}
		if strings.ContainsAny(string(b[:len(b)-1]), "\x1b\n") || !strings.Contains(string(b), "deadline") {
			t.Errorf("%s: %q; want one line naming the deadline, escapes escaped", name, b)
		}
	}
}

func eventTypes(ts []EventType) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return out
}

// The per-container gauge follows the container's last check; the counter counts every incomplete one.
func TestIncompleteMetrics(t *testing.T) {
	m, err := NewIncompleteMetrics("node-1", MetricsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	text := func() string {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, mf := range mfs {
			expfmt.MetricFamilyToText(&b, mf)
		}
		return b.String()
	}
	gauge := func(reason string) string {
		return MetricContainerIncomplete + `{container="app",namespace="shop",node="node-1",pod="web-1",reason="` + reason + `"} 1`
	}
	m.Observe(incompleteReport(report.IncompleteMemory))
	m.Observe(incompleteReport(report.IncompleteDeadline))
	got := text()
	for _, want := range []string{gauge(report.IncompleteDeadline), MetricScanIncompleteTotal + `{reason="memory"} 1`, MetricScanIncompleteTotal + `{reason="deadline"} 1`} {
		if !strings.Contains(got, want) {
			t.Errorf("metrics lack %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, gauge(report.IncompleteMemory)) {
		t.Errorf("the container's earlier reason is still shown:\n%s", got)
	}
	m.Observe(containerReport(nil, nil))
	if got := text(); strings.Contains(got, MetricContainerIncomplete+"{") {
		t.Errorf("a full check left the gauge:\n%s", got)
	}
	m.Observe(incompleteReport(report.IncompleteCrashed))
	m.Delete("c0ffee")
	if got := text(); strings.Contains(got, MetricContainerIncomplete+"{") {
		t.Errorf("a removed container left the gauge:\n%s", got)
	}
}

// With --metrics-labels dropping pod, the replicas of one workload share a series counting how many are incomplete.
func TestIncompleteMetricsCombined(t *testing.T) {
	m, err := NewIncompleteMetrics("node-1", MetricsOptions{Labels: []string{"namespace", "container"}})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	rep := func(id, pod string, inc *report.Incomplete) report.Report {
		r := containerReport(nil, nil)
		r.Target.ContainerID, r.Target.Pod, r.Incomplete = id, pod, inc
		return r
	}
	crashed := &report.Incomplete{Reason: report.IncompleteCrashed}
	value := func() (float64, bool) {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != MetricContainerIncomplete {
				continue
			}
			for _, mt := range mf.GetMetric() {
				for _, l := range mt.GetLabel() {
					if l.GetName() == "pod" {
						t.Fatalf("the pod label is kept: %v", mt)
					}
				}
				return mt.GetGauge().GetValue(), true
			}
		}
		return 0, false
	}
	m.Observe(rep("a", "web-1", crashed))
	m.Observe(rep("b", "web-2", crashed))
	if v, ok := value(); !ok || v != 2 {
		t.Fatalf("two quarantined replicas: %v, %v; want one series of 2", v, ok)
	}
	m.Observe(rep("a", "web-1", nil))
	if v, ok := value(); !ok || v != 1 {
		t.Fatalf("one left: %v, %v", v, ok)
	}
	m.Delete("b")
	if _, ok := value(); ok {
		t.Fatal("series left after the last incomplete container went")
	}
	if _, err := NewIncompleteMetrics("node-1", MetricsOptions{Labels: []string{"cve"}}); err == nil {
		t.Error("an unknown label was accepted")
	}
}
