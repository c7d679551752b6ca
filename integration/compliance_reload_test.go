package integration

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rootscan/rootscan/exporter"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
)

// The daemon re-reads its profiles on SIGHUP: a changed profile file is evaluated on every running container
// (without the container changing), and a broken one is refused with file:line while the old profile stays.
func TestDaemonReloadsProfiles(t *testing.T) {
	bed, ctx, _, ref := startBed(t, ociimage.Distroless)
	prof := filepath.Join(t.TempDir(), "site.yaml")
	writeProfile := func(impact, expr string) {
		t.Helper()
		s := "name: site\ncontrols:\n  - id: site-01\n    impact: " + impact + "\n    checks:\n      - expr: " + expr + "\n"
		if err := os.WriteFile(prof, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeProfile("0.7", `file("/etc/passwd").exists`)
	d, mounts := startReadyDaemon(t, bed, "--db", filepath.Join(t.TempDir(), "db"),
		"--node-name", "node-1", "--resync", "1h", "--no-baseline", "--profile", prof)
	runWebApp(t, ctx, bed, ref.Name)
	labels := []string{"namespace=shop", "pod=web", "container=app", "node=node-1"}
	controls := func(status, severity string) func() bool {
		return func() bool {
			_, body := d.get("/metrics")
			v, ok := metric(body, exporter.MetricComplianceControls, append(labels, "status="+status, "severity="+severity)...)
			return ok && v == 1
		}
	}
	waitUntil(t, "site-01 passed (HIGH)", 30*time.Second, controls("passed", "high"))

	// The profile now fails on this image and is CRITICAL: after SIGHUP the running container is evaluated again.
	writeProfile("0.9", `file("/bin/sh").exists`)
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, "site-01 failed (CRITICAL) after SIGHUP", 30*time.Second, controls("failed", "critical"))
	waitUntil(t, "the reload logged", 10*time.Second, func() bool {
		return strings.Contains(d.stderr.String(), "compliance profiles reloaded")
	})

	// A broken profile: refused with file and line, and the running policy stays.
	writeProfile("0.9", `users().size() > "1"`)
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, "the broken profile refused with file:line", 30*time.Second, func() bool {
		return strings.Contains(d.stderr.String(), prof+":6: control site-01 check 1: found no matching overload")
	})
	if !controls("failed", "critical")() {
		t.Errorf("after a broken reload the previous result is gone")
	}
	if strings.Count(d.stderr.String(), "compliance profiles reloaded") != 1 {
		t.Errorf("broken profile was reported as reloaded")
	}

	// A clean stop releases every mount.
	d.terminate(t)
	assertNoMountsUnder(t, mounts)
}
