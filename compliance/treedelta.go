package compliance

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// maxKeptTreeBytes bounds the files() listing an image evaluation keeps for its containers (about 150,000 entries of
// a typical image): a larger image's containers walk their merged root, as they would without the image's listing.
const maxKeptTreeBytes = 16 << 20

// fileDataBytes is what one kept entry takes besides its path (a fileData on 64-bit).
const fileDataBytes = 64

// imageTree is the files() listing of an image, kept with its evaluation so that a container's listing is the image's
// with the container's upper dir applied (deltaTree) instead of a second walk of the whole merged root: the baseline's
// tree-wide controls (setuid files, world-writable files, keys) read it, and runc's etc/hosts touches every container.
type imageTree struct {
	entries []fileData // in walk order, without a session
	deep    []string   // the directories the walk left out for depth, in walk order
	bytes   int
}

// keepTree returns s's listing for the image evaluation, nil when there is none to trust as a whole: the walk failed
// (the entry bound), an entry could not be read (the count and the listing would differ from the container's walk in
// ways the delta does not describe), it stopped at Limits.MaxTreeBytes, or it is past maxKeptTreeBytes.
func keepTree(s *session) *imageTree {
	if !s.treeDone || s.treeErr != nil || s.treeWarned || s.treeData == nil || s.treeCut != "" {
		return nil
	}
	t := &imageTree{entries: make([]fileData, len(s.treeData)), deep: slices.Clone(s.treeDeep)}
	t.bytes = len(t.entries) * fileDataBytes
	for i, d := range s.treeData {
		t.entries[i] = fileData{path: d.path, size: d.size, mode: d.mode, uid: d.uid, gid: d.gid, hasIDs: d.hasIDs}
		t.bytes += len(d.path)
	}
	for _, p := range t.deep {
		t.bytes += len(p) + 16
	}
	if t.bytes > maxKeptTreeBytes {
		return nil
	}
	return t
}

// walkCompare orders paths as the walk visits them: depth first, each directory's names sorted, so a directory's
// entries come right after it ("/a", "/a/b", "/a.b"): '/' sorts before every other byte.
func walkCompare(a, b string) int {
	for i := range min(len(a), len(b)) {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if x == '/' {
			return -1
		}
		if y == '/' {
			return 1
		}
		return int(x) - int(y)
	}
	return len(a) - len(b)
}

// treeItem is one visited entry of a listing being merged: an entry, or a directory left out for depth (d nil).
type treeItem struct {
	path string
	d    *fileData
}

// errTreeDelta says the delta cannot be applied to the image's listing exactly; the merged root is walked instead.
var errTreeDelta = errors.New("listing delta not applicable")

// deltaTree sets s's listing to base with d applied, read through s's root (the container's merged root): what a
// walk of that root gives, in the same order, with the same directories left out for depth and the same entry-bound
// error. Paths d names as replaced (files, links, whiteouts, opaque or redirected directories of the upper dir) drop
// the image's entries there and are walked on the merged root; paths it names as changed (directories merged with
// the image's) are stat'ed again, their entries coming from the image or from the delta. It returns false, leaving
// s unchanged, when the listing cannot be made exactly that way (an unreadable entry, an incomplete delta).
func (s *session) deltaTree(base *imageTree, d *Delta) bool {
	if base == nil || d == nil || d.Unknown {
		return false
	}
	replaced, changed := map[string]bool{}, map[string]bool{}
	for _, p := range d.Replaced {
		if p = cleanPath(p); p == "/" {
			return false
		}
		replaced[p] = true
	}
	for _, p := range d.Changed {
		if p = cleanPath(p); p != "/" && !replaced[p] {
			changed[p] = true
		}
	}
	ups := make([]string, 0, len(replaced)+len(changed))
	for p := range replaced {
		ups = append(ups, p)
	}
	for p := range changed {
		ups = append(ups, p)
	}
	slices.SortFunc(ups, walkCompare)
	// below are the paths whose entries a walk does not visit or the delta lists itself: replaced paths, directories
	// left out for depth or as kernel directories, and non-directories.
	below := map[string]bool{}
	hidden := func(p string) bool {
		for q := path.Dir(p); q != "/"; q = path.Dir(q) {
			if below[q] {
				return true
			}
		}
		return false
	}
	var add []treeItem
	var tb treeBuilder
	for _, p := range ups {
		if hidden(p) {
			continue
		}
		// The upper dir holds every directory leading to its entries: one it does not name is a delta that does
		// not describe an overlay's upper dir.
		if q := path.Dir(p); q != "/" && !changed[q] && !replaced[q] {
			return false
		}
		below[p] = true
		if replaced[p] {
			items, err := s.walkSub(&tb, p)
			if err != nil {
				return false
			}
			add = append(add, items...)
			continue
		}
		item, descend, err := s.visit(&tb, p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue // not in the merged root: neither are its entries (below[p] is set)
		case err != nil:
			return false
		}
		if item.path != "" {
			add = append(add, item)
		}
		below[p] = !descend
		if tb.bytes > s.lim.MaxTreeBytes {
			return false // past the listing's byte bound: the walk stops there itself, without this list
		}
	}
	items := s.mergeTree(base, add, func(p string) bool { return changed[p] || replaced[p] || hidden(p) })
	s.treeDone, s.treeMerged, s.treeData, s.treeDeep, s.treeErr, s.treeCut = true, true, nil, nil, nil, ""
	used := 0
	for i, it := range items {
		if i == s.lim.MaxEntries {
			s.treeErr = fmt.Errorf("files: more than %d entries under /", s.lim.MaxEntries)
			break
		}
		if !s.treeCharge(&used, it.path) {
			break
		}
		if it.d == nil {
			s.treeDeep = append(s.treeDeep, it.path)
		} else {
			s.treeData = append(s.treeData, it.d)
		}
	}
	if s.treeData == nil {
		s.treeData = []*fileData{}
	}
	return true
}

