package exporter

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rootscan/rootscan/report"
)

func execTarget() report.Target {
	return report.Target{Kind: "container", Node: "node-1", ContainerID: "c0ffee", Namespace: "shop", Pod: "web-1",
		Container: "app", Image: "registry.local/web:1"}
}

func execDrift() ExecDrift {
	return ExecDrift{Path: "/tmp/x", Inode: 42, SHA256: strings.Repeat("ab", 32), Size: 10, PID: 7, PPID: 6,
		ParentCmdline: "/bin/sh -c " + strings.Repeat("y", 3000), UID: 1000, User: "app", Comm: "x", Count: 1, FirstSeen: t0,
		Argv: make([]string, 100)}
}

// TestExecDriftEvent: the event is a CRITICAL exec_drift finding, its IDs depend on the container, path and inode
// only (a re-derived event de-duplicates), and the parts a hostile process controls are bounded.
func TestExecDriftEvent(t *testing.T) {
	e := ExecDriftEvent(execTarget(), execDrift())
	if e.Type != EventExecDrift || e.Finding.Kind != KindExecDrift || e.Finding.Severity != report.SeverityCritical ||
		e.Pod != "web-1" || e.Finding.Exec.SHA256 != execDrift().SHA256 {
		t.Fatalf("event %+v", e)
	}
	if len(e.Finding.Exec.ParentCmdline) > maxMessage || len(e.Finding.Exec.Argv) != maxArgv {
		t.Errorf("unbounded: cmdline %d bytes, %d args", len(e.Finding.Exec.ParentCmdline), len(e.Finding.Exec.Argv))
	}
	x := execDrift()
	x.Count, x.PID = 5, 99
	if again := ExecDriftEvent(execTarget(), x); again.ID != e.ID || again.Finding.ID != e.Finding.ID {
		t.Error("the same drifted file got a new event ID")
	}
	x.Inode = 43
	if other := ExecDriftEvent(execTarget(), x); other.ID == e.ID {
		t.Error("a replaced file (new inode) kept the event ID")
	}
	ecs := render(t, "ecs", e)
	checkFields(t, ecs, map[string]any{"event.action": "container-exec_drift", "event.severity": float64(99),
		"process.executable": "/tmp/x", "process.hash.sha256": x.SHA256, "process.parent.pid": float64(6),
		"user.name": "app", "user.id": "1000", "file.hash.sha256": x.SHA256})
	ocsf := render(t, "ocsf", e)
	checkFields(t, ocsf, map[string]any{"class_uid": float64(2004), "status": "New", "evidences.process.file.path": "/tmp/x",
		"evidences.process.parent_process.pid": float64(6), "evidences.process.user.name": "app"})
	for _, name := range []string{"ocsf", "cef", "json"} {
		f, _ := ParseFormat(name)
		b, err := f.Marshal(e)
		if err != nil || strings.ContainsAny(string(b), "\n\r") || (f.JSON() && !json.Valid(b)) {
			t.Errorf("%s: %q %v", name, b, err)
		}
		if !strings.Contains(string(b), "CRITICAL") && !strings.Contains(string(b), "Critical") && name != "cef" {
			t.Errorf("%s does not carry the severity: %s", name, b)
		}
		if name == "cef" && (!strings.Contains(string(b), "filePath=/tmp/x") || !strings.Contains(string(b), "suser=app")) {
			t.Errorf("cef lacks the file or the user: %s", b)
		}
	}
}

type recordingPublisher struct{ events []Event }

func (p *recordingPublisher) Publish(_ context.Context, evs []Event) error {
	p.events = append(p.events, evs...)
	return nil
}

// TestExecDriftPublisher: every execution counts on the container's series, only the first is sent; Forget drops
// the series; the eBPF status series are there with and without eBPF.
func TestExecDriftPublisher(t *testing.T) {
	m := NewRuntimeMetrics("node-1")
	pub := &recordingPublisher{}
	p := &ExecDriftPublisher{Events: pub, Metrics: m}
	p.Publish(context.Background(), execTarget(), execDrift(), true)
	p.Publish(context.Background(), execTarget(), execDrift(), false)
	if len(pub.events) != 1 {
		t.Errorf("%d events sent, want 1", len(pub.events))
	}
	series := seriesOf(t, m)
	key := MetricExecDrift + ",container=app,image=registry.local/web:1,namespace=shop,node=node-1,pod=web-1"
	if series[key] != 2 {
		t.Errorf("%s = %v, want 2: %v", key, series[key], series)
	}
	if v, ok := series[MetricEBPFAvailable+",node=node-1"]; !ok || v != 0 {
		t.Errorf("%s = %v (found %v) before SetEBPF, want 0", MetricEBPFAvailable, v, ok)
	}
	for _, name := range []string{MetricEBPFEventsLost, MetricEBPFNewContainers} {
		if _, ok := series[name+",node=node-1"]; !ok {
			t.Errorf("%s missing without eBPF", name)
		}
	}
	p.Forget(execTarget())
	m.SetEBPF(EBPFState{Available: true, Reason: "loaded", Lost: func() (uint64, error) { return 3, nil }, Malformed: func() uint64 { return 1 },
		NewContainers: func() uint64 { return 2 }})
	series = seriesOf(t, m)
	if _, ok := series[key]; ok {
		t.Error("series left after Forget")
	}
	for k, want := range map[string]float64{MetricEBPFAvailable + ",node=node-1": 1, MetricEBPFStatus + ",node=node-1,reason=loaded": 1,
		MetricEBPFEventsLost + ",node=node-1": 3, MetricEBPFEventsMalformed + ",node=node-1": 1, MetricEBPFNewContainers + ",node=node-1": 2} {
		if series[k] != want {
			t.Errorf("%s = %v, want %v", k, series[k], want)
		}
	}
}
