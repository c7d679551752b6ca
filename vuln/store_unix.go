//go:build unix

package vuln

import (
	"os"
	"syscall"
)

// statID identifies the database file by inode too: a new file renamed over the old one is a new inode even when
// its size and modification time happen to match.
func statID(fi os.FileInfo) fileID {
	id := fileID{mtime: fi.ModTime(), size: fi.Size()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.ino = uint64(st.Ino) // not uint64 on every unix
	}
	return id
}
