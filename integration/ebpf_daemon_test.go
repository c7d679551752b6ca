package integration

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rootscan/rootscan/bpf/bpftest"
	"github.com/rootscan/rootscan/exporter"
	"github.com/rootscan/rootscan/internal/testbed"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
)

// dropperSrc is a static program that, asked to "drop", copies itself into the container's writable layer and
// executes the copy: the classic dropper, with nothing but its own binary.
const dropperSrc = `package main

import (
	"io"
	"os"
	"strconv"
	"syscall"
	"time"
)

func main() {
	mode := ""
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	switch mode {
	case "drop":
		src, err := os.Open("/proc/self/exe")
		if err != nil {
			panic(err)
		}
		dst, err := os.OpenFile(os.Args[2], os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
		if err != nil {
			panic(err)
		}
		if _, err := io.Copy(dst, src); err != nil {
			panic(err)
		}
		if err := dst.Close(); err != nil {
			panic(err)
		}
		panic(syscall.Exec(os.Args[2], []string{os.Args[2], "once"}, os.Environ()))
	case "once":
		return
	case "maps": // maps <file> <n>: map one file executable n times, changing its mode (so its change time, fresh
		// after an fstat) between mappings: the kernel reports each as a new file, one event per mapping.
		n, _ := strconv.Atoi(os.Args[3])
		f, err := os.OpenFile(os.Args[2], os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o700)
		if err != nil {
			panic(err)
		}
		if err := f.Truncate(4096); err != nil {
			panic(err)
		}
		fd := int(f.Fd())
		var st syscall.Stat_t
		for i := 0; i < n; i++ {
			if err := syscall.Fchmod(fd, uint32(0o700|i&1)); err != nil {
				panic(err)
			}
			if err := syscall.Fstat(fd, &st); err != nil {
				panic(err)
			}
			m, err := syscall.Mmap(fd, 0, 4096, syscall.PROT_READ|syscall.PROT_EXEC, syscall.MAP_PRIVATE)
			if err != nil {
				panic(err)
			}
			syscall.Munmap(m)
		}
	default:
		time.Sleep(time.Hour)
	}
}
`

