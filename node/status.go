package node

import (
	"io"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HealthGauges are the daemon's own gauges StatusHandler sets at scrape time; exporter.Health is the real one.
type HealthGauges interface {
	SetQueueDepth(n int)
	SetContainersKnown(n int)
	SetMountsHeld(n int)
}

// StatusHandler serves the daemon's only HTTP endpoints: /metrics from reg, /healthz (the process answers) and
// /readyz (the first full reconcile is done). The gauges of the loop's own state are set at scrape time, so they are
// never stale; mountsHeld reports the mounts the daemon holds now.
func StatusHandler(d *Daemon, reg *prometheus.Registry, health HealthGauges, mountsHeld func() int) http.Handler {
	mux := http.NewServeMux()
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	mux.Handle("/metrics", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		st := d.Stats()
		health.SetQueueDepth(st.QueueDepth)
		health.SetContainersKnown(st.Containers)
		health.SetMountsHeld(mountsHeld())
		metrics.ServeHTTP(w, req)
	}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !d.Ready() {
			http.Error(w, "initial scan in progress", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	return mux
}
