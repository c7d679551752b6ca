package node

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io/fs"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/scan"
)

// upperMaxEntries bounds the walk of a container's upper dir (its depth has fsaccess's walk default). A container
// that writes more than this many files into its root filesystem is already unusual; past either bound its state is
// "changed" on every check (never "unchanged" wrongly), and the full analyzers run on the merged view.
const upperMaxEntries = 200_000

// upperState summarizes a container's upper dir: a digest over every entry's path, type, mode, size, mtime and
// device number (whiteouts are 0/0 character devices), and the paths themselves. Equal digests mean nothing in the
// container's own layer changed since the last look, so the container costs one walk of a (usually tiny) directory.
type upperState struct {
	digest    string
	paths     []string
	entries   []fs.DirEntry
	truncated bool
}

// readUpper walks fsys (a container's upper dir) without opening any file, with fsaccess's one walk (on a Root, by
// descriptor, each entry statted in its open parent).
func readUpper(ctx context.Context, fsys scan.FS) (upperState, error) {
	h := sha256.New()
	var st upperState
	var buf [8 * 5]byte
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
		st.paths = append(st.paths, name)
		st.entries = append(st.entries, d)
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
// touched: we do not know what changed.
func touchedAnalyzers(analyzers []scan.Analyzer, st upperState) bool {
	if st.truncated {
		return true
	}
	for i, p := range st.paths {
		d := st.entries[i]
		if d.Type()&fs.ModeCharDevice != 0 {
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
