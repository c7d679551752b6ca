package inuse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

const (
	// procsMaxEntries bounds the /proc entries looked at for one container (a node runs a few thousand processes;
	// pid_max is at most 4M).
	procsMaxEntries = 1 << 20
	// procsMaxPaths bounds the distinct paths gathered for one container.
	procsMaxPaths = 1 << 16
	// procsMaxBytes bounds the maps text read for one container, whatever its process count: a container of a
	// thousand processes with the kernel's most mappings each would otherwise cost gigabytes of reading.
	procsMaxBytes = 64 << 20
)

// NamespaceMaps returns the files mapped executable by every process that shares pid's mount namespace (a
// container's processes share its init's), each once. Read from outside that namespace, as rootscan on the node
// does, the kernel prints the paths from the namespace's own root: they are the container's paths
// (/usr/lib/x86_64-linux-gnu/libc.so.6), ready for an Index. A process that exits meanwhile is skipped; what it
// mapped is only seen while it runs, so this is a snapshot of the moment, not a history.
func NamespaceMaps(ctx context.Context, procRoot string, pid int) ([]string, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("processes of pid %d: not a process id", pid)
	}
	want, err := os.Readlink(filepath.Join(procRoot, strconv.Itoa(pid), "ns", "mnt"))
	if err != nil {
		return nil, fmt.Errorf("mount namespace of pid %d: %w", pid, err)
	}
	dir, err := os.Open(procRoot)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	defer dir.Close()
	seen := map[string]bool{}
	var out []string
	budget := int64(procsMaxBytes)
	for looked := 0; looked < procsMaxEntries; {
		names, err := dir.Readdirnames(4096)
		looked += len(names)
		for _, n := range names {
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			p, perr := strconv.Atoi(n)
			if perr != nil || p <= 0 {
				continue
			}
			if ns, err := os.Readlink(filepath.Join(procRoot, n, "ns", "mnt")); err != nil || ns != want {
				continue
			}
			if budget <= 0 {
				return out, fmt.Errorf("maps: more than %d bytes in the namespace's processes; the rest not read", procsMaxBytes)
			}
			// A process gone meanwhile has no maps; a cut listing still gives what was read.
			paths, n, _ := processMaps(procRoot, p, min(budget, mapsMaxBytes))
			budget -= n
			for _, m := range paths {
				if !seen[m] && len(out) < procsMaxPaths {
					seen[m] = true
					out = append(out, m)
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("list processes: %w", err)
		}
	}
	return out, fmt.Errorf("list processes: more than %d entries in %s", procsMaxEntries, procRoot)
}
