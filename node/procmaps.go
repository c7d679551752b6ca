package node

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Bounds on what seeding a container's used files reads from /proc.
const (
	maxSeedPIDs  = 1024
	maxMapsBytes = 4 << 20
)

// runningExecutables lists the files the container's running processes (init and its descendants, from
// /proc/<pid>/task/*/children) have mapped executable. /proc shows each path as the process sees it, inside the
// container's root. Unreadable entries (a process gone, no ptrace access) are skipped: the set only grows.
func runningExecutables(procRoot string, initPID int) []string {
	if initPID <= 0 {
		return nil
	}
	seen := map[int]bool{}
	queue := []int{initPID}
	var paths []string
	for len(queue) > 0 && len(seen) < maxSeedPIDs {
		pid := queue[0]
		queue = queue[1:]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		paths = append(paths, mappedExecutables(filepath.Join(procRoot, strconv.Itoa(pid), "maps"))...)
		queue = append(queue, childPIDs(procRoot, pid)...)
	}
	return paths
}

func mappedExecutables(mapsFile string) []string {
	f, err := os.Open(mapsFile)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(io.LimitReader(f, maxMapsBytes))
	sc.Buffer(make([]byte, 0, 4096), 8192)
	for sc.Scan() {
		if p, ok := parseMapsLine(sc.Text()); ok {
			out = append(out, p)
		}
	}
	return out
}

// parseMapsLine reads one /proc/<pid>/maps line ("start-end perms offset dev inode   path") and returns the path
// of an executable file mapping. Anonymous and special mappings ([vdso], [heap]) are not files; a deleted file
// keeps its old path with " (deleted)" appended, which is cut.
func parseMapsLine(line string) (string, bool) {
	rest := line
	var perms string
	for i := range 5 {
		rest = strings.TrimLeft(rest, " ")
		field, after, ok := strings.Cut(rest, " ")
		if !ok {
			return "", false
		}
		if i == 1 {
			perms = field
		}
		rest = after
	}
	path := strings.TrimLeft(rest, " ")
	if len(perms) < 3 || perms[2] != 'x' || !strings.HasPrefix(path, "/") {
		return "", false
	}
	return strings.TrimSuffix(path, " (deleted)"), true
}

// childPIDs reads the children of every thread of pid.
func childPIDs(procRoot string, pid int) []int {
	tasks, err := os.ReadDir(filepath.Join(procRoot, strconv.Itoa(pid), "task"))
	if err != nil {
		return nil
	}
	var out []int
	for _, t := range tasks[:min(len(tasks), maxSeedPIDs)] {
		b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "task", t.Name(), "children"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil && n > 0 {
				out = append(out, n)
			}
		}
	}
	return out
}
