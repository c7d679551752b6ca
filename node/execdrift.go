package node

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rootscan/rootscan/bpf"
	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/fsaccess"
)

// ExecDrift is a container process executing a file that is not from its image: the file lives in the container's
// upper (writable) layer, so it was written, copied or modified after the container started. It is the runtime
// twin of an executable drift entry, known the moment it runs rather than at the next walk of the upper dir, and
// always CRITICAL.
type ExecDrift struct {
	// Path is the executable inside the container's root; Filename is what the caller passed to execve.
	Path     string
	Filename string
	Argv     []string
	// Inode and Dev identify the file executed; the hash is taken only from a file that still is that inode.
	Inode, Dev uint64
	// SHA256 and Size of the executable, read through the container's root; HashError says why there is no hash.
	SHA256    string
	Size      int64
	HashError string
	PID, PPID uint32
	// ParentName is the parent's comm as the kernel saw it at the exec: there even when the parent (runc exec, a
	// subshell) is gone before user space reads /proc.
	ParentName string
	// ParentCmdline is the parent's command line from the host's /proc, arguments joined by spaces; empty when the
	// parent is gone or its pid now names another program.
	ParentCmdline string
	UID           uint32
	// User is UID's name in the container's /etc/passwd, when it has one.
	User string
	Comm string
	// UpperGuessed: the kernel decided "upper layer" from an assumed overlayfs layout (no ovl_inode in its BTF).
	UpperGuessed bool
	// Count is how many times the container executed the file since it was first seen.
	Count     uint64
	FirstSeen time.Time
}

// Bounds on what an exec drift reads from the host and the container.
const (
	maxCmdline = 4096
	maxPasswd  = 1 << 20
)

func newExecDrift(ev bpf.Event, at time.Time) ExecDrift {
	return ExecDrift{Path: ev.Path, Filename: ev.Filename, Argv: ev.Argv, Inode: ev.Inode, Dev: ev.Dev, PID: ev.PID,
		PPID: ev.PPID, ParentName: ev.ParentComm, UID: ev.UID, Comm: ev.Comm, UpperGuessed: ev.UpperGuessed, Count: 1, FirstSeen: at}
}

// readCmdline reads a process's command line (bounded) and joins its arguments with spaces; "" when the process is
// gone, or when its comm is no longer the one the kernel reported (the pid was reused, or the parent has executed
// another program since): a command line that is not the parent's would be a forged lead. The content is the
// process's own doing, so it is cut to valid UTF-8.
func readCmdline(procRoot string, pid int, comm string) string {
	if pid <= 0 {
		return ""
	}
	dir := filepath.Join(procRoot, strconv.Itoa(pid))
	f, err := os.Open(filepath.Join(dir, "cmdline"))
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, maxCmdline))
	if comm != "" && readComm(dir) != comm {
		return ""
	}
	return joinCmdline(b)
}

// readComm is a process's comm (16 bytes at most in the kernel), without its newline.
func readComm(dir string) string {
	f, err := os.Open(filepath.Join(dir, "comm"))
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 64))
	return strings.TrimSuffix(string(b), "\n")
}

func joinCmdline(b []byte) string {
	b = bytes.TrimRight(b, "\x00")
	return strings.ToValidUTF8(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})), "\uFFFD")
}

// gatherEvidence fills the hash and user of x. The file is opened inside the container's root, as the executing
// process or the container's init sees it (openat2 RESOLVE_IN_ROOT, never crossing a mount), and hashed only when
// it still is the inode the kernel reported. A file deleted right after its exec is still reachable through the
// process's /proc/<pid>/exe while the process runs, checked the same way.
func gatherEvidence(ctx context.Context, procRoot string, maxHash int64, pids []int, x *ExecDrift) {
	var errs []error
	seen := map[int]bool{}
	for _, pid := range pids {
		if pid <= 0 || seen[pid] || ctx.Err() != nil {
			continue
		}
		seen[pid] = true
		root, err := fsaccess.OpenDir(filepath.Join(procRoot, strconv.Itoa(pid), "root"), fsaccess.Options{NoXDev: true, MaxFileSize: maxPasswd})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if x.SHA256 == "" {
			if err := hashInRoot(root, maxHash, x); err != nil {
				errs = append(errs, err)
			}
		}
		if x.User == "" {
			if b, err := root.ReadFile("etc/passwd"); err == nil {
				x.User = passwdName(b, x.UID)
			}
		}
		root.Close()
		if x.SHA256 != "" && x.User != "" {
			break
		}
	}
	if x.SHA256 == "" && x.PID > 0 {
		f, err := os.Open(filepath.Join(procRoot, strconv.Itoa(int(x.PID)), "exe"))
		if err == nil {
			err = hashFile(f, maxHash, true, x)
			f.Close()
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if x.SHA256 == "" {
		x.HashError = truncateString(errors.Join(errs...).Error(), 512)
	}
}

func hashInRoot(root *fsaccess.Root, maxHash int64, x *ExecDrift) error {
	f, err := root.Open(strings.TrimPrefix(x.Path, "/"))
	if err != nil {
		return fmt.Errorf("open %s in the container: %w", x.Path, err)
	}
	defer f.Close()
	return hashFile(f, maxHash, true, x)
}

// hashInUpper hashes the drifted file in the container's upper dir, where it lives by definition. The file there is
// the overlay's upper inode: overlayfs reports its inode number (not its device) for the merged file, so only the
// number is checked.
func hashInUpper(ctx context.Context, views ViewOpener, c cri.Container, maxHash int64, x *ExecDrift) error {
	root, err := views.OpenView(ctx, c, fsaccess.ViewUpper)
	if err != nil {
		return fmt.Errorf("open the upper dir: %w", err)
	}
	defer root.Close()
	f, err := root.Open(strings.TrimPrefix(x.Path, "/"))
	if err != nil {
		return fmt.Errorf("open %s in the upper dir: %w", x.Path, err)
	}
	defer f.Close()
	return hashFile(f, maxHash, false, x)
}

// hashFile hashes f when it is the regular file the kernel reported (inode, and device with sameDev), reading at
// most maxHash bytes.
func hashFile(f interface {
	io.Reader
	Stat() (os.FileInfo, error)
}, maxHash int64, sameDev bool, x *ExecDrift) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", x.Path, err)
	}
	st, ok := fsaccess.StatOf(fi)
	if !ok || !fi.Mode().IsRegular() || st.Ino != x.Inode || sameDev && st.Dev != x.Dev {
		return fmt.Errorf("%s is no longer the file executed", x.Path)
	}
	if fi.Size() > maxHash {
		return fmt.Errorf("%s: %d bytes, more than the %d hashed", x.Path, fi.Size(), maxHash)
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, maxHash+1))
	if err != nil {
		return fmt.Errorf("hash %s: %w", x.Path, err)
	}
	if n > maxHash {
		return fmt.Errorf("%s grew past the %d bytes hashed", x.Path, maxHash)
	}
	x.SHA256, x.Size = hex.EncodeToString(h.Sum(nil)), n
	return nil
}

// passwdName finds uid's name in a passwd file ("" when absent). Names are checked to be plain: the file is the
// container's.
func passwdName(b []byte, uid uint32) string {
	want := strconv.FormatUint(uint64(uid), 10)
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 4096), 4096)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), ":", 4)
		if len(f) < 4 || f[2] != want || f[0] == "" || len(f[0]) > 64 {
			continue
		}
		if strings.IndexFunc(f[0], func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0 {
			continue
		}
		return f[0]
	}
	return ""
}

func truncateString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
