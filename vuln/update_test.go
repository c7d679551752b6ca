package vuln

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rootscan/rootscan/report"
)

// feedServer serves an OSV archive like osv.dev's bucket: ETag and Last-Modified, 304 on a matching conditional
// request. mode switches it to a cut-short body or a damaged archive.
type feedServer struct {
	mu       sync.Mutex
	body     []byte
	etag     string
	mode     string
	emptyZip []byte // a valid archive without records
	requests []string
}

func (s *feedServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r.Header.Get("If-None-Match")+"|"+r.Header.Get("If-Modified-Since"))
	if s.mode == "" && r.Header.Get("If-None-Match") == s.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", s.etag)
	w.Header().Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
	switch s.mode {
	case "truncated":
		// Promise the whole archive, send half, and close: the client sees an unexpected EOF.
		w.Header().Set("Content-Length", itoa(len(s.body)))
		w.Write(s.body[:len(s.body)/2])
		if hj, ok := w.(http.Hijacker); ok {
			conn, _, _ := hj.Hijack()
			conn.Close()
		}
	case "error":
		http.Error(w, "upstream down", http.StatusInternalServerError)
	case "garbage":
		w.Write([]byte("<html>503 upstream busy</html>"))
	case "empty-zip":
		w.Write(s.emptyZip)
	default:
		w.Write(s.body)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func storeMatch(t *testing.T, s *Store, pkgs ...report.Package) []report.Vulnerability {
	t.Helper()
	res := &report.Result{Packages: pkgs}
	if err := s.Match(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	return res.Vulnerabilities
}

func TestUpdate(t *testing.T) {
	zipPath := filepath.Join(t.TempDir(), "all.zip")
	writeZip(t, zipPath, map[string][]byte{
		"GO-2023-1878.json": mustRead(t, "testdata/osv/go/GO-2023-1878.json"),
		"GO-2022-0969.json": mustRead(t, "testdata/osv/go/GO-2022-0969.json"),
	})
	var empty bytes.Buffer
	writeZipTo(t, &empty, map[string][]byte{"README": []byte("x")})
	feed := &feedServer{body: mustRead(t, zipPath), etag: `"v1"`, emptyZip: empty.Bytes()}
	srv := httptest.NewTLSServer(feed)
	defer srv.Close()
	dir := t.TempDir()
	opts := UpdateOptions{URLs: []string{srv.URL + "/Go/all.zip"}, Client: srv.Client()}
	ctx := context.Background()

	res, err := Update(ctx, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.Info.Advisories != 2 || len(res.Info.Sources) != 1 || res.Info.Sources[0].ETag != `"v1"` {
		t.Fatalf("first update: %+v", res)
	}
	stdlibFindings := func() []string {
		t.Helper()
		db, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		return matchLines(t, db, nil, golang("stdlib", "1.19.0"))
	}
	want := []string{"GO-2022-0969 stdlib 1.19.0 UNKNOWN 0.0 fixed=1.19.1", "GO-2023-1878 stdlib 1.19.0 UNKNOWN 0.0 fixed=1.19.11"}
	if got := stdlibFindings(); !slices.Equal(got, want) {
		t.Fatalf("after update: %v", got)
	}
	before, _ := os.Stat(filepath.Join(dir, FileName))

	// Unchanged feed: a conditional request, 304, the database file is not rewritten.
	res, err = Update(ctx, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed || len(res.NotModified) != 1 {
		t.Errorf("304 update: %+v", res)
	}
	if got := feed.requests[len(feed.requests)-1]; got != `"v1"|Mon, 02 Jan 2006 15:04:05 GMT` {
		t.Errorf("conditional headers sent: %q", got)
	}
	after, _ := os.Stat(filepath.Join(dir, FileName))
	if !os.SameFile(before, after) {
		t.Error("database replaced on 304")
	}

	// A cut-short download, a non-archive and an archive without records all fail and leave the old database.
	for _, mode := range []string{"truncated", "garbage", "empty-zip"} {
		feed.mu.Lock()
		feed.mode, feed.etag = mode, `"v2"`
		feed.mu.Unlock()
		if _, err := Update(ctx, dir, opts); err == nil {
			t.Errorf("%s: update succeeded", mode)
		} else {
			t.Logf("%s: %v", mode, err)
		}
		now, _ := os.Stat(filepath.Join(dir, FileName))
		if !os.SameFile(before, now) {
			t.Errorf("%s: database replaced", mode)
		}
		if got := stdlibFindings(); !slices.Equal(got, want) {
			t.Errorf("%s: old database no longer works: %v", mode, got)
		}
		tmps, _ := filepath.Glob(filepath.Join(dir, "*", ".download-*"))
		builds, _ := filepath.Glob(filepath.Join(dir, ".*build*"))
		if len(tmps)+len(builds) != 0 {
			t.Errorf("%s: temp files left: %v %v", mode, tmps, builds)
		}
	}

	// A new archive: swapped in.
	writeZip(t, zipPath, map[string][]byte{"GO-2023-1878.json": mustRead(t, "testdata/osv/go/GO-2023-1878.json")})
	feed.mu.Lock()
	feed.mode, feed.etag, feed.body = "", `"v3"`, mustRead(t, zipPath)
	feed.mu.Unlock()
	res, err = Update(ctx, dir, opts)
	if err != nil || !res.Changed || res.Info.Advisories != 1 {
		t.Fatalf("new archive: %+v, %v", res, err)
	}
	if got := stdlibFindings(); !slices.Equal(got, want[1:]) {
		t.Errorf("after new archive: %v", got)
	}
}

func TestStoreReload(t *testing.T) {
	dir := t.TempDir()
	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Current() != nil {
		t.Fatal("database without a file")
	}
	build := func(files ...string) {
		b, err := NewBuilder(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if _, err := b.ImportPath(context.Background(), f, Limits{}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	build("testdata/osv/go/GO-2022-0969.json")
	if ok, err := s.Reload(); !ok || err != nil {
		t.Fatalf("reload after first build: %v %v", ok, err)
	}
	first := s.Current()
	if ok, _ := s.Reload(); ok {
		t.Error("reload without change swapped")
	}
	build("testdata/osv/go/GO-2022-0969.json", "testdata/osv/go/GO-2023-1878.json")
	if ok, err := s.Reload(); !ok || err != nil {
		t.Fatalf("reload after rebuild: %v %v", ok, err)
	}
	if s.Current() == first || s.Current().Info().Advisories != 2 {
		t.Errorf("store did not swap: %+v", s.Current().Info())
	}
	got := storeMatch(t, s, golang("stdlib", "1.19.0"))
	if len(got) != 2 {
		t.Errorf("findings through the store: %v", got)
	}
}

// Scans keep matching while the database is replaced and reloaded under them: no error, no torn result (run with
// -race).
func TestStoreReloadUnderLoad(t *testing.T) {
	dir := t.TempDir()
	build := func() {
		b, err := NewBuilder(dir)
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := b.ImportPath(context.Background(), "testdata/osv/go", Limits{}); err != nil {
			t.Error(err)
		}
		if _, err := b.Commit(); err != nil {
			t.Error(err)
		}
	}
	build()
	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				res := &report.Result{Packages: []report.Package{golang("stdlib", "1.19.0"), golang("golang.org/x/text", "0.3.2")}}
				if err := s.Match(context.Background(), res); err != nil {
					t.Error(err)
					return
				}
				if len(res.Vulnerabilities) != 4 {
					t.Errorf("findings during reload: %d", len(res.Vulnerabilities))
					return
				}
			}
		}()
	}
	for range 10 {
		build()
		if _, err := s.Reload(); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
}

// TestUpdateRefusesPlainHTTP: an http:// feed and an https feed that redirects to http are refused before a byte
// is read over http, unless InsecureHTTP is set; the existing database stays.
func TestUpdateRefusesPlainHTTP(t *testing.T) {
	zipPath := filepath.Join(t.TempDir(), "all.zip")
	writeZip(t, zipPath, map[string][]byte{"GO-2023-1878.json": mustRead(t, "testdata/osv/go/GO-2023-1878.json")})
	feed := &feedServer{body: mustRead(t, zipPath), etag: `"v1"`}
	plain := httptest.NewServer(feed)
	defer plain.Close()
	redirect := httptest.NewTLSServer(http.RedirectHandler(plain.URL+"/Go/all.zip", http.StatusFound))
	defer redirect.Close()
	ctx := context.Background()

	for name, u := range map[string]string{"http": plain.URL + "/Go/all.zip", "https-to-http": redirect.URL + "/Go/all.zip"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			feed.mu.Lock()
			feed.requests = nil
			feed.mu.Unlock()
			opts := UpdateOptions{URLs: []string{u}, Client: redirect.Client()}
			if _, err := Update(ctx, dir, opts); !errors.Is(err, ErrInsecureURL) {
				t.Fatalf("err = %v, want ErrInsecureURL", err)
			}
			feed.mu.Lock()
			asked := feed.requests
			feed.mu.Unlock()
			if len(asked) != 0 {
				t.Errorf("the http server was asked: %v", asked)
			}
			if _, err := os.Stat(filepath.Join(dir, FileName)); err == nil {
				t.Error("database written")
			}
			opts.InsecureHTTP = true
			if res, err := Update(ctx, dir, opts); err != nil || !res.Changed {
				t.Fatalf("with InsecureHTTP: %+v, %v", res, err)
			}
		})
	}
}

// TestUpdateChecksum: an archive is checked against a pinned SHA-256 and against one published beside it.
func TestUpdateChecksum(t *testing.T) {
	zipPath := filepath.Join(t.TempDir(), "all.zip")
	writeZip(t, zipPath, map[string][]byte{"GO-2023-1878.json": mustRead(t, "testdata/osv/go/GO-2023-1878.json")})
	body := mustRead(t, zipPath)
	sum := sha256.Sum256(body)
	good := hex.EncodeToString(sum[:])
	published := good
	mux := http.NewServeMux()
	mux.HandleFunc("/all.zip", func(w http.ResponseWriter, r *http.Request) { w.Write(body) })
	mux.HandleFunc("/all.zip.sha256", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, published+"  all.zip\n") })
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	u := srv.URL + "/all.zip"
	bad := strings.Repeat("0", 64)
	for _, c := range []struct {
		name      string
		pin       string
		suffix    string
		published string
		ok        bool
	}{
		{"pinned", good, "", good, true},
		{"pinned-wrong", bad, "", good, false},
		{"published", "", ".sha256", good, true},
		{"published-wrong", "", ".sha256", bad, false},
		{"published-missing", "", ".sha512", good, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			published = c.published
			opts := UpdateOptions{URLs: []string{u}, Client: srv.Client(), ChecksumSuffix: c.suffix}
			if c.pin != "" {
				opts.SHA256 = map[string]string{u: c.pin}
			}
			dir := t.TempDir()
			_, err := Update(context.Background(), dir, opts)
			if (err == nil) != c.ok {
				t.Fatalf("err = %v", err)
			}
			if _, serr := os.Stat(filepath.Join(dir, FileName)); (serr == nil) != c.ok {
				t.Errorf("database written: %v", serr == nil)
			}
			if tmps, _ := filepath.Glob(filepath.Join(dir, "*", ".download-*")); len(tmps) != 0 {
				t.Errorf("temp files left: %v", tmps)
			}
		})
	}
}
