package fsaccess_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rootscan/rootscan/fsaccess"
)

// Overlayfs marks opaque directories with trusted.overlay.opaque; drift must read it on directories, files and next
// to whiteouts and FIFOs without opening them, and never through a symlink.
func TestRootGetxattr(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	outside := t.TempDir()
	for _, d := range []string{"opaque", "plain"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Setxattr(filepath.Join(dir, "opaque"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Skipf("this filesystem takes no trusted xattrs: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 3000)
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	if err := unix.Setxattr(filepath.Join(dir, "file"), "user.big", big, 0); err != nil {
		t.Fatal(err)
	}
	mknod(t, filepath.Join(dir, "whiteout"), unix.S_IFCHR, 0)
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(filepath.Join(dir, "fifo"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	// A link inside the root to the opaque dir, and one that would leave the root for a marked dir outside it.
	if err := unix.Setxattr(outside, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	symlink(t, "opaque", filepath.Join(dir, "link"))
	symlink(t, "../../../../../../"+outside, filepath.Join(dir, "escape"))
	r := openRoot(t, dir, fsaccess.Options{})

	for _, tc := range []struct {
		name, attr, want string
		err              error
	}{
		{"opaque", "trusted.overlay.opaque", "y", nil},
		{"plain", "trusted.overlay.opaque", "", unix.ENODATA},
		{"file", "user.big", string(big), nil},
		{"fifo", "trusted.overlay.opaque", "y", nil},
		{"whiteout", "trusted.overlay.opaque", "", unix.ENODATA},
		{"link", "trusted.overlay.opaque", "", unix.ENODATA},
		{"escape", "trusted.overlay.opaque", "", unix.ENODATA},
		{"missing", "trusted.overlay.opaque", "", fs.ErrNotExist},
		{"../x", "trusted.overlay.opaque", "", fs.ErrInvalid},
	} {
		within(t, 5*time.Second, func() {
			got, err := r.Getxattr(tc.name, tc.attr)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Errorf("Getxattr(%q, %q) = %q, %v; want %v", tc.name, tc.attr, got, err, tc.err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Errorf("Getxattr(%q, %q) = %.20q, %v; want %.20q", tc.name, tc.attr, got, err, tc.want)
			}
		})
	}
	// The FIFO was never opened: it still has no reader.
	if w, err := unix.Open(filepath.Join(dir, "fifo"), unix.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
		unix.Close(w)
		t.Error("the FIFO has a reader after Getxattr")
	}
}
