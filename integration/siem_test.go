package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestScanForwardsEvents runs `rootscan scan --sink http://... --state-dir` against a real HTTP receiver: the first
// scan sends the open findings (a rewritten libc file), the next scan with the same state dir sends only what
// changed (a deleted file), and a third, unchanged scan sends nothing.
func TestScanForwardsEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test skipped in -short mode")
	}
	needTools(t, "apt-get", "dpkg-deb", "go")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, root := distrolessRoot(t, ctx)

	var mu sync.Mutex
	var docs []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var batch []map[string]any
		if err := json.NewDecoder(r.Body).Decode(&batch); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		docs = append(docs, batch...)
		mu.Unlock()
	}))
	defer srv.Close()
	// The integrity findings are what this test changes; the root's other findings (its unowned executables, the
	// compliance baseline) are opened once on the first scan and must not come again either.
	var others int
	received := func() []map[string]any {
		mu.Lock()
		defer mu.Unlock()
		var out []map[string]any
		others = 0
		for _, d := range docs {
			if ecsField(d, "rootscan.finding.kind") == "integrity" {
				out = append(out, d)
			} else {
				others++
			}
		}
		return out
	}

	state := t.TempDir()
	scanOnce := func() {
		t.Helper()
		res := runRootscan(t, 2*time.Minute, "scan", "--dir", root.Path(), "--verify-packages", "--node-name", "node-7",
			"-o", "json", "--sink", srv.URL+"/events?format=ecs", "--state-dir", state)
		if res.code != 0 {
			t.Fatalf("exit %d\n%s", res.code, res.stderr)
		}
	}
	sums := readMD5sums(t, filepath.Join(root.Path(), "var/lib/dpkg/status.d/libc6.md5sums"))
	changed, deleted := pathWithSuffix(t, sums, "/libc.so.6"), pathWithSuffix(t, sums, "/libm.so.6")
	if err := os.WriteFile(filepath.Join(root.Path(), changed), []byte("not the C library\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	scanOnce()
	got := received()
	firstOthers := others
	if len(got) != 1 {
		t.Fatalf("first scan: want 1 event, got %d: %v", len(got), got)
	}
	first := got[0]
	want := map[string]any{"event.action": "finding-opened", "rootscan.finding.kind": "integrity", "file.path": changed,
		"package.name": "libc6", "host.name": "node-7", "event.severity": 47.0}
	for k, v := range want {
		if g := ecsField(first, k); g != v {
			t.Errorf("%s = %v, want %v", k, g, v)
		}
	}

	if err := os.Remove(filepath.Join(root.Path(), deleted)); err != nil {
		t.Fatal(err)
	}
	scanOnce()
	got = received()
	if len(got) != 2 || ecsField(got[1], "file.path") != deleted || ecsField(got[1], "event.action") != "finding-opened" {
		t.Fatalf("second scan: want one new event for %s, got %v", deleted, got[1:])
	}
	scanOnce()
	if n := len(received()); n != 2 || others != firstOthers {
		t.Fatalf("an unchanged scan sent %d integrity and %d other events", n-2, others-firstOthers)
	}
}

func ecsField(m map[string]any, path string) any {
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		o, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = o[k]
	}
	return cur
}
