package node

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rootscan/rootscan/compliance"
)

// evalStore keeps the image checks' evaluations on disk, one file per image and check, so that a restarted daemon
// uses them instead of evaluating each image's controls again. A file is an ImageEval's Encode, which names the engine
// (profiles, waivers, limits, rootscan's engine version) and the chain ID it was made for: one made by another engine
// is a miss. The directory is the daemon's own, but a file is still read as untrusted: bounded by bytes before it is
// read, and any damage makes it a miss with a log line, the image evaluated again and the file rewritten.
type evalStore struct {
	dir string
	log *slog.Logger
}

// openEvalStore makes (if needed) the directory of the stored evaluations.
func openEvalStore(dir string, log *slog.Logger) (*evalStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create image evaluation store %s: %w", dir, err)
	}
	return &evalStore{dir: dir, log: log}, nil
}

// file names the evaluation of key: by a hash of the chain ID (see fileName) and the check's index.
func (s *evalStore) file(key imageEvalKey) string {
	return filepath.Join(s.dir, fmt.Sprintf("%s-%d.json", strings.TrimSuffix(fileName(key.chain), ".json"), key.check))
}

// load returns the stored evaluation of key for ic's engine, nil when there is none to use.
func (s *evalStore) load(key imageEvalKey, ic ImageCheck) *compliance.ImageEval {
	if s == nil {
		return nil
	}
	name := s.file(key)
	f, err := os.Open(name)
	if err != nil {
		if !os.IsNotExist(err) {
			s.log.Warn("stored image evaluation ignored", "chain", key.chain, "err", err)
		}
		return nil
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || fi.Size() > compliance.MaxStoredEvalBytes {
		s.log.Warn("stored image evaluation ignored: not a regular file within the bound", "chain", key.chain, "file", name, "bound", compliance.MaxStoredEvalBytes)
		return nil
	}
	// The size stated is not trusted either: the read stops one byte past the bound.
	b, err := io.ReadAll(io.LimitReader(f, compliance.MaxStoredEvalBytes+1))
	if err != nil {
		s.log.Warn("stored image evaluation ignored", "chain", key.chain, "err", err)
		return nil
	}
	ie, err := ic.LoadImageEval(b, key.chain)
	switch {
	case compliance.IsStale(err):
		s.log.Debug("stored image evaluation made by other profiles or another engine; evaluating again", "chain", key.chain)
		return nil
	case err != nil:
		s.log.Warn("stored image evaluation ignored; evaluating again", "chain", key.chain, "file", name, "err", err)
		return nil
	}
	// The mtime records the last use, so that prune after a restart knows what is still wanted.
	now := time.Now()
	_ = os.Chtimes(name, now, now)
	return ie
}

// write stores b, key's evaluation as ImageEval.Encode gave it (with encErr), replacing the file whole (see
// writeFileAtomic). It says whether the evaluation is stored, or had nothing to store (nil b).
func (s *evalStore) write(key imageEvalKey, b []byte, encErr error) bool {
	err := encErr
	if err == nil && b != nil {
		err = writeFileAtomic(s.file(key), b)
	}
	if err != nil {
		s.log.Warn("store image evaluation; a restart evaluates the image again", "chain", key.chain, "err", err)
		return false
	}
	return true
}

// prune removes the files of images not in keep that were not used since cutoff, and temporary files left by a crash.
func (s *evalStore) prune(keep map[string]bool, cutoff time.Time) (removed int) {
	if s == nil {
		return 0
	}
	kept := make(map[string]bool, len(keep))
	for id := range keep {
		kept[strings.TrimSuffix(fileName(id), ".json")] = true
	}
	entries, _ := os.ReadDir(s.dir)
	for _, e := range entries {
		prefix, _, _ := strings.Cut(e.Name(), "-")
		if kept[prefix] && strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		if info, err := e.Info(); err != nil || info.ModTime().After(cutoff) {
			continue
		}
		if os.Remove(filepath.Join(s.dir, e.Name())) == nil {
			removed++
		}
	}
	return removed
}

// setupImageEvals opens the image evaluations' store under StateDir and wires OnImageEval.
func (d *Daemon) setupImageEvals() error {
	d.imageEvals.observe = d.OnImageEval
	if d.StateDir == "" {
		return nil
	}
	s, err := openEvalStore(filepath.Join(d.StateDir, "evals"), d.logger())
	if err != nil {
		return err
	}
	d.imageEvals.store = s
	return nil
}
