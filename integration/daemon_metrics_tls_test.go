package integration

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rootscan/rootscan/exporter"
	"github.com/rootscan/rootscan/internal/servertls/testpki"
	"github.com/rootscan/rootscan/internal/testbed"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
)

// tlsScrape GETs /metrics from the daemon's TLS listener on a new connection, with client (none when nil); it
// returns the body and the serial of the certificate the daemon showed.
func tlsScrape(addr string, roots *x509.CertPool, client *tls.Certificate) (string, string, error) {
	conf := &tls.Config{RootCAs: roots}
	if client != nil {
		conf.Certificates = []tls.Certificate{*client}
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: conf, DisableKeepAlives: true}}
	resp, err := c.Get("https://" + addr + "/metrics")
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp.TLS.PeerCertificates[0].SerialNumber.String(), err
}

func writeFile(t *testing.T, name string, data []byte) {
	t.Helper()
	tmp := name + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
}

// The daemon as the chart runs it with metrics.tls: /metrics only over TLS to clients of the given CA, the probes'
// endpoints on a plain port of their own, the server certificate rotated under it, and two replicas of a pod
// combined into one series set because pod is not among --metrics-labels.
func TestDaemonMetricsTLS(t *testing.T) {
	bed, ctx, _, ref := startBed(t, ociimage.Distroless)
	serverCA, clientCA, otherCA := testpki.NewCA(t, "server CA"), testpki.NewCA(t, "prometheus CA"), testpki.NewCA(t, "other CA")
	dir := t.TempDir()
	certFile, keyFile, caFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "ca.crt")
	first := serverCA.Server(t, "rootscan")
	writeFile(t, certFile, first.CertPEM)
	writeFile(t, keyFile, first.KeyPEM)
	writeFile(t, caFile, clientCA.PEM)

	healthAddr := freePort(t)
	mounts := filepath.Join(t.TempDir(), "mounts")
	d := startDaemonProc(t, "--runtime-endpoint", bed.Address(), "--state-dir", filepath.Join(t.TempDir(), "state"),
		"--mount-dir", mounts, "--node-name", "node-1", "--resync", "2s",
		"--metrics-tls-cert", certFile, "--metrics-tls-key", keyFile, "--metrics-tls-client-ca", caFile,
		"--health-listen", healthAddr, "--metrics-labels", "namespace,container,image")
	addr := strings.TrimPrefix(d.url, "http://")
	health := &daemonProc{url: "http://" + healthAddr}
	// The kubelet's probes: plain HTTP, no certificate.
	waitUntil(t, "/readyz on the health port", 30*time.Second, func() bool { code, _ := health.get("/readyz"); return code == 200 })
	if code, _ := health.get("/healthz"); code != 200 {
		t.Errorf("/healthz on the health port: %d", code)
	}
	if code, body := health.get("/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics on the plain health port: %d %.80q, want 404", code, body)
	}
	if _, body := d.get("/metrics"); strings.Contains(body, exporter.MetricScansTotal) {
		t.Error("/metrics answered plain HTTP on the TLS port")
	}

	roots := serverCA.Pool()
	prom, intruder := clientCA.Client(t, "prometheus").TLS(t), otherCA.Client(t, "intruder").TLS(t)
	if _, _, err := tlsScrape(addr, roots, nil); err == nil {
		t.Error("a client without a certificate got /metrics")
	}
	if _, _, err := tlsScrape(addr, roots, &intruder); err == nil {
		t.Error("a client with another CA's certificate got /metrics")
	}
	body, serial, err := tlsScrape(addr, roots, &prom)
	if err != nil || !strings.Contains(body, exporter.MetricScansTotal) || serial != first.Serial.String() {
		t.Fatalf("the trusted client: serial %s (want %s), %v, %.200q", serial, first.Serial, err, body)
	}

	// Two replicas of one workload: without pod, one series set with their summed counts.
	shop := []string{"namespace=shop", "container=app", "node=node-1"}
	scrapeNow := func() string {
		b, _, err := tlsScrape(addr, roots, &prom)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	runReplica := func(name string) {
		pod, err := bed.RunPod(ctx, testbed.PodSpec{Name: name, Namespace: "shop"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bed.RunContainer(ctx, pod, testbed.ContainerSpec{Name: "app", Image: ref.Name}); err != nil {
			t.Fatal(err)
		}
	}
	runReplica("web-0")
	var one float64
	waitUntil(t, "the first replica's packages", 60*time.Second, func() bool {
		v, ok := metric(scrapeNow(), exporter.MetricPackages, shop...)
		one = v
		return ok && v > 0
	})
	runReplica("web-1")
	waitUntil(t, "both replicas' packages summed", 60*time.Second, func() bool {
		v, _ := metric(scrapeNow(), exporter.MetricPackages, shop...)
		return v == 2*one
	})
	body = scrapeNow()
	if strings.Contains(body, `pod="web-`) {
		t.Error("a series carries the dropped pod label")
	}
	if n := strings.Count(body, exporter.MetricLastScanSuccess+"{"); n != 1 {
		t.Errorf("%d last-scan-success series, want one for both replicas", n)
	}
	if _, ok := metric(body, exporter.MetricSeriesCapped, "node=node-1"); !ok {
		t.Errorf("no %s series: a cap must never be silent", exporter.MetricSeriesCapped)
	}

	// cert-manager renews the certificate: the next connection gets it, without a restart.
	renewed := serverCA.Server(t, "rootscan")
	writeFile(t, keyFile, renewed.KeyPEM)
	writeFile(t, certFile, renewed.CertPEM)
	waitUntil(t, "the renewed certificate", 10*time.Second, func() bool {
		_, serial, err := tlsScrape(addr, roots, &prom)
		return err == nil && serial == renewed.Serial.String()
	})
	// Both servers shut down cleanly, nothing left mounted.
	d.stopClean(t, mounts)
}
