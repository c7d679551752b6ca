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
	"net/url"
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
	// InsecureHTTP allows plain http:// URLs and redirects from https to http. Without it both are refused: the
	// database decides which vulnerabilities are reported, and on a cluster network anyone on the path could
	// replace an archive fetched in the clear with one that lists nothing.
	InsecureHTTP bool
	// SHA256 pins archives: for a URL listed here, a download whose SHA-256 (hex) differs is refused.
	SHA256 map[string]string
	// ChecksumSuffix, when set (".sha256"), makes Update fetch each URL with the suffix appended, under the same
	// rules, and refuse an archive whose SHA-256 differs from the first word of that file (sha256sum's format):
	// the check for feeds that publish their digests beside the archive.
	ChecksumSuffix string
	Limits         Limits
	Log            *slog.Logger
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
	if err := CheckFeedURLs(opts.URLs, opts.InsecureHTTP); err != nil {
		return res, fmt.Errorf("update: %w", err)
	}
	opts.Client = withRedirectCheck(opts.Client, opts.InsecureHTTP)
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
		if err := verifyDigest(ctx, opts, u, src.SHA256); err != nil {
			os.Remove(tmp)
			cleanup()
			return res, fmt.Errorf("update from %s: %w (database left unchanged)", u, err)
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

// ErrInsecureURL is an http:// feed, or a redirect to one, without UpdateOptions.InsecureHTTP.
var ErrInsecureURL = errors.New("plain http refused (allow it with the insecure-http option)")

// ErrChecksum is an archive whose SHA-256 is not the one pinned or published for it.
var ErrChecksum = errors.New("archive does not match its published SHA-256")

// checkScheme allows https, and http only when insecure.
func checkScheme(u string, insecure bool) error {
	pu, err := url.Parse(u)
	if err != nil {
		return err
	}
	switch strings.ToLower(pu.Scheme) {
	case "https":
		return nil
	case "http":
		if insecure {
			return nil
		}
		return ErrInsecureURL
	}
	return fmt.Errorf("unsupported URL scheme %q", pu.Scheme)
}

// withRedirectCheck returns a copy of c whose redirects are checked with checkScheme before c's own policy (or
// net/http's default of at most 10) applies.
func withRedirectCheck(c *http.Client, insecure bool) *http.Client {
	cc := *c
	next := c.CheckRedirect
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := checkScheme(req.URL.String(), insecure); err != nil {
			return fmt.Errorf("redirect to %s: %w", req.URL.Redacted(), err)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &cc
}

// maxChecksumFile bounds a published checksum file (one line of sha256sum output, or a few).
const maxChecksumFile = 4 << 10

// verifyDigest compares an archive's SHA-256 with the one pinned in opts.SHA256 and the one published at
// u+opts.ChecksumSuffix, when there are such.
func verifyDigest(ctx context.Context, opts UpdateOptions, u, got string) error {
	if want, ok := opts.SHA256[u]; ok && !strings.EqualFold(strings.TrimSpace(want), got) {
		return fmt.Errorf("%w: pinned %s, downloaded %s", ErrChecksum, want, got)
	}
	if opts.ChecksumSuffix == "" {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+opts.ChecksumSuffix, nil)
	if err != nil {
		return err
	}
	resp, err := opts.Client.Do(req)
	if err != nil {
		return fmt.Errorf("fetch published checksum: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch published checksum %s: HTTP %s", u+opts.ChecksumSuffix, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxChecksumFile))
	if err != nil {
		return fmt.Errorf("fetch published checksum: %w", err)
	}
	fields := strings.Fields(string(body))
	if len(fields) == 0 || !strings.EqualFold(fields[0], got) {
		return fmt.Errorf("%w: published %q, downloaded %s", ErrChecksum, strings.Join(fields[:min(len(fields), 1)], ""), got)
	}
	return nil
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
