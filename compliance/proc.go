package compliance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Process is a running container's init process as the node sees it through the host's /proc: what InSpec's
// process resources (os_env, mount, processes, kernel_parameter) read. Only the daemon and the node scan of
// running containers have one; a --dir or --oci scan and a stopped container do not.
type Process struct {
	// ProcRoot is where the host's /proc is visible ("/proc", or "/host/proc" in a pod).
	ProcRoot string
	// Pid is the container's init, in ProcRoot's pid namespace.
	Pid int
	// Check says whether Pid is still the container's init (the node's start-time check). It is called before and
	// after each read, so a pid reused in between is never read as the container's.
	Check func() error
}

type processKey struct{}

// WithProcess carries the container's init process to the evaluation of its controls; without it the process
// resources are skipped with the reason.
func WithProcess(ctx context.Context, p *Process) context.Context {
	return context.WithValue(ctx, processKey{}, p)
}

// ErrNoProcess is why a process resource cannot be answered: the target has no running process the scanner sees.
var ErrNoProcess = errors.New("needs the container's running process (answered by the daemon and by a node scan of a running container; not by --dir or --oci)")

// maxProcesses bounds the processes listed for one container; a fork bomb must not cost the scan.
const maxProcesses = 4096

func (t *Target) process() (*Process, error) {
	t.s.view.rec.addFact(factProcess)
	p, _ := t.s.ctx.Value(processKey{}).(*Process)
	if p == nil || p.Pid <= 0 || p.ProcRoot == "" {
		return nil, ErrNoProcess
	}
	return p, nil
}

func (p *Process) check() error {
	if p.Check == nil {
		return nil
	}
	if err := p.Check(); err != nil {
		return fmt.Errorf("container process: %w", err)
	}
	return nil
}

// readProc reads name under /proc/<pid>, at most limit bytes (a longer file is an error: a truncated environment
// or mount table would answer wrongly), checking the pid is still the container's before and after.
func (p *Process) readProc(pid int, name string, limit int64) ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(p.ProcRoot, strconv.Itoa(pid), name))
	if err != nil {
		return nil, fmt.Errorf("read /proc/%d/%s: %w", pid, name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read /proc/%d/%s: %w", pid, name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("read /proc/%d/%s: longer than %d bytes", pid, name, limit)
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return b, nil
}

// Environ is the init process's environment (os_env), as it was when the process started.
func (t *Target) Environ() (map[string]string, error) {
	p, err := t.process()
	if err != nil {
		return nil, err
	}
	b, err := p.readProc(p.Pid, "environ", t.s.lim.MaxContentBytes)
	if err != nil {
		return nil, err
	}
	return ParseEnviron(b), nil
}

// ParseEnviron splits a NUL-separated environment; the first definition of a name wins, as getenv finds it.
func ParseEnviron(b []byte) map[string]string {
	env := map[string]string{}
	for _, kv := range bytes.Split(b, []byte{0}) {
		k, v, ok := bytes.Cut(kv, []byte{'='})
		if !ok || len(k) == 0 {
			continue
		}
		if _, seen := env[string(k)]; !seen {
			env[string(k)] = string(v)
		}
	}
	return env
}

// MountInfo is one line of /proc/<pid>/mountinfo: a mount as the container sees it.
type MountInfo struct {
	// Path is the mount point in the container's root.
	Path    string
	Device  string
	Type    string
	Options []string
	// Root is the mounted directory of the source filesystem.
	Root string
}

// Mounts are the init process's mounts (mount), mount points relative to the container's root.
func (t *Target) Mounts() ([]MountInfo, error) {
	p, err := t.process()
	if err != nil {
		return nil, err
	}
	b, err := p.readProc(p.Pid, "mountinfo", t.s.lim.MaxContentBytes)
	if err != nil {
		return nil, err
	}
	return ParseMountInfo(b)
}

// ParseMountInfo parses proc(5)'s mountinfo: "id parent major:minor root mountpoint options [optional...] -
// fstype source superoptions", with octal escapes (\040) in paths. Options are the mount's and the superblock's.
func ParseMountInfo(b []byte) ([]MountInfo, error) {
	var out []MountInfo
	for n, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Fields(line)
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || len(f) < sep+3 {
			return nil, fmt.Errorf("mountinfo line %d: malformed", n+1)
		}
		opts := strings.Split(f[5], ",")
		if len(f) > sep+3 {
			opts = append(opts, strings.Split(f[sep+3], ",")...)
		}
		out = append(out, MountInfo{Path: unescapeOctal(f[4]), Root: unescapeOctal(f[3]), Type: f[sep+1],
			Device: unescapeOctal(f[sep+2]), Options: opts})
	}
	return out, nil
}

