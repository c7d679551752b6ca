// Package bpftest holds what tests of the eBPF programs need from the host, for bpf's own tests and the
// integration tests alike.
package bpftest

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TracefsDir is where the mmap program's syscall tracepoint is looked up.
const TracefsDir = "/sys/kernel/tracing"

// lockFile coordinates the test processes that share the host's tracefs (go test runs packages in parallel);
// its content says whether tests mounted tracefs ("1") and must unmount it.
const lockFile = "/run/rootscan-bpftest-tracefs.lock"

// EnsureTracefs mounts tracefs when the host has not (hosts often leave it unmounted). The last test process to
// finish with it unmounts what a test mounted: each holds a shared lock while it runs, and at the end only the
// one that gets the lock exclusively (nobody else holds it) unmounts.
func EnsureTracefs(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(lockFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	fd := int(f.Fd())
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if !mounted() {
		if err := unix.Mount("tracefs", TracefsDir, "tracefs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			t.Fatalf("mounting tracefs: %v", err)
		}
		if _, err := f.WriteAt([]byte("1"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Flock(fd, unix.LOCK_SH); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer f.Close()
		_ = unix.Flock(fd, unix.LOCK_UN)
		if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) != nil {
			return // another test still uses it; the last one unmounts
		}
		mark := make([]byte, 1)
		if n, _ := f.ReadAt(mark, 0); n == 1 && mark[0] == '1' {
			if err := unix.Unmount(TracefsDir, unix.MNT_DETACH); err != nil {
				t.Errorf("unmounting tracefs: %v", err)
			}
			_ = f.Truncate(0)
		}
	})
}

func mounted() bool {
	var fs unix.Statfs_t
	return unix.Statfs(TracefsDir, &fs) == nil && fs.Type == unix.TRACEFS_MAGIC
}
