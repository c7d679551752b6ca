package scan

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
)

// seenAnalyzer records every name the shared walk offers it.
type seenAnalyzer struct{ seen []string }

func (a *seenAnalyzer) Name() string                                                  { return "seen" }
func (a *seenAnalyzer) Paths() []string                                               { return nil }
func (a *seenAnalyzer) Version() int                                                  { return 1 }
func (a *seenAnalyzer) Requires() []string                                            { return nil }
func (a *seenAnalyzer) Analyze(context.Context, FS, *report.Result) error             { return nil }
func (a *seenAnalyzer) AnalyzeFile(context.Context, FS, string, *report.Result) error { return nil }
func (a *seenAnalyzer) Wants(name string, _ fs.DirEntry) bool {
	a.seen = append(a.seen, name)
	return false
}

// The shared walk offers the analyzers the same entries, in the same order, with the same errors for its bounds, on
// an fsaccess root (the descriptor walk) and on an in-memory tree (the walk by name): /proc, /sys and /dev at the
// top are left out, a directory too deep is reported and skipped, and too many entries end the walk with
// ErrWalkLimit.
func TestWalkSameOnEveryFS(t *testing.T) {
	files := []string{"a/b/c/deep", "a/b/file", "a/z", "dev/null", "proc/1/status", "sys/x", "top", "x/proc/kept"}
	dir := t.TempDir()
	mem := fstest.MapFS{}
	for _, f := range files {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		mem[f] = &fstest.MapFile{Data: []byte("x")}
	}
	root, err := fsaccess.OpenDir(dir, fsaccess.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, tc := range []struct {
		name   string
		lim    WalkLimits
		want   []string
		errors []string
	}{
		{name: "no bound", want: []string{"a", "a/b", "a/b/c", "a/b/c/deep", "a/b/file", "a/z", "top", "x", "x/proc", "x/proc/kept"}},
		{name: "depth", lim: WalkLimits{MaxDepth: 2}, want: []string{"a", "a/b", "a/b/file", "a/z", "top", "x", "x/proc", "x/proc/kept"},
			errors: []string{"a/b/c: root too large: deeper than 2 directories; not analyzed"}},
		{name: "entries", lim: WalkLimits{MaxEntries: 4}, want: []string{"a", "a/b", "a/b/c", "a/b/c/deep"},
			errors: []string{": root too large: more than 4 files and directories; the rest was not analyzed"}},
	} {
		for fsName, fsys := range map[string]FS{"fsaccess": root, "MapFS": mem} {
			a := &seenAnalyzer{}
			res := RunWithLimits(context.Background(), fsys, []Analyzer{a}, tc.lim)
			var errs []string
			for _, e := range res.Errors {
				errs = append(errs, e.Path+": "+e.Err)
			}
			if !slices.Equal(a.seen, tc.want) || !slices.Equal(errs, tc.errors) {
				t.Errorf("%s on %s: walked %q, errors %q; want %q, %q", tc.name, fsName, a.seen, errs, tc.want, tc.errors)
			}
			for _, e := range res.Errors {
				if !strings.Contains(e.Err, ErrWalkLimit.Error()) {
					t.Errorf("%s on %s: error %q does not say %q", tc.name, fsName, e.Err, ErrWalkLimit)
				}
			}
		}
	}
}
