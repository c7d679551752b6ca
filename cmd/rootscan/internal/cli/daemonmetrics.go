package cli

import (
	"cmp"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/rootscan/rootscan/exporter"
	"github.com/rootscan/rootscan/internal/servertls"
)

// metricsConfig is how the daemon serves /metrics: over TLS with client certificates, and with health endpoints on
// a plain port of their own for the kubelet's probes, which present no client certificate.
type metricsConfig struct {
	HealthListen       string `yaml:"healthListen"`
	MetricsTLSCert     string `yaml:"metricsTLSCert"`
	MetricsTLSKey      string `yaml:"metricsTLSKey"`
	MetricsTLSClientCA string `yaml:"metricsTLSClientCA"`
	// MetricsLabels and MetricsMaxSeries fit the per-container series to a large fleet (exporter.MetricsOptions).
	MetricsLabels    []string `yaml:"metricsLabels"`
	MetricsMaxSeries int      `yaml:"metricsMaxSeries"`
}

// defaultMaxSeries is sized for a big node: 250 pods (kubelet's --max-pods is 110 by default; large nodes raise
// it to about 250) of two containers, each with the ~31 series of a busy container (exporter's BenchmarkMetricsGather), is 15,500; the
// rest is headroom. A node that reaches it is more likely a flood than a workload.
const defaultMaxSeries = 20000

func (c *metricsConfig) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.HealthListen, "health-listen", "", "also serve /healthz and /readyz (only those) over plain HTTP at this address, "+
		"for probes that cannot present a client certificate (with --metrics-tls-client-ca)")
	fs.StringVar(&c.MetricsTLSCert, "metrics-tls-cert", "", "serve --listen over TLS 1.2+ with this PEM certificate (re-read when the file changes)")
	fs.StringVar(&c.MetricsTLSKey, "metrics-tls-key", "", "PEM private key of --metrics-tls-cert")
	fs.StringVar(&c.MetricsTLSClientCA, "metrics-tls-client-ca", "", "PEM CA bundle: only clients with a certificate it issued may connect to --listen")
	fs.StringSliceVar(&c.MetricsLabels, "metrics-labels", exporter.IdentityLabels(), "identity labels the per-container series keep, of "+
		strings.Join(exporter.IdentityLabels(), ",")+"; series of containers that differ only in the others are summed (\"\" for node totals)")
	fs.IntVar(&c.MetricsMaxSeries, "metrics-max-series", defaultMaxSeries, "most per-container series one scrape exposes, whole containers left out "+
		"beyond it, a fair share per namespace, counted by rootscan_metrics_series_capped_total (0: no cap)")
}

// options are the exporter's options from the flags.
func (c *metricsConfig) options() exporter.MetricsOptions {
	labels := c.MetricsLabels
	if labels == nil {
		labels = []string{}
	}
	return exporter.MetricsOptions{Labels: labels, MaxSeries: max(c.MetricsMaxSeries, 0)}
}

// merge fills what the command line did not set from the config file f.
func (c *metricsConfig) merge(f *metricsConfig, fs *pflag.FlagSet) {
	for name, apply := range map[string]func(){
		"health-listen":         func() { c.HealthListen = f.HealthListen },
		"metrics-tls-cert":      func() { c.MetricsTLSCert = f.MetricsTLSCert },
		"metrics-tls-key":       func() { c.MetricsTLSKey = f.MetricsTLSKey },
		"metrics-tls-client-ca": func() { c.MetricsTLSClientCA = f.MetricsTLSClientCA },
		"metrics-labels": func() {
			if f.MetricsLabels != nil {
				c.MetricsLabels = f.MetricsLabels
			}
		},
		// 0 in the file is "not set"; a negative value is no cap.
		"metrics-max-series": func() { c.MetricsMaxSeries = cmp.Or(f.MetricsMaxSeries, c.MetricsMaxSeries) },
	} {
		if !fs.Changed(name) {
			apply()
		}
	}
}

func (c *metricsConfig) tlsFiles() servertls.Files {
	return servertls.Files{CertFile: c.MetricsTLSCert, KeyFile: c.MetricsTLSKey, ClientCAFile: c.MetricsTLSClientCA}
}

// served is one HTTP server and the listener it serves.
type served struct {
	server   *http.Server
	listener net.Listener
}

// newServer wraps h with the timeouts every listener of the daemon has; the server's own errors (a client refused
// in the TLS handshake, for one) go to the daemon's log as warnings, not as unstructured lines on stderr.
func newServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
}

// listen opens the --listen server (over TLS when configured) for status, and the --health-listen one serving only
// status's /healthz and /readyz. What it opened is in r.servers, closed by r.close.
func (r *daemonRun) listen(listen string, c *metricsConfig, status http.Handler, log *slog.Logger) error {
	files := c.tlsFiles()
	var conf *tls.Config
	if files.Enabled() {
		loader, err := servertls.New(files, log)
		if err != nil {
			return err
		}
		conf = loader.Config()
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	if conf != nil {
		ln = tls.NewListener(ln, conf)
	}
	r.servers = append(r.servers, served{server: newServer(status, log), listener: ln})
	if c.HealthListen == "" {
		if c.MetricsTLSClientCA != "" {
			log.Warn("/healthz and /readyz need a client certificate too; probes that present none (the kubelet's) " +
				"fail: give --health-listen")
		}
		return nil
	}
	hl, err := net.Listen("tcp", c.HealthListen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.HealthListen, err)
	}
	health := http.NewServeMux()
	health.Handle("/healthz", status)
	health.Handle("/readyz", status)
	r.servers = append(r.servers, served{server: newServer(health, log), listener: hl})
	return nil
}
