package node

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// ImageCache holds each image's analysis, keyed by the chain ID of its top layer, so an image is read once per node
// however many containers run it, and (with a directory) once per daemon lifetime across restarts.
//
// Entries are written under a key (see CacheKey) that names the analyzers and their versions: after an upgrade that
// adds or changes an analyzer, old entries are misses rather than silently stale inventories, and after one that
// does not, they stay hits. Cached results are shared and must be treated as read-only; containers get copies (see
// containerResult).
type ImageCache struct {
	dir string
	key string

	mu   sync.Mutex
	mem  map[string]*report.Result
	used map[string]time.Time
}

// cacheEntry is the on-disk form of one cached image analysis.
type cacheEntry struct {
	Key     string         `json:"key"`
	ChainID string         `json:"chainId"`
	SavedAt time.Time      `json:"savedAt"`
	Result  *report.Result `json:"result"`
}

// cacheFormat is the version of the entries' encoding: bump it when an entry written before would decode wrong (a
// change to cacheEntry or to report.Result's JSON) even though no analyzer changed.
const cacheFormat = 1

// CacheKey is the key for image analyses made by Run with these analyzers: the entry format and scan.Fingerprint
// (each analyzer's name and version, and Run's own). It does not name rootscan's version, so a new build whose
// analyzers are unchanged keeps the node's cache instead of reading every image again. It fails, before any image
// is read, when the analyzers cannot run together (scan.Order).
func CacheKey(analyzers []scan.Analyzer) (string, error) {
	fp, err := scan.Fingerprint(analyzers)
	if err != nil {
		return "", fmt.Errorf("image cache key: %w", err)
	}
	return fmt.Sprintf("entry/%d %s", cacheFormat, fp), nil
}

// NewImageCache opens (creating) the cache directory; dir "" keeps the cache in memory only.
func NewImageCache(dir, key string) (*ImageCache, error) {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create image cache %s: %w", dir, err)
		}
	}
	return &ImageCache{dir: dir, key: key, mem: map[string]*report.Result{}, used: map[string]time.Time{}}, nil
}

// Get returns the cached analysis for chainID, loading it from disk on first use.
func (c *ImageCache) Get(chainID string) (*report.Result, bool) {
	now := time.Now()
	c.mu.Lock()
	r, ok := c.mem[chainID]
	if ok {
		c.used[chainID] = now
	}
	c.mu.Unlock()
	if ok || c.dir == "" {
		return r, ok
	}
	b, err := os.ReadFile(c.file(chainID))
	if err != nil {
		return nil, false
	}
	var e cacheEntry
	if json.Unmarshal(b, &e) != nil || e.Key != c.key || e.ChainID != chainID || e.Result == nil {
		// Stale or damaged: a miss, rewritten by the next Put.
		return nil, false
	}
	// The file's mtime records its last use, so Prune after a restart knows what is still wanted.
	_ = os.Chtimes(c.file(chainID), now, now)
	c.mu.Lock()
	c.mem[chainID] = e.Result
	c.used[chainID] = now
	c.mu.Unlock()
	return e.Result, true
}

// Put stores an image's analysis. Images whose scan had errors are kept in memory only, so a transient failure is
// retried after a restart instead of being remembered for good.
func (c *ImageCache) Put(chainID string, r *report.Result) error {
	c.mu.Lock()
	c.mem[chainID] = r
	c.used[chainID] = time.Now()
	c.mu.Unlock()
	if c.dir == "" || hasWalkErrors(r) {
		return nil
	}
	b, err := json.Marshal(cacheEntry{Key: c.key, ChainID: chainID, SavedAt: time.Now().UTC(), Result: r})
	if err != nil {
		return fmt.Errorf("encode cache entry %s: %w", chainID, err)
	}
	return writeFileAtomic(c.file(chainID), b)
}

// Prune drops entries whose chain ID is not in keep and that were not used within grace: images no container on the
// node uses any more. The grace period keeps an image whose containers are queued but not yet checked (after a
// restart, or a pod being recreated) from being read twice.
func (c *ImageCache) Prune(keep map[string]bool, grace time.Duration) (removed int) {
	cutoff := time.Now().Add(-grace)
	c.mu.Lock()
	for id := range c.mem {
		if !keep[id] && c.used[id].Before(cutoff) {
			delete(c.mem, id)
			delete(c.used, id)
			removed++
		}
	}
	c.mu.Unlock()
	if c.dir == "" {
		return removed
	}
	keepFiles := make(map[string]bool, len(keep))
	for id := range keep {
		keepFiles[fileName(id)] = true
	}
	entries, _ := os.ReadDir(c.dir)
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		if info, err := e.Info(); err != nil || keepFiles[name] || info.ModTime().After(cutoff) {
			continue
		}
		{
			if os.Remove(filepath.Join(c.dir, name)) == nil {
				removed++
			}
		}
	}
	return removed
}

// Len is the number of images held in memory.
func (c *ImageCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.mem)
}

// file names an entry by a hash of its chain ID: chain IDs carry the snapshotter's name and a colon, neither of which
// belongs in a file name.
func (c *ImageCache) file(chainID string) string {
	return filepath.Join(c.dir, fileName(chainID))
}

func fileName(chainID string) string {
	sum := sha256.Sum256([]byte(chainID))
	return hex.EncodeToString(sum[:16]) + ".json"
}

// hasWalkErrors is true when the analysis may be incomplete for reasons other than the image's own files: the walk
// or an analyzer as a whole failed (a cancelled context, an unmounted root).
func hasWalkErrors(r *report.Result) bool {
	for _, e := range r.Errors {
		if e.Path == "" {
			return true
		}
	}
	return false
}

// writeFileAtomic replaces name with data through a synced temporary file and a rename, so a crash leaves the old
// entry or the new one, never half of one.
func writeFileAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(f.Name(), name); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
