package scan

import (
	"io/fs"

	"github.com/rootscan/rootscan/fsaccess"
)

// FS is the read-only view analyzers get. fsaccess.Root implements it with every read confined to the root; tests
// use testing/fstest.MapFS. Lstat and ReadLink (fs.ReadLinkFS) let analyzers see links without following them.
type FS interface {
	fs.ReadDirFS
	fs.StatFS
	fs.ReadLinkFS
}

// ErrTooLarge and ErrNotRegular are fsaccess's (one definition, so errors.Is matches whichever read failed):
// ErrTooLarge for a file larger than the limit the caller set, which is not read; ErrNotRegular for FIFOs, sockets,
// devices and directories where file content was expected, which reading could block on or act on.
var (
	ErrTooLarge   = fsaccess.ErrTooLarge
	ErrNotRegular = fsaccess.ErrNotRegular
)

// OpenRegular is fsaccess.OpenRegular: name opened and checked, on the open file, to be a regular file of at most
// limit bytes. Every analyzer that reads file content goes through it or ReadFile.
func OpenRegular(fsys fs.FS, name string, limit int64) (fs.File, fs.FileInfo, error) {
	return fsaccess.OpenRegular(fsys, name, limit)
}

// ReadFile is fsaccess.ReadRegular: a regular file of at most limit bytes, read in one allocation of its size, and
// refused if it grows past limit while it is read.
func ReadFile(fsys fs.FS, name string, limit int64) ([]byte, error) {
	return fsaccess.ReadRegular(fsys, name, limit)
}
