package scan

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// FS is the read-only view analyzers get. fsaccess.Root implements it with every read confined to the root; tests
// use testing/fstest.MapFS. Lstat and ReadLink (fs.ReadLinkFS) let analyzers see links without following them.
type FS interface {
	fs.ReadDirFS
	fs.StatFS
	fs.ReadLinkFS
}

// DefaultMaxFileSize bounds what one analyzer reads from one file. Package databases of real images stay far below
// it (Debian's full status file is a few MiB); a hostile 10 GiB file is refused before a byte is read.
const DefaultMaxFileSize = 32 << 20

// ErrTooLarge is returned for a file larger than the limit the caller set; the file is not read.
var ErrTooLarge = errors.New("file exceeds size limit")

// ErrNotRegular is returned for FIFOs, sockets, devices and directories where file content was expected: reading
// them could block forever or touch a device.
var ErrNotRegular = errors.New("not a regular file")

// OpenRegular opens name and checks, on the open file (not on the name, which could be swapped in between), that it
// is a regular file of at most limit bytes. Every analyzer that reads file content goes through it or ReadFile.
func OpenRegular(fsys fs.FS, name string, limit int64) (fs.File, fs.FileInfo, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("stat %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, &fs.PathError{Op: "read", Path: name, Err: ErrNotRegular}
	}
	if fi.Size() > limit {
		f.Close()
		return nil, nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("%w: %d > %d bytes", ErrTooLarge, fi.Size(), limit)}
	}
	return f, fi, nil
}

// ReadFile reads a regular file of at most limit bytes (see OpenRegular). It also stops reading at limit+1 bytes, so
// a file that grows while it is read (a live upper dir) is refused instead of read without end.
//
// The buffer is sized once from fstat, plus one byte: hitting EOF before that byte means the file did not grow, so
// the common case costs exactly one allocation of the file's size. (bytes.Buffer.ReadFrom on a buffer of size+1
// grows it to twice the size before it sees EOF, so a 500 KiB dpkg status file used to cost 1.5 MiB.)
func ReadFile(fsys fs.FS, name string, limit int64) ([]byte, error) {
	f, fi, err := OpenRegular(fsys, name, limit)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, fi.Size()+1)
	n, err := io.ReadFull(f, buf)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return buf[:n], nil
	case err != nil:
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	// The file grew since the fstat: read on, still bounded by limit+1 bytes in all.
	b := bytes.NewBuffer(buf)
	if _, err := b.ReadFrom(io.LimitReader(f, limit+1-int64(n))); err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	if int64(b.Len()) > limit {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("%w: grew past %d bytes while read", ErrTooLarge, limit)}
	}
	return b.Bytes(), nil
}
