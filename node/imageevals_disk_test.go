package node

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rootscan/rootscan/compliance"
)

// loadCounter is an ImageCheck whose LoadImageEval only counts the bytes it was given.
type loadCounter struct {
	ImageCheck
	loads int
}

func (l *loadCounter) LoadImageEval(b []byte, _ string) (*compliance.ImageEval, error) {
	l.loads++
	return nil, errors.New("not an evaluation")
}

// A stored evaluation past the bound, or not a regular file, is not read at all; prune removes the files of images
// gone and the temporary files a crash left, after the grace period, and keeps the rest.
func TestEvalStoreBoundsAndPrune(t *testing.T) {
	s, err := openEvalStore(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	big, dir, kept, gone := imageEvalKey{"big", 0}, imageEvalKey{"dir", 0}, imageEvalKey{"kept", 0}, imageEvalKey{"gone", 0}
	f, err := os.Create(s.file(big))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(compliance.MaxStoredEvalBytes + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Mkdir(s.file(dir), 0o700); err != nil {
		t.Fatal(err)
	}
	ic := &loadCounter{}
	if s.load(big, ic) != nil || s.load(dir, ic) != nil || ic.loads != 0 {
		t.Errorf("past the bound or a directory: %d loads, want none", ic.loads)
	}
	for _, k := range []imageEvalKey{kept, gone} {
		if err := os.WriteFile(s.file(k), []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if s.load(kept, ic) != nil || ic.loads != 1 {
		t.Errorf("a damaged file: %d loads, want 1 and no evaluation", ic.loads)
	}
	tmp := filepath.Join(s.dir, ".tmp-123")
	if err := os.WriteFile(tmp, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	keep := map[string]bool{"kept": true}
	if n := s.prune(keep, time.Now().Add(-time.Hour)); n != 0 {
		t.Errorf("pruned %d files used within the grace period", n)
	}
	old := time.Now().Add(-2 * time.Hour)
	for _, p := range []string{s.file(kept), s.file(gone), s.file(big), tmp} {
		os.Chtimes(p, old, old)
	}
	if n := s.prune(keep, time.Now().Add(-time.Hour)); n != 3 {
		t.Errorf("pruned %d files, want 3 (gone, big, the temporary file)", n)
	}
	if _, err := os.Stat(s.file(kept)); err != nil {
		t.Errorf("the kept image's file: %v", err)
	}
}
