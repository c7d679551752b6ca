package compliance

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootscan/rootscan/report"
)

// A profile file changes under a running engine: Reload swaps in the new controls; a broken file keeps the old
// ones and logs file:line; an unchanged reload says so (no containers need checking again).
func TestLiveReload(t *testing.T) {
	f := newFixture(t, testFiles)
	dir := t.TempDir()
	prof := filepath.Join(dir, "site.yaml")
	waivers := filepath.Join(dir, "waivers.yaml")
	write := func(name, s string) {
		t.Helper()
		if err := os.WriteFile(name, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(prof, "name: site\ncontrols:\n  - id: s1\n    checks:\n      - expr: file('/etc/passwd').exists\n")
	write(waivers, "{}\n")
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	live, err := NewLive(Sources{Profiles: []string{prof}, Waivers: waivers}, log)
	if err != nil {
		t.Fatal(err)
	}
	statuses := func() string {
		var out []string
		for _, r := range live.Engine().Evaluate(context.Background(), f.root, report.Target{}, nil, &report.Result{}) {
			out = append(out, r.ID+"="+r.Status)
		}
		return strings.Join(out, ",")
	}
	if got := statuses(); got != "s1=passed" {
		t.Fatalf("before reload: %s", got)
	}
	if changed, err := live.Reload(); changed || err != nil {
		t.Errorf("reload of unchanged files: changed %v, err %v", changed, err)
	}

	write(prof, "name: site\ncontrols:\n  - id: s1\n    checks:\n      - expr: file('/etc/nonexistent').exists\n  - id: s2\n    checks:\n      - expr: file('/etc/passwd').exists\n")
	if changed, err := live.Reload(); !changed || err != nil {
		t.Fatalf("reload: changed %v, err %v", changed, err)
	}
	if got := statuses(); got != "s1=failed,s2=passed" {
		t.Errorf("after reload: %s", got)
	}

	// Only the waiver file changes: that is a change too.
	write(waivers, "s1:\n  justification: no shadow here\n")
	if changed, err := live.Reload(); !changed || err != nil {
		t.Fatalf("waiver reload: changed %v, err %v", changed, err)
	}
	if got := statuses(); got != "s1=skipped,s2=passed" {
		t.Errorf("after waiver reload: %s", got)
	}

	// A type error: the previous engine stays and the log names file and line.
	write(prof, "name: site\ncontrols:\n  - id: s1\n    checks:\n      - expr: users().size() > 'x'\n")
	changed, err := live.Reload()
	if changed || err == nil || !strings.Contains(err.Error(), prof+":5: control s1 check 1") {
		t.Fatalf("broken reload: changed %v, err %v", changed, err)
	}
	if !strings.Contains(logs.String(), "compliance profiles not reloaded; keeping the previous ones") || !strings.Contains(logs.String(), prof+":5: control s1 check 1: found no matching overload") {
		t.Errorf("log:\n%s", logs.String())
	}
	if got := statuses(); got != "s1=skipped,s2=passed" {
		t.Errorf("after broken reload: %s", got)
	}
	// A broken waiver file is refused the same way.
	write(prof, "name: site\ncontrols:\n  - id: s1\n    checks:\n      - expr: 'true'\n")
	write(waivers, "s1:\n  justification: ''\n")
	if _, err := live.Reload(); err == nil || !strings.Contains(err.Error(), "waiver for s1 has no justification") {
		t.Errorf("broken waivers: %v", err)
	}
	if got := statuses(); got != "s1=skipped,s2=passed" {
		t.Errorf("after broken waivers: %s", got)
	}
}

func TestSourcesNoProfiles(t *testing.T) {
	e, err := Sources{}.Load(nil)
	if e != nil || err != nil {
		t.Errorf("no profiles: %v, %v", e, err)
	}
	if _, err := NewLive(Sources{Profiles: []string{"builtin:nope"}}, nil); err == nil || !strings.Contains(err.Error(), `no built-in profile "nope"`) {
		t.Errorf("unknown builtin: %v", err)
	}
}
