package integration

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rootscan/rootscan/bpf/bpftest"
	"github.com/rootscan/rootscan/exporter"
	"github.com/rootscan/rootscan/internal/testbed"
)

// BenchmarkDaemonEBPF is issue 15's daemon measurement: the rootscan daemon with --ebpf=on watching a container
// that maps a file executable ROOTSCAN_BENCH_MAPS times (default 300000) as fast as it can, its change time new
// each time so that each mapping is one kernel event. It
// reports the events per second the daemon took from the ring buffer (counted from the container's first mapping to
// the daemon's last event) and the events the kernel dropped per mapping, then the daemon's RSS and CPU at rest with
// eBPF on and, in a second daemon on the same node, off. One iteration is the whole scenario; run with -benchtime 1x.
func BenchmarkDaemonEBPF(b *testing.B) {
	bed := testbed.StartT(b, testbed.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bpftest.EnsureTracefs(b)
	img, _ := dropperImage(b, ctx)
	ref, err := bed.Import(ctx, img)
	if err != nil {
		b.Fatal(err)
	}
	pod, err := bed.RunPod(ctx, testbed.PodSpec{Name: "maps", Namespace: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	id, err := bed.RunContainer(ctx, pod, testbed.ContainerSpec{Name: "app", Image: ref.Name})
	if err != nil {
		b.Fatal(err)
	}
	n := 300000
	if v, err := strconv.Atoi(os.Getenv("ROOTSCAN_BENCH_MAPS")); err == nil && v > 0 {
		n = v
	}
	start := func(mode string) *daemonProc {
		d := startDaemonProc(b, "--runtime-endpoint", bed.Address(), "--state-dir", filepath.Join(b.TempDir(), "state"),
			"--mount-dir", filepath.Join(b.TempDir(), "mounts"), "--db", filepath.Join(b.TempDir(), "db"), "--ebpf", mode)
		waitUntil(b, "/readyz", 60*time.Second, func() bool { code, _ := d.get("/readyz"); return code == 200 })
		return d
	}
	value := func(d *daemonProc, name string) float64 {
		_, body := d.get("/metrics")
		v, _ := metric(body, name)
		return v
	}
	atRest := func(d *daemonProc) (rssMiB, cpuPct float64) {
		pid := d.cmd.Process.Pid
		time.Sleep(5 * time.Second)
		cpu0 := procCPU(pid)
		time.Sleep(15 * time.Second)
		return float64(procStatusKiB(pid, "VmRSS")) / 1024, (procCPU(pid) - cpu0) / 15 * 100
	}
	stop := func(d *daemonProc) {
		d.cmd.Process.Signal(syscall.SIGTERM)
		<-d.done
	}
	for b.Loop() {
		d := start("on")
		waitUntil(b, "the container watched", 30*time.Second, func() bool { return value(d, exporter.MetricEBPFWatched) == 1 })
		rssOn, cpuOn := atRest(d)
		events0, lost0 := value(d, exporter.MetricEBPFEvents), value(d, exporter.MetricEBPFEventsLost)
		file := "/maps-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		began := time.Now()
		if stdout, stderr, code, err := bed.ExecSync(ctx, id, []string{"/dropper", "maps", file, strconv.Itoa(n)}); err != nil || code != 0 {
			b.Fatalf("maps: exit %d, %v\n%s%s", code, err, stdout, stderr)
		}
		produced := time.Since(began)
		var events, lost float64
		waitUntil(b, "every mapping taken or counted lost", 60*time.Second, func() bool {
			events, lost = value(d, exporter.MetricEBPFEvents)-events0, value(d, exporter.MetricEBPFEventsLost)-lost0
			return events+lost >= float64(n)
		})
		took := time.Since(began)
		stop(d)
		off := start("off")
		rssOff, cpuOff := atRest(off)
		stop(off)

		b.ReportMetric(float64(n)/produced.Seconds(), "mappings/s")
		b.ReportMetric(events/took.Seconds(), "events/s")
		b.ReportMetric(lost/float64(n), "lost/op")
		b.ReportMetric(rssOn, "rest-rss-ebpf-on-MiB")
		b.ReportMetric(rssOff, "rest-rss-ebpf-off-MiB")
		b.ReportMetric(cpuOn, "rest-cpu-ebpf-on-%")
		b.ReportMetric(cpuOff, "rest-cpu-ebpf-off-%")
	}
}
