package compliance

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
)

// tree is every entry under the root's top (volumes excluded: they are not the image), walked once per evaluation
// and shared by all files() calls, with fsaccess's one walk: on a Root it opens each directory once, relative to its
// open parent, and stats each entry there (fstatat) instead of resolving the entry's whole path from the top, which
// made files() over a 70,000-file image cost a path resolution per entry. Links are not followed; /proc, /sys and
// /dev are not walked. A directory deeper than Limits.MaxDepth is left out and recorded (s.treeDeep), so the rest
// of the tree is still examined and the controls that read files() name what they did not see (noteDeep); past
// MaxEntries files() fails instead, since a tree too large to list is not one to judge from a part. A container's
// session with its image's listing makes it from that and its upper dir's delta instead (deltaTree), the same list.
func (s *session) tree() ([]*fileData, error) {
	if s.treeDone {
		return s.treeData, s.treeErr
	}
	if s.deltaTree(s.treeBase, s.treeDelta) {
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
				s.treeDeep = append(s.treeDeep, "/"+name)
				return fs.SkipDir
			case le != nil:
				return fmt.Errorf("files: more than %d entries under /", le.Limit)
			case name == ".":
				return err
			}
			s.treeWarned = true
			s.warn(name, err)
			return nil
		}
		if name == "." {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			s.treeWarned = true
			s.warn(name, err)
			return nil
		}
		tb.add(s, name, fi)
		return nil
	})
	s.treeData, s.treeErr = tb.out, err
	return tb.out, err
}

// maxDeepNamed is how many left-out directories a control's message names, and maxDeepPath how much of each path.
const (
	maxDeepNamed = 3
	maxDeepPath  = 300
)

// noteDeep adds to r what the files() calls of its control did not see: the directories under the listed dirs left
// out for depth. A failure stays a failure (what was found is named, and the note follows); a pass becomes an error,
// since nesting a setuid binary or a key one level deeper than the bound must not make the control pass.
func (s *session) noteDeep(r *report.ControlResult) {
	var deep []string
	for _, p := range s.treeDeep {
		for _, dir := range s.ctlFiles {
			if dir == "/" || p == dir || strings.HasPrefix(p, dir+"/") {
				deep = append(deep, p)
				break
			}
		}
	}
	if len(deep) == 0 {
		return
	}
	levels := strings.Count(deep[0], "/") - 1
	for _, p := range deep[1:] {
		levels = min(levels, strings.Count(p, "/")-1)
	}
	named := make([]string, 0, maxDeepNamed)
	for _, p := range deep[:min(len(deep), maxDeepNamed)] {
		if len(p) > maxDeepPath {
			p = p[:maxDeepPath] + "..."
		}
		named = append(named, p)
	}
	dirs := "directories"
	if len(deep) == 1 {
		dirs = "directory"
	}
	note := fmt.Sprintf("files: %d %s deeper than %d levels were not examined: %s", len(deep), dirs, levels, strings.Join(named, ", "))
	if len(deep) > len(named) {
		note += fmt.Sprintf(" and %d more", len(deep)-len(named))
	}
	switch r.Status {
	case report.ControlPassed:
		r.Status, r.Message = report.ControlError, note+"; nothing wrong in the rest"
	case report.ControlFailed, report.ControlError:
		r.Message += "; " + note
	}
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
