package fsaccess_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/rootscan/rootscan/fsaccess"
)

// walkTreeFixture makes the same small tree on disk and in memory: a top level with the kernel's directories, a
// chain three directories deep and a link.
func walkTreeFixture(t *testing.T) (*fsaccess.Root, fstest.MapFS) {
	t.Helper()
	files := []string{"a/b/c/deep", "a/b/file", "a/z", "dev/null", "etc/os-release", "proc/1/status", "sys/kernel/x", "top", "x/dev/kept"}
	dir := t.TempDir()
	mem := fstest.MapFS{}
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		mem[f] = &fstest.MapFile{Data: []byte("x"), Mode: 0o644}
	}
	if err := os.Symlink("a/b", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	mem["link"] = &fstest.MapFile{Data: []byte("a/b"), Mode: fs.ModeSymlink}
	r, err := fsaccess.OpenDir(dir, fsaccess.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, mem
}

// The walk of a Root and the walk of any other FS are one walk: the same entries in the same order, the same
// bounds reported at the same entries, the same skip list, the same answers to SkipDir and SkipAll.
func TestWalkFSSameOnEveryFS(t *testing.T) {
	r, mem := walkTreeFixture(t)
	type step struct {
		name string
		err  string
	}
	for _, tc := range []struct {
		name   string
		opts   fsaccess.WalkOptions
		answer func(name string, err error) error // what fn returns
		want   []string
		errs   []step
		err    bool // the walk ends with ErrLimit
	}{
		{name: "all", want: []string{".", "a", "a/b", "a/b/c", "a/b/c/deep", "a/b/file", "a/z", "dev", "dev/null", "etc", "etc/os-release", "link", "proc", "proc/1", "proc/1/status", "sys", "sys/kernel", "sys/kernel/x", "top", "x", "x/dev", "x/dev/kept"}},
		{name: "kernel dirs skipped at the top only", opts: fsaccess.WalkOptions{SkipKernelDirs: true},
			want: []string{".", "a", "a/b", "a/b/c", "a/b/c/deep", "a/b/file", "a/z", "etc", "etc/os-release", "link", "top", "x", "x/dev", "x/dev/kept"}},
		{name: "too deep, skipped", opts: fsaccess.WalkOptions{MaxDepth: 2, SkipKernelDirs: true},
			answer: func(string, error) error { return fs.SkipDir },
			want:   []string{".", "a", "a/b", "a/b/file", "a/z", "etc", "etc/os-release", "link", "top", "x", "x/dev", "x/dev/kept"},
			errs:   []step{{"a/b/c", "walk a/b/c: limit exceeded: deeper than 2 directories"}}},
		{name: "too deep, ignored", opts: fsaccess.WalkOptions{MaxDepth: 2},
			answer: func(string, error) error { return nil },
			want:   []string{".", "a", "a/b"}, errs: []step{{"a/b/c", "walk a/b/c: limit exceeded: deeper than 2 directories"}}, err: true},
		{name: "too many, ended quietly", opts: fsaccess.WalkOptions{MaxEntries: 3},
			answer: func(string, error) error { return fs.SkipAll },
			want:   []string{".", "a", "a/b", "a/b/c"}, errs: []step{{"a/b/c/deep", "walk a/b/c/deep: limit exceeded: more than 3 entries"}}},
		{name: "too many", opts: fsaccess.WalkOptions{MaxEntries: 3},
			answer: func(_ string, err error) error { return err },
			want:   []string{".", "a", "a/b", "a/b/c"}, errs: []step{{"a/b/c/deep", "walk a/b/c/deep: limit exceeded: more than 3 entries"}}, err: true},
	} {
		for fsName, fsys := range map[string]fs.FS{"Root": r, "MapFS": mem} {
			var got []string
			var errs []step
			err := fsaccess.WalkFS(context.Background(), fsys, ".", tc.opts, func(name string, d fs.DirEntry, err error) error {
				if err != nil {
					errs = append(errs, step{name, err.Error()})
					return tc.answer(name, err)
				}
				got = append(got, name)
				return nil
			})
			if !slices.Equal(got, tc.want) || !slices.Equal(errs, tc.errs) {
				t.Errorf("%s on %s: visited %q, errors %q; want %q, %q", tc.name, fsName, got, errs, tc.want, tc.errs)
			}
			if errors.Is(err, fsaccess.ErrLimit) != tc.err || (err != nil) != tc.err {
				t.Errorf("%s on %s: walk err = %v, want a limit error: %v", tc.name, fsName, err, tc.err)
			}
		}
	}
}
