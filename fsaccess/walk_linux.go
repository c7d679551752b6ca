package fsaccess

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Walk is WalkFS over the root (see there for the order, the bounds and how fn is called). It works on directory
// descriptors, not names: root is resolved once (openat2, RESOLVE_IN_ROOT), every directory below it is opened
// relative to its open parent with one openat2 that refuses symlinks, ".." and (with Options.NoXDev) mount
// crossings, and DirEntry.Info is an fstatat of the name in the open parent that does not follow links. A walk of N
// entries in D directories thus costs D opens and at most N single-name stats, with no path resolution per entry; a
// directory swapped for a symlink while the walk runs fails to open (ELOOP or ENOTDIR) instead of being followed.
// Info called after fn has returned for the entry's directory (a DirEntry kept past the walk) resolves the name
// through the root again, so it stays confined. A name longer than PATH_MAX is reported as an ENAMETOOLONG listing
// error, as a walk by names would, since no other method of Root could open it.
func (r *Root) Walk(ctx context.Context, root string, opts WalkOptions, fn fs.WalkDirFunc) error {
	return walkTree(ctx, descLister{r}, r.Stat, root, opts, fn)
}

// descLister opens each directory of a walk relative to its parent's open descriptor.
type descLister struct{ r *Root }

func (l descLister) list(name string, parent dirList) (dirList, error) {
	pfd := -1
	if p, ok := parent.(*walkDir); ok {
		pfd = p.fd
	}
	dir, err := l.r.openWalkDir(name, pfd)
	if err != nil {
		return nil, err
	}
	if err := dir.list(); err != nil {
		dir.close()
		return nil, err
	}
	return dir, nil
}

// openWalkDir opens the directory name for listing: the walk's root (parent < 0) through the Root's confined
// resolution, anything below it as one name in its open parent, refusing links (RESOLVE_NO_SYMLINKS and
// O_NOFOLLOW), anything outside the parent (RESOLVE_BENEATH) and, with NoXDev, other mounts.
func (r *Root) openWalkDir(name string, parent int) (*walkDir, error) {
	if len(name) >= unix.PathMax {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: syscall.ENAMETOOLONG}
	}
	flags := unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOCTTY | unix.O_CLOEXEC
	var fd int
	var err error
	if parent < 0 {
		if !validPath(name) {
			return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
		}
		cerr := r.dirConn.Control(func(rootFD uintptr) {
			fd, err = openFlexible(func(flags int) (int, error) {
				return openat2(int(rootFD), name, flags, r.resolve)
			}, flags)
		})
		if cerr != nil {
			return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrClosed}
		}
	} else {
		resolve := uint64(unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS)
		if r.opts.NoXDev {
			resolve |= unix.RESOLVE_NO_XDEV
		}
		fd, err = openFlexible(func(flags int) (int, error) {
			return openat2(parent, path.Base(name), flags, resolve)
		}, flags|unix.O_NOFOLLOW)
	}
	if err != nil {
		return nil, r.pathError("readdir", name, err)
	}
	return &walkDir{r: r, fd: fd, path: name, open: true}, nil
}

// walkDir is a directory the walk holds open while it visits its entries.
type walkDir struct {
	r       *Root
	fd      int
	path    string
	open    bool // false once closed: its entries' Info falls back to Root.Lstat
	entries []walkEntry
}

func (d *walkDir) len() int                { return len(d.entries) }
func (d *walkDir) entry(i int) fs.DirEntry { return &d.entries[i] }

// list reads the directory's entries, sorted by name, bounded by Options.MaxDirEntries. Names without a type
// (DT_UNKNOWN) are typed with fstatat, which is kept for Info.
func (d *walkDir) list() error {
	dr := d.r.newDirReader(d.fd)
	defer d.r.releaseDirReader(dr)
	var out []walkEntry
	for {
		name, typ, err := dr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return &fs.PathError{Op: "readdir", Path: d.path, Err: err}
		}
		e := walkEntry{dir: d, name: string(name), typ: typ}
		if typ == unknownType {
			fi, err := d.lstat(e.name)
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed since it was listed
			}
			if err != nil {
				return err
			}
			e.typ, e.info, e.done = fi.Mode().Type(), fi, true
		}
		if len(out) >= d.r.opts.MaxDirEntries {
			return &fs.PathError{Op: "readdir", Path: d.path, Err: fmt.Errorf("%w: more than %d entries", ErrLimit, d.r.opts.MaxDirEntries)}
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b walkEntry) int { return strings.Compare(a.name, b.name) })
	d.entries = out
	return nil
}

