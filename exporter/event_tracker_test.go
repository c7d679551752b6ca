package exporter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rootscan/rootscan/report"
)

// recorder is a Publisher that keeps what it was given, and can be told to fail.
type recorder struct {
	events []Event
	fail   error
}

func (r *recorder) Publish(_ context.Context, events []Event) error {
	if r.fail != nil {
		return r.fail
	}
	r.events = append(r.events, events...)
	return nil
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func target() report.Target {
	return report.Target{Kind: "container", Node: "node-1", ContainerID: "c0ffee", Container: "app", Pod: "web-1",
		Namespace: "shop", Image: "registry.local/web:1", ImageDigest: "sha256:abcd"}
}

func containerReport(vulns []report.Vulnerability, extra func(*report.Result)) report.Report {
	r := &report.Result{Vulnerabilities: vulns}
	if extra != nil {
		extra(r)
	}
	return report.Report{Target: target(), StartedAt: t0, Result: r}
}

func vuln(id, pkg, version string, sev report.Severity) report.Vulnerability {
	return report.Vulnerability{ID: id, Package: pkg, Version: version, Ecosystem: "Debian", Severity: sev}
}

// summarize renders events as "type kind title [reason]" for exact comparison.
func summarize(events []Event) []string {
	var out []string
	for _, e := range events {
		s := string(e.Type)
		if e.Finding != nil {
			s += " " + string(e.Finding.Kind) + " " + e.Finding.Title
		}
		if e.Reason != "" {
			s += " [" + e.Reason + "]"
		}
		if e.Error != "" {
			s += " " + e.Error
		}
		out = append(out, s)
	}
	return out
}

func TestTrackerOpensAndResolves(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{}
	tr, err := NewTracker(t.TempDir(), rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	drift := func(r *report.Result) {
		r.Drift = []report.DriftEntry{{Path: "/usr/bin/nc", Change: report.DriftAdded, Type: "file", Executable: true}}
		r.Compliance = []report.ControlResult{
			{Profile: "cis", ID: "1.1", Title: "no root", Status: report.ControlFailed, Severity: report.SeverityHigh},
			{Profile: "cis", ID: "1.2", Status: report.ControlPassed},
			{Profile: "cis", ID: "1.3", Status: report.ControlFailed, Waiver: &report.Waiver{Justification: "ok"}},
		}
	}
	steps := []struct {
		name string
		rep  report.Report
		want []string
	}{
		{"first scan opens everything", containerReport([]report.Vulnerability{
			vuln("CVE-1", "openssl", "3.0.1", report.SeverityCritical),
			vuln("CVE-2", "zlib", "1.2", report.SeverityLow),
		}, drift), []string{
			"finding.opened compliance 1.1: no root",
			"finding.opened drift executable /usr/bin/nc added",
			"finding.opened vulnerability CVE-1 in openssl 3.0.1",
			"finding.opened vulnerability CVE-2 in zlib 1.2",
		}},
		{"same findings: nothing", containerReport([]report.Vulnerability{
			vuln("CVE-2", "zlib", "1.2", report.SeverityLow),
			vuln("CVE-1", "openssl", "3.0.1", report.SeverityCritical),
		}, drift), nil},
		{"upgrade still vulnerable: same finding", containerReport([]report.Vulnerability{
			vuln("CVE-1", "openssl", "3.0.2", report.SeverityCritical),
			vuln("CVE-2", "zlib", "1.2", report.SeverityLow),
		}, drift), nil},
		{"fix, VEX and new advisory", containerReport([]report.Vulnerability{
			func() report.Vulnerability {
				v := vuln("CVE-2", "zlib", "1.2", report.SeverityLow)
				v.Suppressed = &report.Suppression{Status: "not_affected"}
				return v
			}(),
			vuln("CVE-3", "curl", "8.0", report.SeverityHigh),
		}, nil), []string{
			"finding.resolved compliance 1.1: no root [absent]",
			"finding.resolved drift executable /usr/bin/nc added [absent]",
			"finding.resolved vulnerability CVE-1 in openssl 3.0.2 [absent]",
			"finding.resolved vulnerability CVE-2 in zlib 1.2 [suppressed]",
			"finding.opened vulnerability CVE-3 in curl 8.0",
		}},
		{"failed scan: one event, findings stay", report.Report{Target: target(), StartedAt: t0, Error: "mount: EPERM"},
			[]string{"scan.failed mount: EPERM"}},
		{"failed again: nothing", report.Report{Target: target(), StartedAt: t0, Error: "mount: EPERM"}, nil},
		{"recovered with the same findings: nothing", containerReport([]report.Vulnerability{vuln("CVE-3", "curl", "8.0", report.SeverityHigh)}, nil), nil},
	}
	for _, st := range steps {
		rec.events = nil
		got, err := tr.Observe(ctx, st.rep)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if g, w := strings.Join(summarize(got), "\n"), strings.Join(st.want, "\n"); g != w {
			t.Fatalf("%s:\ngot\n%s\nwant\n%s", st.name, g, w)
		}
		if len(rec.events) != len(got) {
			t.Fatalf("%s: published %d, returned %d", st.name, len(rec.events), len(got))
		}
		for _, e := range got {
			if e.Node != "node-1" || e.Pod != "web-1" || e.Namespace != "shop" || e.ContainerID != "c0ffee" ||
				e.ImageDigest != "sha256:abcd" || e.Image != "registry.local/web:1" || e.Container != "app" || len(e.ID) != 32 {
				t.Fatalf("%s: event lacks its context: %+v", st.name, e)
			}
		}
	}
}

func TestTrackerStableIDsAndReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rec := &recorder{}
	tr, _ := NewTracker(dir, rec, nil)
	withCVE := containerReport([]report.Vulnerability{vuln("CVE-1", "openssl", "3.0.1", report.SeverityCritical)}, nil)
	without := containerReport(nil, nil)

	opened, _ := tr.Observe(ctx, withCVE)
	resolved, _ := tr.Observe(ctx, without)
	reopened, _ := tr.Observe(ctx, withCVE)
	if len(opened) != 1 || len(resolved) != 1 || len(reopened) != 1 {
		t.Fatalf("want one event per step, got %d %d %d", len(opened), len(resolved), len(reopened))
	}
	if opened[0].Finding.ID != reopened[0].Finding.ID || opened[0].Finding.ID != resolved[0].Finding.ID {
		t.Fatal("the same finding must keep its finding ID")
	}
	if opened[0].ID == reopened[0].ID {
		t.Fatal("a finding opened again is a new event: it needs a new event ID")
	}
	if opened[0].ID == resolved[0].ID {
		t.Fatal("opened and resolved events need distinct IDs")
	}

	// Another container with the same image: different finding IDs.
	other := withCVE
	other.Target.ContainerID = "beef"
	ev, _ := tr.Observe(ctx, other)
	if len(ev) != 1 || ev[0].Finding.ID == opened[0].Finding.ID {
		t.Fatal("finding IDs must differ per container")
	}

	// Crash between publish and persist: the same change is derived again with the same event ID.
	dir2 := t.TempDir()
	failing := &recorder{fail: errors.New("disk full")}
	tr2, _ := NewTracker(dir2, failing, nil)
	if _, err := tr2.Observe(ctx, withCVE); err == nil {
		t.Fatal("a publish error must be returned")
	}
	tr3, _ := NewTracker(dir2, rec, nil) // restarted daemon
	again, err := tr3.Observe(ctx, withCVE)
	if err != nil || len(again) != 1 {
		t.Fatalf("after the failed publish the change must come again: %v %v", again, err)
	}
	if again[0].ID != opened[0].ID {
		t.Fatalf("re-derived event ID %s differs from the first derivation %s", again[0].ID, opened[0].ID)
	}
}

func TestTrackerSurvivesRestartAndForget(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rec := &recorder{}
	tr, _ := NewTracker(dir, rec, nil)
	two := containerReport([]report.Vulnerability{vuln("CVE-1", "openssl", "3", report.SeverityCritical), vuln("CVE-2", "zlib", "1", report.SeverityLow)}, nil)
	opened, _ := tr.Observe(ctx, two)

	// Restart: the same findings open nothing, a resolution made while down is reported with the original IDs.
	tr, _ = NewTracker(dir, rec, nil)
	if ev, _ := tr.Observe(ctx, two); len(ev) != 0 {
		t.Fatalf("restart must not re-open findings: %v", summarize(ev))
	}
	tr, _ = NewTracker(dir, rec, nil)
	ev, _ := tr.Observe(ctx, containerReport([]report.Vulnerability{vuln("CVE-2", "zlib", "1", report.SeverityLow)}, nil))
	if got := summarize(ev); len(got) != 1 || got[0] != "finding.resolved vulnerability CVE-1 in openssl 3 [absent]" {
		t.Fatalf("got %v", got)
	}
	if ev[0].Finding.ID != opened[0].Finding.ID {
		t.Fatal("resolution after restart must carry the original finding ID")
	}

	known, err := tr.Known()
	if err != nil || len(known) != 1 || known[0] != "c0ffee" {
		t.Fatalf("Known() = %v, %v", known, err)
	}
	tr, _ = NewTracker(dir, rec, nil)
	ev, err = tr.Forget(ctx, "c0ffee")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(summarize(ev), "\n"); got != "finding.resolved vulnerability CVE-2 in zlib 1 [container_removed]\ncontainer.removed" {
		t.Fatalf("Forget events:\n%s", got)
	}
	if ev[1].Pod != "web-1" || ev[1].Node != "node-1" {
		t.Fatalf("container.removed lacks context: %+v", ev[1])
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*.json")); len(files) != 0 {
		t.Fatalf("state left after Forget: %v", files)
	}
	if ev, _ := tr.Forget(ctx, "c0ffee"); len(ev) != 0 {
		t.Fatal("forgetting twice must emit nothing")
	}
	// A damaged state file starts over instead of failing forever.
	tr.Observe(ctx, two)
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	os.WriteFile(files[0], []byte("{garbage"), 0o600)
	tr, _ = NewTracker(dir, rec, nil)
	if ev, err := tr.Observe(ctx, two); err != nil || len(ev) != 2 {
		t.Fatalf("damaged state: %v %v", summarize(ev), err)
	}
}

func TestFindingsBounded(t *testing.T) {
	var vulns []report.Vulnerability
	for i := range MaxFindingsPerTarget + 10 {
		vulns = append(vulns, vuln(fmt.Sprintf("CVE-%d", i), "p", "1", report.SeverityLow))
	}
	vulns = append(vulns, vuln("CVE-X", "p", "1", report.SeverityCritical))
	vulns[0].Summary = strings.Repeat("é", 5000)
	f := Findings(containerReport(vulns, nil))
	if len(f) != MaxFindingsPerTarget {
		t.Fatalf("%d findings, want the bound %d", len(f), MaxFindingsPerTarget)
	}
	var crit bool
	for _, x := range f {
		crit = crit || x.Vulnerability.ID == "CVE-X"
		if len(x.Vulnerability.Summary) > maxSummary {
			t.Fatalf("summary of %d bytes", len(x.Vulnerability.Summary))
		}
	}
	if !crit {
		t.Fatal("the bound must keep the most severe findings")
	}
}

// An open finding whose package comes into use gets one finding.in_use event, with the finding's severity and a
// stable ID; staying in use, or going out of use, adds nothing; in use again is the same event again. A finding
// opened already in use needs none.
func TestTrackerInUse(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{}
	tr, _ := NewTracker(t.TempDir(), rec, nil)
	with := func(u report.InUse) report.Report {
		v := vuln("CVE-1", "openssl", "3.0.1", report.SeverityHigh)
		v.InUse = u
		w := vuln("CVE-2", "zlib", "1.2", report.SeverityLow)
		w.InUse = report.InUseTrue
		return containerReport([]report.Vulnerability{v, w}, nil)
	}
	steps := []struct {
		u    report.InUse
		want []string
	}{
		{report.InUseFalse, []string{"finding.opened vulnerability CVE-1 in openssl 3.0.1", "finding.opened vulnerability CVE-2 in zlib 1.2"}},
		{report.InUseUnknown, nil},
		{report.InUseTrue, []string{"finding.in_use vulnerability CVE-1 in openssl 3.0.1"}},
		{report.InUseTrue, nil},
		{report.InUseFalse, nil},
		{report.InUseTrue, []string{"finding.in_use vulnerability CVE-1 in openssl 3.0.1"}},
	}
	var ids []string
	for i, s := range steps {
		ev, err := tr.Observe(ctx, with(s.u))
		if err != nil {
			t.Fatal(err)
		}
		if got := summarize(ev); strings.Join(got, "\n") != strings.Join(s.want, "\n") {
			t.Errorf("step %d (%s): events %q, want %q", i, s.u, got, s.want)
		}
		for _, e := range ev {
			if e.Type == EventFindingInUse {
				ids = append(ids, e.ID)
				if eventSeverity(e) != report.SeverityHigh || e.Finding.Vulnerability.InUse != report.InUseTrue {
					t.Errorf("in-use event: severity %s, finding %+v", eventSeverity(e), e.Finding.Vulnerability)
				}
			}
		}
	}
	if len(ids) != 2 || ids[0] != ids[1] {
		t.Errorf("in-use event IDs %v: want one stable ID", ids)
	}
	e := Event{Type: EventFindingInUse, Finding: &Finding{Kind: KindVulnerability, Title: "CVE-1 in openssl 3.0.1", Severity: report.SeverityHigh,
		Vulnerability: &report.Vulnerability{ID: "CVE-1", InUse: report.InUseTrue}}}
	checkFields(t, render(t, "ocsf", e), map[string]any{"activity_name": "Update", "status": "New", "unmapped.in_use": "true"})
	checkFields(t, render(t, "ecs", e), map[string]any{"event.action": "finding-in_use", "rootscan.finding.status": "open"})
	checkFields(t, render(t, "json", e), map[string]any{"type": "finding.in_use"})
}
