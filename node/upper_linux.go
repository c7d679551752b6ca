package node

import (
	"io/fs"
	"syscall"
)

// devAndCtime are the parts of an upper-dir entry's state that fs.FileInfo does not carry: the device number (an
// overlayfs whiteout is a 0/0 character device) and the inode change time (a chmod or chown changes only that).
func devAndCtime(fi fs.FileInfo) (rdev, ctime uint64) {
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		return sys.Rdev, uint64(sys.Ctim.Nano())
	}
	return 0, 0
}
