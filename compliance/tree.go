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
// /dev are not walked. A directory deeper than Limits.MaxDepth or with a path longer than Limits.MaxDirPath is left
// out and recorded (s.treeDeep), so the rest of the tree is still examined and the controls that read files() name
// what they did not see (noteDeep). The listing stops where it reaches Limits.MaxTreeBytes (s.treeCut, named the
// same way): 100,000 paths of 4,000 bytes no longer cost 400 MB. Past MaxEntries files() fails instead, since a
// tree too large to list is not one to judge from a part. A container's
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
	used := 0
	opts := fsaccess.WalkOptions{MaxEntries: s.lim.MaxEntries, MaxDepth: s.lim.MaxDepth, SkipKernelDirs: true}
	err := fsaccess.WalkFS(s.ctx, s.view.root, ".", opts, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			var le *fsaccess.WalkLimitError
			switch {
			case errors.As(err, &le) && le.Depth:
				return s.leaveOut(&used, "/"+name)
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
		if d.IsDir() && len(name)+1 > s.lim.MaxDirPath {
			return s.leaveOut(&used, "/"+name)
		}
		fi, err := d.Info()
		if err != nil {
			s.treeWarned = true
			s.warn(name, err)
			return nil
		}
		if !s.treeCharge(&used, "/"+name) {
			return fs.SkipAll
		}
		tb.add(s, name, fi)
		return nil
	})
	s.treeData, s.treeErr = tb.out, err
	return tb.out, err
}

// leaveOut records the directory p as left out of the listing (too deep or its path too long) and skips it, or
// ends the walk when the listing has no room left even for its name.
func (s *session) leaveOut(used *int, p string) error {
	if !s.treeCharge(used, p) {
		return fs.SkipAll
	}
	s.treeDeep = append(s.treeDeep, p)
	return fs.SkipDir
}

// treeCharge adds what keeping p (an entry or a left-out directory) costs to *used and says whether the listing
// still has room for it (Limits.MaxTreeBytes); when not, p is where the listing stops (s.treeCut). Both the walk
// and deltaTree charge every item in walk order this way, so they stop at the same path.
func (s *session) treeCharge(used *int, p string) bool {
	*used += len(p) + fileDataBytes
	if *used <= s.lim.MaxTreeBytes {
		return true
	}
	s.treeCut = p
	return false
}

// maxDeepNamed is how many left-out directories a control's message names, and maxDeepPath how much of each path.
const (
	maxDeepNamed = 3
	maxDeepPath  = 300
)

// cutReaches says whether the listing's byte bound left out part of dir's subtree. A listed dir's subtree is
// contiguous in walk order: the cut is in it, or before it.
func (s *session) cutReaches(dir string) bool {
	return s.treeCut != "" && (dir == "/" || walkCompare(s.treeCut, dir) <= 0 || strings.HasPrefix(s.treeCut, dir+"/"))
}

// noteDeep adds to r what the files() calls of its control did not see: the directories under the listed dirs left
// out for depth or path length, and the rest of the tree past where the listing stopped for its byte bound. A failure
// stays a failure (what was found is named, and the note follows); a pass becomes an error, since nesting a setuid
// binary or a key one level deeper than the bound (or behind enough long paths) must not make the control pass.
func (s *session) noteDeep(r *report.ControlResult) {
	var deep []string
	cut := false
	for _, dir := range s.ctlFiles {
		cut = cut || s.cutReaches(dir)
	}
	for _, p := range s.treeDeep {
		for _, dir := range s.ctlFiles {
			if dir == "/" || p == dir || strings.HasPrefix(p, dir+"/") {
				deep = append(deep, p)
				break
			}
		}
	}
	var notes []string
	if len(deep) > 0 {
		notes = append(notes, s.deepNote(deep))
	}
	if cut {
		bound := fmt.Sprintf("%d bytes", s.lim.MaxTreeBytes)
		if s.lim.MaxTreeBytes%(1<<20) == 0 {
			bound = fmt.Sprintf("%d MiB", s.lim.MaxTreeBytes>>20)
		}
		notes = append(notes, fmt.Sprintf("files: the listing stopped at its bound of %s: %s and what follows it were not examined",
			bound, shortPath(s.treeCut)))
	}
	if len(notes) == 0 {
		return
	}
	note := strings.Join(notes, "; ")
	switch r.Status {
	case report.ControlPassed:
		r.Status, r.Message = report.ControlError, note+"; nothing wrong in the rest"
	case report.ControlFailed, report.ControlError:
		r.Message += "; " + note
	}
}

// deepNote names the left-out directories deep (at least one): why, how many, and the first few.
func (s *session) deepNote(deep []string) string {
	levels, long := -1, false
	for _, p := range deep {
		if len(p) > s.lim.MaxDirPath {
			long = true
		} else if d := strings.Count(p, "/") - 1; levels < 0 || d < levels {
			levels = d
		}
	}
	named := make([]string, 0, maxDeepNamed)
	for _, p := range deep[:min(len(deep), maxDeepNamed)] {
		named = append(named, shortPath(p))
	}
	dirs := "directories"
	if len(deep) == 1 {
		dirs = "directory"
	}
	var why string
	switch {
	case levels >= 0 && long:
		why = fmt.Sprintf("deeper than %d levels or with paths longer than %d bytes", levels, s.lim.MaxDirPath)
	case long:
		why = fmt.Sprintf("with paths longer than %d bytes", s.lim.MaxDirPath)
	default:
		why = fmt.Sprintf("deeper than %d levels", levels)
	}
	note := fmt.Sprintf("files: %d %s %s were not examined: %s", len(deep), dirs, why, strings.Join(named, ", "))
	if len(deep) > len(named) {
		note += fmt.Sprintf(" and %d more", len(deep)-len(named))
	}
	return note
}

// shortPath is p cut to maxDeepPath bytes for a message.
func shortPath(p string) string {
	if len(p) > maxDeepPath {
		return p[:maxDeepPath] + "..."
	}
	return p
}

// treeChunk is how many entries treeBuilder allocates at once.
const treeChunk = 512

// treeBuilder collects walked entries as fileData, allocated in chunks and with only the stat facts controls read,
// since the whole tree stays in memory for the evaluation: for a 70,000-file image, one allocation per entry plus a
// full stat buffer and a resolution each was most of what the baseline added to a scan's memory.
type treeBuilder struct {
	chunk []fileData
	out   []*fileData
	bytes int // what out keeps, counted as treeCharge does
}

// add records the entry name (relative to the root) with its Lstat; s may be nil and set later.
func (tb *treeBuilder) add(s *session, name string, fi fs.FileInfo) {
	if len(tb.chunk) == cap(tb.chunk) {
		tb.chunk = make([]fileData, 0, treeChunk)
	}
	d := fileData{s: s, path: "/" + name, size: fi.Size(), mode: fi.Mode()}
	tb.bytes += len(d.path) + fileDataBytes
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
