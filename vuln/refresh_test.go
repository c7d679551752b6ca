package vuln

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// caFile writes the certificate of a TLS test server as a PEM CA bundle, as a mirror's private CA is given.
func caFile(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRefresher runs the daemon's updater against a TLS feed it trusts through a CA file: no database, so it
// fetches at once; then on its schedule a 304 keeps the file, a 500 and a damaged archive count as failures and keep
// the old database, and a changed archive is swapped in.
func TestRefresher(t *testing.T) {
	v1 := filepath.Join(t.TempDir(), "v1.zip")
	writeZip(t, v1, map[string][]byte{
		"GO-2023-1878.json": mustRead(t, "testdata/osv/go/GO-2023-1878.json"),
		"GO-2022-0969.json": mustRead(t, "testdata/osv/go/GO-2022-0969.json"),
	})
	v2 := filepath.Join(t.TempDir(), "v2.zip")
	writeZip(t, v2, map[string][]byte{"GO-2023-1878.json": mustRead(t, "testdata/osv/go/GO-2023-1878.json")})
	feed := &feedServer{body: mustRead(t, v1), etag: `"v1"`}
	srv := httptest.NewTLSServer(feed)
	defer srv.Close()
	client, err := FeedClient(caFile(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	type step struct {
		mode, etag string // what the feed serves for this attempt
		body       string
		changed    bool
		fail       bool
		advisories int
	}
	steps := []step{
		{"", `"v1"`, v1, true, false, 2},
		{"", `"v1"`, v1, false, false, 2}, // 304
		{"error", `"v2"`, v1, false, true, 2},
		{"garbage", `"v2"`, v1, false, true, 2},
		{"", `"v2"`, v2, true, false, 1},
	}
	setFeed := func(s step) {
		feed.mu.Lock()
		feed.mode, feed.etag, feed.body = s.mode, s.etag, mustRead(t, s.body)
		feed.mu.Unlock()
	}
	setFeed(steps[0])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got int
	var fileBefore os.FileInfo
	r := &Refresher{
		Dir: dir, Every: 20 * time.Millisecond, RetryMin: 10 * time.Millisecond,
		Update: UpdateOptions{URLs: []string{srv.URL + "/Go/all.zip"}, Client: client},
		OnResult: func(_ context.Context, res UpdateResult, err error) {
			s := steps[got]
			if (err != nil) != s.fail || res.Changed != s.changed {
				t.Errorf("attempt %d (%q): changed=%v err=%v; want changed=%v fail=%v", got, s.mode, res.Changed, err, s.changed, s.fail)
			}
			db, oerr := Open(dir)
			if oerr != nil {
				t.Fatalf("attempt %d: no database: %v", got, oerr)
			}
			if n := db.Info().Advisories; n != s.advisories {
				t.Errorf("attempt %d: %d advisories in the database, want %d", got, n, s.advisories)
			}
			db.Close()
			fi, _ := os.Stat(filepath.Join(dir, FileName))
			if fileBefore != nil && !s.changed && !os.SameFile(fi, fileBefore) {
				t.Errorf("attempt %d (%q): database file replaced", got, s.mode)
			}
			fileBefore = fi
			got++
			if got == len(steps) {
				cancel()
				return
			}
			setFeed(steps[got])
		},
	}
	r.Run(ctx)
	if got != len(steps) {
		t.Fatalf("%d attempts, want %d", got, len(steps))
	}
	feed.mu.Lock()
	defer feed.mu.Unlock()
	if cond := feed.requests[1]; !strings.HasPrefix(cond, `"v1"|`) {
		t.Errorf("second request sent If-None-Match|If-Modified-Since = %q, want the first answer's ETag", cond)
	}
}

// TestRefresherSchedule: when the first update comes, and the jitter's bounds.
func TestRefresherSchedule(t *testing.T) {
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	const u = "https://mirror.example/Go/all.zip"
	build := func(t *testing.T, srcs ...Source) string {
		dir := t.TempDir()
		b, err := NewBuilder(dir)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.ImportPath(context.Background(), "testdata/osv/go/GO-2022-0969.json", Limits{}); err != nil {
			t.Fatal(err)
		}
		for _, s := range srcs {
			b.AddSource(s)
		}
		if _, err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	for _, c := range []struct {
		name  string
		dir   func(t *testing.T) string
		every time.Duration
		wait  time.Duration
		fetch bool
	}{
		{"no database", func(t *testing.T) string { return t.TempDir() }, 6 * time.Hour, 0, true},
		{"no database, refresh off", func(t *testing.T) string { return t.TempDir() }, 0, 0, true},
		{"fetched an hour ago", func(t *testing.T) string {
			return build(t, Source{Location: u, Fetched: now.Add(-time.Hour)})
		}, 6 * time.Hour, 5 * time.Hour, true},
		{"fetched a day ago", func(t *testing.T) string {
			return build(t, Source{Location: u, Fetched: now.Add(-24 * time.Hour)})
		}, 6 * time.Hour, 0, true},
		{"built from other sources", func(t *testing.T) string {
			return build(t, Source{Location: "/tmp/Go-all.zip", Fetched: now})
		}, 6 * time.Hour, 0, true},
		{"database present, refresh off", func(t *testing.T) string {
			return build(t, Source{Location: u, Fetched: now.Add(-24 * time.Hour)})
		}, 0, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &Refresher{Dir: c.dir(t), Every: c.every, Update: UpdateOptions{URLs: []string{u}},
				Rand: func() float64 { return 0.5 }, Now: func() time.Time { return now }}
			wait, fetch := r.firstWait()
			if wait != c.wait || fetch != c.fetch {
				t.Errorf("first update in %v (%v), want %v (%v)", wait, fetch, c.wait, c.fetch)
			}
		})
	}
	r := &Refresher{Every: 6 * time.Hour}
	for _, c := range []struct {
		rand float64
		want time.Duration
	}{{0, 324 * time.Minute}, {0.5, 6 * time.Hour}, {0.999999, 396 * time.Minute}} {
		r.Rand = func() float64 { return c.rand }
		if got := r.jitter(r.Every).Round(time.Minute); got != c.want {
			t.Errorf("jitter at %v: %v, want %v", c.rand, got, c.want)
		}
	}
	r = &Refresher{Every: 6 * time.Hour}
	if r.firstRetry() != time.Minute || r.maxRetry() != time.Hour {
		t.Errorf("retry from %v up to %v, want 1m up to 1h", r.firstRetry(), r.maxRetry())
	}
	r.Every = 10 * time.Second
	if r.firstRetry() != 10*time.Second {
		t.Errorf("retry with a 10s refresh: %v, want no longer than the refresh", r.firstRetry())
	}
}

// TestFeedClientCA: a CA file replaces the system's roots: the server it names is trusted, another is not, and a
// file without a certificate is refused.
func TestFeedClientCA(t *testing.T) {
	var zb bytes.Buffer
	writeZipTo(t, &zb, map[string][]byte{"GO-2023-1878.json": mustRead(t, "testdata/osv/go/GO-2023-1878.json")})
	feed := &feedServer{body: zb.Bytes(), etag: `"v1"`}
	trusted := httptest.NewTLSServer(feed)
	defer trusted.Close()
	// httptest's servers all share one certificate: the other server gets its own, signed by nothing in the file.
	other := httptest.NewUnstartedServer(feed)
	other.TLS = &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}
	other.StartTLS()
	defer other.Close()
	client, err := FeedClient(caFile(t, trusted))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := Update(ctx, t.TempDir(), UpdateOptions{URLs: []string{trusted.URL + "/all.zip"}, Client: client}); err != nil {
		t.Errorf("server of the CA file: %v", err)
	}
	if _, err := Update(ctx, t.TempDir(), UpdateOptions{URLs: []string{other.URL + "/all.zip"}, Client: client}); err == nil ||
		!strings.Contains(err.Error(), "certificate") {
		t.Errorf("server not in the CA file: err = %v, want a certificate error", err)
	}
	bad := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(bad, []byte("not a certificate\n"), 0o600)
	if _, err := FeedClient(bad); err == nil {
		t.Error("CA file without a certificate accepted")
	}
	if err := CheckFeedURLs([]string{"https://a/x.zip", "http://b/y.zip"}, false); !errors.Is(err, ErrInsecureURL) {
		t.Errorf("plain http feed: %v, want ErrInsecureURL", err)
	}
	if err := CheckFeedURLs([]string{"http://b/y.zip"}, true); err != nil {
		t.Errorf("plain http feed allowed: %v", err)
	}
}

// selfSigned is a fresh certificate for 127.0.0.1.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
