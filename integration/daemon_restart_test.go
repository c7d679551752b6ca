package integration

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rootscan/rootscan/exporter"
	"github.com/rootscan/rootscan/internal/testbed"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
)

// The daemon survives a containerd restart under it, as on a node whose containerd is upgraded: while containerd is
// down the daemon keeps serving (/healthz 200, last known findings on /metrics) and does not exit; once containerd is
// back, the event stream reconnects on its own, so a container started after the restart and one removed right after
// it are reflected within seconds, long before the periodic resync (10 minutes here) would have done it. Nothing stays
// mounted.
func TestDaemonSurvivesContainerdRestart(t *testing.T) {
	bed, ctx, img, ref := startBed(t, ociimage.Distroless)
	d, mounts := startReadyDaemon(t, bed, "--node-name", "node-1", "--resync", "10m", "--db", filepath.Join(t.TempDir(), "db"))

	pod, err := bed.RunPod(ctx, testbed.PodSpec{Name: "web", Namespace: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	want := float64(len(img.Packages()))
	shown := func(name string) func() bool {
		return func() bool {
			_, body := d.get("/metrics")
			v, ok := metric(body, exporter.MetricPackages, "namespace=shop", "pod=web", "container="+name, "ecosystem=Debian")
			return ok && v == want
		}
	}
	gone := func(name string) func() bool {
		return func() bool {
			code, body := d.get("/metrics")
			_, ok := metric(body, exporter.MetricPackages, "namespace=shop", "pod=web", "container="+name)
			return code == 200 && !ok
		}
	}
	if _, err := bed.RunContainer(ctx, pod, testbed.ContainerSpec{Name: "keep", Image: ref.Name}); err != nil {
		t.Fatal(err)
	}
	doomed, err := bed.RunContainer(ctx, pod, testbed.ContainerSpec{Name: "doomed", Image: ref.Name})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "both containers on /metrics", 30*time.Second, func() bool { return shown("keep")() && shown("doomed")() })

	// containerd goes down (its shims and containers keep running) and stays down for a few seconds: the event stream
	// breaks and every reconnect attempt fails, growing the watcher's backoff.
	if err := bed.StopProcess(ctx); err != nil {
		t.Fatal(err)
	}
	downSince := time.Now()
	for time.Since(downSince) < 4*time.Second {
		select {
		case <-d.done:
			t.Fatalf("daemon exited while containerd was down: %v", d.cmd.ProcessState)
		default:
		}
		if code, body := d.get("/healthz"); code != 200 {
			t.Fatalf("/healthz while containerd is down: %d %s", code, body)
		}
		if !shown("keep")() {
			t.Fatal("the last known findings of a running container left /metrics while containerd was down")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(d.stderr.String(), "containerd event stream lost") {
		t.Errorf("daemon did not log the lost event stream; stderr tail:\n%s", tail(d.stderr.String(), 10))
	}

	// containerd is back. Right away (most likely before the watcher's next attempt, so its remove events are
	// never seen by the daemon) one container goes and a new one starts.
	if err := bed.StartProcess(ctx); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	if err := bed.StopContainer(ctx, doomed, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := bed.RemoveContainer(ctx, doomed); err != nil {
		t.Fatal(err)
	}
	if _, err := bed.RunContainer(ctx, pod, testbed.ContainerSpec{Name: "fresh", Image: ref.Name}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the container started after the restart on /metrics", 10*time.Second, shown("fresh"))
	waitUntil(t, "the container removed around the restart gone from /metrics", 10*time.Second, gone("doomed"))
	t.Logf("containerd back to both changes on /metrics: %v", time.Since(back))
	if !shown("keep")() {
		t.Error("the container that ran through the restart left /metrics")
	}
	_, body := d.get("/metrics")
	if v, ok := metric(body, exporter.MetricContainersKnown); !ok || v != 2 {
		t.Errorf("%s = %v (found %v), want 2 (keep and fresh)", exporter.MetricContainersKnown, v, ok)
	}
	if v, ok := metric(body, exporter.MetricScansTotal, "result=failure"); ok && v != 0 {
		t.Logf("%s{result=failure} = %v (checks attempted while containerd was down)", exporter.MetricScansTotal, v)
	}

	d.stopClean(t, mounts)
}
