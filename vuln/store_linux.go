package vuln

import (
	"os"
	"syscall"
)

func statID(fi os.FileInfo) fileID {
	id := fileID{mtime: fi.ModTime(), size: fi.Size()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.ino = st.Ino
	}
	return id
}
