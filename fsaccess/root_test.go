package fsaccess_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/scan"
)

var (
	_ scan.FS       = (*fsaccess.Root)(nil)
	_ fs.ReadFileFS = (*fsaccess.Root)(nil)
)

// requireRoot skips a test that needs root, unless ROOTSCAN_INTEGRATION=require (CI) makes the skip a failure.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	const why = "needs root (mknod of device nodes, chown)"
	if os.Getenv("ROOTSCAN_INTEGRATION") == "require" {
		t.Fatal(why + " and ROOTSCAN_INTEGRATION=require")
	}
	t.Skip(why)
}

// within fails the test if f does not return in time: a read that blocks on a FIFO must show up as a failure, not
// as a test binary that hangs until the global timeout.
func within(t testing.TB, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("operation still blocked after %v", d)
	}
}

const (
	imageShadow = "root:IMAGE-SHADOW:19000:0:99999:7:::\n"
	hostCanary  = "HOST-CANARY-must-never-be-read"
)

func write(t testing.TB, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t testing.TB, target, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, name); err != nil {
		t.Fatal(err)
	}
}

func mknod(t testing.TB, name string, mode uint32, dev int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(name, mode, dev); err != nil {
		t.Fatal(err)
	}
}

// hostileTree is an image root next to host files it must never reveal: a canary in its parent directory and one
// under /tmp, both named by the image's links.
type hostileTree struct {
	parent, root string
	canaryDir    string // outside the root, absolute
}

