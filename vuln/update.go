package vuln

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// feedsDir keeps the last good copy of each downloaded archive, so an update where one feed changed rebuilds from
// the others without downloading them again, and a conditional request has something to fall back on.
const feedsDir = "feeds"

// DefaultMaxDownload bounds one archive download (osv.dev's all-ecosystems all.zip is about 1 GiB compressed).
const DefaultMaxDownload = 4 << 30

// UpdateOptions configure Update.
type UpdateOptions struct {
	// URLs are the OSV archives (osv.dev: https://osv-vulnerabilities.storage.googleapis.com/<Ecosystem>/all.zip)
	// the database is built from, all of them every time.
	URLs []string
	// Client does the requests; nil means a client with a 30 minute overall timeout.
	Client *http.Client
	// MaxDownload bounds each archive; zero means DefaultMaxDownload.
	MaxDownload int64
	Limits      Limits
	Log         *slog.Logger
}

// UpdateResult says what an update did.
type UpdateResult struct {
	// Changed is false when every feed answered 304 Not Modified and the database was left as it was.
	Changed bool
	// NotModified lists the URLs that answered 304.
	NotModified []string
	Info        Info
}

// Update fetches the archives with conditional requests (If-None-Match with the ETag, If-Modified-Since with the
// Last-Modified the previous download returned) and, when one changed, builds a new database from all of them and
// swaps it in with a rename. Every failure before the swap (a network error, a body cut short, a damaged or empty
// archive, a record budget exceeded) leaves the existing database and the cached archives as they were: a daemon
// keeps matching against the last good database.
func Update(ctx context.Context, dir string, opts UpdateOptions) (UpdateResult, error) {
	var res UpdateResult
	if len(opts.URLs) == 0 {
		return res, errors.New("update: no feed URL")
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 30 * time.Minute}
	}
	if opts.MaxDownload <= 0 {
		opts.MaxDownload = DefaultMaxDownload
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	prev := map[string]Source{}
	haveDB := false
	if db, err := Open(dir); err == nil {
		haveDB = true
		for _, s := range db.Info().Sources {
			prev[s.Location] = s
		}
		db.Close()
	}
	cache := filepath.Join(dir, feedsDir)
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return res, fmt.Errorf("update: create %s: %w", cache, err)
	}
	type feed struct {
		src       Source
		archive   string // file to import
		fresh     bool   // archive is a new download still in a temp file
		cachePath string
	}
	var feeds []feed
	cleanup := func() {
		for _, f := range feeds {
			if f.fresh {
				os.Remove(f.archive)
			}
		}
	}
	for _, u := range opts.URLs {
		cp := filepath.Join(cache, cacheName(u))
		old, known := prev[u]
		if _, err := os.Stat(cp); err != nil {
			known = false // no cached copy: a 304 would leave nothing to build from
		}
		src, tmp, err := download(ctx, opts.Client, u, old, known, cache, opts.MaxDownload)
		if err != nil {
			cleanup()
			return res, fmt.Errorf("update from %s: %w", u, err)
		}
		if tmp == "" {
			log.Info("feed not modified", "url", u)
			res.NotModified = append(res.NotModified, u)
			feeds = append(feeds, feed{src: old, archive: cp, cachePath: cp})
			continue
		}
		log.Info("feed downloaded", "url", u, "sha256", src.SHA256)
		feeds = append(feeds, feed{src: src, archive: tmp, fresh: true, cachePath: cp})
	}
	if haveDB && len(res.NotModified) == len(opts.URLs) {
		db, err := Open(dir)
		if err == nil {
			res.Info = db.Info()
			db.Close()
		}
		return res, nil
	}
	b, err := NewBuilder(dir)
	if err != nil {
		cleanup()
		return res, err
	}
	for i := range feeds {
		f := &feeds[i]
		var st ImportStats
		err := b.importZipFile(ctx, f.archive, opts.Limits.withDefaults(), &st)
		if err == nil && st.Records == 0 {
			err = ErrNoRecords
		}
		if err != nil {
			b.Abort()
			cleanup()
			return res, fmt.Errorf("update: archive from %s: %w (database left unchanged)", f.src.Location, err)
		}
		f.src.Records = st.Stored
		b.AddSource(f.src)
	}
	info, err := b.Commit()
	if err != nil {
		cleanup()
		return res, err
	}
	for _, f := range feeds {
		if f.fresh {
			if err := os.Rename(f.archive, f.cachePath); err != nil {
				log.Warn("keep downloaded archive", "path", f.cachePath, "err", err)
				os.Remove(f.archive)
			}
		}
	}
	res.Changed, res.Info = true, info
	return res, nil
}

// cacheName is a stable file name for a feed URL.
func cacheName(u string) string {
	sum := sha256.Sum256([]byte(u))
	return hex.EncodeToString(sum[:8]) + ".zip"
}

// download fetches one archive into a temp file in dir. It returns tmp == "" when the server answered 304.
func download(ctx context.Context, client *http.Client, u string, old Source, conditional bool, dir string, limit int64) (Source, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Source{}, "", err
	}
	if conditional {
		if old.ETag != "" {
			req.Header.Set("If-None-Match", old.ETag)
		}
		if old.LastModified != "" {
			req.Header.Set("If-Modified-Since", old.LastModified)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		return Source{}, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified && conditional {
		return old, "", nil
	}
	if resp.StatusCode != http.StatusOK {
		return Source{}, "", fmt.Errorf("HTTP %s", resp.Status)
	}
	if resp.ContentLength > limit {
		return Source{}, "", fmt.Errorf("archive of %d bytes exceeds %d", resp.ContentLength, limit)
	}
	f, err := os.CreateTemp(dir, ".download-*")
	if err != nil {
		return Source{}, "", err
	}
	tmp := f.Name()
	fail := func(err error) (Source, string, error) {
		f.Close()
		os.Remove(tmp)
		return Source{}, "", err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fail(fmt.Errorf("download cut short after %d bytes: %w", n, err))
	}
	if n > limit {
		return fail(fmt.Errorf("archive exceeds %d bytes", limit))
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return fail(fmt.Errorf("download cut short: %d of %d bytes", n, resp.ContentLength))
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return Source{}, "", err
	}
	src := Source{
		Location: u, SHA256: hex.EncodeToString(h.Sum(nil)), ETag: resp.Header.Get("ETag"),
		LastModified: resp.Header.Get("Last-Modified"), Fetched: time.Now().UTC(),
	}
	if strings.HasPrefix(src.ETag, "W/") {
		src.ETag = "" // a weak validator says nothing about the bytes
	}
	return src, tmp, nil
}
