package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rootscan/rootscan/exporter"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
	"github.com/rootscan/rootscan/vuln"
)

// osvMirror is an in-cluster mirror as an air-gapped cluster runs one: it serves an OSV all.zip over TLS with a
// certificate from a private CA, with an ETag, 304 on a matching If-None-Match, and can be made to fail.
type osvMirror struct {
	mu       sync.Mutex
	body     []byte
	etag     string
	mode     string // "", "error" (500) or "corrupt" (200 with a body that is no archive)
	requests []string
	srv      *httptest.Server
	caFile   string
}

func newOSVMirror(t *testing.T, body []byte) *osvMirror {
	m := &osvMirror{body: body, etag: `"v1"`}
	m.srv = httptest.NewUnstartedServer(http.HandlerFunc(m.serve))
	ca, leaf := privateCA(t)
	m.srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}}
	m.srv.StartTLS()
	t.Cleanup(m.srv.Close)
	m.caFile = filepath.Join(t.TempDir(), "mirror-ca.pem")
	if err := os.WriteFile(m.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *osvMirror) serve(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests = append(m.requests, m.mode+"|"+r.Header.Get("If-None-Match"))
	switch {
	case m.mode == "error":
		http.Error(w, "mirror broken", http.StatusInternalServerError)
	case m.mode == "corrupt":
		w.Header().Set("ETag", m.etag)
		w.Write([]byte("PK\x03\x04 this is not the archive you are looking for"))
	case r.Header.Get("If-None-Match") == m.etag:
		w.WriteHeader(http.StatusNotModified)
	default:
		w.Header().Set("ETag", m.etag)
		w.Write(m.body)
	}
}

func (m *osvMirror) set(mode, etag string, body []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mode, m.etag = mode, etag
	if body != nil {
		m.body = body
	}
}

// served counts the requests answered in mode, and those that sent etag as If-None-Match.
func (m *osvMirror) served(mode, etag string) (inMode, conditional int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.requests {
		md, inm, _ := strings.Cut(r, "|")
		if md == mode {
			inMode++
		}
		if md == mode && inm == etag {
			conditional++
		}
	}
	return inMode, conditional
}

