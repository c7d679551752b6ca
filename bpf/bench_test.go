package bpf

import (
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/rootscan/rootscan/bpf/cgroupid"
)

// The cost the programs add, each measured without them ("off"), loaded with the process's cgroup watched
// ("watched": events, or for mmap the de-duplication lookups) and loaded with the cgroup not watched ("host": what
// every process outside containers pays). Run as root:
//
//	go test ./bpf -run '^$' -bench . -benchtime 1s -count 10 | benchstat -col /mode -
func benchModes(b *testing.B, run func(b *testing.B, cg *testCgroup)) {
	for _, mode := range []string{"off", "host", "watched"} {
		b.Run("mode="+mode, func(b *testing.B) {
			cg := newCgroup(b)
			if mode == "off" {
				run(b, cg)
				return
			}
			m := openMonitor(b)
			go func() { // drain, as the daemon would
				for range m.Events() {
				}
			}()
			if mode == "watched" {
				if err := m.Watch(cg.id); err != nil {
					b.Fatal(err)
				}
			}
			stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
			if err != nil {
				b.Fatal(err)
			}
			defer stats.Close()
			run(b, cg)
			reportProgramTime(b, m)
			if n, _ := m.Lost(); n > 0 {
				b.Logf("%d events lost", n)
			}
		})
	}
}

// reportProgramTime adds the time the kernel spent in the programs per benchmark op (BPF_STATS_RUN_TIME; it
// includes runs for other processes of the host during the benchmark, so it is an upper bound).
func reportProgramTime(b *testing.B, m *Monitor) {
	for name, p := range map[string]*ebpf.Program{"exec": m.exec.RootscanExec, "mmap": m.mmap.RootscanMmap} {
		st, err := p.Stats()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(st.Runtime.Nanoseconds())/float64(b.N), name+"-prog-ns/op")
		b.ReportMetric(float64(st.RunCount)/float64(b.N), name+"-prog-runs/op")
	}
}

// BenchmarkExec is a fork+exec+wait loop of /bin/true started in the cgroup.
func BenchmarkExec(b *testing.B) {
	requireRoot(b)
	benchModes(b, func(b *testing.B, cg *testCgroup) {
		for b.Loop() {
			cg.run(b, nil, "/bin/true")
		}
	})
}

// BenchmarkMmapExec maps a file executable and unmaps it, from inside the cgroup (the benchmark process moves
// there for the duration): after the first report, each mapping costs the tracepoint, the watched lookup, the fd
// lookup and a failed de-duplication insert.
func BenchmarkMmapExec(b *testing.B) {
	requireRoot(b)
	lib := filepath.Join(b.TempDir(), "lib.so")
	copyFile(b, "/bin/true", lib)
	benchModes(b, func(b *testing.B, cg *testCgroup) {
		fd, err := unix.Open(lib, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer unix.Close(fd)
		enter(b, cg)
		for b.Loop() {
			m, err := unix.Mmap(fd, 0, 4096, unix.PROT_READ|unix.PROT_EXEC, unix.MAP_PRIVATE)
			if err != nil {
				b.Fatal(err)
			}
			if err := unix.Munmap(m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSyscall is getppid in a loop: enabling any syscall tracepoint routes every syscall of every process
// through the tracing slow path, which this shows.
func BenchmarkSyscall(b *testing.B) {
	requireRoot(b)
	benchModes(b, func(b *testing.B, cg *testCgroup) {
		enter(b, cg)
		for b.Loop() {
			unix.Getppid()
		}
	})
}

// enter moves the whole benchmark process into cg until the benchmark ends.
func enter(b *testing.B, cg *testCgroup) {
	b.Helper()
	mnt, err := cgroupid.Mount()
	if err != nil {
		b.Fatal(err)
	}
	rel, err := cgroupid.PathOfPID("/proc", os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	back := filepath.Join(mnt, rel, "cgroup.procs")
	pid := []byte(strconv.Itoa(os.Getpid()))
	if err := os.WriteFile(filepath.Join(cg.dir, "cgroup.procs"), pid, 0); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := os.WriteFile(back, pid, 0); err != nil {
			b.Errorf("moving back to %s: %v", back, err)
		}
	})
}

// BenchmarkEventDelivery makes every op report: a new (sparse) file mapped executable from inside the watched
// cgroup. Each op leaves a file behind until the end: keep -benchtime to tens of thousands of ops. It reports the events the reader delivered and the kernel dropped per op; the
// consumer only counts, so this is the ceiling the daemon's own handling lowers.
func BenchmarkEventDelivery(b *testing.B) {
	requireRoot(b)
	m := openMonitor(b)
	cg := newCgroup(b)
	if err := m.Watch(cg.id); err != nil {
		b.Fatal(err)
	}
	var received atomic.Int64
	go func() {
		for ev := range m.Events() {
			if ev.Kind == Map && ev.CgroupID == cg.id {
				received.Add(1)
			}
		}
	}()
	dir := b.TempDir()
	i := 0
	enter(b, cg)
	for b.Loop() {
		i++
		fd, err := unix.Open(filepath.Join(dir, strconv.Itoa(i)), unix.O_CREAT|unix.O_EXCL|unix.O_RDWR|unix.O_CLOEXEC, 0o700)
		if err != nil {
			b.Fatal(err)
		}
		if err := unix.Ftruncate(fd, 4096); err != nil {
			b.Fatal(err)
		}
		mem, err := unix.Mmap(fd, 0, 4096, unix.PROT_READ|unix.PROT_EXEC, unix.MAP_PRIVATE)
		if err != nil {
			b.Fatal(err)
		}
		_ = unix.Munmap(mem)
		unix.Close(fd)
	}
	lost, err := m.Lost()
	if err != nil {
		b.Fatal(err)
	}
	// Close discards what the reader has not taken yet: let it catch up (timed, so the rate includes it).
	for deadline := time.Now().Add(10 * time.Second); received.Load()+int64(lost) < int64(b.N) && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(received.Load())/float64(b.N), "delivered/op")
	b.ReportMetric(float64(lost)/float64(b.N), "lost/op")
}
