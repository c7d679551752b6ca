package integration

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/internal/testbed"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

type distrolessNode struct {
	bed                       *testbed.Containerd
	img                       *ociimage.Image
	ref                       testbed.ImageRef
	running, stopped, created string
	other                     string // a pause container in another namespace
}

// startDistrolessNode runs, in namespace "shop", a pod with three containers of the distroless image: one running,
// one stopped, one created and never started; and in namespace "infra" one pause container.
func startDistrolessNode(t testing.TB) *distrolessNode {
	t.Helper()
	bed, ctx, img, ref := startBed(t, ociimage.Distroless)
	t.Logf("containerd %s at %s", bed.Version(), bed.Address())
	n := &distrolessNode{bed: bed, img: img, ref: ref}
	pod, err := bed.RunPod(ctx, testbed.PodSpec{Name: "web", Namespace: "shop", Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"team": "payments"}})
	if err != nil {
		t.Fatal(err)
	}
	spec := func(name string) testbed.ContainerSpec {
		return testbed.ContainerSpec{Name: name, Image: ref.Name, Labels: map[string]string{"tier": name}}
	}
	if n.running, err = bed.RunContainer(ctx, pod, spec("app-running")); err != nil {
		t.Fatal(err)
	}
	if n.stopped, err = bed.RunContainer(ctx, pod, spec("app-stopped")); err != nil {
		t.Fatal(err)
	}
	if err := bed.StopContainer(ctx, n.stopped, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if n.created, err = bed.CreateContainer(ctx, pod, spec("app-created")); err != nil {
		t.Fatal(err)
	}
	infra, err := bed.RunPod(ctx, testbed.PodSpec{Name: "agent", Namespace: "infra"})
	if err != nil {
		t.Fatal(err)
	}
	if n.other, err = bed.RunContainer(ctx, infra, testbed.ContainerSpec{Name: "pause", Image: bed.PauseImage().Name}); err != nil {
		t.Fatal(err)
	}
	return n
}

// The core promise: a distroless container, where exec fails for want of a shell, is still fully inventoried
// from outside, in every state, and nothing about the pod or the container's filesystem changes.
func TestScanDistrolessContainers(t *testing.T) {
	n := startDistrolessNode(t)
	bed := n.bed
	ctx := context.Background()

	_, _, _, err := bed.ExecSync(ctx, n.running, []string{"/bin/sh", "-c", "cat /var/lib/dpkg/status.d/*"})
	if err == nil || !strings.Contains(err.Error(), "stat /bin/sh: no such file or directory") {
		t.Fatalf("exec into the distroless container: err = %v, want the missing-shell error exec-based scanners hit", err)
	}

	stateBefore := podState(t, bed)
	uppers := map[string]string{}
	for _, id := range []string{n.running, n.stopped, n.created} {
		upper, work := snapshotDirs(t, bed, id)
		if upper == "" || work == "" {
			t.Fatalf("container %s: no upper/work dir in its snapshot mounts", id)
		}
		uppers[id] = treeDigest(t, upper) + "--work--\n" + treeDigest(t, work)
	}

	mountDir := filepath.Join(t.TempDir(), "mounts")
	doc, res := scanJSON(t, bed, mountDir)
	if res.code != 0 {
		t.Fatalf("rootscan scan exit %d, stderr: %s", res.code, res.stderr)
	}
	t.Logf("node scan: %d containers in %v, max RSS %d KiB", len(doc.Reports), res.elapsed, res.maxRSSKiB)
	if len(doc.Reports) != 4 {
		t.Fatalf("want 4 reports (3 distroless + 1 pause), got %d", len(doc.Reports))
	}
	want := wantPackages(n.img)
	if len(want) != 6 {
		t.Fatalf("fixture: the distroless image should hold 6 packages, has %v", want)
	}
	for id, name := range map[string]string{n.running: "app-running", n.stopped: "app-stopped", n.created: "app-created"} {
		r := reportFor(t, doc, id)
		if r.Error != "" {
			t.Errorf("%s: scan error: %s", name, r.Error)
			continue
		}
		tg := r.Target
		if tg.Namespace != "shop" || tg.Pod != "web" || tg.Container != name || tg.Image != n.ref.Name {
			t.Errorf("%s: target identity = %+v", name, tg)
		}
		if tg.ImageDigest != n.ref.Manifest.String() {
			t.Errorf("%s: image digest = %q, want %q", name, tg.ImageDigest, n.ref.Manifest)
		}
		if tg.Access != "overlay-lowerdir" {
			t.Errorf("%s: access = %q", name, tg.Access)
		}
		if got := gotPackages(r.Result); !equalStrings(got, want) {
			t.Errorf("%s: packages\n got  %q\n want %q", name, got, want)
		}
		if got, want := goPackages(r.Result), wantGoProgram("rootscan.test/app", "app"); !equalStrings(got, want) {
			t.Errorf("%s: Go packages %q, want %q", name, got, want)
		}
		if d := r.Result.Distroless; d == nil || !d.Distroless || d.Flavour != "base" {
			t.Errorf("%s: distroless = %+v, want distroless base", name, d)
		}
		if os := r.Result.OS; os == nil || os.ID != "debian" || os.VersionID != "12" {
			t.Errorf("%s: OS = %+v, want debian 12", name, os)
		}
		if len(r.Result.Errors) != 0 {
			t.Errorf("%s: file errors on a clean image: %+v", name, r.Result.Errors)
		}
	}
	if r := reportFor(t, doc, n.other); r.Target.Namespace != "infra" || r.Error != "" || len(gotPackages(r.Result)) != 0 ||
		!equalStrings(goPackages(r.Result), wantGoProgram("rootscan.test/pause", "pause")) {
		t.Errorf("pause container report = %+v", r)
	}

	// Nothing changed: pods, containers, labels, annotations, and every byte and timestamp of the upper dirs.
	if after := podState(t, bed); after != stateBefore {
		t.Errorf("pod state changed by the scan:\nbefore:\n%s\nafter:\n%s", stateBefore, after)
	}
	for id, before := range uppers {
		upper, work := snapshotDirs(t, bed, id)
		if after := treeDigest(t, upper) + "--work--\n" + treeDigest(t, work); after != before {
			t.Errorf("container %s: upper/work dir changed by the scan:\nbefore:\n%s\nafter:\n%s", id, before, after)
		}
	}
	assertNoMountsUnder(t, mountDir)

	// The running container still works after the scan (its overlay was never re-mounted).
	st, err := bed.Runtime().ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: n.running})
	if err != nil || st.GetStatus().GetState().String() != "CONTAINER_RUNNING" {
		t.Errorf("running container after scan: %v %v", st.GetStatus().GetState(), err)
	}
}

