package node

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io/fs"
	"path"
	"strings"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/scan"
)

// upperMaxEntries bounds the walk of a container's upper dir (its depth has fsaccess's walk default). A container
// that writes more than this many files into its root filesystem is already unusual; past either bound its state is
// "changed" on every check (never "unchanged" wrongly), and the full analyzers run on the merged view.
const upperMaxEntries = 200_000

// upperState summarizes a container's upper dir: a digest over every entry's path, type, mode, size, mtime and
// device number (whiteouts are 0/0 character devices), and the entries themselves. Equal digests mean nothing in the
// container's own layer changed since the last look, so the container costs one walk of a (usually tiny) directory.
//
// An entry is kept as its base name, its type and its parent's index, and its path is rebuilt when asked for: a
// container can write 100k files under 4,000-byte paths, and neither the full paths (a copy of every parent's path
// per entry: 4 KB each) nor the walk's DirEntries (each holds its stat and keeps its directory's listing live) should
// stay in memory until the analyzers have been asked.
type upperState struct {
	digest    string
	entries   []upperName // in walk order: a directory before its entries
	truncated bool
}

// upperName is one entry of an upperState.
type upperName struct {
	parent int32 // index in entries of the directory holding it; -1 at the top
	typ    fs.FileMode
	name   string
}

// path is the i'th entry's path from the top of the upper dir.
func (st *upperState) path(i int) string {
	n := 0
	for j := int32(i); j >= 0; j = st.entries[j].parent {
		n += len(st.entries[j].name) + 1
	}
	b := make([]byte, n-1)
	for j := int32(i); j >= 0; j = st.entries[j].parent {
		e := st.entries[j]
		n -= len(e.name) + 1
		copy(b[n:], e.name)
		if n > 0 {
			b[n-1] = '/'
		}
	}
	return string(b)
}

// pathBytes is what every entry's path from the root ("/" and the path) takes in full, counted without building one.
func (st *upperState) pathBytes() int64 {
	lens := make([]int32, len(st.entries)) // each entry's path length; a parent comes before its entries
	var total int64
	for i, e := range st.entries {
		n := int32(len(e.name))
		if e.parent >= 0 {
			n += lens[e.parent] + 1
		}
		lens[i] = n
		total += int64(n) + 1
	}
	return total
}

// readUpper walks fsys (a container's upper dir) without opening any file, with fsaccess's one walk (on a Root, by
// descriptor, each entry statted in its open parent).
func readUpper(ctx context.Context, fsys scan.FS) (upperState, error) {
	h := sha256.New()
	var st upperState
	var buf [8 * 5]byte
	var dirs []int32 // the indexes of the directories from the top down to the last one visited
	err := fsaccess.WalkFS(ctx, fsys, ".", fsaccess.WalkOptions{MaxEntries: upperMaxEntries}, func(name string, d fs.DirEntry, err error) error {
		if le := (*fsaccess.WalkLimitError)(nil); errors.As(err, &le) {
			st.truncated = true
			return fs.SkipAll
		}
		if err != nil {
			return err
		}
		if name == "." {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walked: the next look sees it
			}
			return err
		}
		depth := strings.Count(name, "/")
		dirs = dirs[:min(len(dirs), depth)] // the walk is depth first: the entry's parent is dirs[depth-1]
		parent := int32(-1)
		if depth > 0 {
			parent = dirs[depth-1]
		}
		st.entries = append(st.entries, upperName{parent: parent, typ: d.Type(), name: strings.Clone(d.Name())})
		if d.IsDir() {
			dirs = append(dirs, int32(len(st.entries)-1))
		}
		h.Write([]byte(name))
		h.Write([]byte{0})
		binary.LittleEndian.PutUint64(buf[0:], uint64(fi.Mode()))
		binary.LittleEndian.PutUint64(buf[8:], uint64(fi.Size()))
		binary.LittleEndian.PutUint64(buf[16:], uint64(fi.ModTime().UnixNano()))
		st, _ := fsaccess.StatOf(fi)
		binary.LittleEndian.PutUint64(buf[24:], st.Rdev)
		binary.LittleEndian.PutUint64(buf[32:], uint64(st.Ctime))
		h.Write(buf[:])
		return nil
	})
	if err != nil {
		return upperState{}, err
	}
	if st.truncated {
		h.Write([]byte("truncated"))
	}
	st.digest = hex.EncodeToString(h.Sum(nil))
	return st, nil
}

// touchedAnalyzers reports whether any changed path is one an analyzer depends on, in which case the container's
// inventory differs from its image's and the analyzers must run on the merged view. A truncated walk counts as
// touched: we do not know what changed. upper is the upper dir st was read from, for the entries' Info.
func touchedAnalyzers(analyzers []scan.Analyzer, upper scan.FS, st upperState) bool {
	if st.truncated {
		return true
	}
	for i, e := range st.entries {
		p := st.path(i)
		var d fs.DirEntry = upperEntry{fsys: upper, path: p, typ: e.typ}
		if e.typ&fs.ModeCharDevice != 0 {
			// An overlay whiteout: the image's file at p was deleted. Its type in the image is unknown here, so
			// ask as if about any file (a deleted binary changes the inventory as much as an added one).
			d = nil
		}
		for _, a := range analyzers {
			if fa, ok := a.(scan.FileAnalyzer); ok {
				if fa.Wants(p, d) {
					return true
				}
			} else if scan.Touches(a, p) {
				return true
			}
		}
	}
	return false
}

// upperEntry is an entry of an upperState, as the DirEntry an analyzer's Wants is asked about.
type upperEntry struct {
	fsys scan.FS
	path string
	typ  fs.FileMode
}

func (e upperEntry) Name() string               { return path.Base(e.path) }
func (e upperEntry) IsDir() bool                { return e.typ.IsDir() }
func (e upperEntry) Type() fs.FileMode          { return e.typ }
func (e upperEntry) Info() (fs.FileInfo, error) { return e.fsys.Lstat(e.path) }