func newHostileTree(t testing.TB) hostileTree {
	t.Helper()
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	canaryDir, err := os.MkdirTemp("/tmp", "rootscan-canary-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(canaryDir) })
	write(t, filepath.Join(canaryDir, "secret"), hostCanary)
	write(t, filepath.Join(parent, "canary"), hostCanary)
	// Also a copy where the image's canary-shaped links would land if they were resolved on the host.
	write(t, filepath.Join(parent, "etc", "shadow"), hostCanary)

	write(t, filepath.Join(root, "etc/shadow"), imageShadow)
	write(t, filepath.Join(root, "usr/share/zoneinfo/UTC"), "TZif-image")
	write(t, filepath.Join(root, "usr/lib/libc.so"), "LIBC")
	write(t, filepath.Join(root, "canary"), "image canary")
	symlink(t, "/usr/share/zoneinfo/UTC", filepath.Join(root, "etc/localtime"))
	symlink(t, "/etc/shadow", filepath.Join(root, "etc/x"))
	symlink(t, "../../../../../../../../../etc/shadow", filepath.Join(root, "etc/rel"))
	symlink(t, "../..", filepath.Join(root, "etc/dotdot"))
	symlink(t, "/", filepath.Join(root, "slash"))
	symlink(t, "usr/lib", filepath.Join(root, "lib"))
	symlink(t, "../canary", filepath.Join(root, "up-canary"))
	symlink(t, "../../../../../../../../../../"+parent+"/canary", filepath.Join(root, "rel-canary"))
	symlink(t, filepath.Join(canaryDir, "secret"), filepath.Join(root, "abs-canary"))
	symlink(t, canaryDir, filepath.Join(root, "abs-canary-dir"))
	symlink(t, "/proc/self/root/etc/shadow", filepath.Join(root, "magic"))
	symlink(t, "/proc/self/root"+parent+"/canary", filepath.Join(root, "magic-canary"))
	symlink(t, "b", filepath.Join(root, "loop/a"))
	symlink(t, "a", filepath.Join(root, "loop/b"))
	// A chain of 10 links works; one of 50 exceeds the kernel's 40 and fails with ELOOP.
	for i := range 10 {
		symlink(t, "l"+strconv.Itoa(i+1), filepath.Join(root, "chain/l"+strconv.Itoa(i)))
	}
	symlink(t, "/etc/shadow", filepath.Join(root, "chain/l10"))
	for i := range 50 {
		symlink(t, "l"+strconv.Itoa(i+1), filepath.Join(root, "longchain/l"+strconv.Itoa(i)))
	}
	write(t, filepath.Join(root, "longchain/l50"), "end of a too long chain")
	mknod(t, filepath.Join(root, "var/lib/dpkg/status"), unix.S_IFIFO|0o644, 0)
	symlink(t, "/var/lib/dpkg/status", filepath.Join(root, "var/lib/dpkg/status-link"))
	mknod(t, filepath.Join(root, "run/sock"), unix.S_IFSOCK|0o644, 0)
	write(t, filepath.Join(root, "var/lib/rpm/Packages"), "")
	if err := os.Truncate(filepath.Join(root, "var/lib/rpm/Packages"), 10<<30); err != nil {
		t.Fatal(err)
	}
	return hostileTree{parent: parent, root: root, canaryDir: canaryDir}
}

func openRoot(t testing.TB, dir string, opts fsaccess.Options) *fsaccess.Root {
	t.Helper()
	r, err := fsaccess.OpenDir(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestRootConfinesLinks(t *testing.T) {
	tr := newHostileTree(t)
	r := openRoot(t, tr.root, fsaccess.Options{})

	// Links that name host paths resolve to the image's own files, like in a chroot.
	for _, name := range []string{"etc/shadow", "etc/x", "etc/rel", "etc/dotdot/etc/shadow", "slash/etc/shadow", "chain/l0", "slash/slash/etc/x"} {
		got, err := r.ReadFile(name)
		if err != nil {
			t.Errorf("ReadFile(%q): %v", name, err)
			continue
		}
		if string(got) != imageShadow {
			t.Errorf("ReadFile(%q) = %.40q, want the image's shadow", name, got)
		}
	}
	// Links to the canaries resolve inside the root, where there is no such file (or the image's own canary).
	for _, name := range []string{"abs-canary", "abs-canary-dir/secret", "rel-canary", "magic", "magic-canary"} {
		if got, err := r.ReadFile(name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ReadFile(%q) = %.40q, %v; want ErrNotExist", name, got, err)
		}
	}
	if got, err := r.ReadFile("up-canary"); err != nil || string(got) != "image canary" {
		t.Errorf("ReadFile(up-canary) = %.40q, %v; want the image's canary", got, err)
	}
	for _, name := range []string{"loop/a", "longchain/l0"} {
		if _, err := r.ReadFile(name); !errors.Is(err, syscall.ELOOP) {
			t.Errorf("ReadFile(%q) err = %v, want ELOOP", name, err)
		}
	}
}

func TestRootNeverReadsOutside(t *testing.T) {
	tr := newHostileTree(t)
	r := openRoot(t, tr.root, fsaccess.Options{})
	var names []string
	err := r.Walk(context.Background(), ".", fsaccess.WalkOptions{}, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		names = append(names, name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Following every entry, links included, through Open and ReadFile must never produce host content.
	for _, name := range names {
		within(t, 5*time.Second, func() {
			if b, err := r.ReadFile(name); err == nil && strings.Contains(string(b), hostCanary) {
				t.Errorf("ReadFile(%q) returned host content", name)
			}
			f, err := r.Open(name)
			if err != nil {
				return
			}
			defer f.Close()
			b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
			if strings.Contains(string(b), hostCanary) {
				t.Errorf("Open(%q) returned host content", name)
			}
		})
	}
	if !slices.Contains(names, "var/lib/dpkg/status") || !slices.Contains(names, "magic") {
		t.Errorf("walk missed entries: %v", names)
	}
}

func TestRootPositive(t *testing.T) {
	tr := newHostileTree(t)
	r := openRoot(t, tr.root, fsaccess.Options{})

	if got, err := r.ReadFile("etc/localtime"); err != nil || string(got) != "TZif-image" {
		t.Errorf("absolute link inside the image: %q, %v", got, err)
	}
	if got, err := r.ReadFile("lib/libc.so"); err != nil || string(got) != "LIBC" {
		t.Errorf("relative dir link: %q, %v", got, err)
	}
	fi, err := r.Stat("etc/localtime")
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != int64(len("TZif-image")) || fi.Name() != "localtime" {
		t.Errorf("Stat(etc/localtime) = %v, %v", fi, err)
	}
	li, err := r.Lstat("etc/localtime")
	if err != nil || li.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Lstat(etc/localtime) = %v, %v; want a symlink", li, err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid != uint32(os.Geteuid()) {
		t.Errorf("Stat Sys = %#v, want *syscall.Stat_t with our uid", fi.Sys())
	}
	for name, want := range map[string]string{"etc/localtime": "/usr/share/zoneinfo/UTC", "etc/rel": "../../../../../../../../../etc/shadow", "magic": "/proc/self/root/etc/shadow"} {
		if got, err := r.ReadLink(name); err != nil || got != want {
			t.Errorf("ReadLink(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := r.ReadLink("etc/shadow"); err == nil {
		t.Error("ReadLink of a regular file succeeded")
	}
	ents, err := r.ReadDir("etc")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, fmt.Sprintf("%s:%v", e.Name(), e.Type()))
	}
	want := []string{"dotdot:L---------", "localtime:L---------", "rel:L---------", "shadow:----------", "x:L---------"}
	if !slices.Equal(got, want) {
		t.Errorf("ReadDir(etc) = %v, want %v", got, want)
	}
	info, err := ents[1].Info()
	if err != nil || info.Mode()&fs.ModeSymlink == 0 || info.Name() != "localtime" {
		t.Errorf("DirEntry.Info = %v, %v; want the link's own info", info, err)
	}
	// The root itself, through a link to a directory.
	if ents, err := r.ReadDir("lib"); err != nil || len(ents) != 1 || ents[0].Name() != "libc.so" {
		t.Errorf("ReadDir(lib) = %v, %v", ents, err)
	}
	if fi, err := r.Stat("."); err != nil || !fi.IsDir() {
		t.Errorf("Stat(.) = %v, %v", fi, err)
	}
}

func TestRootInvalidNames(t *testing.T) {
	tr := newHostileTree(t)
	r := openRoot(t, tr.root, fsaccess.Options{})
	for _, name := range []string{"", "/etc/shadow", "../root/etc/shadow", "etc/../etc/shadow", "etc/", "./etc", "etc//shadow", "etc/shadow\x00"} {
		if _, err := r.Open(name); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Open(%q) err = %v, want ErrInvalid", name, err)
		}
		if _, err := r.ReadDir(name); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("ReadDir(%q) err = %v, want ErrInvalid", name, err)
		}
	}
	// A name that is not UTF-8 is still a file the scanner must see.
	bad := "bin/\xff\xfe-hidden"
	write(t, filepath.Join(tr.root, bad), "payload")
	ents, err := r.ReadDir("bin")
	if err != nil || len(ents) != 1 || ents[0].Name() != "\xff\xfe-hidden" {
		t.Fatalf("ReadDir(bin) = %v, %v", ents, err)
	}
	if got, err := r.ReadFile(bad); err != nil || string(got) != "payload" {
		t.Errorf("ReadFile(non-UTF-8) = %q, %v", got, err)
	}
}

func TestRootSpecialFiles(t *testing.T) {
	tr := newHostileTree(t)
	r := openRoot(t, tr.root, fsaccess.Options{})
	fifo := filepath.Join(tr.root, "var/lib/dpkg/status")
	for _, name := range []string{"var/lib/dpkg/status", "var/lib/dpkg/status-link", "run/sock"} {
		within(t, 5*time.Second, func() {
			if _, err := r.ReadFile(name); !errors.Is(err, fsaccess.ErrNotRegular) {
				t.Errorf("ReadFile(%q) err = %v, want ErrNotRegular", name, err)
			}
			if _, err := scan.ReadFile(r, name, 1<<20); !errors.Is(err, scan.ErrNotRegular) {
				t.Errorf("scan.ReadFile(%q) err = %v, want scan.ErrNotRegular", name, err)
			}
			f, err := r.Open(name)
			if err != nil {
				t.Errorf("Open(%q): %v", name, err)
				return
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil || fi.Mode().IsRegular() || fi.IsDir() {
				t.Errorf("Open(%q).Stat = %v, %v", name, fi, err)
			}
			if _, err := f.Read(make([]byte, 10)); !errors.Is(err, fsaccess.ErrNotRegular) {
				t.Errorf("Open(%q).Read err = %v, want ErrNotRegular", name, err)
			}
			// While the File is open, the FIFO still has no reader: opening it for writing without blocking
			// fails with ENXIO exactly when nobody has it open for reading.
			w, err := unix.Open(fifo, unix.O_WRONLY|unix.O_NONBLOCK, 0)
			if err == nil {
				unix.Close(w)
				t.Errorf("after Open(%q) the FIFO has a reader", name)
			} else if err != unix.ENXIO {
				t.Errorf("open FIFO for writing: %v", err)
			}
		})
	}
}

func TestRootDevicesNeverOpened(t *testing.T) {
	requireRoot(t)
	tr := newHostileTree(t)
	// A /dev/null-like node, a watchdog (opening one arms it) and a link from a package-database path to it.
	mknod(t, filepath.Join(tr.root, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3)))
	mknod(t, filepath.Join(tr.root, "dev/watchdog"), unix.S_IFCHR|0o600, int(unix.Mkdev(10, 130)))
	mknod(t, filepath.Join(tr.root, "dev/sda"), unix.S_IFBLK|0o600, int(unix.Mkdev(8, 0)))
	symlink(t, "/dev/watchdog", filepath.Join(tr.root, "var/lib/rpm/rpmdb.sqlite"))
	r := openRoot(t, tr.root, fsaccess.Options{})
	for _, name := range []string{"dev/null", "dev/watchdog", "dev/sda", "var/lib/rpm/rpmdb.sqlite"} {
		within(t, 5*time.Second, func() {
			if _, err := r.ReadFile(name); !errors.Is(err, fsaccess.ErrNotRegular) {
				t.Errorf("ReadFile(%q) err = %v, want ErrNotRegular", name, err)
			}
			f, err := r.Open(name)
			if err != nil {
				t.Fatalf("Open(%q): %v", name, err)
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil || fi.Mode()&fs.ModeDevice == 0 {
				t.Errorf("Open(%q).Stat = %v, %v; want a device", name, fi, err)
			}
			if st := fi.Sys().(*syscall.Stat_t); name == "dev/watchdog" && st.Rdev != unix.Mkdev(10, 130) {
				t.Errorf("watchdog rdev = %#x", st.Rdev)
			}
			// While its File is open, no descriptor of this process refers to the device.
			target := filepath.Join(tr.root, "dev", filepath.Base(name))
			if name == "var/lib/rpm/rpmdb.sqlite" {
				target = filepath.Join(tr.root, "dev/watchdog")
			}
			if fd := openFDTo(t, target); fd != "" {
				t.Errorf("Open(%q) left descriptor %s open on the device", name, fd)
			}
		})
	}
}

// openFDTo returns a descriptor of this process that refers to name, or "".
func openFDTo(t testing.TB, name string) string {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && l == name {
			return e.Name()
		}
	}
	return ""
}

func TestRootSparseFileRefusedBySize(t *testing.T) {
	tr := newHostileTree(t)
	r := openRoot(t, tr.root, fsaccess.Options{})
	start := time.Now()
	_, err := r.ReadFile("var/lib/rpm/Packages")
	if !errors.Is(err, fsaccess.ErrTooLarge) {
		t.Fatalf("ReadFile(10 GiB) err = %v, want ErrTooLarge", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusing took %v: the file was read", d)
	}
	small := openRoot(t, tr.root, fsaccess.Options{MaxFileSize: 5})
	if _, err := small.ReadFile("etc/shadow"); !errors.Is(err, fsaccess.ErrTooLarge) {
		t.Errorf("ReadFile above MaxFileSize err = %v", err)
	}
	if _, err := small.ReadFile("usr/lib/libc.so"); err != nil {
		t.Errorf("ReadFile below MaxFileSize: %v", err)
	}
}

func TestRootMagicLinksAndMounts(t *testing.T) {
	// The host's / as a root reaches the real procfs, whose magic links must not be followed.
	r := openRoot(t, "/", fsaccess.Options{})
	for _, name := range []string{"proc/self/root/etc/passwd", "proc/self/cwd", "proc/self/exe", "proc/self/fd/0"} {
		if _, err := r.Stat(name); !errors.Is(err, syscall.ELOOP) {
			t.Errorf("Stat(%q) err = %v, want ELOOP", name, err)
		}
	}
	// The link itself is visible without being followed.
	if fi, err := r.Lstat("proc/self/cwd"); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Lstat(proc/self/cwd) = %v, %v", fi, err)
	}
	if _, err := r.ReadLink("proc/self/cwd"); err != nil {
		t.Errorf("ReadLink(proc/self/cwd): %v", err)
	}
	if _, err := r.Stat("proc/self/status"); err != nil {
		t.Errorf("Stat across mounts without NoXDev: %v", err)
	}
	nox := openRoot(t, "/", fsaccess.Options{NoXDev: true})
	if _, err := nox.Stat("proc/self/status"); !errors.Is(err, fsaccess.ErrCrossesMount) || !errors.Is(err, syscall.EXDEV) {
		t.Errorf("NoXDev Stat(proc/self/status) err = %v, want ErrCrossesMount", err)
	}
	if _, err := nox.ReadDir("proc"); !errors.Is(err, fsaccess.ErrCrossesMount) {
		t.Errorf("NoXDev ReadDir(proc) err = %v, want ErrCrossesMount", err)
	}
}

func TestRootClose(t *testing.T) {
	tr := newHostileTree(t)
	var calls atomic.Int32
	r, err := fsaccess.OpenDir(tr.root, fsaccess.Options{OnClose: func() error {
		calls.Add(1)
		return errors.New("unmount failed")
	}})
	if err != nil {
		t.Fatal(err)
	}
	f, err := r.Open("etc/shadow")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := r.Close(); err == nil || !strings.Contains(err.Error(), "unmount failed") {
		t.Errorf("Close err = %v, want OnClose's error", err)
	}
	if err := r.Close(); err == nil || calls.Load() != 1 {
		t.Errorf("second Close: err %v, OnClose ran %d times", err, calls.Load())
	}
	if _, err := r.Stat("etc/shadow"); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Stat after Close err = %v, want ErrClosed", err)
	}
	if _, err := r.ReadDir("etc"); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("ReadDir after Close err = %v, want ErrClosed", err)
	}
	// A file opened before Close stays readable.
	if b, err := io.ReadAll(f); err != nil || string(b) != imageShadow {
		t.Errorf("read after Close = %q, %v", b, err)
	}
	if _, err := fsaccess.OpenDir(filepath.Join(tr.root, "etc/shadow"), fsaccess.Options{}); err == nil {
		t.Error("OpenDir of a regular file succeeded")
	}
}

