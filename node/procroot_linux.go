package node

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/fsaccess"
)

// openProcRoot opens the container init's /proc/<pid>/root, after checking from /proc/<pid>/stat that the pid is
// still the process the container started (checkPidStart). The check and the open go through one open /proc/<pid>
// directory: it stays bound to the process it was opened for, so a pid reused between the check and the open cannot
// slip in (reads through the directory of a process that exited fail). Nothing here tells an init that chrooted
// into a clean directory from one that did not: that is why the fallback is opt-in.
func openProcRoot(procRoot string, c cri.Container, opts fsaccess.Options) (Root, error) {
	dir, err := os.Open(filepath.Join(procRoot, strconv.Itoa(c.Pid)))
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	dfd := int(dir.Fd())
	if err := checkProcStart(dfd, c); err != nil {
		return nil, err
	}
	root, err := fsaccess.OpenDir("/proc/self/fd/"+strconv.Itoa(dfd)+"/root", opts)
	if err != nil {
		return nil, err
	}
	// The process may have exited between the check and the open; then the root is not known to be its.
	if err := checkProcStart(dfd, c); err != nil {
		root.Close()
		return nil, err
	}
	return root, nil
}

// checkProcStart reads the start time of the process whose /proc directory dfd is and checks it against c.
func checkProcStart(dfd int, c cri.Container) error {
	fd, err := unix.Openat(dfd, "stat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("read /proc/%d/stat: %w", c.Pid, err)
	}
	f := os.NewFile(uintptr(fd), "stat")
	defer f.Close()
	buf := make([]byte, 4096) // a stat line is well under 1 KiB; the command name is at most 64 bytes
	n, err := f.Read(buf)
	if err != nil {
		return fmt.Errorf("read /proc/%d/stat: %w", c.Pid, err)
	}
	ticks, err := statStartTicks(buf[:n])
	if err != nil {
		return fmt.Errorf("/proc/%d/%w", c.Pid, err)
	}
	boot, err := bootTime()
	if err != nil {
		return err
	}
	return checkPidStart(c, boot, ticks)
}

// bootTime is when CLOCK_BOOTTIME began, on the wall clock: what /proc/<pid>/stat start times count from.
func bootTime() (time.Time, error) {
	var ts unix.Timespec
	now := time.Now()
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return time.Time{}, fmt.Errorf("boot time: %w", err)
	}
	return now.Add(-time.Duration(ts.Nano())), nil
}

// checkContainerPid says whether c.Pid under procRoot is still the process the container started.
func checkContainerPid(procRoot string, c cri.Container) error {
	dir, err := os.Open(filepath.Join(procRoot, strconv.Itoa(c.Pid)))
	if err != nil {
		return err
	}
	defer dir.Close()
	return checkProcStart(int(dir.Fd()), c)
}
