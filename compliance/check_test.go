package compliance

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// The Checker gives the same control results run as the one-shot scan runs it (an analyzer of the target's walk)
// and as the daemon runs it (a check on the root after the analyzers).
func TestCheckerSameAsAnalyzerAndRootCheck(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"etc/os-release": "ID=debian\nVERSION_ID=12\n",
		"etc/passwd":     "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
		"etc/shadow":     "root:*:19000:0:99999:7:::\n",
		"bin/sh":         "#!/bin/true\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	root, err := fsaccess.OpenDir(dir, fsaccess.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	live, err := NewLive(Sources{Profiles: []string{Baseline}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &Checker{Profiles: live}
	target := report.Target{Kind: "dir", Path: dir, Config: &report.ImageConfig{User: "app"}}
	ctx := context.Background()

	extra, release := c.Analyzers(ctx, target)
	asAnalyzer := scan.Run(ctx, root, append(scan.DefaultAnalyzers(), extra...))
	release()
	rep := report.Report{Target: target, Result: scan.Run(ctx, root, scan.DefaultAnalyzers())}
	if err := c.Check(ctx, root, &rep); err != nil {
		t.Fatal(err)
	}
	got, want := statuses(rep.Result.Compliance), statuses(asAnalyzer.Compliance)
	if len(want) == 0 || len(got) != len(want) {
		t.Fatalf("root check: %d controls, analyzer: %d", len(got), len(want))
	}
	for id, s := range want {
		if got[id] != s {
			t.Errorf("control %s: root check %q, analyzer %q", id, got[id], s)
		}
	}
	// Without profiles there is nothing to run.
	none, err := NewLive(Sources{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if as, _ := (&Checker{Profiles: none}).Analyzers(ctx, target); as != nil {
		t.Errorf("analyzers without profiles: %v", as)
	}
}

func statuses(rs []report.ControlResult) map[string]string {
	m := map[string]string{}
	for _, r := range rs {
		m[r.ID] = r.Status
	}
	return m
}

// A volume whose host path is gone warns for a running container; for an exited one (the kubelet tore down a finished
// pod's volumes) it is expected and only logged at debug level.
func TestOpenVolumesGoneWithFinishedPod(t *testing.T) {
	gone := filepath.Join(t.TempDir(), "pods", "uid", "volumes", "kubernetes.io~configmap", "config")
	for _, tc := range []struct {
		state string
		want  slog.Level
	}{{"running", slog.LevelWarn}, {"exited", slog.LevelDebug}} {
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		tg := report.Target{Kind: "container", Namespace: "ns", Pod: "p", Container: "c", State: tc.state,
			Mounts: []report.Mount{{ContainerPath: "/etc/app", HostPath: gone}}}
		vols, release := OpenVolumes(tg, "", fsaccess.Options{}, log)
		release()
		if len(vols) != 0 || !strings.Contains(buf.String(), "level="+tc.want.String()+" ") {
			t.Errorf("%s container: %d volumes, log %q; want none and a %s line", tc.state, len(vols), buf.String(), tc.want)
		}
	}
}