// unescapeOctal undoes the kernel's \ooo escapes of space, tab, newline and backslash.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// KernelParameter reads the sysctl name (kernel.ostype) from /proc/sys. A parameter of a namespace (net.*, the uts
// and ipc ones) shows the reading process's namespace there: it is read only when the container shares that
// namespace with the scanner (a hostNetwork pod, for net.*); otherwise it is refused, as reading the container's
// value would need entering its namespace.
func (t *Target) KernelParameter(name string) (string, error) {
	p, err := t.process()
	if err != nil {
		return "", err
	}
	if !validSysctl(name) {
		return "", fmt.Errorf("kernel parameter %q is not a sysctl name", name)
	}
	if ns, label := namespacedSysctl(name); ns != "" {
		theirs, err1 := os.Readlink(filepath.Join(p.ProcRoot, strconv.Itoa(p.Pid), "ns", ns))
		ours, err2 := os.Readlink(filepath.Join(p.ProcRoot, "self", "ns", ns))
		if err1 != nil || err2 != nil || theirs != ours {
			return "", &NamespacedError{Name: name, Namespace: label}
		}
	}
	if err := p.check(); err != nil {
		return "", err
	}
	f, err := os.Open(filepath.Join(p.ProcRoot, "sys", strings.ReplaceAll(name, ".", "/")))
	if err != nil {
		return "", fmt.Errorf("read kernel parameter %s: %w", name, err)
	}
	defer f.Close()
	v, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return "", fmt.Errorf("read kernel parameter %s: %w", name, err)
	}
	// The namespace links were read from the pid: they are the container's only if the pid still is.
	if err := p.check(); err != nil {
		return "", err
	}
	return strings.TrimRight(string(v), "\n"), nil
}

// NamespacedError says a kernel parameter is the container's own and cannot be read from the host's /proc/sys.
type NamespacedError struct{ Name, Namespace string }

func (e *NamespacedError) Error() string {
	return fmt.Sprintf("kernel parameter %s is per %s namespace and the container has its own: /proc/sys shows the scanner's value, not the container's", e.Name, e.Namespace)
}

