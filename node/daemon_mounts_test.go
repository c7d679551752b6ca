package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/internal/testbed"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
	"golang.org/x/sys/unix"
)

// countingRoots is the real ContainerRoots with a count of every view it opens and of the mounts that took: an open
// that added an entry under the mount directory to /proc/self/mountinfo. Optionally it fires a cancel right after
// the n-th open, to cut a check off mid-way.
type countingRoots struct {
	inner       *ContainerRoots
	mu          sync.Mutex
	opens       map[fsaccess.View]int
	mounts      map[fsaccess.View]int
	total       int
	cancelAfter int
	cancel      context.CancelFunc
}

func (r *countingRoots) ChainID(ctx context.Context, c cri.Container) (string, error) {
	return r.inner.ChainID(ctx, c)
}

func (r *countingRoots) OpenView(ctx context.Context, c cri.Container, v fsaccess.View) (Root, error) {
	before := r.points()
	root, err := r.inner.OpenView(ctx, c, v)
	if err == nil {
		r.count(v, r.points()-before)
	}
	return root, err
}

func (r *countingRoots) OpenContainer(ctx context.Context, c cri.Container) (Root, string, error) {
	before := r.points()
	root, access, err := r.inner.OpenContainer(ctx, c)
	if err == nil {
		r.count(fsaccess.ViewContainer, r.points()-before)
	}
	return root, access, err
}

// points is how many mountinfo entries there are at or under the mount directory.
func (r *countingRoots) points() int {
	ps, err := fsaccess.MountPointsUnder(r.inner.Mounter.Dir())
	if err != nil {
		panic(err)
	}
	return len(ps)
}

func (r *countingRoots) count(v fsaccess.View, mounted int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.opens[v]++
	r.mounts[v] += mounted
	r.total++
	if r.cancel != nil && r.total == r.cancelAfter {
		r.cancel()
	}
}

func (r *countingRoots) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.opens = map[fsaccess.View]int{}
	r.mounts = map[fsaccess.View]int{}
	r.total = 0
	r.cancel, r.cancelAfter = nil, 0
}

// counts are the opens and the mounts per view since the last reset.
func (r *countingRoots) counts() (opens, mounts map[fsaccess.View]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps(r.opens), maps(r.mounts)
}

