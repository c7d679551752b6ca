package bpf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/rootscan/rootscan/bpf/bpftest"
	"github.com/rootscan/rootscan/bpf/cgroupid"
)

// The real programs, loaded into this kernel: needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN), BTF, BPF LSM, a
// cgroup v2 hierarchy (unified or hybrid) and overlayfs.

const helperEnv = "ROOTSCAN_BPF_TEST_HELPER"

// TestMain lets the test binary act as the process under observation: with helperEnv set it maps the files
// named in its arguments and exits.
func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode == "open" {
		m, err := Open(context.Background(), Options{})
		if err != nil {
			fmt.Println(err)
			os.Exit(0)
		}
		fmt.Println("opened; mmap:", m.MapErr())
		m.Close()
		os.Exit(0)
	} else if mode != "" {
		if err := helper(mode, os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helper maps each file twice, executable ("mmap") or readable only ("read").
func helper(mode string, files []string) error {
	prot := unix.PROT_READ | unix.PROT_EXEC
	if mode == "read" {
		prot = unix.PROT_READ
	}
	for _, f := range files {
		fd, err := unix.Open(f, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		for range 2 {
			b, err := unix.Mmap(fd, 0, 4096, prot, unix.MAP_PRIVATE)
			if err != nil {
				return fmt.Errorf("mmap %s: %w", f, err)
			}
			if err := unix.Munmap(b); err != nil {
				return err
			}
		}
		unix.Close(fd)
	}
	return nil
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("ROOTSCAN_INTEGRATION") == "require" {
		t.Fatal("eBPF tests need root")
	}
	t.Skip("eBPF tests need root (set ROOTSCAN_INTEGRATION=require to fail instead)")
}

func openMonitor(t testing.TB) *Monitor {
	t.Helper()
	requireRoot(t)
	bpftest.EnsureTracefs(t)
	m, err := Open(t.Context(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	if err := m.MapErr(); err != nil {
		t.Fatalf("mmap hooks: %v", err)
	}
	return m
}

// testCgroup is a cgroup v2 directory the test creates, and removes when its processes are gone.
type testCgroup struct {
	dir string
	id  uint64
	fd  int
}

func newCgroup(t testing.TB) *testCgroup {
	t.Helper()
	mnt, err := cgroupid.Mount()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(mnt, "rootscan-bpf-test-")
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.Close(fd)
		if err := os.Remove(dir); err != nil {
			t.Errorf("removing test cgroup: %v", err)
		}
	})
	id, err := cgroupid.OfDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &testCgroup{dir: dir, id: id, fd: fd}
}

// run starts the command directly in the cgroup (clone3 CLONE_INTO_CGROUP) and waits for it.
func (c *testCgroup) run(t testing.TB, env []string, name string, args ...string) int {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	if c != nil {
		cmd.SysProcAttr = &unix.SysProcAttr{UseCgroupFD: true, CgroupFD: c.fd}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", name, err, out)
	}
	return cmd.Process.Pid
}

// overlay mounts lower+upper on merged in a temp dir and unmounts it when the test ends.
func overlay(t testing.TB) (lower, merged string) {
	t.Helper()
	base := t.TempDir()
	lower, upper, work, merged := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "merged")
	for _, d := range []string{lower, upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Fatalf("mounting overlayfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(merged, 0); err != nil {
			t.Errorf("unmounting overlay: %v", err)
		}
	})
	return lower, merged
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// until collects the events of cgroup id up to (not including) the exec of the sentinel path: the programs
// submit synchronously in the process's own syscalls, so once the sentinel's exec arrives every earlier event
// of the test's finished processes has arrived too.
func until(t testing.TB, m *Monitor, id uint64, sentinel string) []Event {
	t.Helper()
	var got []Event
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-m.Events():
			if !ok {
				t.Fatal("events closed")
			}
			if ev.CgroupID != id {
				continue
			}
			if ev.Kind == Exec && ev.Path == sentinel {
				return got
			}
			got = append(got, ev)
		case <-timeout:
			t.Fatalf("no sentinel event after 10s; got %+v", got)
		}
	}
}

