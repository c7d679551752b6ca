package fsaccess

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// maxResolveRetries bounds the retries of openat2 when RESOLVE_IN_ROOT reports EAGAIN (a rename or mount somewhere
// on the system raced with the lookup) or EINTR; a busy node makes a few retries normal, an endless stream is not.
const maxResolveRetries = 128

// Root is a read-only view of one directory tree in which every name resolves inside the tree, with chroot
// semantics: the image's own absolute symlinks (etc/localtime -> /usr/share/zoneinfo/UTC) work, "/etc/shadow" in a
// link means the tree's etc/shadow, ".." stops at the top, and /proc magic links are refused. It implements
// fs.FS, fs.ReadDirFS, fs.ReadFileFS, fs.StatFS and fs.ReadLinkFS (the scanner's scan.FS).
//
// Names follow io/fs rules (unrooted, slash-separated, no "." or ".." elements, "." for the root) except that they
// need not be valid UTF-8: a file whose name is not UTF-8 must not be invisible to a scanner. A leading "/" is
// rejected like any invalid name.
//
// A Root is safe for concurrent use. Files it returns stay usable after Close, but Close should follow the last use
// of the Root because OnClose may unmount the tree.
type Root struct {
	path    string
	opts    Options
	resolve uint64

	dir     *os.File // O_PATH|O_DIRECTORY descriptor of the tree's top
	dirConn syscall.RawConn
	proc    *os.File // O_PATH descriptor of /proc/self/fd, to re-open an O_PATH descriptor for reading
	procRaw syscall.RawConn

	closeOnce sync.Once
	closeErr  error

	dirBufs sync.Pool // getdents64 buffers, see newDirReader
}

// OpenDir opens dir as a Root. dir itself is trusted (it is resolved normally, so /proc/<pid>/root works); only names
// inside it are confined.
func OpenDir(dir string, opts Options) (*Root, error) {
	opts = opts.withDefaults()
	resolve := uint64(unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS)
	if opts.NoXDev {
		resolve |= unix.RESOLVE_NO_XDEV
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open root %s: %w", dir, err)
	}
	dirFile := os.NewFile(uintptr(fd), dir)
	// Probe openat2 once so an old kernel fails here, clearly, instead of on every read.
	probe, err := openat2(fd, ".", unix.O_PATH|unix.O_CLOEXEC, resolve)
	switch {
	case errors.Is(err, unix.ENOSYS):
		dirFile.Close()
		return nil, fmt.Errorf("open root %s: %w", dir, ErrOpenat2Unsupported)
	case errors.Is(err, unix.EPERM):
		dirFile.Close()
		return nil, fmt.Errorf("open root %s: openat2 refused (a seccomp profile?): %w: %w", dir, ErrOpenat2Unsupported, err)
	case err != nil:
		dirFile.Close()
		return nil, fmt.Errorf("open root %s: %w", dir, err)
	}
	unix.Close(probe)
	proc, err := openProcFD()
	if err != nil {
		dirFile.Close()
		return nil, fmt.Errorf("open root %s: %w", dir, err)
	}
	r := &Root{path: dir, opts: opts, resolve: resolve, dir: dirFile, proc: proc}
	if r.dirConn, err = dirFile.SyscallConn(); err == nil {
		r.procRaw, err = proc.SyscallConn()
	}
	if err != nil {
		dirFile.Close()
		proc.Close()
		return nil, fmt.Errorf("open root %s: %w", dir, err)
	}
	return r, nil
}

// openProcFD opens this process's /proc/self/fd directory, checking that it really is procfs: re-opening a file
// through it is only safe if the magic links there are the kernel's.
func openProcFD() (*os.File, error) {
	fd, err := unix.Open("/proc/self/fd", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /proc/self/fd (procfs is needed to re-open files safely): %w", err)
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("statfs /proc/self/fd: %w", err)
	}
	if st.Type != unix.PROC_SUPER_MAGIC {
		unix.Close(fd)
		return nil, fmt.Errorf("/proc/self/fd is not on procfs (type %#x)", st.Type)
	}
	return os.NewFile(uintptr(fd), "/proc/self/fd"), nil
}

