// Package fsaccess turns a container root, a plain directory or an OCI image layout into a confined, read-only view
// (Root). The trees it opens are hostile: an image may hold symlinks to the host's /etc/shadow, FIFOs where a package
// database should be, device nodes, sparse files of terabytes and directories too deep to walk. Root resolves every
// name inside its tree and never opens anything but regular files and directories for reading.
//
// On Linux a Root works on descriptors with openat2(2) (root_linux.go, walk_linux.go); other systems get a portable
// Root on os.Root (root_other.go), enough to scan a directory or an OCI image on a laptop.
package fsaccess

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// DefaultMaxFileSize bounds a Root's ReadFile when Options.MaxFileSize is zero (the CLI's --max-file-size default).
// Real package databases stay far below it; a hostile 10 GiB file is refused from its size before a byte is read.
const DefaultMaxFileSize = 64 << 20

// DefaultMaxDirEntries bounds one directory listing when Options.MaxDirEntries is zero, so a directory with tens of
// millions of entries cannot exhaust the scanner's memory.
const DefaultMaxDirEntries = 1 << 20

// ErrNotRegular is returned when content is read from a FIFO, socket, device or directory: opening those could
// block forever or act on hardware, so Root never opens them for reading.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is returned for a file above the size limit of the read; the file is not read.
var ErrTooLarge = errors.New("file exceeds size limit")

// ErrLimit is returned when a directory listing or a walk exceeds its bound (entries or depth); a hostile tree must
// fail loudly rather than exhaust memory or hide files past the bound.
var ErrLimit = errors.New("limit exceeded")

// ErrCrossesMount is returned, with Options.NoXDev set, for a name whose resolution would leave the root's mount.
var ErrCrossesMount = errors.New("path crosses a mount point")

// ErrOpenat2Unsupported is returned by OpenDir on Linux kernels without openat2(2) (Linux < 5.6) or when a seccomp
// profile blocks it. There is no fallback there: resolving names in user space on a tree that may change underneath
// is exactly the escape this package exists to prevent.
var ErrOpenat2Unsupported = errors.New("openat2 not supported by this kernel; rootscan needs Linux >= 5.6")

// Options tune a Root. The zero value is usable.
type Options struct {
	// MaxFileSize caps ReadFile; zero means DefaultMaxFileSize. Reads through Open are not capped: callers that
	// read a File decide their own bound (ReadRegular takes one).
	MaxFileSize int64
	// MaxDirEntries caps one directory listing (ReadDir, and all ReadDir calls on one open directory together);
	// zero means DefaultMaxDirEntries.
	MaxDirEntries int
	// NoXDev makes every resolution fail with ErrCrossesMount when it would cross a mount point (RESOLVE_NO_XDEV).
	// Off by default: container and image roots have nothing mounted inside them, so it changes nothing there.
	// Set it for roots that are live mount namespaces or host directories, such as /proc/<pid>/root or --dir /,
	// where /proc, /sys, /dev and volumes (a hostPath volume may be the host's own /) must not be read as image
	// content. Linux only: other systems cannot tell a mount crossing during resolution and ignore it.
	NoXDev bool
	// OnClose runs after Close has closed the root's descriptors, for cleanup that must follow the root's life
	// (unmounting an overlay, removing an extracted image). It is not run when OpenDir fails: the caller still
	// owns whatever it set up.
	OnClose func() error
}

func (o Options) withDefaults() Options {
	if o.MaxFileSize <= 0 {
		o.MaxFileSize = DefaultMaxFileSize
	}
	if o.MaxDirEntries <= 0 {
		o.MaxDirEntries = DefaultMaxDirEntries
	}
	return o
}

// Path is the host path the root was opened from, for logs only: reading through it would lose the confinement.
func (r *Root) Path() string { return r.path }

// ReadFile reads the regular file name, refusing it with ErrTooLarge when its size (checked on the open file, not
// on the name) is above Options.MaxFileSize, or when it grows past the limit while it is read.
func (r *Root) ReadFile(name string) ([]byte, error) {
	return ReadRegular(r, name, r.opts.MaxFileSize)
}

// OpenRegular opens name and checks, on the open file (not on the name, which could be swapped in between), that it
// is a regular file of at most limit bytes. Every read of file content goes through it or ReadRegular.
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

// ReadRegular reads a regular file of at most limit bytes (see OpenRegular). It also stops reading at limit+1 bytes,
// so a file that grows while it is read (a live upper dir) is refused instead of read without end.
//
// The buffer is sized once from fstat, plus one byte: hitting EOF before that byte means the file did not grow, so
// the common case costs exactly one allocation of the file's size. (bytes.Buffer.ReadFrom on a buffer of size+1
// grows it to twice the size before it sees EOF, so a 500 KiB dpkg status file used to cost 1.5 MiB.)
func ReadRegular(fsys fs.FS, name string, limit int64) ([]byte, error) {
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

// validPath is fs.ValidPath without the UTF-8 rule (Linux names are bytes, and a file must not hide from the scanner
// behind an invalid name) and with NUL refused.
func validPath(name string) bool {
	if name == "." {
		return true
	}
	if strings.IndexByte(name, 0) >= 0 {
		return false
	}
	for {
		i := strings.IndexByte(name, '/')
		elem := name
		if i >= 0 {
			elem = name[:i]
		}
		if elem == "" || elem == "." || elem == ".." {
			return false
		}
		if i < 0 {
			return true
		}
		name = name[i+1:]
	}
}

// file is a regular file open for reading. It wraps *os.File so callers cannot write, chmod or chown through it.
type file struct {
	f *os.File
}

func (f *file) Read(p []byte) (int, error)                { return f.f.Read(p) }
func (f *file) ReadAt(p []byte, off int64) (int, error)   { return f.f.ReadAt(p, off) }
func (f *file) Seek(off int64, whence int) (int64, error) { return f.f.Seek(off, whence) }
func (f *file) Stat() (fs.FileInfo, error)                { return f.f.Stat() }
func (f *file) Close() error                              { return f.f.Close() }

// specialFile stands for a FIFO, socket or device that was not opened: only its metadata is available.
type specialFile struct {
	name string
	info fs.FileInfo
}

func (f *specialFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *specialFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: f.name, Err: ErrNotRegular}
}
func (f *specialFile) Close() error { return nil }
