package cli

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/pflag"

	"github.com/rootscan/rootscan/internal/servertls"
)

// metricsConfig is how the daemon serves /metrics: over TLS with client certificates, and with health endpoints on
// a plain port of their own for the kubelet's probes, which present no client certificate.
type metricsConfig struct {
	HealthListen       string `yaml:"healthListen"`
	MetricsTLSCert     string `yaml:"metricsTLSCert"`
	MetricsTLSKey      string `yaml:"metricsTLSKey"`
	MetricsTLSClientCA string `yaml:"metricsTLSClientCA"`
}

func (c *metricsConfig) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.HealthListen, "health-listen", "", "also serve /healthz and /readyz (only those) over plain HTTP at this address, "+
		"for probes that cannot present a client certificate (with --metrics-tls-client-ca)")
	fs.StringVar(&c.MetricsTLSCert, "metrics-tls-cert", "", "serve --listen over TLS 1.2+ with this PEM certificate (re-read when the file changes)")
	fs.StringVar(&c.MetricsTLSKey, "metrics-tls-key", "", "PEM private key of --metrics-tls-cert")
	fs.StringVar(&c.MetricsTLSClientCA, "metrics-tls-client-ca", "", "PEM CA bundle: only clients with a certificate it issued may connect to --listen")
}

// merge fills what the command line did not set from the config file f.
func (c *metricsConfig) merge(f *metricsConfig, fs *pflag.FlagSet) {
	for name, apply := range map[string]func(){
		"health-listen":         func() { c.HealthListen = f.HealthListen },
		"metrics-tls-cert":      func() { c.MetricsTLSCert = f.MetricsTLSCert },
		"metrics-tls-key":       func() { c.MetricsTLSKey = f.MetricsTLSKey },
		"metrics-tls-client-ca": func() { c.MetricsTLSClientCA = f.MetricsTLSClientCA },
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

// newServer wraps h with the timeouts every listener of the daemon has.
func newServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute}
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
	r.servers = append(r.servers, served{server: newServer(status), listener: ln})
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
	r.servers = append(r.servers, served{server: newServer(health), listener: hl})
	return nil
}
