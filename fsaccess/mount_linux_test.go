package fsaccess

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/containerd/containerd/v2/core/mount"
	"golang.org/x/sys/unix"
)

// needMountPrivilege skips without CAP_SYS_ADMIN, unless ROOTSCAN_INTEGRATION=require (CI), where a skip is a failure.
func needMountPrivilege(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	msg := "needs root to mount overlayfs"
	if os.Getenv("ROOTSCAN_INTEGRATION") == "require" {
		t.Fatal(msg + " (ROOTSCAN_INTEGRATION=require)")
	}
	t.Skip(msg)
}

func write(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// snapshotLike lays out what the overlayfs snapshotter has for a running container: two image layers, an upper dir
// with a change, a whiteout and an added file, and a workdir.
func snapshotLike(t *testing.T) (dir string, mounts []mount.Mount) {
	dir = t.TempDir()
	l1, l2, up, work := filepath.Join(dir, "1/fs"), filepath.Join(dir, "2/fs"), filepath.Join(dir, "3/fs"), filepath.Join(dir, "3/work")
	write(t, filepath.Join(l1, "etc/os-release"), "ID=debian\n")
	write(t, filepath.Join(l1, "etc/deleted"), "from layer 1\n")
	write(t, filepath.Join(l2, "etc/changed"), "image\n")
	write(t, filepath.Join(up, "etc/changed"), "container\n")
	write(t, filepath.Join(up, "tmp/added"), "added\n")
	if err := unix.Mknod(filepath.Join(up, "etc/deleted"), unix.S_IFCHR, 0); err != nil { // overlay whiteout
		t.Fatal(err)
	}
	if err := os.MkdirAll(work, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir, []mount.Mount{{Type: "overlay", Source: "overlay", Options: []string{
		"index=off", "workdir=" + work, "upperdir=" + up, "lowerdir=" + l2 + ":" + l1,
	}}}
}

func TestMounterViews(t *testing.T) {
	needMountPrivilege(t)
	ctx := context.Background()
	snapDir, mounts := snapshotLike(t)
	m, err := NewMounter(ctx, filepath.Join(t.TempDir(), "mounts"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	read := func(r *Root, name string) string {
		t.Helper()
		b, err := r.ReadFile(name)
		if err != nil {
			return "ERR:" + err.Error()
		}
		return string(b)
	}
	c, err := m.Mount(ctx, "ctr", mounts, ViewContainer, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := read(c, "etc/changed"); got != "container\n" {
		t.Errorf("container view etc/changed = %q, want the upper dir's version", got)
	}
	if got := read(c, "tmp/added"); got != "added\n" {
		t.Errorf("container view tmp/added = %q", got)
	}
	if _, err := c.Stat("etc/deleted"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("whiteout not honoured: stat etc/deleted = %v", err)
	}
	img, err := m.Mount(ctx, "img", mounts, ViewImage, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := read(img, "etc/changed"); got != "image\n" {
		t.Errorf("image view etc/changed = %q", got)
	}
	if got := read(img, "etc/deleted"); got != "from layer 1\n" {
		t.Errorf("image view etc/deleted = %q", got)
	}
	up, err := m.Mount(ctx, "up", mounts, ViewUpper, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := up.Lstat("etc/deleted"); err != nil || fi.Mode()&fs.ModeCharDevice == 0 {
		t.Errorf("upper view shows whiteouts as char devices: %v %v", fi, err)
	}
	if m.Held() != 3 {
		t.Errorf("Held = %d, want 3", m.Held())
	}

	// Read-only and hardened: every mount is ro,nosuid,nodev,noexec, and writing fails.
	points, err := MountPointsUnder(m.Dir())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range points {
		if p == m.Dir() {
			continue
		}
		var st unix.Statfs_t
		if err := unix.Statfs(p, &st); err != nil {
			t.Fatal(err)
		}
		for _, fl := range []int64{unix.ST_RDONLY, unix.ST_NOSUID, unix.ST_NODEV, unix.ST_NOEXEC} {
			if st.Flags&fl == 0 {
				t.Errorf("mount %s lacks flag %#x (flags %#x)", p, fl, st.Flags)
			}
		}
		if err := os.WriteFile(filepath.Join(p, "new-file"), nil, 0o644); !errors.Is(err, unix.EROFS) {
			t.Errorf("write into %s: %v, want EROFS", p, err)
		}
	}
	// The live container's workdir must be untouched: a second overlay on it would have created work/work.
	if ents, _ := os.ReadDir(filepath.Join(snapDir, "3/work")); len(ents) != 0 {
		t.Errorf("workdir of the live snapshot was touched: %v", ents)
	}

	for _, r := range []*Root{c, img, up} {
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if m.Held() != 0 {
		t.Errorf("Held after close = %d", m.Held())
	}
	points, _ = MountPointsUnder(m.Dir())
	if len(points) != 1 || points[0] != m.Dir() {
		t.Errorf("mounts left after closing every root: %q", points)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if points, _ = MountPointsUnder(m.Dir()); len(points) != 0 {
		t.Errorf("mounts left after Mounter.Close: %q", points)
	}
}

// A crashed run leaves mounts behind; the next start must remove them before doing anything else.
func TestMounterRemovesStaleMounts(t *testing.T) {
	needMountPrivilege(t)
	ctx := context.Background()
	_, mounts := snapshotLike(t)
	dir := filepath.Join(t.TempDir(), "mounts")
	m1, err := NewMounter(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m1.Mount(ctx, "a", mounts, ViewContainer, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := m1.Mount(ctx, "b", mounts, ViewImage, Options{}); err != nil {
		t.Fatal(err)
	}
	// m1 "crashes": never closed.
	m2, err := NewMounter(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	points, _ := MountPointsUnder(m2.Dir())
	if len(points) != 1 {
		t.Fatalf("after restart want only the private dir mount, got %q", points)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 {
		t.Errorf("stale mount point dirs left: %v", ents)
	}
	if err := m2.Close(); err != nil {
		t.Fatal(err)
	}
	if points, _ := MountPointsUnder(dir); len(points) != 0 {
		t.Errorf("mounts left: %q", points)
	}
}

func TestMounterCancelledContext(t *testing.T) {
	needMountPrivilege(t)
	_, mounts := snapshotLike(t)
	m, err := NewMounter(context.Background(), filepath.Join(t.TempDir(), "mounts"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Mount(ctx, "x", mounts, ViewContainer, Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("mount with cancelled ctx: %v", err)
	}
	if points, _ := MountPointsUnder(m.Dir()); len(points) != 1 {
		t.Fatalf("mounts: %q", points)
	}
	if ents, _ := os.ReadDir(m.Dir()); len(ents) != 0 {
		t.Fatalf("mount point dirs left: %v", ents)
	}
}

// A set of mounts that fails part-way (two mounted, one on top of the other, the third refused) must leave nothing
// mounted and nothing tracked: the undo is armed before the first mount, as containerd's WithTempMount does.
func TestMounterPartialMountUndone(t *testing.T) {
	needMountPrivilege(t)
	ctx := context.Background()
	layer := t.TempDir()
	write(t, filepath.Join(layer, "etc/os-release"), "ID=debian\n")
	m, err := NewMounter(ctx, filepath.Join(t.TempDir(), "mounts"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// The second mount sits below the first, which the undo must take too.
	if err := os.Mkdir(filepath.Join(layer, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	set := []mount.Mount{
		{Type: "bind", Source: layer, Options: append([]string{"bind"}, hardening...)},
		{Type: "bind", Source: layer, Target: "sub", Options: append([]string{"bind"}, hardening...)},
		{Type: "overlay", Source: "rootscan", Options: append([]string{"lowerdir=" + filepath.Join(layer, "missing-a") + ":" + filepath.Join(layer, "missing-b")}, hardening...)},
	}
	if _, err := m.mountRoot(ctx, "partial", "partial", set, Options{}); err == nil {
		t.Fatal("mounting a set whose second mount cannot succeed: no error")
	}
	if points, err := MountPointsUnder(m.Dir()); err != nil || len(points) != 1 || points[0] != m.Dir() {
		t.Errorf("after the failed set, mounts under %s = %q (%v), want only the private dir", m.Dir(), points, err)
	}
	if m.Held() != 0 {
		t.Errorf("Held = %d after a failed mount, want 0", m.Held())
	}
	if ents, _ := os.ReadDir(m.Dir()); len(ents) != 0 {
		t.Errorf("mount point dirs left: %v", ents)
	}
}

// MountPointsUnder reads the kernel's table: deepest first, names with spaces (escaped in mountinfo) as they are,
// and a sibling that merely shares the prefix left out.
func TestMountPointsUnder(t *testing.T) {
	needMountPrivilege(t)
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir, spaced, sibling := filepath.Join(base, "mounts"), filepath.Join(base, "mounts", "with space"), filepath.Join(base, "mounts-other")
	for _, p := range []string{dir, spaced, sibling} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("tmpfs", p, "tmpfs", 0, "size=64k"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = unix.Unmount(p, unix.MNT_DETACH) })
		if p == dir {
			if err := os.Mkdir(spaced, 0o700); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := MountPointsUnder(dir + "/")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{spaced, dir}; !slices.Equal(got, want) {
		t.Fatalf("MountPointsUnder(%s) = %q, want %q", dir, got, want)
	}
}