// Close closes the root's descriptors and then runs Options.OnClose. Later calls return the first call's result.
func (r *Root) Close() error {
	r.closeOnce.Do(func() {
		errs := []error{r.dir.Close(), r.proc.Close()}
		if r.opts.OnClose != nil {
			errs = append(errs, r.opts.OnClose())
		}
		if err := errors.Join(errs...); err != nil {
			r.closeErr = fmt.Errorf("close root %s: %w", r.path, err)
		}
	})
	return r.closeErr
}

// Open opens name, following symlinks inside the root. A regular file is opened for reading; a directory is opened
// as an fs.ReadDirFile; a FIFO, socket or device is never opened: its File has a working Stat and a Read that fails
// with ErrNotRegular, so callers that check Stat (scan.ReadFile) report a clear per-file error and callers that
// just read get one too.
func (r *Root) Open(name string) (fs.File, error) {
	fd, st, err := r.openPath("open", name, false)
	if err != nil {
		return nil, err
	}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		f, err := r.reopenRegular(fd, name, &st)
		unix.Close(fd)
		if err != nil {
			return nil, err
		}
		return f, nil
	case syscall.S_IFDIR:
		dfd, err := openFlexible(func(flags int) (int, error) {
			return unix.Openat(fd, ".", flags, 0)
		}, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOCTTY|unix.O_CLOEXEC)
		unix.Close(fd)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return &dirFile{r: r, name: name, dr: r.newDirReader(dfd)}, nil
	default:
		unix.Close(fd)
		return &specialFile{name: name, info: newFileInfo(path.Base(name), &st)}, nil
	}
}

// reopenRegular turns the O_PATH descriptor of a regular file into a readable one through /proc/self/fd/N: the
// kernel re-opens the same inode, so a file swapped for a FIFO or a device after the fstat is never opened.
func (r *Root) reopenRegular(pathFD int, name string, st *syscall.Stat_t) (fs.File, error) {
	var rfd int
	var err error
	cerr := r.procRaw.Control(func(procFD uintptr) {
		rfd, err = openFlexible(func(flags int) (int, error) {
			return unix.Openat(int(procFD), strconv.Itoa(pathFD), flags, 0)
		}, unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC)
	})
	if cerr != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrClosed}
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	var st2 syscall.Stat_t
	if err := syscall.Fstat(rfd, &st2); err != nil {
		unix.Close(rfd)
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	if st2.Dev != st.Dev || st2.Ino != st.Ino || st2.Mode&syscall.S_IFMT != syscall.S_IFREG {
		unix.Close(rfd)
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("file changed while opened")}
	}
	// A regular file never blocks; clearing O_NONBLOCK keeps os.File from trying the poller.
	if err := unix.SetNonblock(rfd, false); err != nil {
		unix.Close(rfd)
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &file{f: os.NewFile(uintptr(rfd), name)}, nil
}

// Stat returns the FileInfo of name, following symlinks inside the root.
func (r *Root) Stat(name string) (fs.FileInfo, error) {
	fd, st, err := r.openPath("stat", name, false)
	if err != nil {
		return nil, err
	}
	unix.Close(fd)
	return newFileInfo(path.Base(name), &st), nil
}

// Lstat returns the FileInfo of name without following a final symlink (links on the way are followed inside the
// root).
func (r *Root) Lstat(name string) (fs.FileInfo, error) {
	fd, st, err := r.openPath("lstat", name, true)
	if err != nil {
		return nil, err
	}
	unix.Close(fd)
	return newFileInfo(path.Base(name), &st), nil
}

// ReadLink returns the raw target of the symlink name, unresolved: "/etc/shadow" means the root's etc/shadow to
// this package, but the caller sees the target as the image wrote it.
func (r *Root) ReadLink(name string) (string, error) {
	fd, st, err := r.openPath("readlink", name, true)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	if st.Mode&syscall.S_IFMT != syscall.S_IFLNK {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: syscall.EINVAL}
	}
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		// An empty path makes readlinkat read the link the O_PATH|O_NOFOLLOW descriptor refers to.
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
		}
		if n < size {
			return string(buf[:n]), nil
		}
		if size >= unix.PathMax*4 {
			return "", &fs.PathError{Op: "readlink", Path: name, Err: syscall.ENAMETOOLONG}
		}
	}
}

