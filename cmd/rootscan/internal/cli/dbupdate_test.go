package cli

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// TestDBUpdateFlags: `db update` refuses plain http unless --insecure-http, and checks --sha256 pins and the
// digests --checksum-suffix fetches, against a real HTTP server.
func TestDBUpdateFlags(t *testing.T) {
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	w, err := zw.Create("GO-TEST-0001.json")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(`{"id":"GO-TEST-0001","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Go","name":"example.com/m"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}`))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(zb.Bytes())
	good := hex.EncodeToString(sum[:])
	bad := strings.Repeat("0", 64)
	published := good
	mux := http.NewServeMux()
	mux.HandleFunc("/Go/all.zip", func(w http.ResponseWriter, _ *http.Request) { w.Write(zb.Bytes()) })
	mux.HandleFunc("/Go/all.zip.sha256", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(published + "  all.zip\n")) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	url := srv.URL + "/Go/all.zip"

	for _, tc := range []struct {
		name      string
		args      []string
		published string
		ok        bool
		stderr    string
	}{
		{"plain http refused", nil, good, false, "http"},
		{"--insecure-http", []string{"--insecure-http"}, good, true, ""},
		{"pinned, matching", []string{"--insecure-http", "--sha256", url + "=" + strings.ToUpper(good)}, good, true, ""},
		{"pinned, differing", []string{"--insecure-http", "--sha256", url + "=" + bad}, good, false, "pinned " + bad},
		{"pin of another URL", []string{"--insecure-http", "--sha256", srv.URL + "/other.zip=" + good}, good, false, "not one of the --url values"},
		{"pin not hex", []string{"--insecure-http", "--sha256", url + "=xyz"}, good, false, "is not a SHA-256"},
		{"published, matching", []string{"--insecure-http", "--checksum-suffix", ".sha256"}, good, true, ""},
		{"published, differing", []string{"--insecure-http", "--checksum-suffix", ".sha256"}, bad, false, "does not match its published SHA-256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			published = tc.published
			db := filepath.Join(t.TempDir(), "db")
			out, stderr, code := run(t, append([]string{"db", "update", "--db", db, "--url", url, "--log-level", "error"}, tc.args...)...)
			if tc.ok && (code != exitOK || !strings.Contains(out, "1 advisories")) {
				t.Errorf("exit %d, stdout %q, stderr %q; want the database built", code, out, stderr)
			}
			if !tc.ok && (code == exitOK || !strings.Contains(strings.ToLower(stderr), strings.ToLower(tc.stderr))) {
				t.Errorf("exit %d, stderr %q; want a failure saying %q", code, stderr, tc.stderr)
			}
		})
	}
}
