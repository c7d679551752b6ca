package testbed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// EnvIntegration set to "require" turns Require's skips into failures. CI sets
// it, so that an integration test that cannot run fails CI instead of passing
// it silently.
const EnvIntegration = "ROOTSCAN_INTEGRATION"

// Available reports why a testbed containerd cannot run on this machine with
// these options (nil if it can): not root, no containerd, shim or runc, no
// overlayfs.
func Available(opts Options) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (mounts, cgroups, runc)")
	}
	bin, err := resolveContainerd(opts.Bin)
	if err != nil {
		return err
	}
	if _, err := resolveShim(bin); err != nil {
		return err
	}
	if _, err := resolveRunc(opts.Runc); err != nil {
		return err
	}
	return checkOverlay()
}

// checkOverlay mounts a small overlay in the temp dir, where the testbed's
// snapshots go: overlay support in the kernel is not enough when the temp dir
// is itself on a file system overlayfs cannot use as upper dir.
func checkOverlay() error {
	if !hasFilesystem("overlay") {
		return errors.New("kernel has no overlay file system")
	}
	dir, err := os.MkdirTemp("", "rstb-overlay-")
	if err != nil {
		return fmt.Errorf("overlay check: %w", err)
	}
	defer os.RemoveAll(dir)
	var p [4]string
	for i, n := range []string{"lower", "upper", "work", "merged"} {
		p[i] = filepath.Join(dir, n)
		if err := os.Mkdir(p[i], 0o755); err != nil {
			return fmt.Errorf("overlay check: %w", err)
		}
	}
	data := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", p[0], p[1], p[2])
	if err := unix.Mount("overlay", p[3], "overlay", 0, data); err != nil {
		return fmt.Errorf("overlayfs unusable in %s: %w", os.TempDir(), err)
	}
	if err := unix.Unmount(p[3], unix.MNT_DETACH); err != nil {
		return fmt.Errorf("overlay check: unmount %s: %w", p[3], err)
	}
	return nil
}

func hasFilesystem(name string) bool {
	f, err := os.Open("/proc/filesystems")
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 0 && fields[len(fields)-1] == name {
			return true
		}
	}
	return false
}

// Require skips t when the testbed cannot run here (see Available) or with
// -short, and says why. With ROOTSCAN_INTEGRATION=require it fails t instead
// (except with -short, an explicit request to skip).
func Require(t testing.TB) {
	t.Helper()
	requireWith(t, Options{})
}

func requireWith(t testing.TB, opts Options) {
	t.Helper()
	if testing.Short() {
		t.Skip("testbed: integration test skipped in -short mode")
	}
	why := Available(opts)
	if why == nil {
		return
	}
	if os.Getenv(EnvIntegration) == "require" {
		t.Fatalf("testbed: %v (%s=require: integration tests must run)", why, EnvIntegration)
	}
	t.Skipf("testbed: %v (set %s=require to fail instead)", why, EnvIntegration)
}

// StartT is Require and Start for tests: it stops the containerd when the test
// ends, and logs the tail of containerd's log if the test failed.
func StartT(t testing.TB, opts Options) *Containerd {
	t.Helper()
	requireWith(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("start testbed containerd: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("containerd %s log (tail):\n%s", c.Version(), c.LogTail(8192))
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stop testbed containerd: %v", err)
		}
	})
	return c
}
