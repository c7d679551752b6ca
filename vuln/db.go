package vuln

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rootscan/rootscan/vuln/version"
)

// The database is one bbolt file (go.etcd.io/bbolt: a B+tree in one memory-mapped file, the storage of etcd,
// opened read-only by any number of readers). Why bbolt: lookups touch only the pages of the packages asked for, so
// a daemon's heap does not grow with the database (an in-memory index of osv.dev's advisories would cost hundreds of
// MiB); a file replaced by rename is picked up by reopening it, while readers of the old one keep their mapping. SQLite
// (already a dependency, for RPM) would do too, but costs a C-like VM per query and a WAL that a read-only mount
// cannot hold.
//
// Layout (every key and value is bytes):
//
//	meta / "info"              Info as JSON
//	adv  / <advisory id>       advisory as JSON: the record reduced to what matching needs, severity precomputed
//	idx  / <base>\x00<name>    JSON [[ecosystem, id], ...]: advisories naming the package (PyPI names normalised)
const (
	// FileName is the database file inside a database directory (--db DIR).
	FileName = "osv.db"
	// SchemaVersion changes when the layout does; an older rootscan refuses a newer file instead of misreading it.
	// 2: NuGet and Packagist names are indexed case-folded.
	// 3: Go advisories keep their imports (package paths, symbols, GOOS/GOARCH) for platform filtering and
	// reachability.
	SchemaVersion = 3
)

var (
	bucketMeta = []byte("meta")
	bucketAdv  = []byte("adv")
	bucketIdx  = []byte("idx")
	keyInfo    = []byte("info")
)

// ErrNoDatabase is returned by Open when the directory holds no database: scans then run without vulnerability
// matching and say so.
var ErrNoDatabase = errors.New("no vulnerability database")

// Info describes a database: what it was built from and when, so `rootscan db status` and the daemon's age metric
// can tell a stale database from a fresh one.
type Info struct {
	Schema     int       `json:"schema"`
	Built      time.Time `json:"built"`
	Advisories int       `json:"advisories"`
	Packages   int       `json:"packages"`
	Withdrawn  int       `json:"withdrawn"`
	// Newest is the latest "modified" time among the advisories: how current the feed itself was.
	Newest     time.Time  `json:"newest,omitzero"`
	Ecosystems []EcoCount `json:"ecosystems"`
	Sources    []Source   `json:"sources"`
}

// Age is how long ago the database was built: the daemon exports it as a metric and warns past a configured
// maximum, so a feed that stopped updating is a visible alert rather than a silent gap.
func (i Info) Age(now time.Time) time.Duration { return now.Sub(i.Built) }

// EcoCount is the number of advisories naming packages of one ecosystem (base name, "Debian" for "Debian:12").
type EcoCount struct {
	Ecosystem  string `json:"ecosystem"`
	Advisories int    `json:"advisories"`
}