func (d *walkDir) close() {
	d.open = false
	unix.Close(d.fd)
}

// lstat stats one name of the open directory without following it. With NoXDev a name that is a mount point fails
// with ErrCrossesMount, as Root.Lstat does; kernels that cannot tell (statx without STATX_ATTR_MOUNT_ROOT, before
// Linux 5.8) get the answer from Root.Lstat.
func (d *walkDir) lstat(name string) (fs.FileInfo, error) {
	if d.r.opts.NoXDev {
		var stx unix.Statx_t
		if err := unix.Statx(d.fd, name, unix.AT_SYMLINK_NOFOLLOW|unix.AT_NO_AUTOMOUNT, unix.STATX_TYPE, &stx); err != nil {
			return nil, d.r.pathError("lstat", path.Join(d.path, name), err)
		}
		if stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT == 0 {
			return d.r.Lstat(path.Join(d.path, name))
		}
		if stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0 {
			return nil, d.r.pathError("lstat", path.Join(d.path, name), unix.EXDEV)
		}
	}
	var st unix.Stat_t
	if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW|unix.AT_NO_AUTOMOUNT); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: path.Join(d.path, name), Err: err}
	}
	return &fileInfo{name: name, st: syscall.Stat_t{
		Dev: st.Dev, Ino: st.Ino, Nlink: st.Nlink, Mode: st.Mode, Uid: st.Uid, Gid: st.Gid, Rdev: st.Rdev,
		Size: st.Size, Blksize: st.Blksize, Blocks: st.Blocks,
		Atim: syscall.Timespec{Sec: st.Atim.Sec, Nsec: st.Atim.Nsec},
		Mtim: syscall.Timespec{Sec: st.Mtim.Sec, Nsec: st.Mtim.Nsec},
		Ctim: syscall.Timespec{Sec: st.Ctim.Sec, Nsec: st.Ctim.Nsec},
	}}, nil
}

// walkEntry is one name found by Walk. Info is an fstatat in the open parent while the walk is inside it, and a
// confined Lstat by name afterwards; either way it never follows the entry if it is a link.
type walkEntry struct {
	dir  *walkDir
	name string
	typ  fs.FileMode
	done bool
	info fs.FileInfo
	err  error
}

func (e *walkEntry) Name() string      { return e.name }
func (e *walkEntry) IsDir() bool       { return e.typ.IsDir() }
func (e *walkEntry) Type() fs.FileMode { return e.typ }
func (e *walkEntry) String() string    { return fs.FormatDirEntry(e) }

func (e *walkEntry) Info() (fs.FileInfo, error) {
	if !e.dir.open {
		return e.dir.r.Lstat(path.Join(e.dir.path, e.name))
	}
	if !e.done {
		e.info, e.err = e.dir.lstat(e.name)
		e.done = true
	}
	return e.info, e.err
}

// dirFile is an open directory. Its entries come from getdents64 with the type the directory reports; names
// without a type (DT_UNKNOWN) are typed with fstatat relative to the directory, never following links.
type dirFile struct {
	r      *Root
	name   string
	dr     *dirReader
	count  int
	closed bool
}

func (f *dirFile) Stat() (fs.FileInfo, error) {
	if f.closed {
		return nil, &fs.PathError{Op: "stat", Path: f.name, Err: fs.ErrClosed}
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(f.dr.fd, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: f.name, Err: err}
	}
	return newFileInfo(path.Base(f.name), &st), nil
}

func (f *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: f.name, Err: syscall.EISDIR}
}

func (f *dirFile) Close() error {
	if f.closed {
		return &fs.PathError{Op: "close", Path: f.name, Err: fs.ErrClosed}
	}
	f.closed = true
	f.r.releaseDirReader(f.dr)
	return unix.Close(f.dr.fd)
}

