package fsaccess

import "io/fs"

// Stat is what an fs.FileInfo's Sys holds on the operating systems that have one, in one shape, so the packages that
// need an owner, an inode or a device number (compliance, drift, unowned files, the upper-dir fingerprint) neither
// import syscall nor need a file per OS each.
type Stat struct {
	Uid, Gid uint32
	Dev, Ino uint64
	// Rdev is the device number of a device file (an overlayfs whiteout is a 0/0 character device).
	Rdev uint64
	// Blocks counts the 512-byte blocks the file has allocated, which tells a sparse file from a full one.
	Blocks int64
	// Ctime is the inode change time in nanoseconds: a chmod or chown changes only that.
	Ctime int64
}

// StatOf returns fi's Stat, and false when fi carries none (an in-memory FS, or an OS without one).
func StatOf(fi fs.FileInfo) (Stat, bool) {
	if fi == nil {
		return Stat{}, false
	}
	return statOf(fi.Sys())
}
