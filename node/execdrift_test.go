package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/rootscan/rootscan/bpf"
	"github.com/rootscan/rootscan/bpf/cgroupid"
	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/report"
)

func TestPasswdName(t *testing.T) {
	passwd := "root:x:0:0:root:/root:/bin/sh\n" +
		"# comment\n" +
		"daemon:x:1:1::/:/sbin/nologin\n" +
		"bad name:x:7:7::/:\n" +
		"::8:8::/:\n" +
		strings.Repeat("l", 65) + ":x:9:9::/:\n" +
		"short:x\n" +
		"app:x:1000:1000::/home/app:/bin/sh\n" +
		"dup:x:1000:1000::/:\n"
	tests := []struct {
		uid  uint32
		want string
	}{
		{0, "root"}, {1, "daemon"}, {1000, "app"}, {7, ""}, {8, ""}, {9, ""}, {4242, ""},
	}
	for _, tt := range tests {
		if got := passwdName([]byte(passwd), tt.uid); got != tt.want {
			t.Errorf("passwdName(uid %d) = %q, want %q", tt.uid, got, tt.want)
		}
	}
	long := strings.Repeat("x", 5000) + "\nroot:x:0:0::/:\n"
	if got := passwdName([]byte(long), 0); got != "" {
		t.Errorf("a line longer than the scanner's bound stops the read, got %q", got)
	}
}

