//go:build unix

package exporter

import (
	"os"

	"golang.org/x/sys/unix"
)

// lockExclusive takes an exclusive flock on f without waiting; closing f releases it.
func lockExclusive(f *os.File) error { return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) }
