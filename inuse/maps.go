package inuse

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const (
	// mapsMaxBytes bounds one /proc/<pid>/maps read: a large JVM or browser process has a few thousand mappings,
	// well under 1 MiB; the kernel caps a process at vm.max_map_count (65530 by default, about 8 MiB of lines).
	mapsMaxBytes = 16 << 20
	// mapsMaxLine bounds one line: the fixed fields and a path of at most PATH_MAX, escaped.
	mapsMaxLine = 5 << 10
	// mapsMaxPaths bounds the distinct paths one read returns.
	mapsMaxPaths = 1 << 16
)

// ParseMaps returns the files a /proc/<pid>/maps listing shows mapped executable (perms with x), each once, in the
// order first seen: the program itself and the shared libraries it loaded. Anonymous and special mappings
// ([vdso], [heap], anon_inode:...) are left out. " (deleted)", which the kernel appends for a file removed since it
// was mapped, is stripped: the package that owns the path is still the one the process runs. Paths are as the
// kernel prints them for the reader, which is relative to the reader's root directory (see ProcessMaps). It reads at
// most 16 MiB; a longer listing is an error, with what was read before.
func ParseMaps(r io.Reader) ([]string, error) {
	sc := bufio.NewScanner(io.LimitReader(r, mapsMaxBytes+1))
	sc.Buffer(make([]byte, 0, 4096), mapsMaxLine)
	seen := map[string]bool{}
	var out []string
	n := 0
	for sc.Scan() {
		line := sc.Bytes()
		n += len(line) + 1
		if n > mapsMaxBytes {
			return out, fmt.Errorf("maps: longer than %d bytes", mapsMaxBytes)
		}
		p, ok := mapsExecPath(line)
		if !ok || seen[p] {
			continue
		}
		if len(out) >= mapsMaxPaths {
			return out, fmt.Errorf("maps: more than %d executable files", mapsMaxPaths)
		}
		seen[p] = true
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("maps: %w", err)
	}
	return out, nil
}

// mapsExecPath returns the path of one maps line ("start-end perms offset dev inode   path") when the mapping is
// executable and names a file.
func mapsExecPath(line []byte) (string, bool) {
	rest := line
	var perms []byte
	for i := 0; i < 5; i++ {
		rest = bytes.TrimLeft(rest, " ")
		f, tail, ok := bytes.Cut(rest, []byte(" "))
		if !ok {
			return "", false
		}
		if i == 1 {
			perms = f
		}
		rest = tail
	}
	if len(perms) != 4 || perms[2] != 'x' {
		return "", false
	}
	p := string(bytes.TrimLeft(rest, " "))
	p = strings.TrimSuffix(p, " (deleted)")
	if !strings.HasPrefix(p, "/") {
		return "", false
	}
	return p, true
}

// ProcessMaps reads the executable mappings of process pid under procRoot ("/proc" on the node; the host's /proc
// mounted elsewhere in a pod). The paths are as the reading process sees them: for a process in another mount
// namespace (a container), the path from the reader's root to the file, through wherever the container's root is
// mounted for the reader; TrimRoot turns them into the container's own paths.
func ProcessMaps(procRoot string, pid int) ([]string, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("maps of pid %d: not a process id", pid)
	}
	f, err := os.Open(filepath.Join(procRoot, strconv.Itoa(pid), "maps"))
	if err != nil {
		return nil, fmt.Errorf("maps of pid %d: %w", pid, err)
	}
	defer f.Close()
	paths, err := ParseMaps(f)
	if err != nil {
		return paths, fmt.Errorf("pid %d: %w", pid, err)
	}
	return paths, nil
}

// TrimRoot keeps the paths under root (the directory a container's root is mounted at, as the reader sees it) and
// returns them as the container sees them ("/usr/lib/..."); paths outside root (a volume, the host) are left out.
func TrimRoot(paths []string, root string) []string {
	root = filepath.Clean(root)
	if root == "/" {
		return slices.Clone(paths)
	}
	var out []string
	for _, p := range paths {
		if rel, ok := strings.CutPrefix(p, root+"/"); ok {
			out = append(out, "/"+rel)
		}
	}
	return out
}