func validSysctl(name string) bool {
	if name == "" || len(name) > 256 || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, "..") {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// namespacedSysctl names the namespace a sysctl belongs to (its /proc/<pid>/ns link and its name), "" for the
// host-wide ones.
func namespacedSysctl(name string) (ns, label string) {
	switch {
	case strings.HasPrefix(name, "net."):
		return "net", "network"
	case name == "kernel.hostname" || name == "kernel.domainname":
		return "uts", "uts"
	case strings.HasPrefix(name, "kernel.shm") || strings.HasPrefix(name, "kernel.msg") || name == "kernel.sem" ||
		strings.HasPrefix(name, "fs.mqueue."):
		return "ipc", "ipc"
	}
	return "", ""
}

// ProcessInfo is one process of the container's pid namespace (processes).
type ProcessInfo struct {
	Pid, PPid int
	// UID is the real uid as the host sees it; User its name in the container's passwd ("" when not named there).
	UID  int64
	User string
	// State is the one-letter state of /proc/<pid>/status (S, R, Z, ...).
	State string
	// Command is the command line, arguments joined by spaces; for a kernel thread or a zombie with none, the
	// name in brackets, as ps shows it.
	Command string
	// The columns InSpec reads from `ps axo pcpu,pmem,vsz,rss,tty,stat,start,time`, as ps prints them: CPU and Mem
	// are %CPU and %MEM ("0.3"), VSZ and RSS KiB, TTY the terminal ("?" for none, "pts/0"), Stat the state with
	// ps's flags ("Ss", "R+", "Sl"), Start the start time (HH:MM:SS within a day, else "Dec 05", node local time)
	// and Time the CPU time ([DD-]HH:MM:SS).
	CPU, Mem, TTY, Stat, Start, Time string
	VSZ, RSS                         int64
}

// Processes lists the processes sharing the init's pid namespace, found in the host's /proc by their
// /proc/<pid>/ns/pid link; at most maxProcesses.
func (t *Target) Processes() ([]ProcessInfo, error) {
	p, err := t.process()
	if err != nil {
		return nil, err
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	ns, err := os.Readlink(filepath.Join(p.ProcRoot, strconv.Itoa(p.Pid), "ns", "pid"))
	if err != nil {
		return nil, fmt.Errorf("pid namespace of the container's init: %w", err)
	}
	clk, err := readProcClock(p.ProcRoot, time.Now())
	if err != nil {
		return nil, err
	}
	dir, err := os.Open(p.ProcRoot)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	defer dir.Close()
	var out []ProcessInfo
	for {
		names, rerr := dir.Readdirnames(1024)
		for _, name := range names {
			pid, err := strconv.Atoi(name)
			if err != nil || pid <= 0 {
				continue
			}
			if l, err := os.Readlink(filepath.Join(p.ProcRoot, name, "ns", "pid")); err != nil || l != ns {
				continue
			}
			if len(out) == maxProcesses {
				return nil, fmt.Errorf("list processes: more than %d in the container", maxProcesses)
			}
			pi, err := t.processInfo(p, pid, clk)
			if err != nil {
				continue // exited since it was listed
			}
			out = append(out, pi)
		}
		if rerr != nil {
			break
		}
	}
	// The namespace link was read from the pid: it is the container's only if the pid still is.
	if err := p.check(); err != nil {
		return nil, err
	}
	return out, nil
}

func (t *Target) processInfo(p *Process, pid int, clk procClock) (ProcessInfo, error) {
	status, err := p.readProc(pid, "status", 64<<10)
	if err != nil {
		return ProcessInfo{}, err
	}
	cmdline, err := p.readProc(pid, "cmdline", 128<<10)
	if err != nil {
		return ProcessInfo{}, err
	}
	stat, err := p.readProc(pid, "stat", 8<<10)
	if err != nil {
		return ProcessInfo{}, err
	}
	statm, err := p.readProc(pid, "statm", 1<<10)
	if err != nil {
		return ProcessInfo{}, err
	}
	pi := ParseProcStatus(status)
	ps, err := ParseProcStat(stat)
	if err != nil {
		return ProcessInfo{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	clk.psColumns(&pi, ps, statm, pid, vmLocked(status))
	pi.Pid = pid
	pi.Command = strings.TrimRight(strings.ReplaceAll(string(bytes.TrimRight(cmdline, "\x00")), "\x00", " "), " ")
	if pi.Command == "" {
		pi.Command = "[" + procName(status) + "]"
	}
	if pi.UID >= 0 {
		pi.User = t.s.userName(pi.UID)
	}
	return pi, nil
}

// ParseProcStatus reads the PPid, real Uid and State of a /proc/<pid>/status; UID is -1 when it is missing.
func ParseProcStatus(b []byte) ProcessInfo {
	pi := ProcessInfo{UID: -1}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		switch k {
		case "PPid":
			pi.PPid, _ = strconv.Atoi(f[0])
		case "Uid":
			if u, err := strconv.ParseInt(f[0], 10, 64); err == nil && u >= 0 {
				pi.UID = u
			}
		case "State":
			pi.State = f[0]
		}
	}
	return pi
}

func procName(status []byte) string {
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "Name:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// ticksPerSecond is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on every Linux architecture Go runs on.
const ticksPerSecond = 100

// ProcStat is what ps reads from /proc/<pid>/stat.
type ProcStat struct {
	State                     string
	Pgrp, Session, TTY, TPgid int64
	UTime, STime, StartTime   uint64 // clock ticks; StartTime after boot
	Nice, Threads             int64
}

// ParseProcStat reads /proc/<pid>/stat; the command name in parentheses may hold spaces and parentheses, so the
// fields are counted from the last ')'.
func ParseProcStat(b []byte) (ProcStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ProcStat{}, errors.New("no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return ProcStat{}, fmt.Errorf("%d fields after the command name, want at least 20", len(f))
	}
	var st ProcStat
	st.State = f[0]
	ints := []*int64{&st.Pgrp, &st.Session, &st.TTY, &st.TPgid}
	for k, dst := range ints {
		v, err := strconv.ParseInt(f[2+k], 10, 64)
		if err != nil {
			return ProcStat{}, fmt.Errorf("field %d: %w", 5+k, err)
		}
		*dst = v
	}
	for k, dst := range map[int]*uint64{11: &st.UTime, 12: &st.STime, 19: &st.StartTime} {
		v, err := strconv.ParseUint(f[k], 10, 64)
		if err != nil {
			return ProcStat{}, fmt.Errorf("field %d: %w", k+3, err)
		}
		*dst = v
	}
	for k, dst := range map[int]*int64{16: &st.Nice, 17: &st.Threads} {
		v, err := strconv.ParseInt(f[k], 10, 64)
		if err != nil {
			return ProcStat{}, fmt.Errorf("field %d: %w", k+3, err)
		}
		*dst = v
	}
	return st, nil
}

// vmLocked says whether the process has locked memory (ps's L flag), from its status' VmLck.
func vmLocked(status []byte) bool {
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmLck:"); ok {
			f := strings.Fields(v)
			return len(f) > 0 && f[0] != "0"
		}
	}
	return false
}

// procClock is the node's uptime and memory when the processes are listed: ps's %CPU is the CPU time over the
// time since the process started, %MEM its resident size over the node's memory.
type procClock struct {
	now      time.Time
	uptime   int64 // whole seconds, as ps truncates it
	bootTime int64 // /proc/stat's btime, Unix seconds
	memKB    int64
	pageSize int64
}

// readProcClock reads /proc/uptime, /proc/stat's btime and /proc/meminfo's MemTotal under procRoot, bounded.
func readProcClock(procRoot string, now time.Time) (procClock, error) {
	up, err := readSmall(filepath.Join(procRoot, "uptime"), 4<<10)
	if err != nil {
		return procClock{}, err
	}
	stat, err := readSmall(filepath.Join(procRoot, "stat"), 4<<20)
	if err != nil {
		return procClock{}, err
	}
	mem, err := readSmall(filepath.Join(procRoot, "meminfo"), 64<<10)
	if err != nil {
		return procClock{}, err
	}
	return parseProcClock(up, stat, mem, now, int64(os.Getpagesize()))
}

func parseProcClock(uptime, stat, meminfo []byte, now time.Time, pageSize int64) (procClock, error) {
	c := procClock{now: now, pageSize: pageSize}
	f := strings.Fields(string(uptime))
	if len(f) == 0 {
		return c, errors.New("/proc/uptime is empty")
	}
	u, err := strconv.ParseFloat(f[0], 64)
	if err != nil || u < 0 || u > 1<<40 {
		return c, fmt.Errorf("/proc/uptime: %q", f[0])
	}
	c.uptime = int64(u)
	c.bootTime = now.Unix() - c.uptime
	if v, ok := fieldOf(stat, "btime"); ok {
		c.bootTime, _ = strconv.ParseInt(v, 10, 64)
	}
	if v, ok := fieldOf(meminfo, "MemTotal:"); ok {
		c.memKB, _ = strconv.ParseInt(v, 10, 64)
	}
	return c, nil
}

// fieldOf is the first word after key on the line that starts with it.
func fieldOf(b []byte, key string) (string, bool) {
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key); ok {
			if f := strings.Fields(v); len(f) > 0 && (v[0] == ' ' || v[0] == '\t') {
				return f[0], true
			}
		}
	}
	return "", false
}

