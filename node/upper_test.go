package node

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rootscan/rootscan/fsaccess"
)

// readUpper's digest is stable for an unchanged upper dir, moves with any change of an entry, lists the entries it
// hashed, and marks a tree past its bounds as truncated (so the container is never taken as unchanged).
func TestReadUpper(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"etc/app.conf", "usr/local/bin/tool"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func() upperState {
		t.Helper()
		r, err := fsaccess.OpenDir(dir, fsaccess.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		st, err := readUpper(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	first := read()
	if want := []string{"etc", "etc/app.conf", "usr", "usr/local", "usr/local/bin", "usr/local/bin/tool"}; !slices.Equal(first.paths, want) || first.truncated {
		t.Fatalf("paths %q (truncated %v), want %q", first.paths, first.truncated, want)
	}
	if again := read(); again.digest != first.digest {
		t.Errorf("digest of an unchanged dir moved: %s then %s", first.digest, again.digest)
	}
	if err := os.Chmod(filepath.Join(dir, "etc/app.conf"), 0o600); err != nil {
		t.Fatal(err)
	}
	changed := read()
	if changed.digest == first.digest {
		t.Error("digest did not change with a file's mode")
	}

	deep := filepath.Join(dir, strings.Repeat("d/", fsaccess.DefaultWalkMaxDepth+1))
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if st := read(); !st.truncated || st.digest == changed.digest {
		t.Errorf("a tree deeper than the walk's bound: truncated %v, digest moved %v", st.truncated, st.digest != changed.digest)
	}
}
