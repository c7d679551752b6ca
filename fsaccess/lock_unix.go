//go:build unix

package fsaccess

import (
	"os"
	"syscall"
)

// lockOpenFlags open a lock file without following a link planted in its place, and keep it out of child processes.
const lockOpenFlags = syscall.O_NOFOLLOW | syscall.O_CLOEXEC

// tryLock locks f exclusively without waiting; closing f releases it, also when the process is killed.
func tryLock(f *os.File) error { return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) }
