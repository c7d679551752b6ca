package fsaccess

import (
	"os"

	"golang.org/x/sys/windows"
)

// lockOpenFlags: Windows has no O_NOFOLLOW; os.OpenFile does not follow symbolic links to create the file there.
const lockOpenFlags = 0

// tryLock locks f's first byte exclusively without waiting; closing f releases it, also when the process is killed.
func tryLock(f *os.File) error {
	return windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &windows.Overlapped{})
}
