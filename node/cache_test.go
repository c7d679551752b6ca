package node

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

func TestImageCachePersistsByKey(t *testing.T) {
	dir := t.TempDir()
	c, err := NewImageCache(dir, "v1")
	if err != nil {
		t.Fatal(err)
	}
	chain := "overlayfs/sha256:abc"
	res := &report.Result{Packages: []report.Package{{Name: "libc6", Version: "2.36", Ecosystem: report.EcosystemDebian}}}
	if err := c.Put(chain, res); err != nil {
		t.Fatal(err)
	}
	// A new process with the same key finds it on disk.
	c2, _ := NewImageCache(dir, "v1")
	got, ok := c2.Get(chain)
	if !ok || len(got.Packages) != 1 || got.Packages[0].Name != "libc6" {
		t.Fatalf("Get after restart = %+v, %v", got, ok)
	}
	// Another analyzer set (key) must not trust it.
	c3, _ := NewImageCache(dir, "v2")
	if _, ok := c3.Get(chain); ok {
		t.Fatal("entry written under key v1 was returned for key v2")
	}
	// A damaged file is a miss, not an error.
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != 1 {
		t.Fatalf("cache files = %v, want one", files)
	}
	os.WriteFile(files[0], []byte("{not json"), 0o600)
	c4, _ := NewImageCache(dir, "v1")
	if _, ok := c4.Get(chain); ok {
		t.Fatal("damaged entry returned")
	}
}

func TestImageCacheSkipsIncompleteAndPrunes(t *testing.T) {
	dir := t.TempDir()
	c, _ := NewImageCache(dir, "k")
	c.Put("a", &report.Result{Errors: []report.FileError{{Analyzer: "walk", Err: "context canceled"}}})
	c.Put("b", &report.Result{})
	c.Put("c", &report.Result{})
	if _, ok := reopen(dir).Get("a"); ok {
		t.Error("a result whose walk failed was persisted")
	}
	// Within the grace period nothing goes; past it, only what is not kept.
	if n := c.Prune(map[string]bool{"b": true}, time.Hour); n != 0 {
		t.Errorf("pruned %d entries used just now", n)
	}
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(filepath.Join(dir, fileName("c")), old, old)
	c.mu.Lock()
	for id := range c.used {
		c.used[id] = old
	}
	c.mu.Unlock()
	c.Prune(map[string]bool{"b": true}, time.Hour)
	if _, ok := c.Get("c"); ok {
		t.Error("c, unused past the grace period, is still cached")
	}
	if _, ok := reopen(dir).Get("b"); !ok {
		t.Error("b, still in use, was pruned from disk")
	}
}

func reopen(dir string) *ImageCache {
	c, _ := NewImageCache(dir, "k")
	return c
}

// The key follows the analyzers, not the build: a restarted daemon whose analyzers are the same (a new rootscan
// version changes nothing here, since the key does not name it) keeps its entries; one with an analyzer at a new
// version, or another set of analyzers, reads every image again.
func TestCacheKeyFollowsAnalyzers(t *testing.T) {
	key := func(as []scan.Analyzer) string {
		t.Helper()
		k, err := CacheKey(as)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	dir := t.TempDir()
	c, err := NewImageCache(dir, key(scan.DefaultAnalyzers()))
	if err != nil {
		t.Fatal(err)
	}
	chain := "overlayfs/sha256:abc"
	if err := c.Put(chain, &report.Result{Packages: []report.Package{{Name: "libc6", Version: "2.36"}}}); err != nil {
		t.Fatal(err)
	}

	same, _ := NewImageCache(dir, key(scan.DefaultAnalyzers()))
	if _, ok := same.Get(chain); !ok {
		t.Error("same analyzers after a restart: entry not found")
	}

	bumped := scan.DefaultAnalyzers()
	for i, a := range bumped {
		if a.Name() == "dpkg" {
			bumped[i] = nextVersion{a}
		}
	}
	fewer := slices.DeleteFunc(scan.DefaultAnalyzers(), func(a scan.Analyzer) bool { return a.Name() == "composer" })
	for name, set := range map[string][]scan.Analyzer{"dpkg bumped": bumped, "composer dropped": fewer} {
		other, _ := NewImageCache(dir, key(set))
		if _, ok := other.Get(chain); ok {
			t.Errorf("%s: entry of the old analyzers returned", name)
		}
	}

	// A set that cannot run is refused before any image is read.
	if _, err := CacheKey([]scan.Analyzer{scan.NewRPM()}); err == nil || !strings.Contains(err.Error(), "rpm requires os-release") {
		t.Errorf("CacheKey of rpm without os-release: %v", err)
	}
}

// nextVersion is an analyzer at its next version.
type nextVersion struct{ scan.Analyzer }

func (n nextVersion) Version() int { return n.Analyzer.Version() + 1 }

// TestImageCacheKeepsGoSymbols: the image cache keeps the Go programs' function sets the user-facing JSON leaves out
// (output.Write): a restarted daemon re-matches reachability from cached results when the database changes.
func TestImageCacheKeepsGoSymbols(t *testing.T) {
	dir := t.TempDir()
	c, err := NewImageCache(dir, "v1")
	if err != nil {
		t.Fatal(err)
	}
	key := report.GoSymbolKey("strings", "ToUpper")
	res := &report.Result{GoBinaries: []report.GoBinary{{Path: "/app", GOOS: "linux", GOARCH: "amd64",
		Symbols: report.NewGoSymbols([]uint64{key}), SymbolsFrom: "pclntab"}}}
	if err := c.Put("overlayfs/sha256:go", res); err != nil {
		t.Fatal(err)
	}
	c2, _ := NewImageCache(dir, "v1")
	got, ok := c2.Get("overlayfs/sha256:go")
	if !ok || len(got.GoBinaries) != 1 || got.GoBinaries[0].Symbols == nil || !got.GoBinaries[0].Symbols.Has(key) ||
		got.GoBinaries[0].Symbols.Has(key+1) || got.GoBinaries[0].SymbolsFrom != "pclntab" {
		t.Fatalf("Get after restart = %+v, %v; want the function set back", got, ok)
	}
}