// ReadDir implements fs.ReadDirFile, in directory order. All calls on one directory together return at most
// Options.MaxDirEntries entries before failing with ErrLimit.
func (f *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if f.closed {
		return nil, &fs.PathError{Op: "readdir", Path: f.name, Err: fs.ErrClosed}
	}
	var out []fs.DirEntry
	// Entries are allocated in slabs, and each one's path from the root is built once, here: a walk lists every
	// directory of a root, and one allocation per entry for the struct, one for its name and one more in Info for
	// the joined path were a third of a scan's garbage.
	var slab []dirEntry
	for n <= 0 || len(out) < n {
		name, typ, err := f.dr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return out, &fs.PathError{Op: "readdir", Path: f.name, Err: err}
		}
		if typ == unknownType {
			var st unix.Stat_t
			if err := unix.Fstatat(f.dr.fd, string(name), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				if errors.Is(err, unix.ENOENT) {
					continue // removed since it was listed
				}
				return out, &fs.PathError{Op: "readdir", Path: joinEntry(f.name, name), Err: err}
			}
			typ = modeFromStat(st.Mode).Type()
		}
		f.count++
		if f.count > f.r.opts.MaxDirEntries {
			return out, &fs.PathError{Op: "readdir", Path: f.name, Err: fmt.Errorf("%w: more than %d entries", ErrLimit, f.r.opts.MaxDirEntries)}
		}
		if len(slab) == cap(slab) {
			slab = make([]dirEntry, 0, min(max(2*cap(slab), 4), dirEntrySlab))
		}
		slab = append(slab, dirEntry{r: f.r, path: joinEntry(f.name, name), typ: typ})
		e := &slab[len(slab)-1]
		e.name = e.path[len(e.path)-len(name):]
		out = append(out, e)
	}
	if n > 0 && len(out) == 0 {
		return nil, io.EOF
	}
	return out, nil
}

// dirEntrySlab is the most entries one allocation holds. Slabs start at 4 entries and double, so a small directory
// wastes little and a large one costs one allocation per 64 entries.
const dirEntrySlab = 64

// unknownType marks a dirent whose d_type was DT_UNKNOWN; no real fs.FileMode type has every bit set.
const unknownType = fs.ModeType

// dirReader decodes linux_dirent64 records from getdents64.
type dirReader struct {
	fd       int
	buf      []byte
	pos, end int
	eof      bool
}

// direntBufSize is one getdents64 buffer; buffers are recycled per Root, since a walk opens one directory after
// another and 8 KiB per directory was most of a large walk's allocations.
const direntBufSize = 8 << 10

func (r *Root) newDirReader(fd int) *dirReader {
	buf, _ := r.dirBufs.Get().(*[]byte)
	if buf == nil {
		b := make([]byte, direntBufSize)
		buf = &b
	}
	return &dirReader{fd: fd, buf: *buf}
}

// release returns the buffer for the next directory; the reader must not be used afterwards.
func (r *Root) releaseDirReader(d *dirReader) {
	if d.buf != nil {
		buf := d.buf
		d.buf = nil
		r.dirBufs.Put(&buf)
	}
}

// Layout of struct linux_dirent64: u64 d_ino, s64 d_off, u16 d_reclen, u8 d_type, char d_name[].
const (
	direntReclenOff = 16
	direntTypeOff   = 18
	direntNameOff   = 19
)

// next returns the next entry other than "." and "..", or io.EOF. The name is valid until the next call.
func (d *dirReader) next() ([]byte, fs.FileMode, error) {
	for {
		if d.pos >= d.end {
			if d.eof {
				return nil, 0, io.EOF
			}
			n, err := unix.Getdents(d.fd, d.buf)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return nil, 0, err
			}
			if n <= 0 {
				d.eof = true
				return nil, 0, io.EOF
			}
			d.pos, d.end = 0, n
		}
		rec := d.buf[d.pos:d.end]
		if len(rec) < direntNameOff {
			return nil, 0, errors.New("short directory record")
		}
		reclen := int(binary.NativeEndian.Uint16(rec[direntReclenOff:]))
		if reclen < direntNameOff || reclen > len(rec) {
			return nil, 0, fmt.Errorf("bad directory record length %d", reclen)
		}
		ino := binary.NativeEndian.Uint64(rec)
		typ := rec[direntTypeOff]
		name := rec[direntNameOff:reclen]
		if i := slices.Index(name, 0); i >= 0 {
			name = name[:i]
		}
		d.pos += reclen
		if ino == 0 || len(name) == 0 {
			continue
		}
		if string(name) == "." || string(name) == ".." {
			continue
		}
		return name, direntType(typ), nil
	}
}

func direntType(t uint8) fs.FileMode {
	switch t {
	case unix.DT_REG:
		return 0
	case unix.DT_DIR:
		return fs.ModeDir
	case unix.DT_LNK:
		return fs.ModeSymlink
	case unix.DT_FIFO:
		return fs.ModeNamedPipe
	case unix.DT_SOCK:
		return fs.ModeSocket
	case unix.DT_CHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.DT_BLK:
		return fs.ModeDevice
	default:
		return unknownType
	}
}
