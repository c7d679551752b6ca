package fsaccess

import (
	"errors"
	"io/fs"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxXattrSize is the kernel's own bound on one attribute value (XATTR_SIZE_MAX); nothing larger can exist.
const maxXattrSize = 64 << 10

// Getxattr returns the extended attribute attr of name, without following a final symlink and without opening the
// file itself: drift detection reads overlayfs's trusted.overlay.opaque on a container's upper dir, and an upper dir
// holds whiteouts (character devices) and FIFOs that must never be opened. name is resolved confined to the root into
// an O_PATH descriptor, whose attribute is read through /proc/self/fd (fgetxattr does not take O_PATH descriptors on
// the kernels rootscan supports). A symlink has no attributes that matter here: it gets ENODATA, never its target's.
// A missing attribute is an error wrapping unix.ENODATA.
func (r *Root) Getxattr(name, attr string) ([]byte, error) {
	fd, st, err := r.openPath("getxattr", name, true)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if st.Mode&syscall.S_IFMT == syscall.S_IFLNK {
		return nil, &fs.PathError{Op: "getxattr", Path: name, Err: unix.ENODATA}
	}
	proc := "/proc/self/fd/" + strconv.Itoa(fd)
	buf := make([]byte, 128)
	for {
		n, err := unix.Getxattr(proc, attr, buf)
		if err == nil {
			return buf[:n], nil
		}
		if !errors.Is(err, unix.ERANGE) || len(buf) >= maxXattrSize {
			return nil, &fs.PathError{Op: "getxattr " + attr, Path: name, Err: err}
		}
		// The value grew or is larger than the first guess: ask its size, bounded by the kernel's maximum.
		size, err := unix.Getxattr(proc, attr, nil)
		if err != nil {
			return nil, &fs.PathError{Op: "getxattr " + attr, Path: name, Err: err}
		}
		buf = make([]byte, min(max(size, 2*len(buf)), maxXattrSize))
	}
}
