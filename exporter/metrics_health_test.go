package exporter

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestHealthExposition(t *testing.T) {
	now := time.Unix(1700000000, 0)
	h := NewHealth(HealthOptions{Node: "node-1", Version: "v1.2.3", Revision: "abc123", Now: func() time.Time { return now }})
	h.ObserveScan(true, 3*time.Millisecond)
	h.ObserveScan(true, 2*time.Second)
	h.ObserveScan(false, 400*time.Second)
	h.SetQueueDepth(7)
	h.CacheHit()
	h.CacheHit()
	h.CacheMiss()
	h.ImageEvaluation("disk")
	h.SetMountsHeld(2)
	h.SetContainersKnown(42)
	h.SetVulnDB(now.Add(-36 * time.Hour))
	var dropped atomic.Uint64
	dropped.Store(5)
	h.SetEventsDropped(dropped.Load)

	want := fmt.Sprintf(`
# HELP rootscan_build_info The scanner's build (always 1).
# TYPE rootscan_build_info gauge
rootscan_build_info{goversion=%q,node="node-1",revision="abc123",version="v1.2.3"} 1
# HELP rootscan_cache_hits_total Image scans answered from the per-node cache (by chain ID).
# TYPE rootscan_cache_hits_total counter
rootscan_cache_hits_total{node="node-1"} 2
# HELP rootscan_cache_misses_total Image scans the cache could not answer, so the image was scanned.
# TYPE rootscan_cache_misses_total counter
rootscan_cache_misses_total{node="node-1"} 1
# HELP rootscan_compliance_image_evaluations_total Container checks by where their image's compliance evaluation came from: memory, disk (stored before a restart), or evaluated.
# TYPE rootscan_compliance_image_evaluations_total counter
rootscan_compliance_image_evaluations_total{node="node-1",source="disk"} 1
rootscan_compliance_image_evaluations_total{node="node-1",source="evaluated"} 0
rootscan_compliance_image_evaluations_total{node="node-1",source="memory"} 0
# HELP rootscan_containers_known Containers the scanner knows on this node (from the CRI).
# TYPE rootscan_containers_known gauge
rootscan_containers_known{node="node-1"} 42
# HELP rootscan_events_dropped_total SIEM events dropped because the spool was full (oldest first).
# TYPE rootscan_events_dropped_total counter
rootscan_events_dropped_total{node="node-1"} 5
# HELP rootscan_mounts_held Read-only root file system mounts the scanner holds right now; it should return to 0 between scans.
# TYPE rootscan_mounts_held gauge
rootscan_mounts_held{node="node-1"} 2
# HELP rootscan_queue_depth Scans waiting for a worker.
# TYPE rootscan_queue_depth gauge
rootscan_queue_depth{node="node-1"} 7
# HELP rootscan_scan_duration_seconds How long one scan took, successful or not.
# TYPE rootscan_scan_duration_seconds histogram
rootscan_scan_duration_seconds_bucket{node="node-1",le="0.005"} 1
rootscan_scan_duration_seconds_bucket{node="node-1",le="0.01"} 1
rootscan_scan_duration_seconds_bucket{node="node-1",le="0.025"} 1
rootscan_scan_duration_seconds_bucket{node="node-1",le="0.05"} 1
rootscan_scan_duration_seconds_bucket{node="node-1",le="0.1"} 1
rootscan_scan_duration_seconds_bucket{node="node-1",le="0.25"} 1
rootscan_scan_duration_seconds_bucket{node="node-1",le="0.5"} 1
rootscan_scan_duration_seconds_bucket{node="node-1",le="1"} 1
rootscan_scan_duration_seconds_bucket{node="node-1",le="2.5"} 2
rootscan_scan_duration_seconds_bucket{node="node-1",le="5"} 2
rootscan_scan_duration_seconds_bucket{node="node-1",le="10"} 2
rootscan_scan_duration_seconds_bucket{node="node-1",le="30"} 2
rootscan_scan_duration_seconds_bucket{node="node-1",le="60"} 2
rootscan_scan_duration_seconds_bucket{node="node-1",le="120"} 2
rootscan_scan_duration_seconds_bucket{node="node-1",le="300"} 2
rootscan_scan_duration_seconds_bucket{node="node-1",le="+Inf"} 3
rootscan_scan_duration_seconds_sum{node="node-1"} 402.003
rootscan_scan_duration_seconds_count{node="node-1"} 3
# HELP rootscan_scans_total Scans finished (image and container parts), by result.
# TYPE rootscan_scans_total counter
rootscan_scans_total{node="node-1",result="failed"} 1
rootscan_scans_total{node="node-1",result="ok"} 2
# HELP rootscan_vuln_db_age_seconds Seconds since the loaded vulnerability database was built; absent when none is loaded.
# TYPE rootscan_vuln_db_age_seconds gauge
rootscan_vuln_db_age_seconds{node="node-1"} 129600
# HELP rootscan_vuln_db_loaded Whether a vulnerability database is loaded (1) or not (0).
# TYPE rootscan_vuln_db_loaded gauge
rootscan_vuln_db_loaded{node="node-1"} 1
`, runtime.Version())
	if err := testutil.CollectAndCompare(h, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}

	// The age follows the clock at scrape time, the dropped count follows the SIEM side's counter.
	now = now.Add(time.Hour)
	dropped.Store(9)
	got := seriesOf(t, h)
	if v := got[MetricVulnDBAge+",node=node-1"]; v != 133200 {
		t.Errorf("DB age an hour later = %v, want 133200", v)
	}
	if v := got[MetricEventsDroppedTotal+",node=node-1"]; v != 9 {
		t.Errorf("events dropped = %v, want 9", v)
	}
}

// TestHealthInitial: before anything happens both scan results exist at zero (so rate() works from the start), no
// DB is loaded and its age is absent rather than a misleading 0, and no events were dropped.
func TestHealthInitial(t *testing.T) {
	h := NewHealth(HealthOptions{Node: "n"})
	got := seriesOf(t, h)
	for _, s := range []string{MetricScansTotal + ",node=n,result=ok", MetricScansTotal + ",node=n,result=failed",
		MetricVulnDBLoaded + ",node=n", MetricEventsDroppedTotal + ",node=n"} {
		if v, ok := got[s]; !ok || v != 0 {
			t.Errorf("%s = %v (present %v), want a 0 series", s, v, ok)
		}
	}
	for s := range got {
		if strings.HasPrefix(s, MetricVulnDBAge) {
			t.Errorf("%s exposed with no DB loaded", s)
		}
	}
	h.SetVulnDB(time.Now())
	h.SetVulnDB(time.Time{})
	if _, ok := seriesOf(t, h)[MetricVulnDBAge+",node=n"]; ok {
		t.Error("DB age still exposed after the DB was unloaded")
	}
	h.SetEventsDropped(func() uint64 { return 3 })
	h.SetEventsDropped(nil)
	if v := seriesOf(t, h)[MetricEventsDroppedTotal+",node=n"]; v != 0 {
		t.Errorf("events dropped after SetEventsDropped(nil) = %v, want 0", v)
	}
}

func TestHealthLint(t *testing.T) {
	h := NewHealth(HealthOptions{Node: "node-1", Version: "v1"})
	h.SetVulnDB(time.Now())
	problems, err := testutil.CollectAndLint(h)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}