func readSmall(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("read %s: longer than %d bytes", name, limit)
	}
	return b, nil
}

// psColumns fills pi's ps columns from the process' stat and statm.
func (c procClock) psColumns(pi *ProcessInfo, st ProcStat, statm []byte, pid int, locked bool) {
	if f := strings.Fields(string(statm)); len(f) >= 2 {
		size, _ := strconv.ParseInt(f[0], 10, 64)
		res, _ := strconv.ParseInt(f[1], 10, 64)
		pi.VSZ, pi.RSS = size*c.pageSize/1024, res*c.pageSize/1024
	}
	cpuTicks := st.UTime + st.STime
	startSec := int64(st.StartTime / ticksPerSecond)
	var cpu int64
	if elapsed := c.uptime - startSec; elapsed > 0 {
		cpu = int64(min(float64(cpuTicks)*1000/ticksPerSecond, 1<<50)) / elapsed // no wrap on a hostile stat
	}
	pi.CPU = permille(cpu)
	if c.memKB > 0 && pi.RSS >= 0 && pi.RSS < 1<<50 {
		pi.Mem = permille(pi.RSS * 1000 / c.memKB)
	} else {
		pi.Mem = "0.0"
	}
	pi.TTY = ttyName(st.TTY)
	pi.Stat = psStat(st, int64(pid), locked)
	started := time.Unix(c.bootTime+startSec, 0)
	if c.now.Sub(started) <= 24*time.Hour {
		pi.Start = started.Format("15:04:05")
	} else {
		pi.Start = started.Format("Jan 02")
	}
	pi.Time = cpuTime(cpuTicks / ticksPerSecond)
}

