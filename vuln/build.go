package vuln

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// commitEvery bounds the dirty pages bbolt holds in memory while a database is built: one transaction per this
// many advisories.
const commitEvery = 5000

// Builder writes a new database next to the one it replaces and swaps it in with one rename, so readers see either
// the old database or the complete new one, never a partial file; a failed build leaves the old database as it was.
type Builder struct {
	dir, tmp  string
	db        *bolt.DB
	tx        *bolt.Tx
	pending   int
	index     map[string]map[idxEntry]struct{}
	modified  map[string]string // advisory id -> modified, to keep the newest of duplicates
	withdrawn int
	newest    time.Time
	sources   []Source
	done      bool
}

// NewBuilder starts a database build for dir (created if missing). Call Commit to install it or Abort to drop it.
func NewBuilder(dir string) (*Builder, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create database directory %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+FileName+".build-*")
	if err != nil {
		return nil, fmt.Errorf("create database in %s: %w", dir, err)
	}
	tmp := f.Name()
	f.Close()
	// NoSync: one fsync at the end (Commit) instead of one per transaction; a crash mid-build leaves only a temp file.
	db, err := bolt.Open(tmp, 0o644, &bolt.Options{Timeout: time.Second, NoSync: true, NoFreelistSync: true})
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("create database %s: %w", tmp, err)
	}
	b := &Builder{dir: dir, tmp: tmp, db: db, index: map[string]map[idxEntry]struct{}{}, modified: map[string]string{}}
	if err := b.begin(); err != nil {
		b.Abort()
		return nil, err
	}
	return b, nil
}

func (b *Builder) begin() error {
	tx, err := b.db.Begin(true)
	if err != nil {
		return fmt.Errorf("database transaction: %w", err)
	}
	for _, name := range [][]byte{bucketMeta, bucketAdv, bucketIdx} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			tx.Rollback()
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	b.tx = tx
	b.pending = 0
	return nil
}

// Add stores one record. A withdrawn record is counted and not stored; of two records with the same id the one
// modified last wins (osv.dev archives and local folders may overlap). It reports whether the record was stored.
func (b *Builder) Add(r *Record) (bool, error) {
	a, ok := compact(r)
	if !ok {
		b.withdrawn++
		return false, nil
	}
	return b.addAdvisory(a)
}

// addAdvisory stores one compacted advisory (from a record, or from the database being appended to).
func (b *Builder) addAdvisory(a advisory) (bool, error) {
	if prev, dup := b.modified[a.ID]; dup && prev > a.Modified {
		return false, nil
	}
	data, err := json.Marshal(a)
	if err != nil {
		return false, fmt.Errorf("encode advisory %s: %w", a.ID, err)
	}
	if err := b.tx.Bucket(bucketAdv).Put([]byte(a.ID), data); err != nil {
		return false, fmt.Errorf("store advisory %s: %w", a.ID, err)
	}
	b.modified[a.ID] = a.Modified
	if t, err := time.Parse(time.RFC3339, a.Modified); err == nil && t.After(b.newest) {
		b.newest = t
	}
	for _, af := range a.Affected {
		k := string(indexKey(baseOf(af.Ecosystem), af.Name))
		set := b.index[k]
		if set == nil {
			set = map[idxEntry]struct{}{}
			b.index[k] = set
		}
		set[idxEntry{af.Ecosystem, a.ID}] = struct{}{}
	}
	b.pending++
	if b.pending >= commitEvery {
		if err := b.tx.Commit(); err != nil {
			return false, fmt.Errorf("commit advisories: %w", err)
		}
		if err := b.begin(); err != nil {
			return false, err
		}
	}
	return true, nil
}

// AddSource records an input of the build in the database's Info.
func (b *Builder) AddSource(s Source) { b.sources = append(b.sources, s) }

// Commit writes the index and the Info, syncs the file to disk and renames it over the directory's database, then
// syncs the directory so the rename survives a crash.
func (b *Builder) Commit() (Info, error) {
	if b.done {
		return Info{}, fmt.Errorf("database build already finished")
	}
	info, err := b.finish()
	if err != nil {
		b.Abort()
		return Info{}, err
	}
	b.done = true
	final := filepath.Join(b.dir, FileName)
	if err := os.Rename(b.tmp, final); err != nil {
		os.Remove(b.tmp)
		return Info{}, fmt.Errorf("install database %s: %w", final, err)
	}
	if d, err := os.Open(b.dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return Info{}, fmt.Errorf("sync database directory %s: %w", b.dir, err)
		}
	}
	return info, nil
}

