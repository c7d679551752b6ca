package fsaccess_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rootscan/rootscan/fsaccess"
)

// walked is what a walk reported for one entry: its name, type, and the Info the walk gave (mode, size, inode).
type walked struct {
	name string
	typ  fs.FileMode
	mode fs.FileMode
	size int64
	ino  uint64
}

func (w walked) String() string {
	return fmt.Sprintf("%s %v %v %d %d", w.name, w.typ, w.mode, w.size, w.ino)
}

// walkAll walks root from start and records every entry with its Info; errors passed to fn are collected by name,
// except a bound reached, which ends the walk.
func walkAll(t testing.TB, r *fsaccess.Root, start string, opts fsaccess.WalkOptions) ([]walked, map[string]error, error) {
	t.Helper()
	var out []walked
	errs := map[string]error{}
	err := r.Walk(context.Background(), start, opts, func(name string, d fs.DirEntry, err error) error {
		if le := (*fsaccess.WalkLimitError)(nil); errors.As(err, &le) {
			return err
		}
		if err != nil {
			errs[name] = err
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			errs[name] = err
			return nil
		}
		out = append(out, walked{name: name, typ: d.Type(), mode: fi.Mode(), size: fi.Size(), ino: fi.Sys().(*syscall.Stat_t).Ino})
		return nil
	})
	return out, errs, err
}

