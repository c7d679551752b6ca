package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rootscan/rootscan/compliance"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
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

// Checks queue their image evaluations for storing and one writer stores them off the checks' path: saves from
// many checks at once are neither lost nor torn, flush (the daemon's stop) leaves every change on disk, the file
// loads as the evaluation, and an evaluation stored once is not written again until it changes.
func TestImageEvalsStoredByOneWriter(t *testing.T) {
	dir := t.TempDir()
	s, err := openEvalStore(dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	live, err := compliance.NewLive(compliance.Sources{Profiles: []string{compliance.Baseline}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	checker := &compliance.Checker{Profiles: live}
	lower := filepath.Join(dir, "image")
	writeTree(t, lower, overlayImage)
	image, err := fsaccess.OpenDir(lower, fsaccess.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer image.Close()
	x := &imageEvals{store: s}
	chains := []string{"sha256:aa", "sha256:bb", "sha256:cc"}
	evals := map[string]*compliance.ImageEval{}
	for _, chain := range chains {
		ie := x.get(imageEvalKey{chain, 0}, checker)
		rep := report.Report{Result: &report.Result{}}
		if _, err := checker.CheckDelta(context.Background(), ie, func() (scan.FS, error) { return image, nil },
			func() (scan.FS, error) { return image, nil }, compliance.Delta{}, &rep); err != nil {
			t.Fatal(err)
		}
		evals[chain] = ie
	}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			chain := chains[i%len(chains)]
			x.save(chain, []*compliance.ImageEval{evals[chain]})
		}()
	}
	wg.Wait()
	x.flush()
	for _, chain := range chains {
		key := imageEvalKey{chain, 0}
		got := s.load(key, checker)
		if got == nil {
			t.Fatalf("%s: nothing stored", chain)
		}
		gb, err1 := got.Encode(chain)
		wb, err2 := evals[chain].Encode(chain)
		if err1 != nil || err2 != nil || len(wb) == 0 || !bytes.Equal(gb, wb) {
			t.Errorf("%s: the stored evaluation is not the one saved (%v, %v)", chain, err1, err2)
		}
		if e := x.m[key]; e.saved != evals[chain].Generation() {
			t.Errorf("%s: saved generation %d, want %d", chain, e.saved, evals[chain].Generation())
		}
	}
	// Unchanged since stored: saving again writes nothing (the file keeps its old time).
	old := time.Now().Add(-time.Hour)
	p := s.file(imageEvalKey{chains[0], 0})
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	x.save(chains[0], []*compliance.ImageEval{evals[chains[0]]})
	x.flush()
	if fi, err := os.Stat(p); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("an unchanged evaluation was written again (%v)", err)
	}
}