// TestDaemonExecDrift runs the daemon with --ebpf=on against a test bed container whose static binary copies
// itself into the container's writable layer and runs the copy: the SIEM gets one container.exec_drift event with
// the path, the copy's SHA-256, the parent's command line and the user, and the exec drift counter counts each run;
// the same binary run from the image gives nothing, nor does a host process running the dropped file. The daemon's
// programs are gone once it exits.
func TestDaemonExecDrift(t *testing.T) {
	bed := testbed.StartT(t, testbed.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	img, wantHash := dropperImage(t, ctx)
	ref, err := bed.Import(ctx, img)
	if err != nil {
		t.Fatal(err)
	}

	bpftest.EnsureTracefs(t)
	recv := newSIEMReceiver(t)
	d, _ := startReadyDaemon(t, bed, "--node-name", "node-1", "--resync", "2s",
		"--sink", recv.srv.URL+"/hook?format=json", "--db", filepath.Join(t.TempDir(), "db"), "--ebpf", "on")
	_, body := d.get("/metrics")
	if v, ok := metric(body, exporter.MetricEBPFAvailable); !ok || v != 1 {
		t.Fatalf("%s = %v (found %v), want 1", exporter.MetricEBPFAvailable, v, ok)
	}
	progs := daemonProgramIDs(t, d.cmd.Process.Pid)

	pod, err := bed.RunPod(ctx, testbed.PodSpec{Name: "drop", Namespace: "ebpf"})
	if err != nil {
		t.Fatal(err)
	}
	id, err := bed.RunContainer(ctx, pod, testbed.ContainerSpec{Name: "app", Image: ref.Name})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the daemon watching the container", 30*time.Second, func() bool {
		return strings.Contains(d.stderr.String(), "runtime signals: watching container") && strings.Contains(d.stderr.String(), id)
	})
	run := func(args ...string) {
		t.Helper()
		if stdout, stderr, code, err := bed.ExecSync(ctx, id, args); err != nil || code != 0 {
			t.Fatalf("exec %v: exit %d, %v\n%s%s", args, code, err, stdout, stderr)
		}
	}
	labels := []string{"namespace=ebpf", "pod=drop", "container=app", "node=node-1"}
	execDrifts := func() float64 {
		_, body := d.get("/metrics")
		v, _ := metric(body, exporter.MetricExecDrift, labels...)
		return v
	}

	run("/dropper", "once") // the image's own binary
	run("/dropper", "drop", "/dropped")
	var got exporter.Event
	took := waitUntil(t, "the exec drift event at the SIEM", 10*time.Second, func() bool {
		return recv.find(exporter.EventExecDrift, id, func(e exporter.Event) bool { got = e; return true })
	})
	if got.Finding == nil || got.Finding.Exec == nil {
		t.Fatalf("exec drift event without its finding: %+v", got)
	}
	t.Logf("exec of the dropped copy returned to its event at the SIEM sink: %v (parent %d %q %q)", took, got.Finding.Exec.PPID, got.Finding.Exec.ParentName, got.Finding.Exec.ParentCmdline)
	if took > 2*time.Second {
		t.Errorf("exec drift reached the SIEM %v after the exec returned, want within 2s", took)
	}
	x := got.Finding.Exec
	switch {
	case got.Finding.Severity != "CRITICAL" || got.Finding.Kind != exporter.KindExecDrift:
		t.Errorf("finding %+v, want a CRITICAL exec_drift", got.Finding)
	case x == nil || x.Path != "/dropped" || x.SHA256 != wantHash:
		t.Errorf("exec drift %+v, want /dropped with sha256 %s", x, wantHash)
	// The parent of the exec is runc's exec process, which often exits before user space can read its /proc entry:
	// the kernel's name for it is always there, its command line only while it lives (and then it must be runc's).
	case x.User != "root" || x.UID != 0 || x.PPID == 0 || x.ParentName == "" || x.Count != 1:
		t.Errorf("exec drift user %q (uid %d), parent %d %q", x.User, x.UID, x.PPID, x.ParentName)
	case x.ParentCmdline != "" && !strings.Contains(x.ParentCmdline, "runc"):
		t.Errorf("exec drift parent %q has command line %q, not runc's", x.ParentName, x.ParentCmdline)
	case got.Pod != "drop" || got.Namespace != "ebpf" || got.Container != "app" || got.Image == "":
		t.Errorf("event identity %+v", got)
	}
	waitUntil(t, "the exec drift counter at 1", 5*time.Second, func() bool { return execDrifts() == 1 })

	// A host process running the very file the container dropped (from its upper layer) is not the container's.
	ctrPID := containerPID(t, ctx, bed, id)
	host := exec.Command(filepath.Join("/proc", strconv.Itoa(ctrPID), "root/dropped"), "once")
	if out, err := host.CombinedOutput(); err != nil {
		t.Fatalf("host exec of the dropped file: %v: %s", err, out)
	}
	// The container runs the copy again: counted, not alerted again.
	run("/dropped", "once")
	waitUntil(t, "the exec drift counter at 2", 5*time.Second, func() bool { return execDrifts() == 2 })
	time.Sleep(500 * time.Millisecond)
	if v := execDrifts(); v != 2 {
		t.Errorf("exec drift counter %v, want 2 (two container runs; the host's and the image binary's not counted)", v)
	}
	n := 0
	evs, _ := recv.byID()
	for _, e := range evs {
		if e.Type == exporter.EventExecDrift {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d exec drift events, want 1 (repeats are counted, not re-sent)", n)
	}

	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not stop on SIGTERM")
	}
	for _, p := range progs {
		if prog, err := ebpf.NewProgramFromID(p); err == nil {
			prog.Close()
			t.Errorf("program %d still loaded after the daemon exited", p)
		} else if !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	if ents, err := os.ReadDir("/sys/fs/bpf"); err == nil {
		for _, e := range ents {
			if strings.Contains(e.Name(), "rootscan") {
				t.Errorf("pinned object left: /sys/fs/bpf/%s", e.Name())
			}
		}
	}
}