// hostWalk is the reference: filepath.WalkDir of dir on the host, which does not follow links either, in the same
// lexical order, with Lstat data. Names are relative to dir and prefixed with start.
func hostWalk(t testing.TB, dir, start string) []walked {
	t.Helper()
	var out []walked
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		name := start
		if rel != "." {
			name = filepath.ToSlash(filepath.Join(start, rel))
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		typ := d.Type()
		if rel == "." {
			typ = fs.ModeDir
		}
		out = append(out, walked{name: name, typ: typ, mode: fi.Mode(), size: fi.Size(), ino: fi.Sys().(*syscall.Stat_t).Ino})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The descriptor walk of the hostile tree reports exactly the image's entries with the image's stat data, never
// follows a link out of the root (to /, to ../.., to an absolute host directory, through /proc magic links), and a
// walk that starts at a link to a directory follows it inside the root only.
func TestWalkStaysInRoot(t *testing.T) {
	tr := newHostileTree(t)
	write(t, filepath.Join(tr.root, "srv/a/b/c"), "c")
	symlink(t, "../../../../..", filepath.Join(tr.root, "srv/a/b/up"))
	r := openRoot(t, tr.root, fsaccess.Options{})

	got, errs, err := walkAll(t, r, ".", fsaccess.WalkOptions{})
	if err != nil || len(errs) > 0 {
		t.Fatalf("Walk: %v, entry errors %v", err, errs)
	}
	want := hostWalk(t, tr.root, ".")
	if !slices.Equal(got, want) {
		t.Errorf("Walk(.) differs from the host's walk of the root:\n got %v\nwant %v", got, want)
	}
	for _, w := range got {
		if strings.HasPrefix(w.name, "slash/") || strings.HasPrefix(w.name, "etc/dotdot/") || strings.HasPrefix(w.name, "abs-canary-dir/") || strings.HasPrefix(w.name, "srv/a/b/up/") {
			t.Errorf("walk followed a link: %s", w.name)
		}
	}

	// Starting at a link: "slash" (-> /) and "etc/dotdot" (-> ../..) are the root's own top, never the host's.
	top := hostWalk(t, tr.root, "x")
	for _, start := range []string{"slash", "etc/dotdot", "srv/a/b/up"} {
		got, errs, err := walkAll(t, r, start, fsaccess.WalkOptions{})
		if err != nil || len(errs) > 0 {
			t.Fatalf("Walk(%s): %v, entry errors %v", start, err, errs)
		}
		if len(got) != len(top) {
			t.Fatalf("Walk(%s) = %d entries, want the root's %d", start, len(got), len(top))
		}
		for i := range got {
			w := top[i]
			w.name = start + strings.TrimPrefix(w.name, "x")
			if i == 0 {
				w.ino = got[0].ino // the start entry is the link's target (Stat), as fs.WalkDir does
			}
			if got[i] != w {
				t.Errorf("Walk(%s) entry %d = %v, want %v", start, i, got[i], w)
			}
		}
	}
	// A link to a host directory is refused at the start, not walked on the host.
	if _, errs, err := walkAll(t, r, "abs-canary-dir", fsaccess.WalkOptions{}); err != nil || !errors.Is(errs["abs-canary-dir"], fs.ErrNotExist) {
		t.Errorf("Walk(abs-canary-dir) = %v, %v; want a does-not-exist error for the start", errs, err)
	}
}

// A directory replaced by a symlink (to the host's / or to a host directory) between being listed and being
// opened fails to open with an error for that entry; nothing below it is reported.
func TestWalkDirSwappedForLink(t *testing.T) {
	tr := newHostileTree(t)
	for _, d := range []string{"a", "b", "c"} {
		write(t, filepath.Join(tr.root, "w", d, "inside"), d)
	}
	r := openRoot(t, tr.root, fsaccess.Options{})
	swap := func(name, target string) {
		p := filepath.Join(tr.root, name)
		if err := os.Rename(p, p+".old"); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	errs := map[string]error{}
	err := r.Walk(context.Background(), "w", fsaccess.WalkOptions{}, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			errs[name] = err
			return nil
		}
		names = append(names, name)
		if len(names) > 20 {
			return fs.SkipAll // the walk escaped: enough to fail, no need to walk the host
		}
		switch name {
		case "w/a": // the entry itself, just before the walk opens it
			swap("w/a", tr.canaryDir)
		case "w/b/inside": // a later sibling, while the walk is inside w/b
			swap("w/c", "/")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"w", "w/a", "w/b", "w/b/inside", "w/c"}; !slices.Equal(names, want) {
		t.Errorf("walked %v, want %v", names, want)
	}
	for _, name := range []string{"w/a", "w/c"} {
		if !errors.Is(errs[name], syscall.ELOOP) && !errors.Is(errs[name], syscall.ENOTDIR) {
			t.Errorf("error for %s = %v, want ELOOP or ENOTDIR", name, errs[name])
		}
	}
	// The swapped entries, kept past the walk, describe the links, not what they point to.
	fi, err := r.Lstat("w/a")
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Lstat(w/a) = %v, %v", fi, err)
	}
}

// A DirEntry kept after the walk left its directory still answers Info, by name through the root.
func TestWalkEntryInfoAfterWalk(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "d/f"), "12345")
	r := openRoot(t, dir, fsaccess.Options{})
	var kept fs.DirEntry
	if err := r.Walk(context.Background(), ".", fsaccess.WalkOptions{}, func(name string, d fs.DirEntry, err error) error {
		if name == "d/f" {
			kept = d
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	fi, err := kept.Info()
	if err != nil || fi.Size() != 5 || !fi.Mode().IsRegular() {
		t.Errorf("Info after the walk = %v, %v", fi, err)
	}
}

// mkTree makes a tree of the given depth (a chain of directories d/d/...) with width files in the deepest one.
func mkTree(t testing.TB, depth, width int) string {
	t.Helper()
	dir := t.TempDir()
	p := dir
	for range depth {
		p = filepath.Join(p, "d")
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range width {
		write(t, filepath.Join(p, fmt.Sprintf("f%03d", i)), "")
	}
	return dir
}

// The bounds: exactly at a bound the walk succeeds and sees everything; one past it the whole walk fails with
// ErrLimit (MaxDepth, MaxEntries: fn returns the limit error) or the directory's listing fails with ErrLimit
// (MaxDirEntries, reported to fn). Entries are counted below the root; MaxDepth bounds the directories listed.
func TestWalkBoundsTable(t *testing.T) {
	for _, tc := range []struct {
		name          string
		depth, width  int
		opts          fsaccess.WalkOptions
		maxDirEntries int
		wantErr       error // of Walk
		wantEntryErr  error // passed to fn
		wantCount     int   // entries fn saw without an error, -1: do not check
	}{
		{name: "defaults", depth: 3, width: 10, wantCount: 1 + 3 + 10},
		{name: "depth at bound", depth: 5, width: 1, opts: fsaccess.WalkOptions{MaxDepth: 5}, wantCount: 1 + 5 + 1},
		{name: "depth past bound", depth: 6, width: 1, opts: fsaccess.WalkOptions{MaxDepth: 5}, wantErr: fsaccess.ErrLimit, wantCount: 1 + 5},
		{name: "empty dir at bound", depth: 5, width: 0, opts: fsaccess.WalkOptions{MaxDepth: 5}, wantCount: 1 + 5},
		{name: "entries at bound", depth: 1, width: 9, opts: fsaccess.WalkOptions{MaxEntries: 10}, wantCount: 1 + 10},
		{name: "entries past bound", depth: 1, width: 10, opts: fsaccess.WalkOptions{MaxEntries: 10}, wantErr: fsaccess.ErrLimit, wantCount: 1 + 10},
		{name: "dir entries at bound", depth: 1, width: 20, maxDirEntries: 20, wantCount: 1 + 1 + 20},
		{name: "dir entries past bound", depth: 1, width: 21, maxDirEntries: 20, wantEntryErr: fsaccess.ErrLimit, wantCount: 1 + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := mkTree(t, tc.depth, tc.width)
			r := openRoot(t, dir, fsaccess.Options{MaxDirEntries: tc.maxDirEntries})
			got, errs, err := walkAll(t, r, ".", tc.opts)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Errorf("Walk err = %v, want %v", err, tc.wantErr)
			}
			var entryErr error
			for _, e := range errs {
				entryErr = e
			}
			if !errors.Is(entryErr, tc.wantEntryErr) || (tc.wantEntryErr == nil) != (entryErr == nil) {
				t.Errorf("entry errors %v, want %v", errs, tc.wantEntryErr)
			}
			if tc.wantCount >= 0 && len(got) != tc.wantCount {
				t.Errorf("saw %d entries, want %d", len(got), tc.wantCount)
			}
			if tc.wantErr == nil && tc.wantEntryErr == nil {
				if want := hostWalk(t, dir, "."); !slices.Equal(got, want) {
					t.Errorf("walk differs from the host's:\n got %v\nwant %v", got, want)
				}
			}
		})
	}
}

// FuzzWalk builds a small tree from the input (directories, files of some size, links, including links up and out)
// and checks the descriptor walk against the host's filepath.WalkDir: same names in the same order, same types,
// same stat data, and with a bound on entries (the root not counted), the walk fails exactly when the tree is larger.
func FuzzWalk(f *testing.F) {
	for _, s := range []string{"", "d", "dfdfl", "ddddddddf", "flflflfl", "dldl.d.f", "ffffffffffffffffffff", "d.d.d.ff.l.l"} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(5))
	}
	f.Fuzz(func(t *testing.T, ops string, maxEntries uint8) {
		if len(ops) > 64 {
			ops = ops[:64]
		}
		dir := t.TempDir()
		cur := dir
		targets := []string{"/", "..", "../..", "/etc", dir, "d0", "f1/x"}
		for i, op := range []byte(ops) {
			name := filepath.Join(cur, fmt.Sprintf("%c%d", "dfl"[int(op)%3], i))
			switch {
			case op == '.':
				if cur != dir {
					cur = filepath.Dir(cur)
				}
			case op%3 == 0:
				if err := os.Mkdir(name, 0o755); err != nil {
					t.Fatal(err)
				}
				cur = name
			case op%3 == 1:
				if err := os.WriteFile(name, make([]byte, int(op)), 0o600|os.FileMode(op)&0o055); err != nil {
					t.Fatal(err)
				}
			default:
				if err := os.Symlink(targets[int(op)%len(targets)], name); err != nil {
					t.Fatal(err)
				}
			}
		}
		r := openRoot(t, dir, fsaccess.Options{})
		want := hostWalk(t, dir, ".")
		got, errs, err := walkAll(t, r, ".", fsaccess.WalkOptions{MaxEntries: int(maxEntries)})
		if len(errs) > 0 {
			t.Fatalf("entry errors: %v", errs)
		}
		if maxEntries > 0 && len(want)-1 > int(maxEntries) {
			if !errors.Is(err, fsaccess.ErrLimit) || len(got) != int(maxEntries)+1 {
				t.Fatalf("%d entries with MaxEntries %d: walk saw %d, err %v; want ErrLimit after the root and %d", len(want), maxEntries, len(got), err, maxEntries)
			}
			want = want[:maxEntries+1]
		} else if err != nil {
			t.Fatalf("Walk: %v", err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("walk differs from the host's:\n got %v\nwant %v", got, want)
		}
	})
}

// With NoXDev, a mount inside the root is neither statted nor listed (ErrCrossesMount), as Root.Lstat and ReadDir
// refuse it; without it, the mount's content is walked.
func TestWalkNoXDev(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "etc/os-release"), "ID=debian\n")
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	write(t, filepath.Join(mnt, "volume-file"), "x")

	r := openRoot(t, dir, fsaccess.Options{})
	got, errs, err := walkAll(t, r, ".", fsaccess.WalkOptions{})
	if err != nil || len(errs) > 0 || !slices.ContainsFunc(got, func(w walked) bool { return w.name == "mnt/volume-file" }) {
		t.Errorf("Walk without NoXDev = %v, %v, %v; want the mount's content", got, errs, err)
	}

	nox := openRoot(t, dir, fsaccess.Options{NoXDev: true})
	got, errs, err = walkAll(t, nox, ".", fsaccess.WalkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(errs["mnt"], fsaccess.ErrCrossesMount) {
		t.Errorf("NoXDev: error for mnt = %v, want ErrCrossesMount", errs["mnt"])
	}
	var names []string
	for _, w := range got {
		names = append(names, w.name)
	}
	if want := []string{".", "etc", "etc/os-release"}; !slices.Equal(names, want) {
		t.Errorf("NoXDev walk = %v, want %v", names, want)
	}
	// The root's own Lstat agrees.
	if _, err := nox.Lstat("mnt"); !errors.Is(err, fsaccess.ErrCrossesMount) {
		t.Errorf("NoXDev Lstat(mnt) = %v, want ErrCrossesMount", err)
	}
}
