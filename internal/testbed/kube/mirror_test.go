package kube

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rootscan/rootscan/exporter"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
	"github.com/rootscan/rootscan/vuln"
)

// mirrorSrc is the in-cluster OSV mirror's program: a static file server for
// /srv over TLS that sends an ETag (the content's SHA-256) and answers a
// matching If-None-Match with 304, as nginx does, and logs every request so
// the test sees who fetched what.
const mirrorSrc = `package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path"
	"time"
)

func main() {
	srv := os.DirFS("/srv")
	h := func(w http.ResponseWriter, r *http.Request) {
		name := path.Clean(r.URL.Path)[1:]
		f, err := srv.Open(name)
		if err != nil {
			log.Printf("%s %s %s 404", r.RemoteAddr, r.Method, r.URL.Path)
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, 256<<20))
		if err != nil {
			log.Printf("%s %s %s 500 %v", r.RemoteAddr, r.Method, r.URL.Path, err)
			http.Error(w, "read failed", http.StatusInternalServerError)
			return
		}
		w.Header().Set("ETag", fmt.Sprintf("\"%x\"", sha256.Sum256(b)))
		code := 200
		if r.Header.Get("If-None-Match") == w.Header().Get("ETag") {
			code = 304
		}
		log.Printf("%s %s %s %d", r.RemoteAddr, r.Method, r.URL.Path, code)
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
	}
	s := &http.Server{Addr: os.Args[1], Handler: http.HandlerFunc(h), ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(s.ListenAndServeTLS("/tls/tls.crt", "/tls/tls.key"))
}
`

// osvMirror is the OSV mirror pod the test runs as deploy/README.md tells an
// air-gapped cluster without kube-proxy to: hostNetwork on the node, its
// certificate for the node's IP from a private CA, the archive from a
// ConfigMap, and the scanners trusting the CA from a Secret.
type osvMirror struct {
	url     string // the Debian archive's URL
	caPEM   []byte
	records int // advisories in the archive
}

// startMirror builds the mirror's image, imports it and runs its pod in the
// namespace rstb-mirror, and waits until it serves the archive.
func startMirror(t *testing.T, ctx context.Context, e *e2e) *osvMirror {
	t.Helper()
	archive, records := osvArchive(t, "../../../vuln/testdata/osv/debian")
	ref, err := e.c.Containerd().Import(ctx, mirrorImage(t))
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t, e.c.p.nodeIP)
	caPEM, certPEM, keyPEM := mirrorPKI(t, e.c.p.nodeIP)
	dir := filepath.Join(e.dir, "mirror")
	for name, b := range map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM, "all.zip": archive} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e.kubectl(t, ctx, "", "create", "namespace", "rstb-mirror")
	e.kubectl(t, ctx, "", "label", "namespace", "rstb-mirror", "pod-security.kubernetes.io/enforce=privileged")
	e.kubectl(t, ctx, "", "-n", "rstb-mirror", "create", "secret", "tls", "osv-mirror-tls",
		"--cert", filepath.Join(dir, "tls.crt"), "--key", filepath.Join(dir, "tls.key"))
	e.kubectl(t, ctx, "", "-n", "rstb-mirror", "create", "configmap", "osv-debian", "--from-file=all.zip="+filepath.Join(dir, "all.zip"))
	e.kubectl(t, ctx, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: osv-mirror, namespace: rstb-mirror, labels: {app: osv-mirror}}
spec:
  hostNetwork: true
  securityContext: {runAsUser: 65532, runAsNonRoot: true}
  containers:
  - name: mirror
    image: %s
    imagePullPolicy: Never
    args: ["%s"]
    securityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false}
    volumeMounts:
    - {name: tls, mountPath: /tls, readOnly: true}
    - {name: debian, mountPath: /srv/osv/Debian, readOnly: true}
  volumes:
  - {name: tls, secret: {secretName: osv-mirror-tls}}
  - {name: debian, configMap: {name: osv-debian}}
