package fsaccess

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Scratch directories hold an extracted image (OpenOCI) while they are scanned, and are removed when the scan ends.
// A run that is killed (SIGKILL, OOM) cannot remove its own, and at gigabytes each they would fill the disk across
// restarts; so every scratch directory holds a lock file, locked for as long as its run uses it, and the next run
// removes every scratch directory whose lock it can take. A lock, unlike a PID, dies with its process and is never
// reused. A directory without a lock file is one another run is creating right now, and is left alone, unless it is
// older than scratchUnlockedAge: then an earlier rootscan, which did not lock its scratch dirs, left it.

// scratchPrefix starts the names of the scratch directories under a scratch dir.
const scratchPrefix = "oci-"

// scratchLock is the lock file in each scratch directory.
const scratchLock = ".rootscan-lock"

// scratchUnlockedAge is how old a scratch directory without a lock file must be to count as left behind; a run
// creates its lock right after the directory.
const scratchUnlockedAge = time.Hour

// newScratchDir creates a private (0700) directory under parent whose name starts with scratchPrefix+kind, locked
// for this process until release; release also removes it.
func newScratchDir(parent, kind string) (dir string, release func() error, err error) {
	dir, err = os.MkdirTemp(parent, scratchPrefix+kind)
	if err != nil {
		return "", nil, err
	}
	lock, err := os.OpenFile(filepath.Join(dir, scratchLock), os.O_RDWR|os.O_CREATE|os.O_EXCL|lockOpenFlags, 0o600)
	if err == nil {
		if err = tryLock(lock); err != nil {
			lock.Close()
		}
	}
	if err != nil {
		return "", nil, errors.Join(fmt.Errorf("lock scratch dir: %w", err), os.RemoveAll(dir))
	}
	release = func() error {
		// Removed while still locked, so no other run sees it unlocked and half removed.
		err := os.RemoveAll(dir)
		lock.Close()
		if err != nil {
			return fmt.Errorf("remove scratch dir %s: %w", dir, err)
		}
		return nil
	}
	return dir, release, nil
}

// RemoveStaleScratch removes the scratch directories under parent that no live run holds: those a killed run left
// behind. OpenOCI calls it before it creates its own; it returns how many it removed.
func RemoveStaleScratch(parent string, log *slog.Logger) (int, error) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		return 0, fmt.Errorf("list scratch dir %s: %w", parent, err)
	}
	var (
		n    int
		errs []error
	)
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), scratchPrefix) {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		lock, err := os.OpenFile(filepath.Join(dir, scratchLock), os.O_RDWR|lockOpenFlags, 0)
		switch {
		case errors.Is(err, os.ErrNotExist):
			if fi, ierr := e.Info(); ierr != nil || time.Since(fi.ModTime()) < scratchUnlockedAge {
				continue // being created
			}
		case err != nil:
			continue // not ours
		case tryLock(lock) != nil:
			lock.Close() // a live run holds it
			continue
		}
		err = os.RemoveAll(dir)
		if lock != nil {
			lock.Close()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove stale scratch dir %s: %w", dir, err))
			continue
		}
		n++
	}
	if n > 0 && log != nil {
		log.Warn("removed scratch dirs a killed run left behind", "dir", parent, "count", n)
	}
	return n, errors.Join(errs...)
}
