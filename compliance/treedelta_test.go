package compliance

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/rootscan/rootscan/scan"
)

// listing is a session's files() listing as text: every entry with the facts kept, the directories left out for
// depth, and the error, in order.
func listing(s *session) string {
	data, err := s.tree()
	var b strings.Builder
	for _, d := range data {
		fmt.Fprintf(&b, "%s %v %d %d %d %t\n", d.path, d.mode, d.size, d.uid, d.gid, d.hasIDs)
	}
	fmt.Fprintf(&b, "deep %q\ncut %q\nerr %v\n", s.treeDeep, s.treeCut, err)
	return b.String()
}

func treeSession(root scan.FS, lim Limits) *session {
	return &session{ctx: context.Background(), view: newView(root, nil), lim: lim.withDefaults(), log: slog.New(slog.DiscardHandler)}
}

// compareTrees checks that the merged root's listing made from the image's and d is the one a walk of merged gives,
// with the default bounds and with bounds the image is at (depth, entries, path length, bytes), so the delta crosses
// them both ways. Past the byte bound the delta may decline (the walk stops there itself): only then.
func compareTrees(t testing.TB, image, merged scan.FS, d Delta, what string) {
	t.Helper()
	img := treeSession(image, Limits{})
	img.tree()
	n := len(img.treeData) + len(img.treeDeep)
	b := 0
	for _, e := range img.treeData {
		b += len(e.path) + fileDataBytes
	}
	for _, p := range img.treeDeep {
		b += len(p) + fileDataBytes
	}
	for _, lim := range []Limits{{}, {MaxDepth: 1}, {MaxDepth: 2}, {MaxDepth: 3}, {MaxEntries: n}, {MaxEntries: n - 1}, {MaxEntries: n + 1, MaxDepth: 2},
		{MaxDirPath: 2}, {MaxDirPath: 8}, {MaxDirPath: 16}, {MaxTreeBytes: b}, {MaxTreeBytes: b + 100}, {MaxTreeBytes: b, MaxDirPath: 8}, {MaxTreeBytes: b / 2}} {
		img := treeSession(image, lim)
		img.tree()
		base := keepTree(img)
		if base == nil {
			continue // the image itself is past the bound: its containers walk
		}
		walked := treeSession(merged, lim)
		want := listing(walked)
		s := treeSession(merged, lim)
		if !s.deltaTree(base, &d) {
			if walked.treeCut != "" || walked.treeErr != nil {
				continue
			}
			t.Fatalf("%s, limits %+v: the delta was not applied", what, lim)
		}
		if got := listing(s); got != want {
			t.Fatalf("%s, limits %+v: listing from the delta\n%s\nwant (a walk)\n%s", what, lim, got, want)
		}
	}
}

func TestWalkCompare(t *testing.T) {
	sorted := []string{"/a", "/a/b", "/a/b/c", "/a-b", "/a.b", "/a.b/c", "/ab", "/b"}
	for i := range sorted {
		for j := range sorted {
			if c := walkCompare(sorted[i], sorted[j]); (c < 0) != (i < j) || (c == 0) != (i == j) {
				t.Errorf("walkCompare(%q, %q) = %d", sorted[i], sorted[j], c)
			}
		}
	}
}
