package scan

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/rootscan/rootscan/fsaccess"
)

type fakePathEntry struct {
	fs.DirEntry
	path string
}

func (e fakePathEntry) Path() string { return e.path }

type nameEntry string

func (n nameEntry) Name() string               { return string(n) }
func (n nameEntry) IsDir() bool                { return false }
func (n nameEntry) Type() fs.FileMode          { return 0 }
func (n nameEntry) Info() (fs.FileInfo, error) { return nil, errors.New("no info") }

func TestChildPath(t *testing.T) {
	for _, tc := range []struct {
		dir  string
		d    fs.DirEntry
		want string
	}{
		{".", nameEntry("etc"), "etc"},
		{"usr/bin", nameEntry("ls"), "usr/bin/ls"},
		{".", fakePathEntry{nameEntry("etc"), "etc"}, "etc"},
		{"usr/bin", fakePathEntry{nameEntry("ls"), "usr/bin/ls"}, "usr/bin/ls"},
		// A path that is not exactly path.Join(dir, name) is not trusted.
		{"usr/bin", fakePathEntry{nameEntry("ls"), "usr/sbin/ls"}, "usr/bin/ls"},
		{"usr/bin", fakePathEntry{nameEntry("ls"), "usr/bin/xls"}, "usr/bin/ls"},
		{"usr/bin", fakePathEntry{nameEntry("ls"), "usr/binxls"}, "usr/bin/ls"},
		{".", fakePathEntry{nameEntry("etc"), "x/etc"}, "etc"},
		{"usr", fakePathEntry{nameEntry("ls"), ""}, "usr/ls"},
	} {
		if got := childPath(tc.dir, tc.d); got != tc.want {
			t.Errorf("childPath(%q, %v) = %q, want %q", tc.dir, tc.d, got, tc.want)
		}
	}
}

// walkDir must visit what fs.WalkDir visits, in the same order and with the same names, on an fsaccess root (whose
// entries carry their paths) and on a MapFS (whose entries do not), SkipDir included.
func TestWalkDirLikeFSWalkDir(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"a/b/c/file", "a/b/other", "a/skip/inside", "a/z", "bin/ls", "top"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a/b", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	root, err := fsaccess.OpenDir(dir, fsaccess.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	mapfs := fstest.MapFS{
		"a/b/c/file": {}, "a/skip/inside": {}, "a/z": {}, "bin/ls": {}, "top": {},
		"link": {Mode: fs.ModeSymlink, Data: []byte("a/b")},
	}
	for name, fsys := range map[string]fs.FS{"fsaccess": root, "MapFS": mapfs} {
		visit := func(got *[]string) fs.WalkDirFunc {
			return func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				*got = append(*got, p)
				if d.IsDir() && d.Name() == "skip" {
					return fs.SkipDir
				}
				return nil
			}
		}
		var got, want []string
		if err := walkDir(fsys, ".", visit(&got)); err != nil {
			t.Fatal(err)
		}
		if err := fs.WalkDir(fsys, ".", visit(&want)); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) || len(got) < 10 {
			t.Errorf("%s: walkDir visited %q, fs.WalkDir %q", name, got, want)
		}
	}
}
