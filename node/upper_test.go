package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
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
	read := func() upperState { t.Helper(); return readUpperDir(t, dir) }
	paths := func(st upperState) []string {
		var out []string
		for i := range st.entries {
			out = append(out, st.path(i))
		}
		return out
	}
	first := read()
	if want := []string{"etc", "etc/app.conf", "usr", "usr/local", "usr/local/bin", "usr/local/bin/tool"}; !slices.Equal(paths(first), want) || first.truncated {
		t.Fatalf("paths %q (truncated %v), want %q", paths(first), first.truncated, want)
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

// readUpperDir is readUpper of the directory dir.
func readUpperDir(t *testing.T, dir string) upperState {
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

// upperDelta spells out an upper dir's paths only when they fit maxDeltaBytes, counted on the compact state: a
// small dir's delta names every entry (pathBytes counts exactly what it spells), and 1,100 files under ~3,900-byte
// paths (4.3 MB) give an Unknown delta without building those paths.
func TestUpperDeltaByteBound(t *testing.T) {
	dir := t.TempDir()
	read := func() upperState { t.Helper(); return readUpperDir(t, dir) }
	long := dir
	for i := range 15 {
		long = filepath.Join(long, fmt.Sprintf("%03d", i)+strings.Repeat("p", 247))
	}
	if err := os.MkdirAll(long, 0o755); err != nil {
		t.Fatal(err)
	}
	st := read()
	d := upperDelta(nil, st)
	spelled := 0
	for _, p := range append(d.Changed[1:], d.Replaced...) {
		spelled += len(p)
	}
	if d.Unknown || len(d.Changed)+len(d.Replaced) != len(st.entries)+1 || int64(spelled) != st.pathBytes() {
		t.Fatalf("small upper dir: delta unknown %v, %d paths of %d bytes; want %d paths of %d bytes",
			d.Unknown, len(d.Changed)+len(d.Replaced)-1, spelled, len(st.entries), st.pathBytes())
	}
	for i := range 1100 {
		if err := os.WriteFile(filepath.Join(long, fmt.Sprintf("%04d", i)+strings.Repeat("f", 116)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st = read()
	if st.pathBytes() <= maxDeltaBytes {
		t.Fatalf("the long paths take %d bytes, not past the bound %d", st.pathBytes(), maxDeltaBytes)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	d = upperDelta(nil, st)
	runtime.ReadMemStats(&after)
	if !d.Unknown || len(d.Replaced) != 0 || !slices.Equal(d.Changed, []string{"/"}) {
		t.Errorf("past the bound: delta unknown %v, %d replaced, changed %q; want unknown with only /", d.Unknown, len(d.Replaced), d.Changed)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
		t.Errorf("upperDelta allocated %d bytes past the bound, want only the path lengths (%d entries)", n, len(st.entries))
	}
}

// BenchmarkReadUpperLongPaths reads an upper dir of 20,000 empty files under ~4,000-byte paths (the hostile case of
// issue 13) and reports what the upperState keeps live (retained-B: heap after a GC with the state held, less the
// heap before the read).
func BenchmarkReadUpperLongPaths(b *testing.B) {
	dir := b.TempDir()
	long := filepath.Join(dir, strings.Repeat(strings.Repeat("p", 240)+"/", 16))
	const files, perDir = 20_000, 1_000
	for i := range files {
		d := filepath.Join(long, fmt.Sprintf("%03d", i/perDir))
		if i%perDir == 0 {
			if err := os.MkdirAll(d, 0o755); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("%05d", i)), nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	r, err := fsaccess.OpenDir(dir, fsaccess.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	var retained uint64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		st, err := readUpper(context.Background(), r)
		if err != nil || len(st.entries) < files {
			b.Fatalf("read %d entries: %v", len(st.entries), err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(st)
		retained = max(retained, after.HeapAlloc-min(after.HeapAlloc, before.HeapAlloc))
	}
	b.ReportMetric(float64(retained), "retained-B")
}
