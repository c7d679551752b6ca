package exporter

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestSinkCollector(t *testing.T) {
	ctx := context.Background()
	rec := newReceiver()
	wh := startWebhook(t, ecsArrayHandler(rec, ""))
	sink, _ := ParseSink("http://" + wh.addr + "/")
	opts := fastOpts()
	opts.Spool = SpoolOptions{MaxBytes: 64 << 10, SegmentBytes: 4 << 10, Sync: SyncNone}
	d, err := NewDispatcher(t.TempDir(), []Sink{sink}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond) // the sink stays down: do not wait for it
		defer cancel()
		d.Close(cctx)
	}()
	d.Publish(ctx, testEvents("m", 3))
	// Delivered and acknowledged: the receiver has the events before the dispatcher has the answer and moves its spool
	// past them, and events still spooled when the sink goes down would be counted with the 1000 below.
	waitFor(t, "delivery", func() bool { st := d.Stats()[0]; return len(rec.ids()) == 3 && st.Sent == 3 && st.Pending == 0 })
	wh.down()
	// About 250 KB of events into a 64 KiB spool while the sink is down: the oldest are dropped.
	for range 10 {
		d.Publish(ctx, testEvents("n", 100))
	}
	waitFor(t, "the sink to be seen down", func() bool { return !d.Stats()[0].Up })
	st := d.Stats()[0]
	if st.Dropped == 0 || st.Dropped+st.Pending != 1000 {
		t.Fatalf("stats %+v", st)
	}
	c := NewSinkCollector(d)
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) != 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	name := `sink="http://` + wh.addr + `/?format=ecs"`
	want := `
# HELP rootscan_siem_events_sent_total Events the SIEM sink accepted.
# TYPE rootscan_siem_events_sent_total counter
rootscan_siem_events_sent_total{` + name + `} 3
# HELP rootscan_siem_events_dropped_total Undelivered events dropped from the sink's spool (full or damaged).
# TYPE rootscan_siem_events_dropped_total counter
rootscan_siem_events_dropped_total{` + name + `} ` + itoa(st.Dropped) + `
# HELP rootscan_siem_events_spooled Events waiting in the sink's disk spool.
# TYPE rootscan_siem_events_spooled gauge
rootscan_siem_events_spooled{` + name + `} ` + itoa(st.Pending) + `
# HELP rootscan_siem_sink_up 1 when the last delivery attempt to the sink succeeded.
# TYPE rootscan_siem_sink_up gauge
rootscan_siem_sink_up{` + name + `} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "rootscan_siem_events_sent_total",
		"rootscan_siem_events_dropped_total", "rootscan_siem_events_spooled", "rootscan_siem_sink_up"); err != nil {
		t.Fatal(err)
	}
	if d.Dropped() != st.Dropped {
		t.Fatalf("Dropped() = %d, want %d", d.Dropped(), st.Dropped)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