func stat(t testing.TB, path string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestExecUpperLower(t *testing.T) {
	m := openMonitor(t)
	cg := newCgroup(t)
	if err := m.Watch(cg.id); err != nil {
		t.Fatal(err)
	}
	lower, merged := overlay(t)
	copyFile(t, "/bin/true", filepath.Join(lower, "fromimage"))
	dropped := filepath.Join(merged, "dropped")
	copyFile(t, "/bin/true", dropped) // written after "start": upper layer
	sentinel := filepath.Join(merged, "sentinel")
	copyFile(t, "/bin/true", sentinel)

	hostPID := (*testCgroup)(nil).run(t, nil, dropped) // the test's own cgroup: not watched
	upperPID := cg.run(t, nil, dropped, "arg one", "two")
	lowerPID := cg.run(t, nil, filepath.Join(merged, "fromimage"))
	cg.run(t, nil, sentinel)
	got := until(t, m, cg.id, sentinel)

	byPID := map[uint32]Event{}
	for _, ev := range got {
		if ev.Kind == Exec {
			byPID[ev.PID] = ev
		}
	}
	if _, ok := byPID[uint32(hostPID)]; ok {
		t.Errorf("exec in an unwatched cgroup reported")
	}
	up, ok := byPID[uint32(upperPID)]
	if !ok {
		t.Fatalf("no exec event for the dropped binary (pid %d); got %+v", upperPID, got)
	}
	st := stat(t, dropped)
	if !up.Overlay || !up.Upper || up.UpperGuessed {
		t.Errorf("dropped binary: overlay=%v upper=%v guessed=%v, want true true false", up.Overlay, up.Upper, up.UpperGuessed)
	}
	if up.Path != dropped || up.Filename != dropped || up.PathPartial || up.Inode != st.Ino || up.Dev != st.Dev {
		t.Errorf("dropped binary: path %q ino %d dev %d, want %q %d %d", up.Path, up.Inode, up.Dev, dropped, st.Ino, st.Dev)
	}
	if want := []string{dropped, "arg one", "two"}; fmt.Sprint(up.Argv) != fmt.Sprint(want) {
		t.Errorf("argv %q, want %q", up.Argv, want)
	}
	if up.Comm != "dropped" || up.PPID != uint32(os.Getpid()) || up.UID != 0 {
		t.Errorf("comm %q ppid %d uid %d, want dropped %d 0", up.Comm, up.PPID, up.UID, os.Getpid())
	}
	if self, err := os.ReadFile("/proc/self/comm"); err != nil || up.ParentComm != strings.TrimSpace(string(self)) {
		t.Errorf("parent comm %q, want this test's %q (%v)", up.ParentComm, self, err)
	}
	lo, ok := byPID[uint32(lowerPID)]
	if !ok {
		t.Fatalf("no exec event for the image's binary (pid %d)", lowerPID)
	}
	if !lo.Overlay || lo.Upper {
		t.Errorf("image binary: overlay=%v upper=%v, want true false", lo.Overlay, lo.Upper)
	}
	if st := stat(t, filepath.Join(merged, "fromimage")); lo.Inode != st.Ino {
		t.Errorf("image binary: ino %d, stat says %d", lo.Inode, st.Ino)
	}
}

func TestMmapDedup(t *testing.T) {
	m := openMonitor(t)
	cg := newCgroup(t)
	if err := m.Watch(cg.id); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	lib, lib2 := filepath.Join(dir, "libx.so.1"), filepath.Join(dir, "liby.so.1")
	copyFile(t, "/bin/true", lib)
	copyFile(t, "/bin/true", lib2)
	sentinel := filepath.Join(dir, "sentinel")
	copyFile(t, "/bin/true", sentinel)

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pid := cg.run(t, []string{helperEnv + "=mmap"}, self, lib)
	pid2 := cg.run(t, []string{helperEnv + "=mmap"}, self, lib)               // the same container again
	cg.run(t, []string{helperEnv + "=read"}, self, lib2)                      // not executable
	(*testCgroup)(nil).run(t, []string{helperEnv + "=mmap"}, self, lib2, lib) // unwatched
	rewrite(t, lib)
	pid3 := cg.run(t, []string{helperEnv + "=mmap"}, self, lib) // changed since: reported again
	cg.run(t, nil, sentinel)
	got := until(t, m, cg.id, sentinel)

	var libEvents, lib2Events []Event
	for _, ev := range got {
		if ev.Kind != Map {
			continue
		}
		switch ev.Path {
		case lib:
			libEvents = append(libEvents, ev)
		case lib2:
			lib2Events = append(lib2Events, ev)
		}
	}
	if len(libEvents) != 2 || libEvents[1].PID != uint32(pid3) {
		t.Fatalf("mmap events for %s: %+v, want one from pid %d (not %d) and one from pid %d after the rewrite", lib, libEvents, pid, pid2, pid3)
	}
	ev, st := libEvents[0], stat(t, lib)
	if ev.PID != uint32(pid) || ev.Inode != st.Ino || ev.Dev != st.Dev || ev.Prot&unix.PROT_EXEC == 0 || ev.Overlay || ev.PathPartial {
		t.Errorf("mmap event %+v, want pid %d ino %d dev %d PROT_EXEC, not overlay, whole path", ev, pid, st.Ino, st.Dev)
	}
	if len(lib2Events) != 0 {
		t.Errorf("events for %s, mapped readable only or by an unwatched cgroup: %+v", lib2, lib2Events)
	}
	if n, err := m.Lost(); err != nil || n != 0 {
		t.Errorf("Lost() = %d, %v", n, err)
	}
}

// rewrite writes a file in place and waits until its change time shows it (bounded: timestamps are coarse).
func rewrite(t testing.TB, path string) {
	t.Helper()
	before := stat(t, path).Ctim
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte{0x7f}, 0); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if stat(t, path).Ctim != before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("change time did not move")
		}
	}
}

