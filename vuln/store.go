package vuln

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rootscan/rootscan/report"
	bolt "go.etcd.io/bbolt"
)

// Store is the database a long-running process (the daemon) matches against. `rootscan db update` (or a sidecar, or
// a ConfigMap-mounted file) replaces the file with a rename; Reload notices the new file (a different inode or
// modification time) and swaps the open database through an atomic.Pointer, so scans never wait for a reload and
// never see a half-written file. The old database is closed once the lookups already running on it finish (bbolt's
// Close waits for open read transactions); a scan that picked the old one up just before the swap retries on the new
// one.
//
// Call Reload on a timer (or on an inotify event); it costs one stat when nothing changed.
type Store struct {
	dir string
	cur atomic.Pointer[DB]
	mu  sync.Mutex // serialises Reload
	id  fileID
}

type fileID struct {
	ino   uint64
	mtime time.Time
	size  int64
}

// NewStore opens the database in dir if there is one. A missing database is not an error: Current returns nil
// until one appears and Reload picks it up.
func NewStore(dir string) (*Store, error) {
	s := &Store{dir: dir}
	if _, err := s.Reload(); err != nil && !errors.Is(err, ErrNoDatabase) {
		return nil, err
	}
	return s, nil
}

// Current is the database in use, nil when there is none.
func (s *Store) Current() *DB { return s.cur.Load() }

// Reload opens the database file again if it changed since the last (re)load, and reports whether it swapped.
func (s *Store) Reload() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := filepath.Join(s.dir, FileName)
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, fmt.Errorf("%w at %s", ErrNoDatabase, p)
		}
		return false, fmt.Errorf("stat vulnerability database: %w", err)
	}
	id := statID(fi)
	if s.cur.Load() != nil && id == s.id {
		return false, nil
	}
	db, err := OpenFile(p)
	if err != nil {
		return false, err // keep the database in use
	}
	old := s.cur.Swap(db)
	s.id = id
	if old != nil {
		go old.Close() // waits for running lookups; never blocks Reload
	}
	return true, nil
}

// Match matches against the current database. ErrNoDatabase when there is none.
func (s *Store) Match(ctx context.Context, res *report.Result) error {
	for range 3 {
		db := s.cur.Load()
		if db == nil {
			return ErrNoDatabase
		}
		// Match appends only at the end, so a failed attempt leaves res as it was.
		err := db.Match(ctx, res)
		if errors.Is(err, bolt.ErrDatabaseNotOpen) {
			continue // swapped and closed under us: use the new one
		}
		return err
	}
	return errors.New("vulnerability database kept changing during the match")
}

// Close closes the current database.
func (s *Store) Close() error {
	if db := s.cur.Swap(nil); db != nil {
		return db.Close()
	}
	return nil
}
