package compliance

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/rootscan/rootscan/fsaccess"
)

// tree is every entry under the root's top (volumes excluded: they are not the image), walked once per evaluation
// and shared by all files() calls, with fsaccess's one walk: on a Root it opens each directory once, relative to its
// open parent, and stats each entry there (fstatat) instead of resolving the entry's whole path from the top, which
// made files() over a 70,000-file image cost a path resolution per entry. Links are not followed; /proc, /sys and
// /dev are not walked; past Limits.MaxEntries or MaxDepth files() fails rather than answer from part of the tree.
func (s *session) tree() ([]*fileData, error) {
	if s.treeDone {
		return s.treeData, s.treeErr
	}
	s.treeDone = true
	var tb treeBuilder
	opts := fsaccess.WalkOptions{MaxEntries: s.lim.MaxEntries, MaxDepth: s.lim.MaxDepth, SkipKernelDirs: true}
	err := fsaccess.WalkFS(s.ctx, s.view.root, ".", opts, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			var le *fsaccess.WalkLimitError
			switch {
			case errors.As(err, &le) && le.Depth:
				return fmt.Errorf("files: %s is deeper than %d directories", name, le.Limit)
			case le != nil:
				return fmt.Errorf("files: more than %d entries under /", le.Limit)
			case name == ".":
				return err
			}
			s.warn(name, err)
			return nil
		}
		if name == "." {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			s.warn(name, err)
			return nil
		}
		tb.add(s, name, fi)
		return nil
	})
	s.treeData, s.treeErr = tb.out, err
	return tb.out, err
}

// treeChunk is how many entries treeBuilder allocates at once.
const treeChunk = 512

// treeBuilder collects walked entries as fileData, allocated in chunks and with only the stat facts controls read,
// since the whole tree stays in memory for the evaluation: for a 70,000-file image, one allocation per entry plus a
// full stat buffer and a resolution each was most of what the baseline added to a scan's memory.
type treeBuilder struct {
	chunk []fileData
	out   []*fileData
}

// add records the entry name (relative to the root) with its Lstat; s may be nil and set later.
func (tb *treeBuilder) add(s *session, name string, fi fs.FileInfo) {
	if len(tb.chunk) == cap(tb.chunk) {
		tb.chunk = make([]fileData, 0, treeChunk)
	}
	d := fileData{s: s, path: "/" + name, size: fi.Size(), mode: fi.Mode()}
	if st, ok := fsaccess.StatOf(fi); ok {
		d.uid, d.gid, d.hasIDs = st.Uid, st.Gid, true
	}
	tb.chunk = append(tb.chunk, d)
	tb.out = append(tb.out, &tb.chunk[len(tb.chunk)-1])
}

// treeInfo is a files() entry as the fs.FileInfo its attributes are read from, so an entry is described by the
// same code as file("/x"). The modification time is not kept: no attribute reads it.
type treeInfo fileData

func (t *treeInfo) Name() string       { return t.path[strings.LastIndexByte(t.path, '/')+1:] }
func (t *treeInfo) Size() int64        { return t.size }
func (t *treeInfo) Mode() fs.FileMode  { return t.mode }
func (t *treeInfo) ModTime() time.Time { return time.Time{} }
func (t *treeInfo) IsDir() bool        { return t.mode.IsDir() }
func (t *treeInfo) Sys() any           { return nil }