// TestRootRenameRace moves a directory out of the root and back while a link inside it that climbs with ".." is
// resolved: the kernel must notice (RESOLVE_IN_ROOT returns EAGAIN, which Root retries) and never hand out the host
// file next to the root.
func TestRootRenameRace(t *testing.T) {
	tr := newHostileTree(t)
	write(t, filepath.Join(tr.root, "d/sub/keep"), "")
	symlink(t, "../../canary", filepath.Join(tr.root, "d/sub/up"))
	r := openRoot(t, tr.root, fsaccess.Options{})
	inside, outside := filepath.Join(tr.root, "d"), filepath.Join(tr.parent, "d")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				os.Rename(outside, inside)
				return
			default:
			}
			os.Rename(inside, outside)
			os.Rename(outside, inside)
		}
	}()
	var reads, misses int
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		b, err := r.ReadFile("d/sub/up")
		if err != nil {
			misses++
			continue
		}
		reads++
		if string(b) != "image canary" {
			close(stop)
			<-done
			t.Fatalf("read %q through a directory moved out of the root", b)
		}
	}
	close(stop)
	<-done
	t.Logf("%d reads, %d misses", reads, misses)
	if reads == 0 {
		t.Error("no read succeeded")
	}
}

func TestRootFSTest(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "etc/os-release"), "ID=debian\n")
	write(t, filepath.Join(dir, "usr/share/doc/a/copyright"), "text")
	write(t, filepath.Join(dir, "empty"), "")
	symlink(t, "/etc/os-release", filepath.Join(dir, "usr/lib/os-release"))
	r := openRoot(t, dir, fsaccess.Options{})
	if err := fstest.TestFS(r, "etc/os-release", "usr/share/doc/a/copyright", "empty", "usr/lib/os-release"); err != nil {
		t.Fatal(err)
	}
}