func TestScanFilters(t *testing.T) {
	n := startDistrolessNode(t)
	mountDir := filepath.Join(t.TempDir(), "mounts")

	doc, res := scanJSON(t, n.bed, mountDir, "--namespace", "infra")
	if res.code != 0 || len(doc.Reports) != 1 || doc.Reports[0].Target.ContainerID != n.other {
		t.Fatalf("--namespace infra: exit %d, reports %+v", res.code, doc.Reports)
	}
	doc, res = scanJSON(t, n.bed, mountDir, "--container", n.created[:12])
	if res.code != 0 || len(doc.Reports) != 1 || doc.Reports[0].Target.ContainerID != n.created {
		t.Fatalf("--container prefix: exit %d, reports %+v", res.code, doc.Reports)
	}
	if got := gotPackages(doc.Reports[0].Result); !equalStrings(got, wantPackages(n.img)) {
		t.Fatalf("--container packages: %q", got)
	}
	if !strings.Contains(doc.Runtime, "containerd") {
		t.Errorf("runtime = %q", doc.Runtime)
	}

	// The table a person reads: identity, OS and each package with its version.
	tab := runRootscan(t, time.Minute, "scan", "--runtime-endpoint", n.bed.Address(), "--mount-dir", mountDir, "--namespace", "shop")
	if tab.code != 0 {
		t.Fatalf("table scan exit %d: %s", tab.code, tab.stderr)
	}
	for _, s := range []string{"shop/web/app-running", "shop/web/app-stopped", "shop/web/app-created", "debian 12 (bookworm)", "yes (base)", "6 Debian, 2 Go"} {
		if !strings.Contains(tab.stdout, s) {
			t.Errorf("table output lacks %q:\n%s", s, tab.stdout)
		}
	}
	for _, p := range n.img.Packages() {
		if !strings.Contains(tab.stdout, p.Name) || !strings.Contains(tab.stdout, p.Version) {
			t.Errorf("table output lacks package %s %s", p.Name, p.Version)
		}
	}
	if strings.Contains(tab.stdout, "infra/") {
		t.Errorf("--namespace shop shows infra containers:\n%s", tab.stdout)
	}
	assertNoMountsUnder(t, mountDir)

	// The CRI records carry what fsaccess needs.
	client, err := cri.Dial(context.Background(), n.bed.Address())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := client.Container(context.Background(), n.running)
	if err != nil {
		t.Fatal(err)
	}
	if c.Snapshotter != "overlayfs" || c.SnapshotKey != n.running || c.Pid <= 0 || c.CgroupsPath == "" || c.State != cri.StateRunning {
		t.Errorf("CRI record of the running container lacks runtime details: %+v", c)
	}
}