// TestCgroupIDIsUnified checks on this host that bpf_get_current_cgroup_id reports the unified-hierarchy
// directory's inode number, which is what cgroupid resolves, also on a hybrid (v1 + v2) host.
func TestCgroupIDIsUnified(t *testing.T) {
	m := openMonitor(t)
	cg := newCgroup(t)
	if err := m.Watch(cg.id); err != nil {
		t.Fatal(err)
	}
	pid := cg.run(t, nil, "/bin/true")
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-m.Events():
			if ev.Kind == Exec && ev.PID == uint32(pid) {
				if ev.CgroupID != cg.id {
					t.Fatalf("cgroup id %d, directory inode %d", ev.CgroupID, cg.id)
				}
				return
			}
		case <-deadline:
			t.Fatalf("no event for pid %d in cgroup %s (id %d)", pid, cg.dir, cg.id)
		}
	}
}

func TestCloseLeavesNothing(t *testing.T) {
	requireRoot(t)
	bpftest.EnsureTracefs(t)
	ctx, cancel := context.WithCancel(t.Context())
	m, err := Open(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ids := programIDs(t, m)
	if len(ids) != 2 {
		t.Fatalf("%d programs loaded, want 2", len(ids))
	}
	cancel() // closing through the context
	for range m.Events() {
	}
	// The kernel frees programs after an RCU grace period: wait for it, bounded.
	for _, id := range ids {
		for deadline := time.Now().Add(10 * time.Second); loaded(t, id); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("program %d still loaded after Close", id)
			}
		}
	}
	if err := m.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if err := m.Watch(1); err == nil {
		t.Error("Watch after Close succeeded")
	}
	if entries, err := os.ReadDir("/sys/fs/bpf"); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "rootscan") {
				t.Errorf("pinned object left: /sys/fs/bpf/%s", e.Name())
			}
		}
	}
}

// programIDs are the kernel ids of the Monitor's loaded programs (other test processes may load their own, so
// counting system-wide would race).
func programIDs(t testing.TB, m *Monitor) []ebpf.ProgramID {
	t.Helper()
	progs := []*ebpf.Program{m.exec.RootscanExec}
	if m.mmap != nil {
		progs = append(progs, m.mmap.RootscanMmap)
	}
	var ids []ebpf.ProgramID
	for _, p := range progs {
		info, err := p.Info()
		if err != nil {
			t.Fatal(err)
		}
		id, ok := info.ID()
		if !ok {
			t.Fatal("kernel gives no program ids")
		}
		ids = append(ids, id)
	}
	return ids
}

// loaded says whether the kernel still holds the program id.
func loaded(t testing.TB, id ebpf.ProgramID) bool {
	t.Helper()
	p, err := ebpf.NewProgramFromID(id)
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	return true
}

// TestOpenUnprivileged opens the Monitor as an unprivileged user (nobody, no capabilities): the error must say
// eBPF is unavailable and why, which the daemon logs once.
func TestOpenUnprivileged(t *testing.T) {
	requireRoot(t)
	got := openAs(t, nobodyCopy(t), nil)
	if !strings.HasPrefix(got, "ebpf: unavailable (") || !strings.Contains(got, "permission denied, needs CAP_BPF") {
		t.Errorf("unprivileged Open: %s", got)
	}
}

// TestOpenLeastPrivilege opens the Monitor as nobody with only the capabilities the programs need: CAP_BPF and
// CAP_PERFMON load and attach the exec program; the mmap program's tracepoint id is read from tracefs, which takes
// uid 0 or CAP_DAC_READ_SEARCH. CAP_SYS_ADMIN is not needed.
func TestOpenLeastPrivilege(t *testing.T) {
	requireRoot(t)
	bpftest.EnsureTracefs(t)
	bin := nobodyCopy(t)
	got := openAs(t, bin, []uintptr{unix.CAP_BPF, unix.CAP_PERFMON, unix.CAP_DAC_READ_SEARCH})
	if got != "opened; mmap: <nil>" {
		t.Errorf("with CAP_BPF, CAP_PERFMON, CAP_DAC_READ_SEARCH: %s", got)
	}
	got = openAs(t, bin, []uintptr{unix.CAP_BPF, unix.CAP_PERFMON})
	if !strings.HasPrefix(got, "opened; mmap: ebpf: unavailable (attaching to tracepoint syscalls/sys_enter_mmap: permission denied") {
		t.Errorf("with CAP_BPF, CAP_PERFMON: %s", got)
	}
}

