package cli

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/rootscan/rootscan/exporter"
	"github.com/rootscan/rootscan/internal/servertls"
)

func TestParseScanFlagsDrift(t *testing.T) {
	f, err := parseScanFlags([]string{"--drift", "--container", "abc"})
	if err != nil || !f.drift {
		t.Fatalf("--drift --container: %+v, %v", f, err)
	}
	for _, args := range [][]string{{"--drift", "--dir", "/x"}, {"--drift", "--oci", "/x"}} {
		_, err := parseScanFlags(args)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--drift needs containers") {
			t.Errorf("%v: err = %v, want a usage error", args, err)
		}
	}
}

// parseScanFlags parses args as `rootscan scan` does, environment included, without running the scan.
func parseScanFlags(args []string) (*scanFlags, error) {
	f := &scanFlags{}
	fs := pflag.NewFlagSet("scan", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, usageError{err.Error()}
	}
	if err := applyEnv(fs); err != nil {
		return nil, err
	}
	return f, f.check()
}

// The /proc/<pid>/root fallback is off unless --proc-root-fallback (or the daemon's procRootFallback) asks for it;
// --proc-root alone only says where /proc is.
func TestProcRootFallbackIsOptIn(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"--proc-root", "/host/proc"}, ""},
		{[]string{"--proc-root-fallback"}, "/proc"},
		{[]string{"--proc-root-fallback", "--proc-root", "/host/proc"}, "/host/proc"},
	} {
		f, err := parseScanFlags(tc.args)
		if err != nil {
			t.Fatal(err)
		}
		if got := procRootIf(f.procRootFallback, f.procRoot); got != tc.want {
			t.Errorf("scan %q: ProcRoot %q, want %q", tc.args, got, tc.want)
		}
	}
	cfg := filepath.Join(t.TempDir(), "daemon.yaml")
	if err := os.WriteFile(cfg, []byte("procRoot: /host/proc\nprocRootFallback: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"--config", cfg}, "/host/proc"},
		{[]string{"--config", cfg, "--proc-root-fallback=false"}, ""},
	} {
		c := &daemonConfig{}
		fs := pflag.NewFlagSet("daemon", pflag.ContinueOnError)
		c.register(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if err := c.mergeFile(fs); err != nil {
			t.Fatal(err)
		}
		if got := procRootIf(c.ProcRootFallback, c.ProcRoot); got != tc.want {
			t.Errorf("daemon %q: ProcRoot %q, want %q", tc.args, got, tc.want)
		}
	}
}

// TestDaemonMetricsFlags: the fleet and TLS settings come from flags or the config file, a flag winning, and an
// empty --metrics-labels means node totals rather than every label.
func TestDaemonMetricsFlags(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "daemon.yaml")
	conf := "metricsLabels: [namespace, container]\nmetricsMaxSeries: 500\nmetricsTLSCert: /tls/tls.crt\n" +
		"metricsTLSKey: /tls/tls.key\nmetricsTLSClientCA: /tls/ca.crt\nhealthListen: :9091\n"
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	parse := func(args ...string) *daemonConfig {
		t.Helper()
		c := &daemonConfig{}
		fs := pflag.NewFlagSet("daemon", pflag.ContinueOnError)
		c.register(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if err := c.mergeFile(fs); err != nil {
			t.Fatal(err)
		}
		return c
	}
	def := parse().Metrics.options()
	if !slices.Equal(def.Labels, exporter.IdentityLabels()) || def.MaxSeries != defaultMaxSeries {
		t.Errorf("defaults: %+v", def)
	}
	c := parse("--config", cfg)
	if got := c.Metrics.options(); !slices.Equal(got.Labels, []string{"namespace", "container"}) || got.MaxSeries != 500 {
		t.Errorf("from the file: %+v", got)
	}
	if f := c.Metrics.tlsFiles(); f != (servertls.Files{CertFile: "/tls/tls.crt", KeyFile: "/tls/tls.key", ClientCAFile: "/tls/ca.crt"}) ||
		c.Metrics.HealthListen != ":9091" {
		t.Errorf("TLS from the file: %+v, health %q", f, c.Metrics.HealthListen)
	}
	c = parse("--config", cfg, "--metrics-labels", "pod", "--metrics-max-series", "0", "--health-listen", ":8081")
	if got := c.Metrics.options(); !slices.Equal(got.Labels, []string{"pod"}) || got.MaxSeries != 0 || c.Metrics.HealthListen != ":8081" {
		t.Errorf("flags over the file: %+v, health %q", got, c.Metrics.HealthListen)
	}
	if got := parse("--metrics-labels", "").Metrics.options(); got.Labels == nil || len(got.Labels) != 0 {
		t.Errorf(`--metrics-labels "": labels %#v, want none (node totals)`, got.Labels)
	}
}