// permille prints a per-mille value as ps prints a percentage: one decimal, and whole numbers from 100 up.
func permille(v int64) string {
	if v >= 1000 {
		return strconv.FormatInt(v/10, 10)
	}
	return fmt.Sprintf("%d.%d", v/10, v%10)
}

func cpuTime(secs uint64) string {
	d, h, m, s := secs/86400, secs/3600%24, secs/60%60, secs%60
	if d > 0 {
		return fmt.Sprintf("%d-%02d:%02d:%02d", d, h, m, s)
	}
	return fmt.Sprintf("%02d:%02d:%02d", h, m, s)
}

// ttyName names the controlling terminal from its device number the way ps does for the common ones: pts/N
// (majors 136-143), ttyN and ttySN (major 4); "?" for none or one it cannot name without the node's /dev.
func ttyName(dev int64) string {
	major, minor := (dev>>8)&0xfff, (dev&0xff)|((dev>>12)&0xfff00)
	switch {
	case dev == 0:
		return "?"
	case major >= 136 && major <= 143:
		return fmt.Sprintf("pts/%d", (major-136)*256+minor)
	case major == 4 && minor < 64:
		return fmt.Sprintf("tty%d", minor)
	case major == 4:
		return fmt.Sprintf("ttyS%d", minor-64)
	case major == 5 && minor == 1:
		return "console"
	}
	return "?"
}

// psStat is ps's STAT: the state, then < (raised priority), N (lowered), L (locked memory), s (session leader),
// l (more than one thread), + (in the terminal's foreground process group).
func psStat(st ProcStat, pid int64, locked bool) string {
	s := st.State
	if st.Nice < 0 {
		s += "<"
	} else if st.Nice > 0 {
		s += "N"
	}
	if locked {
		s += "L"
	}
	if st.Session == pid {
		s += "s"
	}
	if st.Threads > 1 {
		s += "l"
	}
	if st.TPgid >= 0 && st.TPgid == st.Pgrp {
		s += "+"
	}
	return s
}
