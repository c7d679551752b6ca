package servertls

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rootscan/rootscan/internal/servertls/testpki"
)

// bed is a TLS server on loopback serving "metrics" through a Loader, with its files in a temp dir.
type bed struct {
	files Files
	addr  string
}

// write replaces name with data modified at mod, written beside and renamed over as the kubelet's atomic writer
// swaps a Secret's files.
func write(t *testing.T, name string, data []byte, mod time.Time) {
	t.Helper()
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, mod, mod); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
}

func startBed(t *testing.T, server testpki.Pair, clientCA *testpki.CA) *bed {
	t.Helper()
	dir := t.TempDir()
	b := &bed{files: Files{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key"),
		ClientCAFile: filepath.Join(dir, "ca.crt")}}
	mod := time.Now().Add(-time.Minute)
	write(t, b.files.CertFile, server.CertPEM, mod)
	write(t, b.files.KeyFile, server.KeyPEM, mod)
	write(t, b.files.ClientCAFile, clientCA.PEM, mod)
	l, err := New(b.files, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "metrics")
	}), ErrorLog: log.New(io.Discard, "", 0)}
	go srv.Serve(tls.NewListener(ln, l.Config()))
	t.Cleanup(func() { srv.Close() })
	b.addr = ln.Addr().String()
	return b
}

// scrape fetches /metrics over a new connection with the given client certificate (none when nil), trusting
// roots; it returns the body, the serial of the certificate the server showed, and the error.
func (b *bed) scrape(t *testing.T, roots *x509.CertPool, client *testpki.Pair) (string, int64, error) {
	t.Helper()
	conf := &tls.Config{RootCAs: roots}
	if client != nil {
		conf.Certificates = []tls.Certificate{client.TLS(t)}
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: conf, DisableKeepAlives: true}}
	resp, err := c.Get("https://" + b.addr + "/metrics")
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), resp.TLS.PeerCertificates[0].SerialNumber.Int64(), err
}

func TestClientCertificates(t *testing.T) {
	serverCA, clientCA, otherCA := testpki.NewCA(t, "server CA"), testpki.NewCA(t, "client CA"), testpki.NewCA(t, "other CA")
	b := startBed(t, serverCA.Server(t, "rootscan"), clientCA)
	roots := serverCA.Pool()

	if _, _, err := b.scrape(t, roots, nil); err == nil {
		t.Error("a client without a certificate got /metrics")
	}
	intruder := otherCA.Client(t, "intruder")
	if _, _, err := b.scrape(t, roots, &intruder); err == nil {
		t.Error("a client with a certificate of another CA got /metrics")
	}
	// A server certificate of the trusted CA is not a client certificate.
	notClient := clientCA.Server(t, "not a client")
	if _, _, err := b.scrape(t, roots, &notClient); err == nil {
		t.Error("a certificate without client-auth usage got /metrics")
	}
	prom := clientCA.Client(t, "prometheus")
	if body, _, err := b.scrape(t, roots, &prom); err != nil || body != "metrics" {
		t.Fatalf("the trusted client got %q, %v", body, err)
	}

	conn, err := tls.Dial("tcp", b.addr, &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{prom.TLS(t)},
		MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	if err == nil {
		conn.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}
}

func TestRotation(t *testing.T) {
	serverCA, clientCA := testpki.NewCA(t, "server CA"), testpki.NewCA(t, "client CA")
	first := serverCA.Server(t, "rootscan")
	b := startBed(t, first, clientCA)
	roots := serverCA.Pool()
	prom := clientCA.Client(t, "prometheus")
	if _, sn, err := b.scrape(t, roots, &prom); err != nil || sn != first.Serial.Int64() {
		t.Fatalf("before rotation: serial %d, %v; want %d", sn, err, first.Serial)
	}

	// cert-manager renews the server certificate: the next connection gets the new one, without a restart.
	renewed := serverCA.Server(t, "rootscan")
	mod := time.Now()
	write(t, b.files.KeyFile, renewed.KeyPEM, mod)
	write(t, b.files.CertFile, renewed.CertPEM, mod)
	if _, sn, err := b.scrape(t, roots, &prom); err != nil || sn != renewed.Serial.Int64() {
		t.Fatalf("after rotation: serial %d, %v; want the renewed certificate's %d", sn, err, renewed.Serial)
	}

	// A broken replacement (a key that does not match) is refused and the last good certificate stays.
	write(t, b.files.KeyFile, serverCA.Server(t, "rootscan").KeyPEM, mod.Add(time.Second))
	if _, sn, err := b.scrape(t, roots, &prom); err != nil || sn != renewed.Serial.Int64() {
		t.Fatalf("after a broken rotation: serial %d, %v; want the last good %d", sn, err, renewed.Serial)
	}

	// The client CA rotates too: clients of the old CA are refused, clients of the new one admitted.
	nextCA := testpki.NewCA(t, "next client CA")
	write(t, b.files.KeyFile, renewed.KeyPEM, mod.Add(2*time.Second))
	write(t, b.files.ClientCAFile, nextCA.PEM, mod.Add(2*time.Second))
	if _, _, err := b.scrape(t, roots, &prom); err == nil {
		t.Error("a client of the replaced CA still got /metrics")
	}
	next := nextCA.Client(t, "prometheus")
	if body, _, err := b.scrape(t, roots, &next); err != nil || body != "metrics" {
		t.Errorf("a client of the new CA got %q, %v", body, err)
	}
}

func TestNewRefusesBadFiles(t *testing.T) {
	serverCA := testpki.NewCA(t, "server CA")
	dir := t.TempDir()
	mod := time.Now()
	file := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		write(t, p, data, mod)
		return p
	}
	pair := serverCA.Server(t, "rootscan")
	cert, key := file("tls.crt", pair.CertPEM), file("tls.key", pair.KeyPEM)
	wrongKey := file("other.key", serverCA.Server(t, "rootscan").KeyPEM)
	notPEM := file("ca.crt", []byte("not a certificate"))
	absent := filepath.Join(dir, "absent")
	log := slog.New(slog.DiscardHandler)
	for name, f := range map[string]Files{
		"no key":          {CertFile: cert},
		"no cert":         {KeyFile: key, ClientCAFile: cert},
		"mismatched key":  {CertFile: cert, KeyFile: wrongKey},
		"missing file":    {CertFile: cert, KeyFile: absent},
		"CA without PEM":  {CertFile: cert, KeyFile: key, ClientCAFile: notPEM},
		"missing CA file": {CertFile: cert, KeyFile: key, ClientCAFile: absent},
	} {
		if _, err := New(f, log); err == nil {
			t.Errorf("%s: New accepted %+v", name, f)
		}
	}
	if _, err := New(Files{CertFile: cert, KeyFile: key}, log); err != nil {
		t.Errorf("server TLS without a client CA: %v", err)
	}
}