func TestWalkBounds(t *testing.T) {
	dir := t.TempDir()
	// A tree 5000 levels deep, built relative to each parent since its paths exceed PATH_MAX.
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkdirat(fd, "deep", 0o755); err != nil {
		t.Fatal(err)
	}
	nfd, err := unix.Openat(fd, "deep", unix.O_DIRECTORY|unix.O_RDONLY, 0)
	unix.Close(fd)
	if err != nil {
		t.Fatal(err)
	}
	fd = nfd
	for range 5000 {
		if err := unix.Mkdirat(fd, "d", 0o755); err != nil {
			t.Fatal(err)
		}
		nfd, err := unix.Openat(fd, "d", unix.O_DIRECTORY|unix.O_RDONLY, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = nfd
	}
	unix.Close(fd)
	for i := range 3000 {
		write(t, filepath.Join(dir, "wide", fmt.Sprintf("f%04d", i)), "")
	}
	r := openRoot(t, dir, fsaccess.Options{})
	ctx := context.Background()
	count := func(string, fs.DirEntry, error) error { return nil }

	err = r.Walk(ctx, "deep", fsaccess.WalkOptions{}, count)
	if !errors.Is(err, fsaccess.ErrLimit) {
		t.Errorf("Walk(deep) err = %v, want ErrLimit", err)
	}
	// Even with a depth bound above the tree, the walk ends in an error (names exceed PATH_MAX), not a crash.
	if err := r.Walk(ctx, "deep", fsaccess.WalkOptions{MaxDepth: 10000}, func(_ string, _ fs.DirEntry, err error) error { return err }); err == nil {
		t.Error("Walk(deep, MaxDepth 10000) succeeded")
	}
	n := 0
	if err := r.Walk(ctx, "wide", fsaccess.WalkOptions{}, func(string, fs.DirEntry, error) error { n++; return nil }); err != nil || n != 3001 {
		t.Errorf("Walk(wide) = %d entries, %v", n, err)
	}
	if err := r.Walk(ctx, "wide", fsaccess.WalkOptions{MaxEntries: 500}, count); !errors.Is(err, fsaccess.ErrLimit) {
		t.Errorf("Walk(wide, MaxEntries 500) err = %v, want ErrLimit", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := r.Walk(cctx, "wide", fsaccess.WalkOptions{}, count); !errors.Is(err, context.Canceled) {
		t.Errorf("Walk with cancelled context err = %v", err)
	}
	// SkipDir and SkipAll behave as in fs.WalkDir.
	var seen []string
	write(t, filepath.Join(dir, "skip/a/x"), "")
	write(t, filepath.Join(dir, "skip/b/y"), "")
	err = r.Walk(ctx, "skip", fsaccess.WalkOptions{}, func(name string, d fs.DirEntry, err error) error {
		seen = append(seen, name)
		if name == "skip/a" {
			return fs.SkipDir
		}
		if name == "skip/b/y" {
			return fs.SkipAll
		}
		return nil
	})
	if want := []string{"skip", "skip/a", "skip/b", "skip/b/y"}; err != nil || !slices.Equal(seen, want) {
		t.Errorf("Walk(skip) = %v, %v; want %v", seen, err, want)
	}

	capped := openRoot(t, dir, fsaccess.Options{MaxDirEntries: 1000})
	if _, err := capped.ReadDir("wide"); !errors.Is(err, fsaccess.ErrLimit) {
		t.Errorf("ReadDir past MaxDirEntries err = %v, want ErrLimit", err)
	}
	f, err := capped.Open("wide")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	total := 0
	for {
		ents, err := f.(fs.ReadDirFile).ReadDir(128)
		total += len(ents)
		if err != nil {
			if !errors.Is(err, fsaccess.ErrLimit) || total != 1000 {
				t.Errorf("ReadDir(128) loop ended after %d entries with %v; want ErrLimit at 1000", total, err)
			}
			break
		}
	}
}

// FuzzRootOpen resolves arbitrary names in the hostile tree and asserts no read ever returns host content.
func FuzzRootOpen(f *testing.F) {
	tr := newHostileTree(f)
	r := openRoot(f, tr.root, fsaccess.Options{})
	for _, s := range []string{"etc/x", "etc/rel", "slash/etc/shadow", "abs-canary", "up-canary", "rel-canary", "magic-canary",
		"etc/dotdot/etc/dotdot/canary", "abs-canary-dir/secret", "../canary", "/etc/shadow", "chain/l3", "lib/libc.so"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if b, err := r.ReadFile(name); err == nil && strings.Contains(string(b), hostCanary) {
			t.Fatalf("ReadFile(%q) returned host content", name)
		}
		file, err := r.Open(name)
		if err != nil {
			return
		}
		defer file.Close()
		b, _ := io.ReadAll(io.LimitReader(file, 1<<16))
		if strings.Contains(string(b), hostCanary) {
			t.Fatalf("Open(%q) returned host content", name)
		}
		if d, ok := file.(fs.ReadDirFile); ok {
			if _, err := d.ReadDir(-1); err != nil {
				t.Fatalf("ReadDir(%q): %v", name, err)
			}
		}
	})
}

func BenchmarkRootReadFile(b *testing.B) {
	dir := b.TempDir()
	write(b, filepath.Join(dir, "usr/lib/os-release"), strings.Repeat("ID=debian\n", 40))
	symlink(b, "../usr/lib/os-release", filepath.Join(dir, "etc/os-release"))
	r := openRoot(b, dir, fsaccess.Options{})
	b.Run("root", func(b *testing.B) {
		for b.Loop() {
			if _, err := r.ReadFile("etc/os-release"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("os", func(b *testing.B) {
		for b.Loop() {
			if _, err := os.ReadFile(filepath.Join(dir, "etc/os-release")); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkWalk: 100 directories of 100 files, walked with the root's own Walk (with and without an lstat of every
// entry) and with os.DirFS for comparison.
func BenchmarkWalk(b *testing.B) {
	dir := b.TempDir()
	for i := range 100 {
		for j := range 100 {
			write(b, filepath.Join(dir, fmt.Sprintf("d%02d/f%02d", i, j)), "x")
		}
	}
	r := openRoot(b, dir, fsaccess.Options{})
	ctx := context.Background()
	b.Run("root.Walk", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n := 0
			if err := r.Walk(ctx, ".", fsaccess.WalkOptions{}, func(string, fs.DirEntry, error) error { n++; return nil }); err != nil || n != 10101 {
				b.Fatal(n, err)
			}
		}
	})
	b.Run("root.Walk+Info", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := r.Walk(ctx, ".", fsaccess.WalkOptions{}, func(_ string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				_, err = d.Info()
				return err
			}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("os.DirFS+fs.WalkDir", func(b *testing.B) {
		b.ReportAllocs()
		fsys := os.DirFS(dir)
		for b.Loop() {
			if err := fs.WalkDir(fsys, ".", func(string, fs.DirEntry, error) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Entries of a listing below the top answer Info for their own path (the listed directory joined with the name).
func TestDirEntryPath(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a/b/file"), "12345")
	write(t, filepath.Join(dir, "top"), "1")
	r := openRoot(t, dir, fsaccess.Options{})
	for _, tc := range []struct {
		dir   string
		names []string
	}{
		{".", []string{"a", "top"}},
		{"a", []string{"b"}},
		{"a/b", []string{"file"}},
	} {
		ents, err := r.ReadDir(tc.dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
			fi, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			if fi.Name() != e.Name() || fi.IsDir() != e.IsDir() {
				t.Errorf("ReadDir(%q): %s: Info() = %s", tc.dir, e.Name(), fs.FormatFileInfo(fi))
			}
		}
		if !slices.Equal(names, tc.names) {
			t.Errorf("ReadDir(%q) = %v, want %v", tc.dir, names, tc.names)
		}
	}
	var walked []string
	if err := r.Walk(context.Background(), ".", fsaccess.WalkOptions{}, func(name string, d fs.DirEntry, err error) error {
		walked = append(walked, name)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{".", "a", "a/b", "a/b/file", "top"}; !slices.Equal(walked, want) {
		t.Errorf("Walk = %v, want %v", walked, want)
	}
}
