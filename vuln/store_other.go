//go:build !unix

package vuln

import "os"

// statID identifies the database file by modification time and size alone: os.FileInfo carries no inode here.
// `rootscan db update` writes a new file, whose modification time differs.
func statID(fi os.FileInfo) fileID {
	return fileID{mtime: fi.ModTime(), size: fi.Size()}
}
