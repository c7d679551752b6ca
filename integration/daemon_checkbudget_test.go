package integration

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/rootscan/rootscan/exporter"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
)

// `rootscan daemon --check-timeout` reaches every container check of the real binary: with a deadline no check can
// meet, each container is reported incomplete (metrics and a scan.incomplete SIEM event), the daemon stays up and
// ready, and nothing stays mounted.
func TestDaemonCheckTimeout(t *testing.T) {
	bed, ctx, _, ref := startBed(t, ociimage.Distroless)
	_, id := runWebApp(t, ctx, bed, ref.Name)
	recv := newSIEMReceiver(t)
	d, mounts := startReadyDaemon(t, bed, "--node-name", "node-1", "--db", filepath.Join(t.TempDir(), "db"),
		"--sink", recv.srv.URL+"/hook?format=json", "--check-timeout", "1ns")
	labels := []string{"namespace=shop", "pod=web", "container=app", "node=node-1", "reason=deadline"}
	waitUntil(t, "the container marked incomplete on /metrics", 30*time.Second, func() bool {
		_, body := d.get("/metrics")
		v, ok := metric(body, exporter.MetricContainerIncomplete, labels...)
		return ok && v == 1
	})
	_, body := d.get("/metrics")
	if v, ok := metric(body, exporter.MetricScanIncompleteTotal, "reason=deadline"); !ok || v < 1 {
		t.Errorf("%s{reason=deadline} = %v, %v", exporter.MetricScanIncompleteTotal, v, ok)
	}
	if _, ok := metric(body, exporter.MetricPackages, "container=app"); ok {
		t.Errorf("an incomplete check published package counts")
	}
	waitUntil(t, "a scan.incomplete event", 30*time.Second, func() bool {
		return recv.find(exporter.EventScanIncomplete, id, func(e exporter.Event) bool {
			return e.Incomplete != nil && e.Incomplete.Reason == "deadline"
		})
	})
	if code, _ := d.get("/healthz"); code != 200 {
		t.Errorf("/healthz %d", code)
	}
	d.stopClean(t, mounts)
}