`, ref.Name, net.JoinHostPort(e.c.p.nodeIP, port)), "apply", "-f", "-")
	e.kubectl(t, ctx, "", "-n", "rstb-mirror", "wait", "--for=condition=Ready", "pod/osv-mirror", "--timeout=120s")
	return &osvMirror{url: "https://" + net.JoinHostPort(e.c.p.nodeIP, port) + "/osv/Debian/all.zip", caPEM: caPEM, records: records}
}

// createCASecret puts the mirror's CA into the scanner's namespace, as the
// chart's vulnerabilityDatabase.caSecret names it.
func (m *osvMirror) createCASecret(t *testing.T, ctx context.Context, e *e2e) {
	t.Helper()
	p := filepath.Join(e.dir, "mirror", "ca.crt")
	if err := os.WriteFile(p, m.caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	e.kubectl(t, ctx, "", "-n", "rootscan", "create", "secret", "generic", "osv-mirror-ca", "--from-file=ca.crt="+p)
}

// values are the chart's vulnerabilityDatabase values for the mirror.
func (m *osvMirror) values() map[string]any {
	return map[string]any{"urls": []string{m.url}, "caSecret": "osv-mirror-ca", "refresh": "1m"}
}

// mirrorVulns checks that the daemon fetched its database from the mirror
// itself (the mirror logged the scanner's GET, the database file is in the
// state dir, /metrics counts the archive's advisories) and matched a
// distroless pod's glibc against it, with the pod's real names on /metrics
// and at the receiver.
func (e *e2e) mirrorVulns(t *testing.T, ctx context.Context) {
	pod := e.scannerPod(t, ctx)
	cfg := podLabels("rstb-web", "cfg", "app")
	m, ok := e.waitMetrics(ctx, pod, 2*time.Minute, func(m string) bool {
		return sum(series(m, exporter.MetricVulnerabilities, append(cfg, `severity="low"`, `fixable="false"`)...)) >= 2
	})
	if !ok {
		logs, _ := e.c.Kubectl(ctx, "-n", "rootscan", "logs", pod, "--tail=40")
		t.Fatalf("no unfixed LOW vulnerability of glibc on rstb-web/cfg within 2m:\n%s\n%s\nlogs:\n%s",
			grepLines(m, exporter.MetricVulnerabilities), grepLines(m, "rootscan_vuln_db"), logs)
	}
	if v := total(m, exporter.MetricVulnDBAdvisories); v != float64(e.mirror.records) {
		t.Errorf("%s = %v, want the mirror's %d records", exporter.MetricVulnDBAdvisories, v, e.mirror.records)
	}
	if v := total(m, exporter.MetricVulnDBLoaded); v != 1 {
		t.Errorf("%s = %v, want 1", exporter.MetricVulnDBLoaded, v)
	}
	if _, err := os.Stat(filepath.Join(e.stateDir, "db", vuln.FileName)); err != nil {
		t.Errorf("no database the daemon built in its state dir: %v", err)
	}
	logs := e.kubectl(t, ctx, "", "-n", "rstb-mirror", "logs", "osv-mirror")
	if !strings.Contains(logs, "GET /osv/Debian/all.zip 200") {
		t.Errorf("the mirror never served the archive:\n%s", logs)
	}
	opened := func(ev exporter.Event) bool {
		return ev.Type == exporter.EventFindingOpened && ev.Namespace == "rstb-web" && ev.Pod == "cfg" && ev.Container == "app" &&
			ev.Finding != nil && ev.Finding.Vulnerability != nil && ev.Finding.Vulnerability.ID == "DEBIAN-CVE-2010-4756"
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) && len(e.recv.matching(opened)) == 0 {
		time.Sleep(200 * time.Millisecond)
	}
	if len(e.recv.matching(opened)) == 0 {
		t.Errorf("no finding.opened for glibc's DEBIAN-CVE-2010-4756 on rstb-web/cfg/app at the receiver")
	}
	t.Logf("mirror log:\n%s", logs)
}

// osvArchive zips the OSV records (*.json) of dir as osv.dev publishes
// all.zip, and counts them.
func osvArchive(t *testing.T, dir string) ([]byte, int) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no OSV records in %s: %v", dir, err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		w, err := zw.Create(filepath.Base(f))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), len(files)
}

// mirrorImage builds the mirror's program into a one-file image.
func mirrorImage(t *testing.T) *ociimage.Image {
	t.Helper()
	return programImage(t, "rootscan.test/osv-mirror:1", "mirror", mirrorSrc, "65532")
}

// freePort is a TCP port on host nobody listens on now.
func freePort(t *testing.T, host string) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// mirrorPKI makes a private CA of the mirror's own (not the cluster's) and
// the mirror's certificate for ip, as deploy/README.md's openssl commands do:
// PEM CA certificate, server certificate and key.
func mirrorPKI(t *testing.T, ip string) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	ca, err := newCA()
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.issue(certSpec{cn: "osv-mirror", ips: []net.IP{net.ParseIP(ip)}})
	if err != nil {
		t.Fatal(err)
	}
	return ca.certPEM, kp.cert, kp.key
}
