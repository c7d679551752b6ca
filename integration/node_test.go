package integration

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/internal/testbed"
	"github.com/rootscan/rootscan/node"
	"github.com/rootscan/rootscan/scan"
)

func newScanner(t testing.TB, bed *testbed.Containerd, mountDir string) (*node.Scanner, *fsaccess.Mounter) {
	t.Helper()
	client, snaps, m := nodeAccess(t, bed, mountDir)
	return &node.Scanner{
		Containers: client,
		Roots:      &node.ContainerRoots{Snapshots: snaps, Mounter: m},
		Digests:    snaps,
		Analyzers:  scan.DefaultAnalyzers(),
	}, m
}

// One container whose snapshot vanished between list and mount is reported as failed; the others complete.
func TestScanIsolatesContainerFailure(t *testing.T) {
	n := startDistrolessNode(t)
	ctx := context.Background()
	s, m := newScanner(t, n.bed, filepath.Join(t.TempDir(), "mounts"))
	cs, err := s.Containers.List(ctx, cri.Filter{PodNamespace: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	// The created container's snapshot is removed behind the scanner's back (as when a pod is deleted mid-scan).
	if err := n.bed.Client().SnapshotService(testbed.Snapshotter).Remove(ctx, n.created); err != nil {
		t.Fatalf("remove snapshot: %v", err)
	}
	reps := s.ScanContainers(ctx, cs)
	if len(reps) != 3 {
		t.Fatalf("want 3 reports, got %d", len(reps))
	}
	for _, r := range reps {
		switch r.Target.ContainerID {
		case n.created:
			if !strings.Contains(r.Error, "snapshot not found") || r.Result != nil {
				t.Errorf("vanished snapshot: error %q result %v", r.Error, r.Result)
			}
		default:
			if r.Error != "" || len(gotPackages(r.Result)) != 6 {
				t.Errorf("%s: error %q, %d packages: one container's failure spilled over", r.Target.Name(), r.Error, len(gotPackages(r.Result)))
			}
		}
	}
	if m.Held() != 0 {
		t.Errorf("%d mounts still held", m.Held())
	}
	points, _ := fsaccess.MountPointsUnder(m.Dir())
	if len(points) != 1 {
		t.Errorf("mounts under %s: %q", m.Dir(), points)
	}
}

// cancellingRoots cancels the scan while a container's root is mounted and being read.
type cancellingRoots struct {
	node.RootOpener
	cancel context.CancelFunc
	mounts func() int
	seen   int
}

func (c *cancellingRoots) OpenContainer(ctx context.Context, ct cri.Container) (node.Root, string, error) {
	r, a, err := c.RootOpener.OpenContainer(ctx, ct)
	if err == nil {
		c.seen = c.mounts()
		c.cancel()
	}
	return r, a, err
}

// A cancelled scan (SIGTERM in the CLI) still unmounts what it mounted, and the rest is reported as not scanned.
func TestCancelledScanLeavesNoMount(t *testing.T) {
	n := startDistrolessNode(t)
	mountDir := filepath.Join(t.TempDir(), "mounts")
	s, m := newScanner(t, n.bed, mountDir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cr := &cancellingRoots{RootOpener: s.Roots, cancel: cancel, mounts: m.Held}
	s.Roots, s.Concurrency = cr, 1
	reps, err := s.ScanNode(ctx, cri.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if cr.seen != 1 {
		t.Fatalf("the cancel should have come while a mount was held (held=%d)", cr.seen)
	}
	notScanned := 0
	for _, r := range reps {
		if strings.Contains(r.Error, "context canceled") {
			notScanned++
		}
	}
	if notScanned == 0 {
		t.Errorf("after cancel, no container was reported as not scanned: %+v", reps)
	}
	if points, _ := fsaccess.MountPointsUnder(mountDir); len(points) != 1 {
		t.Fatalf("mounts after a cancelled scan: %q", points)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	assertNoMountsUnder(t, mountDir)
}

// The CLI on SIGTERM: the process exits, and no mount is left in its mount dir.
func TestSIGTERMLeavesNoMount(t *testing.T) {
	n := startDistrolessNode(t)
	mountDir := filepath.Join(t.TempDir(), "mounts")
	for i := 0; i < 5; i++ {
		res := runRootscanSignalled(t, n.bed, mountDir, time.Duration(i)*3*time.Millisecond)
		if res < -1 || res > 2 {
			t.Errorf("exit code after SIGTERM = %d", res)
		}
		assertNoMountsUnder(t, mountDir)
	}
}

// Bad runtime endpoints: one clear line on stderr and exit code 2, whether the socket is missing or is not a CRI.
func TestRuntimeEndpointErrors(t *testing.T) {
	testbed.Require(t)
	dir := t.TempDir()

	httpSock := filepath.Join(dir, "http.sock")
	hl, err := net.Listen("unix", httpSock)
	if err != nil {
		t.Fatal(err)
	}
	go http.Serve(hl, http.NotFoundHandler())
	defer hl.Close()

	grpcSock := filepath.Join(dir, "grpc.sock")
	gl, err := net.Listen("unix", grpcSock)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer() // speaks gRPC, serves no CRI
	go gs.Serve(gl)
	defer gs.Stop()

	regular := filepath.Join(dir, "file")
	os.WriteFile(regular, nil, 0o644)

	for name, tc := range map[string]struct{ ep, want string }{
		"missing":      {"unix://" + filepath.Join(dir, "nope.sock"), "no such file or directory"},
		"plain path":   {filepath.Join(dir, "nope.sock"), "no such file or directory"},
		"not a socket": {regular, "not a unix socket"},
		"http server":  {"unix://" + httpSock, "does not serve the CRI"},
		"grpc, no CRI": {grpcSock, "does not serve the CRI"},
		"tcp":          {"tcp://127.0.0.1:1", "only unix sockets"},
	} {
		t.Run(name, func(t *testing.T) {
			res := runRootscan(t, time.Minute, "scan", "--runtime-endpoint", tc.ep, "--mount-dir", filepath.Join(dir, "m"))
			if res.code != 2 {
				t.Errorf("exit code %d, want 2", res.code)
			}
			lines := strings.Split(strings.TrimSpace(res.stderr), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "rootscan: ") || !strings.Contains(lines[0], tc.want) {
				t.Errorf("stderr = %q, want one line mentioning %q", res.stderr, tc.want)
			}
			if res.stdout != "" {
				t.Errorf("stdout = %q, want nothing", res.stdout)
			}
		})
	}
}