// mergeTree is base's entries and directories left out for depth, but for the paths drop says the delta lists
// itself, merged in walk order with add; the image's entries are copied into s.
func (s *session) mergeTree(base *imageTree, add []treeItem, drop func(string) bool) []treeItem {
	kept := make([]fileData, 0, len(base.entries))
	items := make([]treeItem, 0, len(base.entries)+len(base.deep))
	for _, e := range base.entries {
		if !drop(e.path) {
			e.s = s
			kept = append(kept, e)
			items = append(items, treeItem{path: e.path, d: &kept[len(kept)-1]})
		}
	}
	var deep []treeItem
	for _, p := range base.deep {
		if !drop(p) {
			deep = append(deep, treeItem{path: p})
		}
	}
	items = mergeItems(mergeItems(items, deep), add)
	return items
}

// mergeItems merges two lists sorted in walk order.
func mergeItems(a, b []treeItem) []treeItem {
	if len(b) == 0 {
		return a
	}
	out := make([]treeItem, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if walkCompare(a[0].path, b[0].path) <= 0 {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
}

// visit is the walk's visit of the entry at p (absolute) on s's root: the item it lists (none for a kernel
// directory), and whether the walk goes on into it.
func (s *session) visit(tb *treeBuilder, p string) (treeItem, bool, error) {
	fi, err := s.view.root.Lstat(p[1:])
	if err != nil {
		return treeItem{}, false, err
	}
	return s.visitInfo(tb, p, fi)
}

func (s *session) visitInfo(tb *treeBuilder, p string, fi fs.FileInfo) (treeItem, bool, error) {
	depth := strings.Count(p, "/")
	switch {
	case !fi.IsDir():
	case depth == 1 && (p == "/proc" || p == "/sys" || p == "/dev"):
		return treeItem{}, false, nil // not walked (fsaccess.WalkOptions.SkipKernelDirs)
	case depth > s.lim.MaxDepth || len(p) > s.lim.MaxDirPath:
		return treeItem{path: p}, false, nil
	}
	tb.add(s, p[1:], fi)
	return treeItem{path: p, d: tb.out[len(tb.out)-1]}, fi.IsDir(), nil
}

// walkSub is the walk of the subtree at p (absolute) on s's root: nothing when p does not exist there (a whiteout).
// It fails on what would make the walk warn, and past the entry or byte bound.
func (s *session) walkSub(tb *treeBuilder, p string) ([]treeItem, error) {
	item, descend, err := s.visit(tb, p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []treeItem
	if item.path != "" {
		out = append(out, item)
	}
	if !descend {
		return out, nil
	}
	return s.walkDir(tb, p, out)
}

func (s *session) walkDir(tb *treeBuilder, dir string, out []treeItem) ([]treeItem, error) {
	if err := s.ctx.Err(); err != nil {
		return nil, err
	}
	entries, err := fs.ReadDir(s.view.root, dir[1:])
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			return nil, err
		}
		item, descend, err := s.visitInfo(tb, dir+"/"+e.Name(), fi)
		if err != nil {
			return nil, err
		}
		if item.path != "" {
			out = append(out, item)
		}
		if len(out) > s.lim.MaxEntries || tb.bytes > s.lim.MaxTreeBytes {
			return nil, errTreeDelta
		}
		if descend {
			if out, err = s.walkDir(tb, item.path, out); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}
