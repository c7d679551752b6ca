package compliance

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
)

func TestParseEnviron(t *testing.T) {
	got := ParseEnviron([]byte("PATH=/bin:/usr/bin\x00PATH=/evil\x00=novalue\x00NOEQUALS\x00EMPTY=\x00A=b=c\x00\x00"))
	want := map[string]string{"PATH": "/bin:/usr/bin", "EMPTY": "", "A": "b=c"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestParseMountInfo(t *testing.T) {
	in := "36 35 98:0 /mnt1 /mnt\\040with\\040space rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue\n" +
		"37 36 0:5 / / ro,nosuid - overlay overlay rw,lowerdir=/a\n" +
		"\n38 36 0:6 / /bad\\09 rw - tmpfs tmpfs\n"
	got, err := ParseMountInfo([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []MountInfo{
		{Path: "/mnt with space", Root: "/mnt1", Device: "/dev/root", Type: "ext3", Options: []string{"rw", "noatime", "rw", "errors=continue"}},
		{Path: "/", Root: "/", Device: "overlay", Type: "overlay", Options: []string{"ro", "nosuid", "rw", "lowerdir=/a"}},
		{Path: "/bad\\09", Root: "/", Device: "tmpfs", Type: "tmpfs", Options: []string{"rw"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	for _, bad := range []string{"1 2 3 4 5 6 - ext4", "no separator at all here", "1 2 3 4 5 - a b c"} {
		if _, err := ParseMountInfo([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseProcStatus(t *testing.T) {
	got := ParseProcStatus([]byte("Name:\tsh\nState:\tS (sleeping)\nPPid:\t7\nUid:\t1000\t0\t0\t0\nUid:\t-5\n"))
	if got.PPid != 7 || got.UID != 1000 || got.State != "S" {
		t.Errorf("got %+v", got)
	}
	if got := ParseProcStatus([]byte("Uid:\t-3\nPPid:\n")); got.UID != -1 || got.PPid != 0 {
		t.Errorf("hostile status: %+v", got)
	}
}

// TestProcessBounds: a /proc file longer than the bound is refused, not read whole nor truncated; a sysctl name
// cannot leave /proc/sys; no process means the resources say why.
func TestProcessBounds(t *testing.T) {
	proc := t.TempDir()
	if err := os.MkdirAll(filepath.Join(proc, "42"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(proc, "42", "environ"), []byte(strings.Repeat("A=b\x00", 1000)), 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := fsaccess.OpenDir(t.TempDir(), fsaccess.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	ctx := WithProcess(context.Background(), &Process{ProcRoot: proc, Pid: 42})
	tg := NewTarget(ctx, root, report.Target{Kind: "container"}, nil, nil, Limits{MaxContentBytes: 100}, nil)
	if _, err := tg.Environ(); err == nil || !strings.Contains(err.Error(), "longer than 100 bytes") {
		t.Errorf("oversized environ: %v", err)
	}
	for _, name := range []string{"../../etc/passwd", "kernel/../x", "kernel..ostype", ".kernel", "", strings.Repeat("a", 300)} {
		if _, err := tg.KernelParameter(name); err == nil || !strings.Contains(err.Error(), "not a sysctl name") {
			t.Errorf("%q: %v", name, err)
		}
	}
	none := NewTarget(context.Background(), root, report.Target{Kind: "dir"}, nil, nil, Limits{}, nil)
	if _, err := none.Mounts(); err != ErrNoProcess {
		t.Errorf("no process: %v", err)
	}
}

func FuzzParseEnviron(f *testing.F) {
	f.Add([]byte("PATH=/bin\x00A=b\x00"))
	f.Add([]byte("=\x00\x00=x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for k := range ParseEnviron(b) {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				t.Fatalf("bad key %q", k)
			}
		}
	})
}

func FuzzParseMountInfo(f *testing.F) {
	f.Add([]byte("36 35 98:0 /mnt1 /mnt\\040x rw,noatime master:1 - ext3 /dev/root rw\n"))
	f.Add([]byte("1 2 3 4 5 6 - a b\n\\"))
	f.Add([]byte("1 2 3 4 \\777 6 - a b c\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := ParseMountInfo(b)
		if err != nil {
			return
		}
		if len(ms) > len(b) {
			t.Fatalf("%d mounts from %d bytes", len(ms), len(b))
		}
	})
}

func FuzzParseProcStatus(f *testing.F) {
	f.Add([]byte("Name:\tsh\nState:\tS (sleeping)\nPPid:\t7\nUid:\t0\t0\t0\t0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if pi := ParseProcStatus(b); pi.UID < -1 {
			t.Fatalf("uid %d", pi.UID)
		}
	})
}

// TestKernelParameterNamespaces: a namespaced parameter is read only when the container shares the namespace with
// the scanner, whose value /proc/sys shows.
func TestKernelParameterNamespaces(t *testing.T) {
	proc := t.TempDir()
	for _, d := range []string{"42/ns", "self/ns", "sys/net/ipv4", "sys/kernel"} {
		if err := os.MkdirAll(filepath.Join(proc, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"42/ns/net": "net:[1]", "self/ns/net": "net:[1]", "42/ns/ipc": "ipc:[5]", "self/ns/ipc": "ipc:[6]"} {
		if err := os.Symlink(target, filepath.Join(proc, link)); err != nil {
			t.Fatal(err)
		}
	}
	for f, v := range map[string]string{"sys/net/ipv4/ip_forward": "1\n", "sys/kernel/shmmax": "100\n", "sys/kernel/ostype": "Linux\n"} {
		if err := os.WriteFile(filepath.Join(proc, f), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root, err := fsaccess.OpenDir(t.TempDir(), fsaccess.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	tg := NewTarget(WithProcess(context.Background(), &Process{ProcRoot: proc, Pid: 42}), root, report.Target{Kind: "container"}, nil, nil, Limits{}, nil)
	if v, err := tg.KernelParameter("net.ipv4.ip_forward"); v != "1" || err != nil {
		t.Errorf("shared network namespace: %q %v", v, err)
	}
	if v, err := tg.KernelParameter("kernel.ostype"); v != "Linux" || err != nil {
		t.Errorf("host-wide: %q %v", v, err)
	}
	var ns *NamespacedError
	if _, err := tg.KernelParameter("kernel.shmmax"); !errors.As(err, &ns) || ns.Namespace != "ipc" {
		t.Errorf("own ipc namespace: %v", err)
	}
}

// A stat line from a multi-threaded session leader in its terminal's foreground group, with a command name that
// holds spaces and a parenthesis, gives ps's columns.
func TestPSColumns(t *testing.T) {
	// pid 4242 (my (app) x) S ppid=1 pgrp=4242 session=4242 tty=34816 (136,0) tpgid=4242 ... utime=250 stime=50
	// nice=-5 threads=3 starttime=100000 (1000 s after boot)
	stat := "4242 (my (app) x) S 1 4242 4242 34816 4242 4194560 100 0 0 0 250 50 0 0 15 -5 3 0 100000 12345678 900 18446744073709551615"
	st, err := ParseProcStat([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	want := ProcStat{State: "S", Pgrp: 4242, Session: 4242, TTY: 34816, TPgid: 4242, UTime: 250, STime: 50,
		StartTime: 100000, Nice: -5, Threads: 3}
	if st != want {
		t.Fatalf("got %+v, want %+v", st, want)
	}
	now := time.Date(2026, 12, 7, 13, 0, 0, 0, time.Local)
	clk, err := parseProcClock([]byte("4000.93 100.0\n"), []byte("cpu 1 2 3\nbtime 1700000000\n"),
		[]byte("MemTotal:        8000000 kB\nMemFree: 1 kB\n"), now, 4096)
	if err != nil {
		t.Fatal(err)
	}
	var pi ProcessInfo
	clk.psColumns(&pi, st, []byte("3014 900 100 1 0 200 0\n"), 4242, true)
	started := time.Unix(1700000000+1000, 0).Format("Jan 02")
	// 3 s of CPU over 3000 s alive is 0.1%; 3600 KiB of 8000000 is 0.04%, printed 0.0
	got := []any{pi.CPU, pi.Mem, pi.VSZ, pi.RSS, pi.TTY, pi.Stat, pi.Start, pi.Time}
	exp := []any{"0.1", "0.0", int64(12056), int64(3600), "pts/0", "S<Lsl+", started, "00:00:03"}
	if !reflect.DeepEqual(got, exp) {
		t.Errorf("got %v, want %v", got, exp)
	}
	for dev, name := range map[int64]string{0: "?", 34817: "pts/1", 0x400 + 1: "tty1", 0x400 + 64: "ttyS0", 0x501: "console", 0x1234: "?"} {
		if got := ttyName(dev); got != name {
			t.Errorf("tty %#x: %q, want %q", dev, got, name)
		}
	}
	for secs, s := range map[uint64]string{0: "00:00:00", 3725: "01:02:05", 90061: "1-01:01:01"} {
		if got := cpuTime(secs); got != s {
			t.Errorf("cpu time %d: %q, want %q", secs, got, s)
		}
	}
	for v, s := range map[int64]string{0: "0.0", 7: "0.7", 999: "99.9", 1234: "123"} {
		if got := permille(v); got != s {
			t.Errorf("permille %d: %q, want %q", v, got, s)
		}
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 2", "1 (x) S 1 a 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21"} {
		if _, err := ParseProcStat([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("4242 (my (app) x) S 1 4242 4242 34816 4242 4194560 100 0 0 0 250 50 0 0 15 -5 3 0 100000 12345678 900 1"))
	f.Add([]byte("1 ()) Z 0 0 0 0 -1 0 0 0 0 0 18446744073709551615 18446744073709551615 0 0 0 0 1 0 18446744073709551615"))
	clk := procClock{now: time.Unix(1_800_000_000, 0), uptime: 10, bootTime: 1_799_999_990, memKB: 1, pageSize: 4096}
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseProcStat(b)
		if err != nil {
			return
		}
		var pi ProcessInfo
		clk.psColumns(&pi, st, b, 1, false)
		if pi.Stat == "" || pi.TTY == "" || pi.Time == "" || pi.CPU == "" {
			t.Fatalf("empty column in %+v", pi)
		}
	})
}