func TestJoinCmdline(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"/bin/sh\x00-c\x00echo hi\x00", "/bin/sh -c echo hi"},
		{"nginx: master process\x00\x00\x00", "nginx: master process"},
		{"a\xff\x00b", "a\uFFFD b"},
	}
	for _, tt := range tests {
		if got := joinCmdline([]byte(tt.in)); got != tt.want {
			t.Errorf("joinCmdline(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseEBPFMode(t *testing.T) {
	for in, want := range map[string]EBPFMode{"auto": EBPFAuto, "ON": EBPFOn, " off ": EBPFOff} {
		if got, err := ParseEBPFMode(in); err != nil || got != want {
			t.Errorf("ParseEBPFMode(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "yes", "true"} {
		if _, err := ParseEBPFMode(bad); err == nil {
			t.Errorf("ParseEBPFMode(%q) accepted", bad)
		}
	}
}

func TestEBPFReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{cgroupid.ErrNoUnified, EBPFReasonNoCgroupV2},
		{&bpf.UnavailableError{Reason: "loading the exec program: permission denied", Err: os.ErrPermission}, EBPFReasonPermission},
		{&bpf.UnavailableError{Reason: "attaching", Err: fmt.Errorf("x: %w", ebpf.ErrNotSupported)}, EBPFReasonNotSupported},
		{&bpf.UnavailableError{Reason: "no kernel BTF", Err: os.ErrNotExist}, EBPFReasonNoBTF},
		{errors.New("something else"), EBPFReasonLoadFailed},
	}
	for _, tt := range tests {
		if got := ebpfReason(tt.err); got != tt.want {
			t.Errorf("ebpfReason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
	m, _, st, err := OpenEBPF(context.Background(), EBPFOff, "/sys/fs/cgroup", bpf.Options{})
	if m != nil || err != nil || st.Available || st.Reason != EBPFReasonDisabled {
		t.Errorf("OpenEBPF(off) = %v, %+v, %v", m, st, err)
	}
}

// recordingSink keeps what the runtime published.
type recordingSink struct {
	mu     sync.Mutex
	first  []ExecDrift
	repeat []ExecDrift
	gone   []string
}

func (s *recordingSink) ExecDrift(_ context.Context, _ report.Target, x ExecDrift, first bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if first {
		s.first = append(s.first, x)
	} else {
		s.repeat = append(s.repeat, x)
	}
}

func (s *recordingSink) Forget(t report.Target) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gone = append(s.gone, t.ContainerID)
}

// TestRuntimeHandle feeds decoded events to the runtime's bookkeeping: exec drift only for upper-layer execs of a
// watched cgroup, one first event per (path, inode), repeats counted, the drift set and the used-file set bounded,
// OnUse told of each file new to the set.
func TestRuntimeHandle(t *testing.T) {
	sink := &recordingSink{}
	var newFiles []string
	r := &Runtime{Sink: sink, MappingsSeen: true, MaxUsedFiles: 4, ProcRoot: t.TempDir(),
		OnUse: func(id string) { newFiles = append(newFiles, id) }}
	r.init()
	rc := &runtimeContainer{id: "c1", cgroup: 7, target: report.Target{ContainerID: "c1"}, used: map[string]struct{}{},
		drift: map[driftKey]*ExecDrift{}}
	r.byID["c1"], r.byCgroup[7] = rc, rc
	ctx := context.Background()
	exec := func(cg uint64, path string, ino uint64, upper bool) {
		r.handle(ctx, bpf.Event{Kind: bpf.Exec, CgroupID: cg, Path: path, Inode: ino, Upper: upper, Overlay: true})
	}
	exec(7, "/bin/sh", 1, false)
	exec(8, "/tmp/x", 2, true) // another cgroup: not ours
	exec(7, "/tmp/x", 2, true)
	exec(7, "/tmp/x", 2, true)
	exec(7, "/tmp/x", 3, true) // replaced at the same path
	r.handle(ctx, bpf.Event{Kind: bpf.Map, CgroupID: 7, Path: "/lib/libc.so.6"})
	jobs := len(r.evidence)
	if jobs != 2 {
		t.Fatalf("%d evidence jobs, want 2 (/tmp/x twice: two inodes)", jobs)
	}
	if len(sink.repeat) != 1 || sink.repeat[0].Count != 2 || sink.repeat[0].Path != "/tmp/x" {
		t.Errorf("repeats %+v, want one with count 2", sink.repeat)
	}
	used, ok := r.UsedFiles("c1")
	if want := []string{"/bin/sh", "/lib/libc.so.6", "/tmp/x"}; !ok || strings.Join(used, ",") != strings.Join(want, ",") {
		t.Errorf("UsedFiles = %v, %v; want %v, true", used, ok, want)
	}
	if len(newFiles) != 3 || newFiles[0] != "c1" {
		t.Errorf("OnUse told of %v, want c1 once per new file (3)", newFiles)
	}
	r.handle(ctx, bpf.Event{Kind: bpf.Map, CgroupID: 7, Path: "/lib/a"})
	r.handle(ctx, bpf.Event{Kind: bpf.Map, CgroupID: 7, Path: "/lib/b"})
	if used, ok := r.UsedFiles("c1"); ok || len(used) != 4 {
		t.Errorf("past the bound: UsedFiles = %v, %v; want 4 paths, incomplete", used, ok)
	}
	if len(newFiles) != 4 {
		t.Errorf("OnUse told of %d new files, want 4 (none past the bound)", len(newFiles))
	}
	for i := range maxDriftFiles {
		exec(7, fmt.Sprintf("/tmp/loop%d", i), uint64(100+i), true)
	}
	if n := len(rc.drift); n != maxDriftFiles {
		t.Errorf("%d drifted files remembered, want the bound %d", n, maxDriftFiles)
	}
	if _, ok := r.UsedFiles("c2"); ok {
		t.Error("UsedFiles of an unknown container says ok")
	}
}

// TestTrackUnattributable: a container whose cgroup cannot be found is not watched, and the log says so once, not
// at every check.
func TestTrackUnattributable(t *testing.T) {
	var logged strings.Builder
	r := &Runtime{CgroupMount: t.TempDir(), ProcRoot: t.TempDir(), Log: slog.New(slog.NewTextHandler(&logged, nil))}
	c := cri.Container{ID: "c1", State: cri.StateRunning, Pid: 4242, CgroupsPath: "/kubepods/pod1/c1"}
	r.Track(c, report.Target{ContainerID: "c1"})
	r.Track(c, report.Target{ContainerID: "c1"})
	if r.Watching("c1") || r.Len() != 0 {
		t.Error("an unattributable container is watched")
	}
	if n := strings.Count(logged.String(), "container not watched"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logged.String())
	}
	r.Forget("c1")
	r.Track(c, report.Target{ContainerID: "c1"})
	if n := strings.Count(logged.String(), "container not watched"); n != 2 {
		t.Errorf("after Forget, a new attempt should warn again: %d warnings", n)
	}
}

func FuzzPasswdName(f *testing.F) {
	f.Add([]byte("root:x:0:0:root:/root:/bin/sh\n"), uint32(0))
	f.Add([]byte("a:b:1\n::0:\n"), uint32(1))
	f.Fuzz(func(t *testing.T, b []byte, uid uint32) {
		if name := passwdName(b, uid); name != "" && (len(name) > 64 || strings.ContainsAny(name, ": \n")) {
			t.Errorf("passwdName = %q", name)
		}
	})
}

// The parent's command line is read only while its pid still names the program the kernel reported: a reused pid
// or a parent that has executed something else since gives no command line rather than someone else's.
func TestReadCmdlineChecksComm(t *testing.T) {
	proc := t.TempDir()
	write := func(pid, comm, cmdline string) {
		t.Helper()
		dir := filepath.Join(proc, pid)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range map[string]string{"comm": comm + "\n", "cmdline": cmdline} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("10", "sh", "/bin/sh\x00-c\x00./x\x00")
	write("11", "nginx", "nginx: worker\x00")
	tests := []struct {
		pid  int
		comm string
		want string
	}{
		{10, "sh", "/bin/sh -c ./x"},
		{11, "sh", ""},             // pid reused by another program
		{12, "sh", ""},             // gone
		{10, "", "/bin/sh -c ./x"}, // no name from the kernel: nothing to check against
		{0, "sh", ""},
	}
	for _, tt := range tests {
		if got := readCmdline(proc, tt.pid, tt.comm); got != tt.want {
			t.Errorf("readCmdline(%d, %q) = %q, want %q", tt.pid, tt.comm, got, tt.want)
		}
	}
}
