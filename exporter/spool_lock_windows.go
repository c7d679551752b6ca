package exporter

import (
	"os"

	"golang.org/x/sys/windows"
)

// lockExclusive locks f's first byte exclusively without waiting; closing f releases it.
func lockExclusive(f *os.File) error {
	return windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &windows.Overlapped{})
}