// TestKubeletSecretRotation: the kubelet's atomic writer publishes a Secret's new files by swapping the ..data
// symlink the visible names point through; the files may have the old ones' size and (within the clock's
// resolution) modification time. The next handshake serves the new certificate all the same, and while the files
// are missing the last good one.
func TestKubeletSecretRotation(t *testing.T) {
	serverCA, clientCA := testpki.NewCA(t, "server CA"), testpki.NewCA(t, "client CA")
	dir := t.TempDir()
	mod := time.Now().Truncate(time.Second)
	publish := func(gen string, server testpki.Pair) {
		t.Helper()
		genDir := filepath.Join(dir, gen)
		if err := os.Mkdir(genDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range map[string][]byte{"tls.crt": server.CertPEM, "tls.key": server.KeyPEM, "ca.crt": clientCA.PEM} {
			write(t, filepath.Join(genDir, name), data, mod)
		}
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(gen, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	first := serverCA.Server(t, "rootscan")
	publish("..2026_01_01", first)
	files := Files{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key"), ClientCAFile: filepath.Join(dir, "ca.crt")}
	for _, name := range []string{"tls.crt", "tls.key", "ca.crt"} {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	l, err := New(files, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	serial := func() *big.Int {
		t.Helper()
		return l.get().Certificates[0].Leaf.SerialNumber
	}
	if got := serial(); got.Cmp(first.Serial) != 0 {
		t.Fatalf("serving %v, want %v", got, first.Serial)
	}
	renewed := serverCA.Server(t, "rootscan")
	publish("..2026_02_01", renewed)
	if got := serial(); got.Cmp(renewed.Serial) != 0 {
		t.Fatalf("after the ..data swap: serving %v, want the renewed %v", got, renewed.Serial)
	}
	if err := os.Remove(filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got.Cmp(renewed.Serial) != 0 {
		t.Fatalf("with the files gone: serving %v, want the last good %v", got, renewed.Serial)
	}
}