// Source is one input the database was built from: a local path or a URL with the validators `db update` sends
// back (ETag, Last-Modified) so an unchanged feed is not downloaded again.
type Source struct {
	Location     string    `json:"location"`
	Records      int       `json:"records"`
	SHA256       string    `json:"sha256,omitempty"`
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"lastModified,omitempty"`
	Fetched      time.Time `json:"fetched,omitzero"`
}

// advisory is what the database keeps of an OSV record.
type advisory struct {
	ID       string        `json:"id"`
	Modified string        `json:"m,omitempty"`
	Aliases  []string      `json:"al,omitempty"`
	Summary  string        `json:"su,omitempty"`
	Affected []advAffected `json:"af"`
}

type advAffected struct {
	Ecosystem string   `json:"e"`
	Name      string   `json:"n"`
	Ranges    []Range  `json:"r,omitempty"`
	Versions  []string `json:"vs,omitempty"`
	Rating    Rating   `json:"rt"`
	// Sorted says the events of every range are in evaluation order already (done at import).
	Sorted bool `json:"so,omitempty"`
	// Imports are a Go advisory's ecosystem_specific.imports: the vulnerable packages, their symbols and the
	// platforms they are limited to. Empty means every package of the module.
	Imports []GoImport `json:"gi,omitempty"`
}

// idxEntry is one (ecosystem, advisory) pair under a package key.
type idxEntry [2]string

// indexName normalises a package name the way its ecosystem compares names: PyPI per PEP 503 (case-insensitive,
// runs of "-", "_" and "." are one "-"); NuGet package ids and Packagist vendor/package names are case-insensitive
// ("Newtonsoft.Json" in a .deps.json is "newtonsoft.json" in a lock file); every other ecosystem compares exactly.
func indexName(base, name string) string {
	switch base {
	case "NuGet", "Packagist":
		return strings.ToLower(name)
	case "PyPI":
	default:
		return name
	}
	var b strings.Builder
	sep := false
	for _, r := range strings.ToLower(name) {
		if r == '-' || r == '_' || r == '.' {
			sep = true
			continue
		}
		if sep && b.Len() > 0 {
			b.WriteByte('-')
		}
		sep = false
		b.WriteRune(r)
	}
	return b.String()
}

func indexKey(base, name string) []byte {
	return []byte(base + "\x00" + indexName(base, name))
}

// compact reduces a record to the advisory kept in the database; ok is false for a withdrawn record.
func compact(r *Record) (advisory, bool) {
	if r.Withdrawn != "" {
		return advisory{}, false
	}
	a := advisory{ID: r.ID, Modified: r.Modified, Summary: summaryOf(r)}
	seen := map[string]bool{r.ID: true}
	for _, al := range slices.Concat(r.Aliases, r.Upstream) {
		if al != "" && !seen[al] {
			seen[al] = true
			a.Aliases = append(a.Aliases, al)
		}
	}
	for i := range r.Affected {
		af := &r.Affected[i]
		if af.Package.Name == "" || af.Package.Ecosystem == "" {
			continue
		}
		var ranges []Range
		for _, rg := range af.Ranges {
			if rg.Type == "ECOSYSTEM" || rg.Type == "SEMVER" {
				ranges = append(ranges, rg)
			}
		}
		if len(ranges) == 0 && len(af.Versions) == 0 {
			continue
		}
		a.Affected = append(a.Affected, advAffected{
			Ecosystem: af.Package.Ecosystem, Name: af.Package.Name, Ranges: ranges, Versions: af.Versions, Rating: rate(r, af),
			Sorted: presort(af.Package.Ecosystem, ranges), Imports: goImports(af),
		})
	}
	return a, true
}

// presort puts the events of every range in evaluation order; false when an ecosystem has no ordering or an event
// does not parse (matching then sorts, and reports, at match time).
func presort(eco string, ranges []Range) bool {
	for i := range ranges {
		c := version.SemVer.Comparator()
		if ranges[i].Type != "SEMVER" {
			var err error
			if c, err = version.For(eco); err != nil {
				return false
			}
		}
		evs := slices.Clone(ranges[i].Events)
		if sortEvents(c, evs) != nil {
			return false
		}
		ranges[i].Events = evs
	}
	return true
}

// summaryOf is the record's summary, or the first line of its details (Debian's and many CVE records have no
// summary), cut to a length a table or SIEM event can carry.
func summaryOf(r *Record) string {
	s := r.Summary
	if s == "" {
		s, _, _ = strings.Cut(strings.TrimSpace(r.Details), "\n")
	}
	s = strings.TrimSpace(s)
	if len(s) > maxSummaryBytes {
		s = strings.ToValidUTF8(s[:maxSummaryBytes], "") + "…"
	}
	return s
}

// DB is an open, read-only database. It is safe for concurrent use.
type DB struct {
	bolt *bolt.DB
	info Info
	path string
}

// Open opens the database in dir read-only. It returns an error wrapping ErrNoDatabase when there is none.
func Open(dir string) (*DB, error) {
	return OpenFile(filepath.Join(dir, FileName))
}

// OpenFile opens a database file read-only.
func OpenFile(path string) (*DB, error) {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w at %s", ErrNoDatabase, path)
		}
		return nil, fmt.Errorf("open vulnerability database %s: %w", path, err)
	}
	b, err := bolt.Open(path, 0, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open vulnerability database %s: %w", path, err)
	}
	db := &DB{bolt: b, path: path}
	err = b.View(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		if m == nil || tx.Bucket(bucketAdv) == nil || tx.Bucket(bucketIdx) == nil {
			return errors.New("not a rootscan vulnerability database (buckets missing)")
		}
		raw := m.Get(keyInfo)
		if raw == nil {
			return errors.New("database info missing (incomplete build?)")
		}
		return json.Unmarshal(raw, &db.info)
	})
	if err == nil && db.info.Schema != SchemaVersion {
		err = fmt.Errorf("database schema %d, this rootscan reads %d: rebuild it with `rootscan db import` or `db update`", db.info.Schema, SchemaVersion)
	}
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("open vulnerability database %s: %w", path, err)
	}
	return db, nil
}

// Info says what the database holds and when it was built.
func (db *DB) Info() Info { return db.info }

// Path is the file the database was opened from.
func (db *DB) Path() string { return db.path }

// Close releases the mapping. It waits for lookups in progress.
func (db *DB) Close() error { return db.bolt.Close() }

// lookup returns the advisories indexed under a package of a base ecosystem, decoded, within one read transaction.
func (db *DB) lookup(base, name string, cache map[string]*advisory) ([]idxEntry, error) {
	var entries []idxEntry
	err := db.bolt.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketIdx).Get(indexKey(base, name))
		if raw == nil {
			return nil
		}
		if err := json.Unmarshal(raw, &entries); err != nil {
			return fmt.Errorf("index entry %s/%s: %w", base, name, err)
		}
		adv := tx.Bucket(bucketAdv)
		for _, e := range entries {
			if _, ok := cache[e[1]]; ok {
				continue
			}
			raw := adv.Get([]byte(e[1]))
			if raw == nil {
				return fmt.Errorf("index names advisory %s, which is missing", e[1])
			}
			a := new(advisory)
			if err := json.Unmarshal(raw, a); err != nil {
				return fmt.Errorf("advisory %s: %w", e[1], err)
			}
			cache[e[1]] = a
		}
		return nil
	})
	return entries, err
}

// baseOf is the ecosystem an advisory's package is indexed under.
func baseOf(eco string) string { return version.BaseEcosystem(eco) }