func maps(m map[fsaccess.View]int) map[fsaccess.View]int {
	out := map[fsaccess.View]int{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// passwdCheck is a root check that reads a real file from the root it is given, as compliance profiles do.
type passwdCheck struct{ got []string }

func (p *passwdCheck) Check(_ context.Context, root scan.FS, _ *report.Report) error {
	b, err := scan.ReadFile(root, "etc/passwd", 1<<20)
	if err != nil {
		return fmt.Errorf("read etc/passwd: %w", err)
	}
	p.got = append(p.got, string(b))
	return nil
}

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, report.Report) {}
func (nopPublisher) Remove(context.Context, report.Target)  {}

type mountRig struct {
	bed     *testbed.Containerd
	client  *cri.Client
	m       *fsaccess.Mounter
	roots   *ContainerRoots
	count   *countingRoots
	running cri.Container
	created cri.Container
}

func startMountRig(t *testing.T) *mountRig {
	t.Helper()
	bed := testbed.StartT(t, testbed.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	img, err := ociimage.Distroless(ctx, ociimage.DefaultCacheDir())
	if err != nil {
		t.Fatalf("build distroless image: %v", err)
	}
	ref, err := bed.Import(ctx, img)
	if err != nil {
		t.Fatalf("import distroless image: %v", err)
	}
	pod, err := bed.RunPod(ctx, testbed.PodSpec{Name: "web", Namespace: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	running, err := bed.RunContainer(ctx, pod, testbed.ContainerSpec{Name: "app", Image: ref.Name})
	if err != nil {
		t.Fatal(err)
	}
	created, err := bed.CreateContainer(ctx, pod, testbed.ContainerSpec{Name: "fresh", Image: ref.Name})
	if err != nil {
		t.Fatal(err)
	}
	client, err := cri.Dial(ctx, bed.Address())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	snaps, err := fsaccess.DialSnapshots(ctx, bed.Address())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { snaps.Close() })
	m, err := fsaccess.NewMounter(ctx, filepath.Join(t.TempDir(), "mounts"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	r := &mountRig{bed: bed, client: client, m: m, roots: &ContainerRoots{Snapshots: snaps, Mounter: m}}
	r.count = &countingRoots{inner: r.roots}
	r.count.reset()
	if r.running, err = client.Container(ctx, running); err != nil {
		t.Fatal(err)
	}
	if r.created, err = client.Container(ctx, created); err != nil {
		t.Fatal(err)
	}
	r.changeUpper(t, ctx, snaps)
	return r
}

// changedPasswd is what the created container's upper dir holds for etc/passwd.
const changedPasswd = "root:x:0:0:root:/root:/sbin/nologin\ndrift:x:1234:1234::/:/sbin/nologin\n"

// changeUpper gives the created (never started) container drift, by writing into its upper dir from the host as its
// process would have: a changed etc/passwd, an added file and a deleted one (an overlay whiteout). Nothing has the
// snapshot mounted, so this is safe.
func (r *mountRig) changeUpper(t *testing.T, ctx context.Context, snaps *fsaccess.Snapshots) {
	t.Helper()
	ms, err := snaps.Mounts(ctx, r.created.Snapshotter, r.created.SnapshotKey)
	if err != nil || len(ms) != 1 {
		t.Fatalf("snapshot mounts of the created container: %v, %v", ms, err)
	}
	var upper string
	for _, o := range ms[0].Options {
		if v, ok := strings.CutPrefix(o, "upperdir="); ok {
			upper = v
		}
	}
	if upper == "" {
		t.Fatalf("no upper dir in %v", ms[0].Options)
	}
	if err := os.MkdirAll(filepath.Join(upper, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(upper, "etc/passwd"), []byte(changedPasswd), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(upper, "etc/added.conf"), []byte("added\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(upper, "etc/nsswitch.conf"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
}

// daemon is a Daemon over the counting roots with drift and the root check (if any) on and an empty image cache, set up as
// Run sets it up, so single checks can be driven directly.
func (r *mountRig) daemon(t *testing.T, check RootCheck) *Daemon {
	t.Helper()
	cache, err := NewImageCache("", "")
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{
		Containers: r.client,
		Views:      r.count,
		Roots:      r.count,
		Analyzers:  scan.DefaultAnalyzers(),
		Drift:      ScanDrift(scan.DriftOptions{}),
		Cache:      cache,
		Publisher:  nopPublisher{},
		Node:       "node-1",
	}
	if check != nil {
		d.Checks = []RootCheck{check}
	}
	d.setup()
	return d
}

// noLeftovers asserts that nothing is mounted under the rig's mount directory but the directory's own private bind.
func (r *mountRig) noLeftovers(t *testing.T) {
	t.Helper()
	points, err := fsaccess.MountPointsUnder(r.m.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if held := r.m.Held(); held != 0 || !slices.Equal(points, []string{r.m.Dir()}) {
		t.Fatalf("after the check: %d mounts held, mountinfo under %s: %q (want only the dir itself)", held, r.m.Dir(), points)
	}
}

// One container check mounts each view at most once: on an image-cache miss with drift and root checks on, the
// upper dir, the image layers and the merged root once each (the image view used to be mounted a second time for
// drift), and what it finds is what the one-shot scanner finds. Nothing stays mounted, also when the check is cut
// off after any of its mounts.
func TestDaemonCheckMountsEachViewOnce(t *testing.T) {
	r := startMountRig(t)
	ctx := context.Background()
	// The upper dir is read in place (no mount); the image layers and the merged root are mounted once each.
	wantOpens := map[fsaccess.View]int{fsaccess.ViewUpper: 1, fsaccess.ViewImage: 1, fsaccess.ViewContainer: 1}
	wantMounts := map[fsaccess.View]int{fsaccess.ViewImage: 1, fsaccess.ViewContainer: 1}

	for _, tc := range []struct {
		name   string
		c      cri.Container
		passwd string // what the root check must read: the merged view's etc/passwd
		drift  []string
	}{
		{"running", r.running, "", nil},
		{"created", r.created, changedPasswd, []string{"added etc/added.conf", "deleted etc/nsswitch.conf", "changed etc/passwd"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The one-shot scanner's findings for the same container: the daemon's split must not change them.
			oneShot := (&Scanner{Roots: r.roots, Views: r.roots, Analyzers: scan.DefaultAnalyzers(), Drift: ScanDrift(scan.DriftOptions{})}).ScanContainer(ctx, tc.c)
			if oneShot.Error != "" {
				t.Fatalf("one-shot scan: %s", oneShot.Error)
			}
			if got := driftSummary(oneShot.Result.Drift); !slices.Equal(got, tc.drift) {
				t.Fatalf("one-shot drift %q, want %q", got, tc.drift)
			}
			check := &passwdCheck{}
			d := r.daemon(t, check)
			for _, pass := range []string{"cache miss", "cache hit"} {
				r.count.reset()
				d.gen.Add(1) // a new generation: the container is analyzed again, not found unchanged
				outcome, rep := d.checkContainer(ctx, tc.c)
				if outcome != "analyzed" || rep.Error != "" {
					t.Fatalf("%s: outcome %q, error %q", pass, outcome, rep.Error)
				}
				if opens, mounts := r.count.counts(); !reflect.DeepEqual(opens, wantOpens) || !reflect.DeepEqual(mounts, wantMounts) {
					t.Errorf("%s: opens per view %v, mounts %v; want %v and %v", pass, opens, mounts, wantOpens, wantMounts)
				}
				if got := d.Stats().Mounts; got != 2 {
					t.Errorf("%s: Stats().Mounts = %d, want 2", pass, got)
				}
				d.mounts.Store(0)
				r.noLeftovers(t)
				if len(check.got) != 1 || !strings.HasPrefix(check.got[0], "root:x:0:0:") || (tc.passwd != "" && check.got[0] != tc.passwd) {
					t.Fatalf("%s: the root check read %q from etc/passwd (want the merged view's, once)", pass, check.got)
				}
				check.got = nil
				if rep.Result.Errors != nil {
					t.Errorf("%s: errors %v", pass, rep.Result.Errors)
				}
				if got, want := pkgNames(rep.Result), pkgNames(oneShot.Result); !slices.Equal(got, want) || len(got) == 0 {
					t.Errorf("%s: packages %v, one-shot scanner found %v", pass, got, want)
				}
				if !reflect.DeepEqual(rep.Result.Drift, oneShot.Result.Drift) {
					t.Errorf("%s: drift %+v, one-shot scanner found %+v", pass, rep.Result.Drift, oneShot.Result.Drift)
				}
				t.Logf("%s: %d packages, drift %q", pass, len(rep.Result.Packages), driftSummary(rep.Result.Drift))
			}
			if d.cacheMis.Load() != 1 || d.cacheHit.Load() != 1 {
				t.Errorf("cache misses %d, hits %d; want 1 and 1", d.cacheMis.Load(), d.cacheHit.Load())
			}
		})
	}

	// With drift but no root check and an untouched inventory, the merged root is not mounted at all: drift reads
	// the upper dir and the image view.
	t.Run("drift only", func(t *testing.T) {
		d := r.daemon(t, nil)
		r.count.reset()
		// The running container's upper dir holds only the runtime's mount points (etc/hostname, etc/hosts,
		// etc/resolv.conf), which no analyzer reads.
		outcome, rep := d.checkContainer(ctx, r.running)
		if outcome != "analyzed" || rep.Error != "" {
			t.Fatalf("outcome %q, error %q", outcome, rep.Error)
		}
		opens, mounts := r.count.counts()
		if want := map[fsaccess.View]int{fsaccess.ViewUpper: 1, fsaccess.ViewImage: 1}; !reflect.DeepEqual(opens, want) {
			t.Errorf("opens per view = %v, want %v", opens, want)
		}
		if want := map[fsaccess.View]int{fsaccess.ViewImage: 1}; !reflect.DeepEqual(mounts, want) {
			t.Errorf("mounts per view = %v, want %v", mounts, want)
		}
		if rep.Target.Access != "overlay-lowerdir" || rep.Result.Drift != nil || len(rep.Result.Packages) != 8 {
			t.Errorf("access %q, drift %q, %d packages; want overlay-lowerdir, none, 8", rep.Target.Access, driftSummary(rep.Result.Drift), len(rep.Result.Packages))
		}
		if d.Stats().Mounts != 1 {
			t.Errorf("Stats().Mounts = %d, want 1", d.Stats().Mounts)
		}
		r.noLeftovers(t)
	})

	// Cut off after each open of a cache-miss check (upper dir, image view, merged root): nothing is opened after
	// the cancel, nothing stays mounted, nothing is cached half-done.
	for n := 1; n <= 3; n++ {
		t.Run(fmt.Sprintf("cancelled after open %d", n), func(t *testing.T) {
			d := r.daemon(t, &passwdCheck{})
			r.count.reset()
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			r.count.mu.Lock()
			r.count.cancel, r.count.cancelAfter = cancel, n
			r.count.mu.Unlock()
			outcome, rep := d.checkContainer(cctx, r.running)
			r.count.mu.Lock()
			total := r.count.total
			r.count.mu.Unlock()
			if total != n {
				t.Errorf("%d views opened, want %d (none after the cancel)", total, n)
			}
			if outcome == "analyzed" && rep.Error == "" && n < 3 {
				t.Errorf("outcome %q with no error after a cancel at open %d", outcome, n)
			}
			r.noLeftovers(t)
			// The image analysis is complete (and cached) only when the cut comes after the image view was read.
			if want := map[bool]int{true: 1}[n == 3]; d.Cache.Len() != want {
				t.Errorf("a check cancelled after open %d cached %d image results, want %d", n, d.Cache.Len(), want)
			}
		})
	}
}

func driftSummary(ds []report.DriftEntry) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Change+" "+d.Path)
	}
	return out
}

func pkgNames(r *report.Result) []string {
	if r == nil {
		return nil
	}
	var out []string
	for _, p := range r.Packages {
		out = append(out, p.Name+"@"+p.Version)
	}
	slices.Sort(out)
	return out
}
