//go:build !linux

package node

import "io/fs"

// devAndCtime has nothing to add off Linux: upper dirs are an overlayfs (Linux) notion, and the daemon that reads
// them needs Linux.
func devAndCtime(fs.FileInfo) (rdev, ctime uint64) { return 0, 0 }