// dropperImage is a scratch image holding the dropper (and an /etc/passwd naming root); it returns the binary's
// SHA-256.
func dropperImage(t testing.TB, ctx context.Context) (*ociimage.Image, string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dropper")
	buildDropper(t, ctx, bin)
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return &ociimage.Image{
		Name: "rootscan.test/dropper:1",
		Layers: []ociimage.Layer{{Files: []ociimage.File{
			{Path: "dropper", Mode: 0o755, Data: data},
			{Path: "etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/sbin/nologin\n")},
		}}},
		Config: ocispec.ImageConfig{Entrypoint: []string{"/dropper"}},
	}, hex.EncodeToString(sum[:])
}

func buildDropper(t testing.TB, ctx context.Context, out string) {
	t.Helper()
	src := t.TempDir()
	files := map[string]string{"go.mod": "module example.com/dropper\n\ngo 1.21\n", "main.go": dropperSrc}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod -buildvcs=false", "GOWORK=off", "GOTOOLCHAIN=local", "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
}

// daemonProgramIDs reads the eBPF program ids the daemon holds from its file descriptors (fdinfo prog_id), waiting
// for the programs to be loaded.
func daemonProgramIDs(t testing.TB, pid int) []ebpf.ProgramID {
	t.Helper()
	var ids []ebpf.ProgramID
	waitUntil(t, "the daemon's eBPF programs", 10*time.Second, func() bool {
		ids = nil
		dir := filepath.Join("/proc", strconv.Itoa(pid), "fdinfo")
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			f, err := os.Open(filepath.Join(dir, e.Name()))
			if err != nil {
				continue
			}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if v, ok := strings.CutPrefix(sc.Text(), "prog_id:"); ok {
					if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32); err == nil {
						ids = append(ids, ebpf.ProgramID(n))
					}
				}
			}
			f.Close()
		}
		return len(ids) >= 2
	})
	return ids
}

func containerPID(t *testing.T, ctx context.Context, bed *testbed.Containerd, id string) int {
	t.Helper()
	_, pid := containerCgroupID(t, ctx, bed, id)
	return pid
}

// TestDaemonEBPFModes: where eBPF cannot run (here: no cgroup v2 hierarchy under --cgroup-root, so no container
// could be attributed), --ebpf=auto says why once in the log and as a metric and keeps scanning, --ebpf=on refuses to
// start with the reason, and --ebpf=off loads nothing and says so.
func TestDaemonEBPFModes(t *testing.T) {
	bed := testbed.StartT(t, testbed.Options{})
	noCgroup := t.TempDir()
	args := func(mode string) []string {
		return []string{"--runtime-endpoint", bed.Address(), "--state-dir", filepath.Join(t.TempDir(), "state"),
			"--mount-dir", filepath.Join(t.TempDir(), "mounts"), "--db", filepath.Join(t.TempDir(), "db"),
			"--cgroup-root", noCgroup, "--ebpf", mode}
	}
	res := runRootscan(t, time.Minute, append([]string{"daemon", "--listen", freePort(t)}, args("on")...)...)
	if res.code == 0 || !strings.Contains(res.stderr, "ebpf: unavailable (") || !strings.Contains(res.stderr, "no cgroup v2") {
		t.Errorf("--ebpf=on without cgroup v2: exit %d, stderr %s", res.code, tail(res.stderr, 5))
	}
	for mode, reason := range map[string]string{"auto": "no_cgroup_v2", "off": "disabled"} {
		d := startDaemonProc(t, args(mode)...)
		waitUntil(t, "/readyz with --ebpf="+mode, 30*time.Second, func() bool { code, _ := d.get("/readyz"); return code == 200 })
		_, body := d.get("/metrics")
		if v, ok := metric(body, exporter.MetricEBPFAvailable); !ok || v != 0 {
			t.Errorf("--ebpf=%s: %s = %v (found %v), want 0", mode, exporter.MetricEBPFAvailable, v, ok)
		}
		if v, ok := metric(body, exporter.MetricEBPFStatus, "reason="+reason); !ok || v != 1 {
			t.Errorf("--ebpf=%s: %s{reason=%s} = %v (found %v)", mode, exporter.MetricEBPFStatus, reason, v, ok)
		}
		logged := strings.Count(d.stderr.String(), "ebpf: unavailable (")
		if want := map[string]int{"auto": 1, "off": 0}[mode]; logged != want {
			t.Errorf("--ebpf=%s: %d 'ebpf: unavailable' log lines, want %d", mode, logged, want)
		}
		if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		<-d.done
	}
}