func (b *Builder) finish() (Info, error) {
	info := Info{Schema: SchemaVersion, Built: time.Now().UTC(), Advisories: len(b.modified), Packages: len(b.index),
		Withdrawn: b.withdrawn, Newest: b.newest, Sources: b.sources, Ecosystems: []EcoCount{}}
	keys := make([]string, 0, len(b.index))
	for k := range b.index {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	perEco := map[string]map[string]struct{}{}
	idx := b.tx.Bucket(bucketIdx)
	idx.FillPercent = 1 // keys arrive sorted: pack the pages
	for i, k := range keys {
		entries := make([]idxEntry, 0, len(b.index[k]))
		for e := range b.index[k] {
			entries = append(entries, e)
		}
		slices.SortFunc(entries, func(x, y idxEntry) int {
			if c := bytes.Compare([]byte(x[0]), []byte(y[0])); c != 0 {
				return c
			}
			return bytes.Compare([]byte(x[1]), []byte(y[1]))
		})
		base, _, _ := bytes.Cut([]byte(k), []byte{0})
		ids := perEco[string(base)]
		if ids == nil {
			ids = map[string]struct{}{}
			perEco[string(base)] = ids
		}
		for _, e := range entries {
			ids[e[1]] = struct{}{}
		}
		data, err := json.Marshal(entries)
		if err != nil {
			return Info{}, fmt.Errorf("encode index: %w", err)
		}
		if err := idx.Put([]byte(k), data); err != nil {
			return Info{}, fmt.Errorf("store index: %w", err)
		}
		if i%commitEvery == commitEvery-1 {
			if err := b.tx.Commit(); err != nil {
				return Info{}, fmt.Errorf("commit index: %w", err)
			}
			if err := b.begin(); err != nil {
				return Info{}, err
			}
			idx = b.tx.Bucket(bucketIdx)
			idx.FillPercent = 1
		}
	}
	for eco, ids := range perEco {
		info.Ecosystems = append(info.Ecosystems, EcoCount{Ecosystem: eco, Advisories: len(ids)})
	}
	slices.SortFunc(info.Ecosystems, func(x, y EcoCount) int { return bytes.Compare([]byte(x.Ecosystem), []byte(y.Ecosystem)) })
	data, err := json.Marshal(info)
	if err != nil {
		return Info{}, fmt.Errorf("encode database info: %w", err)
	}
	if err := b.tx.Bucket(bucketMeta).Put(keyInfo, data); err != nil {
		return Info{}, fmt.Errorf("store database info: %w", err)
	}
	if err := b.tx.Commit(); err != nil {
		return Info{}, fmt.Errorf("commit database: %w", err)
	}
	b.tx = nil
	if err := b.compact(); err != nil {
		return Info{}, err
	}
	return info, nil
}

// compact copies the build into a second file with every page packed (advisories arrive in archive order, so the
// build's pages are about half full after splits), syncs it and makes it the file Commit installs. It roughly halves
// the database's size; readers then touch fewer pages too.
func (b *Builder) compact() error {
	f, err := os.CreateTemp(b.dir, "."+FileName+".compact-*")
	if err != nil {
		return fmt.Errorf("compact database: %w", err)
	}
	dstPath := f.Name()
	f.Close()
	dst, err := bolt.Open(dstPath, 0o644, &bolt.Options{Timeout: time.Second, NoSync: true, NoFreelistSync: true})
	if err != nil {
		os.Remove(dstPath)
		return fmt.Errorf("compact database: %w", err)
	}
	err = bolt.Compact(dst, b.db, 64<<20)
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dstPath)
		return fmt.Errorf("compact database: %w", err)
	}
	if err := os.Chmod(dstPath, 0o644); err != nil {
		os.Remove(dstPath)
		return fmt.Errorf("compact database: %w", err)
	}
	b.db.Close()
	os.Remove(b.tmp)
	b.tmp = dstPath
	return nil
}

// Abort drops the build; the directory's database is untouched.
func (b *Builder) Abort() {
	if b.done {
		return
	}
	b.done = true
	if b.tx != nil {
		b.tx.Rollback()
		b.tx = nil
	}
	b.db.Close()
	os.Remove(b.tmp)
}
