package deploy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMountClaims checks, with real mounts, what the DaemonSet's volume choices rely on:
//   - a read-only bind of the containerd run directory still lets the scanner connect to the socket in it;
//   - mounting the directory (not the socket file) keeps working after containerd re-creates its socket, where a
//     bind of the socket file goes dead;
//   - the read-only overlays the scanner builds (lowerdir only) work on layers under a read-only bind of
//     containerd's root.
//
// It runs in a private mount namespace on a thread of its own that exits with the test, so nothing can leak to the
// node.
func TestMountClaims(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv(envIntegration) == "require" {
			t.Fatalf("needs root for mounts (%s=require: this test must run)", envIntegration)
		}
		t.Skipf("needs root for mounts; set %s=require to fail instead", envIntegration)
	}
	node, pod := t.TempDir(), t.TempDir()
	runDir := filepath.Join(node, "run/containerd")
	layers := filepath.Join(node, "var/lib/containerd")
	for _, d := range []string{runDir, filepath.Join(layers, "lower/etc"), filepath.Join(layers, "upper/etc")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, content := range map[string]string{"lower/etc/os-release": "ID=debian\n", "upper/etc/added": "drift\n"} {
		if err := os.WriteFile(filepath.Join(layers, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(runDir, "containerd.sock")
	stop, err := serveSocket(sock)
	if err != nil {
		t.Fatal(err)
	}
	restart := func() error {
		stop()
		stop, err = serveSocket(sock)
		return err
	}

	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread, and its mount namespace, end with the goroutine
		done <- mountClaims(sock, runDir, layers, pod, restart)
	}()
	if err := <-done; err != nil {
		t.Error(err)
	}
	stop()
}

// serveSocket listens on a unix socket and answers every connection with "ok"; the returned func closes it (which
// removes the socket file, as containerd's shutdown does).
func serveSocket(path string) (stop func(), err error) {
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "ok")
			c.Close()
		}
	}()
	return func() { l.Close() }, nil
}

func mountClaims(sock, runDir, layers, pod string, restart func() error) error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	podRun := filepath.Join(pod, "run/containerd")
	podLayers := filepath.Join(pod, "var/lib/containerd")
	podSockFile := filepath.Join(pod, "socket-file")
	merged := filepath.Join(pod, "merged")
	for _, d := range []string{podRun, podLayers, merged} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(podSockFile, nil, 0o600); err != nil {
		return err
	}
	// What kubelet does for a readOnly hostPath: a bind, then a read-only remount of it.
	for src, dst := range map[string]string{runDir: podRun, layers: podLayers, sock: podSockFile} {
		if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s: %w", src, err)
		}
		if err := unix.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("remount %s read-only: %w", dst, err)
		}
	}
	if err := os.WriteFile(filepath.Join(podRun, "x"), nil, 0o600); !errors.Is(err, unix.EROFS) {
		return fmt.Errorf("write into the read-only run dir: %v, want EROFS (the mount is not read-only)", err)
	}

	podSock := filepath.Join(podRun, "containerd.sock")
	if err := dial(podSock); err != nil {
		return fmt.Errorf("connect through the read-only dir mount: %w", err)
	}
	if err := dial(podSockFile); err != nil {
		return fmt.Errorf("connect through the read-only file mount: %w", err)
	}
	if err := restart(); err != nil {
		return fmt.Errorf("re-create the socket: %w", err)
	}
	if err := dial(podSock); err != nil {
		return fmt.Errorf("connect through the dir mount after the socket was re-created: %w", err)
	}
	if err := dial(podSockFile); err == nil {
		return errors.New("a bind of the socket file still connects after the socket was re-created; " +
			"the reason to mount the directory is gone, update the DaemonSet comment")
	}

	// The scanner's lower-only overlay (no upperdir, no workdir) over layers on the read-only bind.
	opts := fmt.Sprintf("lowerdir=%s:%s", filepath.Join(podLayers, "upper"), filepath.Join(podLayers, "lower"))
	if err := unix.Mount("overlay", merged, "overlay", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
		return fmt.Errorf("overlay on read-only layers: %w", err)
	}
	for p, want := range map[string]string{"etc/os-release": "ID=debian\n", "etc/added": "drift\n"} {
		got, err := os.ReadFile(filepath.Join(merged, p))
		if err != nil || string(got) != want {
			return fmt.Errorf("read %s through the overlay: %q, %v; want %q", p, got, err, want)
		}
	}
	return nil
}

func dial(path string) error {
	c, err := net.Dial("unix", path)
	if err != nil {
		return err
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if string(b) != "ok" {
		return fmt.Errorf("answer %q, want ok", b)
	}
	return nil
}