// ReadDir lists the directory name, sorted by name, without following the entries: an entry's Type is the link's,
// never its target's. It fails with ErrLimit past Options.MaxDirEntries entries.
func (r *Root) ReadDir(name string) ([]fs.DirEntry, error) {
	if !validPath(name) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	var dfd int
	var err error
	cerr := r.dirConn.Control(func(rootFD uintptr) {
		dfd, err = openFlexible(func(flags int) (int, error) {
			return openat2(int(rootFD), name, flags, r.resolve)
		}, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOCTTY|unix.O_CLOEXEC)
	})
	if cerr != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrClosed}
	}
	if err != nil {
		return nil, r.pathError("readdir", name, err)
	}
	d := &dirFile{r: r, name: name, dr: r.newDirReader(dfd)}
	defer d.Close()
	entries, err := d.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	sortEntries(entries)
	return entries, nil
}

// openPath resolves name to an O_PATH descriptor (which never opens the file itself, so it has no side effects on
// devices or FIFOs) and fstats it. The stat is returned by value: a walk lstats most files of a root, and a heap
// allocation each was a fifth of its garbage.
func (r *Root) openPath(op, name string, nofollow bool) (int, syscall.Stat_t, error) {
	var st syscall.Stat_t
	if !validPath(name) {
		return -1, st, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	flags := unix.O_PATH | unix.O_CLOEXEC
	if nofollow {
		flags |= unix.O_NOFOLLOW
	}
	var fd int
	var err error
	cerr := r.dirConn.Control(func(rootFD uintptr) {
		fd, err = openat2(int(rootFD), name, flags, r.resolve)
	})
	if cerr != nil {
		return -1, st, &fs.PathError{Op: op, Path: name, Err: fs.ErrClosed}
	}
	if err != nil {
		return -1, st, r.pathError(op, name, err)
	}
	if err := syscall.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, st, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return fd, st, nil
}

func (r *Root) pathError(op, name string, err error) error {
	if errors.Is(err, unix.EXDEV) && r.opts.NoXDev {
		err = fmt.Errorf("%w: %w", ErrCrossesMount, err)
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// openat2 resolves name under dirfd, retrying the bounded number of times RESOLVE_IN_ROOT needs when a concurrent
// rename or mount makes the kernel give up on a lookup (EAGAIN).
func openat2(dirfd int, name string, flags int, resolve uint64) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags), Resolve: resolve}
	var err error
	for range maxResolveRetries {
		var fd int
		fd, err = unix.Openat2(dirfd, name, &how)
		if err == nil {
			return fd, nil
		}
		if err != unix.EAGAIN && err != unix.EINTR {
			return -1, err
		}
	}
	return -1, fmt.Errorf("gave up after %d concurrent renames: %w", maxResolveRetries, err)
}

// openFlexible opens with O_NOATIME so that scanning a host directory leaves its access times alone, and retries
// without it where the kernel refuses (a file we do not own, without CAP_FOWNER).
func openFlexible(open func(flags int) (int, error), flags int) (int, error) {
	fd, err := open(flags | unix.O_NOATIME)
	if err == unix.EPERM {
		fd, err = open(flags)
	}
	return fd, err
}

// fileInfo is an fs.FileInfo built from fstat. Sys returns *syscall.Stat_t, as os does, so analyzers can read
// owners and device numbers the same way on any FS.
type fileInfo struct {
	name string
	st   syscall.Stat_t
}

func newFileInfo(name string, st *syscall.Stat_t) *fileInfo { return &fileInfo{name: name, st: *st} }

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Size() int64        { return fi.st.Size }
func (fi *fileInfo) Mode() fs.FileMode  { return modeFromStat(uint32(fi.st.Mode)) }
func (fi *fileInfo) ModTime() time.Time { return time.Unix(fi.st.Mtim.Unix()) }
func (fi *fileInfo) IsDir() bool        { return fi.Mode().IsDir() }
func (fi *fileInfo) Sys() any           { return &fi.st }
func (fi *fileInfo) String() string     { return fs.FormatFileInfo(fi) }

func modeFromStat(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & syscall.S_IFMT {
	case syscall.S_IFBLK:
		mode |= fs.ModeDevice
	case syscall.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case syscall.S_IFDIR:
		mode |= fs.ModeDir
	case syscall.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case syscall.S_IFLNK:
		mode |= fs.ModeSymlink
	case syscall.S_IFSOCK:
		mode |= fs.ModeSocket
	}
	if m&syscall.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&syscall.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&syscall.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}