// nobodyCopy copies the test binary where nobody can run it.
func nobodyCopy(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} { // the test's own temp dirs, 0700 by default
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "bpf.test")
	copyFile(t, self, bin)
	return bin
}

// openAs runs the test binary's Open as nobody with the given ambient capabilities and returns what it printed.
func openAs(t *testing.T, bin string, ambient []uintptr) string {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), helperEnv+"=open")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}, AmbientCaps: ambient}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestOpenRejectsRingBufferSize(t *testing.T) {
	if _, err := Open(t.Context(), Options{RingBufferBytes: 3 << 20}); err == nil || !strings.Contains(err.Error(), "power of two") {
		t.Errorf("Open with a 3 MiB ring buffer: %v", err)
	}
}

// A ring buffer of another size than the default serves both programs: the mapping program is loaded on the exec
// program's buffer, whose size it must take (it was refused with "map spec is incompatible" before).
func TestOpenRingBufferSize(t *testing.T) {
	requireRoot(t)
	bpftest.EnsureTracefs(t)
	for _, size := range []uint32{64 << 10, 4 << 20} {
		m, err := Open(t.Context(), Options{RingBufferBytes: size})
		if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		if err := m.MapErr(); err != nil {
			t.Errorf("%d bytes: mmap hooks: %v", size, err)
		}
		if got := m.exec.Events.MaxEntries(); got != size {
			t.Errorf("ring buffer of %d bytes, want %d", got, size)
		}
		m.Close()
	}
}

// TestUnwatch stops the reports of one cgroup and keeps another's.
func TestUnwatch(t *testing.T) {
	m := openMonitor(t)
	gone, kept := newCgroup(t), newCgroup(t)
	for _, cg := range []*testCgroup{gone, kept} {
		if err := m.Watch(cg.id); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Unwatch(gone.id); err != nil {
		t.Fatal(err)
	}
	if err := m.Unwatch(gone.id); err != nil {
		t.Errorf("second Unwatch: %v", err)
	}
	pid := gone.run(t, nil, "/bin/true")
	kept.run(t, nil, "/bin/echo")
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-m.Events():
			if ev.CgroupID == gone.id || ev.PID == uint32(pid) {
				t.Fatalf("event from the unwatched cgroup: %+v", ev)
			}
			if ev.CgroupID == kept.id && ev.Kind == Exec {
				if n := m.Malformed(); n != 0 {
					t.Errorf("%d malformed records", n)
				}
				return
			}
		case <-deadline:
			t.Fatal("no event from the watched cgroup")
		}
	}
}

func TestOpenNoMappings(t *testing.T) {
	requireRoot(t)
	m, err := Open(t.Context(), Options{NoMappings: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.MapErr() == nil {
		t.Error("MapErr is nil with NoMappings")
	}
	if ids := programIDs(t, m); len(ids) != 1 {
		t.Errorf("%d programs loaded, want 1 (exec only)", len(ids))
	}
}

// TestNewCgroupOnce: executions in a cgroup nobody watches raise one NewCgroup event, for the first of them, and
// none after; a watched cgroup raises none.
func TestNewCgroupOnce(t *testing.T) {
	m := openMonitor(t)
	unknown, watched := newCgroup(t), newCgroup(t)
	if err := m.Watch(watched.id); err != nil {
		t.Fatal(err)
	}
	first := unknown.run(t, nil, "/bin/true")
	for range 3 {
		unknown.run(t, nil, "/bin/true")
		watched.run(t, nil, "/bin/true")
	}
	watched.run(t, nil, "/bin/echo") // the sentinel: every earlier event has arrived before it
	var news []Event
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-m.Events():
			if ev.Kind == NewCgroup && (ev.CgroupID == unknown.id || ev.CgroupID == watched.id) {
				news = append(news, ev)
			}
			if ev.CgroupID != watched.id || ev.Kind != Exec || ev.Path != "/usr/bin/echo" && ev.Path != "/bin/echo" {
				continue
			}
			if len(news) != 1 || news[0].CgroupID != unknown.id || news[0].PID != uint32(first) || news[0].Comm != "true" {
				t.Fatalf("new-cgroup events %+v, want one for cgroup %d, pid %d", news, unknown.id, first)
			}
			return
		case <-deadline:
			t.Fatalf("no sentinel; new-cgroup events %+v", news)
		}
	}
}
