package exporter

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/internal/testbed"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
	"github.com/rootscan/rootscan/node"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// TestMetricsFromRealScans feeds the metrics what the node scanner really reports on containers of the project's
// private containerd, scrapes them over HTTP, removes a pod and checks its series go after the next resync, the way
// the daemon drives Metrics and Health.
func TestMetricsFromRealScans(t *testing.T) {
	bed := testbed.StartT(t, testbed.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	img, err := ociimage.Distroless(ctx, ociimage.DefaultCacheDir())
	if err != nil {
		t.Fatal(err)
	}
	ref, err := bed.Import(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	pods := make(map[string]string) // pod name -> sandbox ID
	for _, name := range []string{"web-0", "web-1"} {
		sb, err := bed.RunPod(ctx, testbed.PodSpec{Name: name, Namespace: "shop"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bed.RunContainer(ctx, sb, testbed.ContainerSpec{Name: "app", Image: ref.Name}); err != nil {
			t.Fatal(err)
		}
		pods[name] = sb
	}

	client, err := cri.Dial(ctx, bed.Address())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	snaps, err := fsaccess.DialSnapshots(ctx, bed.Address())
	if err != nil {
		t.Fatal(err)
	}
	defer snaps.Close()
	mounter, err := fsaccess.NewMounter(ctx, filepath.Join(t.TempDir(), "mounts"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mounter.Close()
	scanner := &node.Scanner{
		Containers: client,
		Roots:      &node.ContainerRoots{Snapshots: snaps, Mounter: mounter},
		Digests:    snaps,
		Analyzers:  scan.DefaultAnalyzers(),
		Node:       "node-1",
	}

	m := NewMetrics("node-1")
	h := NewHealth(HealthOptions{Node: "node-1", Version: "test"})
	srv := serve(t, m, h)
	// resync is one round of the daemon's loop: scan what the CRI lists, update, drop what is gone.
	resync := func() {
		t.Helper()
		reps, err := scanner.ScanNode(ctx, cri.Filter{PodNamespace: "shop"})
		if err != nil {
			t.Fatal(err)
		}
		seen := make(map[string]bool)
		for _, r := range reps {
			m.Update(r)
			h.ObserveScan(r.Error == "", r.Duration)
			seen[r.Target.ContainerID] = true
		}
		m.Retain(func(id string) bool { return seen[id] })
		h.SetContainersKnown(len(seen))
		h.SetMountsHeld(mounter.Held())
	}

	resync()
	mfs := scrape(t, srv.URL+"/metrics")
	for _, pod := range []string{"web-0", "web-1"} {
		base := map[string]string{"node": "node-1", "namespace": "shop", "pod": pod, "container": "app", "image": ref.Name}
		with := func(extra map[string]string) map[string]string {
			out := map[string]string{}
			for k, v := range base {
				out[k] = v
			}
			for k, v := range extra {
				out[k] = v
			}
			return out
		}
		for _, tc := range []struct {
			name   string
			labels map[string]string
			want   float64
		}{
			{MetricPackages, with(map[string]string{"ecosystem": report.EcosystemDebian}), float64(len(img.Packages()))},
			{MetricLastScanSuccess, base, 1},
			{MetricImageInfo, with(map[string]string{"os": "debian", "distroless": "true"}), 1},
			// No vulnerability matcher ran: every open-vulnerability series is there, at 0.
			{MetricVulnerabilities, with(map[string]string{"severity": "critical", "fixable": "true"}), 0},
		} {
			got, ok := value(mfs, tc.name, tc.labels)
			if !ok || got != tc.want {
				t.Errorf("%s%v = %v (present %v), want %v", tc.name, tc.labels, got, ok, tc.want)
			}
		}
		if v, ok := value(mfs, MetricImageInfo, base); !ok || v != 1 {
			t.Errorf("no image info for %s", pod)
		}
	}
	for name, want := range map[string]float64{MetricContainersKnown: 2, MetricMountsHeld: 0} {
		if got, _ := value(mfs, name, map[string]string{"node": "node-1"}); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got, _ := value(mfs, MetricScansTotal, map[string]string{"result": ScanOK}); got != 2 {
		t.Errorf("scans ok = %v, want 2", got)
	}

	if err := bed.RemovePod(ctx, pods["web-0"]); err != nil {
		t.Fatal(err)
	}
	resync()
	mfs = scrape(t, srv.URL+"/metrics")
	for name, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if lp.GetName() == "pod" && lp.GetValue() == "web-0" {
					t.Errorf("%s: series of the removed pod still exposed", name)
				}
			}
		}
	}
	if got, ok := value(mfs, MetricPackages, map[string]string{"pod": "web-1", "ecosystem": report.EcosystemDebian}); !ok || got != float64(len(img.Packages())) {
		t.Errorf("web-1's packages after web-0 went: %v (present %v)", got, ok)
	}
}
