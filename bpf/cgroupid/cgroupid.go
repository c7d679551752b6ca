// Package cgroupid resolves a container's cgroup to the id the kernel's bpf_get_current_cgroup_id reports: the
// inode number of its directory in the cgroup v2 (unified) hierarchy. On a cgroup v2 host that hierarchy is
// /sys/fs/cgroup; on a hybrid host (v1 controllers plus a v2 tree) it is /sys/fs/cgroup/unified, where runc mirrors
// each container's cgroup; on a legacy v1-only host there is no v2 tree, every process reports the root's id, and
// attribution by cgroup id is impossible (Mount says so).
package cgroupid

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrNoUnified is returned on hosts without a cgroup v2 hierarchy.
var ErrNoUnified = errors.New("no cgroup v2 (unified) hierarchy mounted")

// OfPath returns the cgroup id of a container from its runtime spec's linux.cgroupsPath (cgroupfs form
// "/kubepods/burstable/pod<uid>/<id>" or systemd form "kubepods-burstable-pod<uid>.slice:cri-containerd:<id>"),
// under the cgroup v2 mount mnt (see Mount).
func OfPath(mnt, cgroupsPath string) (uint64, error) {
	rel, err := Dir(cgroupsPath)
	if err != nil {
		return 0, err
	}
	return OfDir(filepath.Join(mnt, rel))
}

// OfPID returns the cgroup id of a process from its "0::" line in /proc/<pid>/cgroup (under procRoot, usually
// "/proc"): the driver-independent way when the container's pid is known.
func OfPID(procRoot, mnt string, pid int) (uint64, error) {
	rel, err := PathOfPID(procRoot, pid)
	if err != nil {
		return 0, err
	}
	return OfDir(filepath.Join(mnt, rel))
}

// PathOfPID returns a process's cgroup v2 path relative to the hierarchy's mount.
func PathOfPID(procRoot string, pid int) (string, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return "", fmt.Errorf("cgroup of pid %d: %w", pid, err)
	}
	rel, ok := unifiedLine(b)
	if !ok {
		return "", fmt.Errorf("cgroup of pid %d: no cgroup v2 line", pid)
	}
	return checkClean(filepath.Clean("/" + rel))
}

func unifiedLine(b []byte) (string, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			return rest, true
		}
	}
	return "", false
}

// Dir turns a linux.cgroupsPath into the cgroup's directory relative to the hierarchy's mount, as runc does: a
// cgroupfs path is used as is; a systemd "slice:prefix:name" becomes the slice's nested directories (each dash
// opens a level: a-b.slice lives in a.slice) and the scope "prefix-name.scope".
func Dir(cgroupsPath string) (string, error) {
	if cgroupsPath == "" {
		return "", errors.New("empty cgroups path")
	}
	parts := strings.Split(cgroupsPath, ":")
	if len(parts) == 1 {
		if !strings.HasPrefix(cgroupsPath, "/") {
			return "", fmt.Errorf("cgroupfs path %q is not absolute", cgroupsPath)
		}
		return checkClean(cgroupsPath)
	}
	if len(parts) != 3 {
		return "", fmt.Errorf("systemd cgroups path %q: want slice:prefix:name", cgroupsPath)
	}
	slice, err := expandSlice(cmpString(parts[0], "system.slice"))
	if err != nil {
		return "", err
	}
	unit := parts[2]
	if !strings.HasSuffix(unit, ".slice") && !strings.HasSuffix(unit, ".scope") {
		unit = parts[1] + "-" + unit + ".scope"
		if parts[1] == "" {
			unit = parts[2] + ".scope"
		}
	}
	if strings.ContainsRune(unit, '/') {
		return "", fmt.Errorf("systemd unit %q contains a slash", unit)
	}
	return checkClean(filepath.Join(slice, unit))
}

func cmpString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// expandSlice maps "a-b-c.slice" to "/a.slice/a-b.slice/a-b-c.slice" (systemd's slice nesting).
func expandSlice(slice string) (string, error) {
	name, ok := strings.CutSuffix(slice, ".slice")
	if !ok || name == "" || strings.ContainsRune(name, '/') {
		return "", fmt.Errorf("invalid systemd slice %q", slice)
	}
	if name == "-" {
		return "/", nil
	}
	var path, prefix strings.Builder
	for i, part := range strings.Split(name, "-") {
		if part == "" {
			return "", fmt.Errorf("invalid systemd slice %q", slice)
		}
		if i > 0 {
			prefix.WriteByte('-')
		}
		prefix.WriteString(part)
		path.WriteString("/" + prefix.String() + ".slice")
	}
	return path.String(), nil
}

// checkClean refuses paths that leave the hierarchy ("..") so a hostile spec cannot point at another cgroup tree.
func checkClean(p string) (string, error) {
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return "", fmt.Errorf("cgroups path %q leaves the hierarchy", p)
		}
	}
	return filepath.Clean(p), nil
}