// privateCA makes a CA and a server certificate for 127.0.0.1 signed by it: the daemon trusts the CA through
// --db-ca-file only, not through the system's roots.
func privateCA(t *testing.T) (*x509.Certificate, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mirror test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "osv-mirror"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return ca, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// The daemon fills and keeps its own vulnerability database from a TLS mirror with a private CA: it starts with
// none, fetches at once, and a running distroless container gets glibc's advisories; on its schedule a 304 keeps the
// database file; a 500 and a damaged archive count as failures and keep the old database and its findings; a changed
// archive is swapped in and the container re-matched from its cached inventory, with no image scanned again.
func TestDaemonFetchesVulnDB(t *testing.T) {
	bed, ctx, _, ref := startBed(t, ociimage.Distroless)
	v1 := filepath.Join(t.TempDir(), "all.zip")
	zipDir(t, filepath.Join(vulnTestdata, "debian"), v1)
	v1Body, err := os.ReadFile(v1)
	if err != nil {
		t.Fatal(err)
	}
	mirror := newOSVMirror(t, v1Body)
	recv := newSIEMReceiver(t)
	dbDir := filepath.Join(t.TempDir(), "db")
	d, mounts := startReadyDaemon(t, bed, "--node-name", "node-1", "--resync", "2s",
		"--sink", recv.srv.URL+"/hook?format=json", "--db", dbDir,
		"--db-url", mirror.srv.URL+"/Debian/all.zip", "--db-ca-file", mirror.caFile, "--db-refresh", "2s")
	_, c1 := runWebApp(t, ctx, bed, ref.Name)
	labels := []string{"namespace=shop", "pod=web", "container=app", "node=node-1"}
	lowUnfixed := func() float64 {
		_, body := d.get("/metrics")
		v, _ := metric(body, exporter.MetricVulnerabilities, append(labels, "severity=low", "fixable=false")...)
		return v
	}
	opened := func(id string) bool {
		return recv.find(exporter.EventFindingOpened, c1, func(e exporter.Event) bool {
			return e.Finding != nil && e.Finding.Vulnerability != nil && e.Finding.Vulnerability.ID == id
		})
	}
	waitUntil(t, "glibc's advisory from the fetched database at the SIEM", time.Minute, func() bool { return opened("DEBIAN-CVE-2010-4756") })
	waitUntil(t, "glibc's unfixed LOW advisories on /metrics", 30*time.Second, func() bool { return lowUnfixed() >= 2 })
	before := lowUnfixed()
	_, body := d.get("/metrics")
	if v, ok := metric(body, exporter.MetricVulnDBAdvisories); !ok || v != 6 {
		t.Errorf("%s = %v (found %v), want the mirror's 6 records", exporter.MetricVulnDBAdvisories, v, ok)
	}
	if v, ok := metric(body, exporter.MetricVulnDBLoaded); !ok || v != 1 {
		t.Errorf("%s = %v (found %v), want 1", exporter.MetricVulnDBLoaded, v, ok)
	}
	misses, _ := metric(body, exporter.MetricCacheMissesTotal)
	dbFile := filepath.Join(dbDir, vuln.FileName)
	first, err := os.Stat(dbFile)
	if err != nil {
		t.Fatal(err)
	}

	// The schedule: conditional requests answered 304 leave the database file as it was.
	waitUntil(t, "two conditional requests answered 304", 30*time.Second, func() bool {
		_, cond := mirror.served("", `"v1"`)
		return cond >= 2
	})
	if now, _ := os.Stat(dbFile); !os.SameFile(first, now) {
		t.Error("database file replaced after a 304")
	}
	failures := func() float64 {
		_, body := d.get("/metrics")
		v, _ := metric(body, exporter.MetricVulnDBUpdateFailures)
		return v
	}
	if f := failures(); f != 0 {
		t.Errorf("%s = %v after successful updates", exporter.MetricVulnDBUpdateFailures, f)
	}

	// A broken mirror, then one serving a damaged archive: failures counted, the old database and findings stay.
	for _, mode := range []string{"error", "corrupt"} {
		f0 := failures()
		mirror.set(mode, `"v2"`, nil)
		// A second request in this mode comes only after the first one's outcome was recorded.
		waitUntil(t, "two updates from a mirror in mode "+mode, 30*time.Second, func() bool { n, _ := mirror.served(mode, ""); return n >= 2 })
		if f := failures(); f < f0+1 {
			t.Errorf("%s: %s = %v, want more than %v", mode, exporter.MetricVulnDBUpdateFailures, f, f0)
		}
		if now, _ := os.Stat(dbFile); !os.SameFile(first, now) {
			t.Errorf("%s: database file replaced", mode)
		}
		if v := lowUnfixed(); v != before {
			t.Errorf("%s: %v unfixed LOW findings, want %v as before", mode, v, before)
		}
	}

	// A changed archive without DEBIAN-CVE-2010-4756: swapped in, the finding resolves, nothing is scanned again.
	v2Dir := t.TempDir()
	entries, _ := filepath.Glob(filepath.Join(vulnTestdata, "debian", "*.json"))
	for _, p := range entries {
		if filepath.Base(p) != "DEBIAN-CVE-2010-4756.json" {
			b, _ := os.ReadFile(p)
			os.WriteFile(filepath.Join(v2Dir, filepath.Base(p)), b, 0o644)
		}
	}
	v2 := filepath.Join(t.TempDir(), "all.zip")
	zipDir(t, v2Dir, v2)
	v2Body, _ := os.ReadFile(v2)
	mirror.set("", `"v3"`, v2Body)
	waitUntil(t, "DEBIAN-CVE-2010-4756 resolved after the new database", time.Minute, func() bool {
		return recv.find(exporter.EventFindingResolved, c1, func(e exporter.Event) bool {
			return e.Finding != nil && e.Finding.Vulnerability != nil && e.Finding.Vulnerability.ID == "DEBIAN-CVE-2010-4756"
		})
	})
	_, body = d.get("/metrics")
	if v, ok := metric(body, exporter.MetricVulnDBAdvisories); !ok || v != 5 {
		t.Errorf("%s = %v (found %v), want 5 after the new archive", exporter.MetricVulnDBAdvisories, v, ok)
	}
	if v := lowUnfixed(); v != before-1 {
		t.Errorf("%v unfixed LOW findings after the new archive, want %v", v, before-1)
	}
	if v, _ := metric(body, exporter.MetricCacheMissesTotal); v != misses {
		t.Errorf("%s went from %v to %v: a new database must not rescan images", exporter.MetricCacheMissesTotal, misses, v)
	}
	if v, ok := metric(body, exporter.MetricVulnDBLastUpdate); !ok || time.Since(time.Unix(int64(v), 0)) > time.Minute {
		t.Errorf("%s = %v (found %v), want a recent time", exporter.MetricVulnDBLastUpdate, v, ok)
	}
	d.stopClean(t, mounts)
}

// A plain http --db-url is refused at start, with the reason, unless --db-insecure-http.
func TestDaemonRefusesPlainHTTPVulnDB(t *testing.T) {
	res := runRootscan(t, 30*time.Second, "daemon", "--runtime-endpoint", "unix:///nonexistent/containerd.sock",
		"--state-dir", t.TempDir(), "--db", t.TempDir(), "--db-url", "http://127.0.0.1:1/Debian/all.zip")
	if res.code != 2 || !strings.Contains(res.stderr, "plain http refused") {
		t.Errorf("exit %d, stderr %q; want exit 2 saying plain http is refused", res.code, res.stderr)
	}
}
