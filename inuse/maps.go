package inuse

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
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

// parseMaps returns the files a /proc/<pid>/maps listing shows mapped executable (perms with x), each once, in the
// order first seen: the program itself and the shared libraries it loaded. Anonymous and special mappings
// ([vdso], [heap], anon_inode:...) are left out. " (deleted)", which the kernel appends for a file removed since it
// was mapped, is stripped: the package that owns the path is still the one the process runs. Paths are as the
// kernel prints them for the reader: from the reader's root for a process of its own mount namespace, from the
// namespace's root for a container's process (see NamespaceMaps). It reads at most limit bytes (n is the bytes consumed); a longer listing is an error, with what was read before.
func parseMaps(r io.Reader, limit int64) (out []string, n int64, err error) {
	sc := bufio.NewScanner(io.LimitReader(r, limit+1))
	sc.Buffer(make([]byte, 0, 4096), mapsMaxLine)
	seen := map[string]bool{}
	for sc.Scan() {
		line := sc.Bytes()
		n += int64(len(line)) + 1
		if n > limit {
			return out, n, fmt.Errorf("maps: longer than %d bytes", limit)
		}
		p, ok := mapsExecPath(line)
		if !ok || seen[p] {
			continue
		}
		if len(out) >= mapsMaxPaths {
			return out, n, fmt.Errorf("maps: more than %d executable files", mapsMaxPaths)
		}
		seen[p] = true
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return out, n, fmt.Errorf("maps: %w", err)
	}
	return out, n, nil
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

// processMaps reads the executable mappings of process pid under procRoot ("/proc" on the node; the host's /proc
// mounted elsewhere in a pod), with parseMaps: at most limit bytes are read, n is the bytes consumed.
func processMaps(procRoot string, pid int, limit int64) ([]string, int64, error) {
	if pid <= 0 {
		return nil, 0, fmt.Errorf("maps of pid %d: not a process id", pid)
	}
	f, err := os.Open(filepath.Join(procRoot, strconv.Itoa(pid), "maps"))
	if err != nil {
		return nil, 0, fmt.Errorf("maps of pid %d: %w", pid, err)
	}
	defer f.Close()
	paths, n, err := parseMaps(f, limit)
	if err != nil {
		return paths, n, fmt.Errorf("pid %d: %w", pid, err)
	}
	return paths, n, nil
}
