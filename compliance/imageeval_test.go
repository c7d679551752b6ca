package compliance

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// probeValues are expressions over every resource; each becomes a control that fails with the value observed, so
// comparing messages compares what the controls saw, not only their verdicts.
var probeValues = []string{
	`file("/etc/passwd").mode_octal + file("/etc/passwd").owner + file("/etc/passwd").group`,
	`[file("/etc/shadow").exists, file("/etc/shadow").size]`,
	`[file("/etc/localtime").link_target, file("/etc/localtime").resolved_path, file("/etc/localtime").content]`,
	`directory("/etc").entries`,
	`directory("/etc/ssh").entries`,
	`glob("/etc/ssh/**")`,
	`glob("/srv/*/*.conf")`,
	`glob("/usr/*/t*")`,
	`glob("/*")`,
	`which("tool") + which("sh")`,
	`parse_config("/etc/ssh/sshd_config", "sshd")`,
	`parse_config("/etc/app.ini", "ini")`,
	`users().map(u, u.name + ":" + string(u.uid) + ":" + u.password)`,
	`groups().map(g, g.name)`,
	`files("/srv").map(f, f.path + " " + f.type + " " + f.mode_octal)`,
	`files("/").filter(f, f.type == "file" && f.world_writable).map(f, f.path)`,
	`files("/").size()`,
	`security_context().privileged`,
	`image_config().user`,
	`effective_uid()`,
	`packages().map(p, p.name)`,
	`file("/usr/bin/tool").sha256`,
	`[file("/bin/sh").exists, file("/bin/sh").is_file, file("/bin").is_symlink]`,
	`[file("/missing/file").exists, file("/etc/hosts").exists]`,
	`file("/").mode_octal`,
	`file("/tmp").mode_octal + file("/tmp").type`,
	`[file("/etc/loop1").exists]`,
	`mounts().map(m, m.container_path)`,
	`[file("/srv/a/b/c.conf").content, file("/srv/a/b").mode_octal]`,
	`file("/vol/conf").content`,
}

func probeEngine(t testing.TB) *Engine {
	t.Helper()
	l, err := NewLoader(Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("name: probes\ncontrols:\n")
	for i, v := range probeValues {
		fmt.Fprintf(&b, "  - id: p%02d\n    impact: 0.5\n    checks:\n      - expr: %q\n        observed: %q\n", i, "["+v+"] == []", v)
	}
	p, err := l.Parse("probes.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	base, err := l.Load(Baseline)
	if err != nil {
		t.Fatal(err)
	}
	return NewEngine(l, append([]*Profile{p}, base...))
}

// deltaOp is one change a container makes to its root, applied to a copy of the image's tree; it adds to the delta
// what an overlay upper dir would hold for it. It returns false, having changed nothing, when the change does not
// apply there (a parent is a file or a link, nothing to chmod): not a case the differential tests describe, and not a
// skipped test either (CI fails on skips).
type deltaOp func(t testing.TB, dir string, d *Delta) bool

// copyUp records p's parents as upper dir directories over the image's (changed, not replaced).
func copyUp(d *Delta, p string) {
	for q := path.Dir("/" + p); q != "/"; q = path.Dir(q) {
		d.Changed = append(d.Changed, q)
	}
}

func mkParents(t testing.TB, dir, p string) bool {
	t.Helper()
	for q := path.Dir(p); q != "."; q = path.Dir(q) {
		if fi, err := os.Lstat(filepath.Join(dir, q)); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			// The write would land where the link points, which the op's delta does not name (an overlay's upper
			// dir would hold it there): not a change this test describes.
			return false
		}
	}
	// A parent that is a file fails before anything is made: an op the container could not do either.
	return os.MkdirAll(filepath.Join(dir, path.Dir(p)), 0o755) == nil
}

// deltaOps are the upper dir changes the differential tests draw from: add, modify, chmod, delete (a whiteout), an
// opaque directory, a symlink swap.
func deltaOps(p string, r *rand.Rand) []deltaOp {
	content := fmt.Sprintf("changed %d\n", r.IntN(3))
	if strings.HasSuffix(p, "passwd") {
		content = "root:x:0:0:root:/root:/bin/sh\nnew:x:0:0::/:/bin/bash\n"
	}
	return []deltaOp{
		func(t testing.TB, dir string, d *Delta) bool { // add or modify
			if !mkParents(t, dir, p) {
				return false
			}
			os.RemoveAll(filepath.Join(dir, p))
			if err := os.WriteFile(filepath.Join(dir, p), []byte(content), 0o644); err != nil {
				return false
			}
			copyUp(d, p)
			d.Replaced = append(d.Replaced, "/"+p)
			return true
		},
		func(t testing.TB, dir string, d *Delta) bool { // chmod
			fi, err := os.Lstat(filepath.Join(dir, p))
			if err != nil || fi.Mode()&os.ModeSymlink != 0 {
				return false
			}
			if err := os.Chmod(filepath.Join(dir, p), os.FileMode(0o600+r.IntN(2)*0o177)); err != nil {
				t.Fatal(err)
			}
			copyUp(d, p)
			if fi.IsDir() {
				d.Changed = append(d.Changed, "/"+p)
			} else {
				d.Replaced = append(d.Replaced, "/"+p)
			}
			return true
		},
		func(t testing.TB, dir string, d *Delta) bool { // delete: a whiteout
			if err := os.RemoveAll(filepath.Join(dir, p)); err != nil {
				return false // a parent is a file
			}
			copyUp(d, p)
			d.Replaced = append(d.Replaced, "/"+p)
			return true
		},
		func(t testing.TB, dir string, d *Delta) bool { // an opaque directory
			if !mkParents(t, dir, p) {
				return false
			}
			os.RemoveAll(filepath.Join(dir, p))
			if err := os.MkdirAll(filepath.Join(dir, p), 0o755); err != nil {
				return false
			}
			if err := os.WriteFile(filepath.Join(dir, p, "only"), []byte(content), 0o666); err != nil {
				t.Fatal(err)
			}
			copyUp(d, p)
			d.Replaced = append(d.Replaced, "/"+p)
			return true
		},
		func(t testing.TB, dir string, d *Delta) bool { // a symlink swap
			if !mkParents(t, dir, p) {
				return false
			}
			os.RemoveAll(filepath.Join(dir, p))
			targets := []string{"/etc/passwd", "../usr/bin", "missing", "/srv/a", "sshd_config.d"}
			if err := os.Symlink(targets[r.IntN(len(targets))], filepath.Join(dir, p)); err != nil {
				t.Fatal(err)
			}
			copyUp(d, p)
			d.Replaced = append(d.Replaced, "/"+p)
			return true
		},
	}
}

// opPaths are where the ops land: files and directories controls read, the links they resolve through, and paths
// none reads.
var opPaths = []string{
	"etc/passwd", "etc/shadow", "etc/group", "etc/ssh/sshd_config", "etc/ssh/sshd_config.d/x.conf", "etc/ssh", "etc",
	"usr/bin", "usr/bin/tool", "usr/bin/gcc", "bin", "srv/a", "srv/a/b/c.conf", "srv/new.conf", "etc/localtime",
	"usr/share/zoneinfo/UTC", "tmp", "tmp/x", "etc/hosts", "usr/share/doc/x", "vol/conf", "vol", "opt/app/run",
}

// imageTarget is a target with facts every probe reads.
func imageTarget() report.Target {
	uid := int64(1000)
	return report.Target{Config: &report.ImageConfig{User: "app", Env: []string{"PATH=/usr/bin"}},
		Security: &report.SecurityContext{RunAsUser: &uid}}
}

func copyTree(t testing.TB, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "root")
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	return dst
}

// checkDelta applies ops to a copy of the image and compares a full evaluation of the copy with the image's
// evaluation plus the delta, control by control.
func checkDelta(t testing.TB, e *Engine, image *fixture, ie *ImageEval, seed uint64, nOps int, target report.Target, vols []Volume) DeltaStats {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 17))
	dir := copyTree(t, image.dir)
	d := Delta{Changed: []string{"/"}}
	var did []string
	for range nOps {
		p := opPaths[r.IntN(len(opPaths))]
		ops := deltaOps(p, r)
		k := r.IntN(len(ops))
		if !ops[k](t, dir, &d) {
			continue
		}
		did = append(did, fmt.Sprintf("op%d(%s)", k, p))
	}
	merged, err := fsaccess.OpenDir(dir, fsaccess.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer merged.Close()
	compareTrees(t, image.root, merged, d, fmt.Sprintf("seed %d %v", seed, did))
	res := &report.Result{Packages: []report.Package{{Name: "gcc-12"}}}
	want := e.Evaluate(context.Background(), merged, target, vols, res)
	// The fingerprint stands for the upper dir's contents: the same seed makes the same changes.
	d.Fingerprint = fmt.Sprintf("seed %d ops %d", seed, nOps)
	ie.mu.Lock()
	full := len(ie.shared) >= maxShared || len(ie.sharedRuns) >= maxShared // an image remembers a bounded number of layers
	ie.mu.Unlock()
	var st DeltaStats
	for pass := range 2 {
		got, pst, err := ie.Evaluate(context.Background(), nil, rootOf(merged), target, vols, res, d)
		if err != nil {
			t.Fatal(err)
		}
		compareResults(t, fmt.Sprintf("pass %d, seed %d %v", pass, seed, did), want, got)
		// The second container with this layer evaluates nothing: it keeps what the first kept and shares what the
		// first evaluated or shared (the first may have shared already: the fuzzer can repeat a seed's changes). A
		// control that read a volume is evaluated again by design (volumes differ between pods), so with volumes
		// only the results are compared.
		if pass == 1 && !full && len(vols) == 0 && (pst.Kept != st.Kept || pst.Evaluated != 0 || pst.Shared != st.Shared+st.Evaluated) {
			t.Errorf("second container with the same layer: %+v after %+v, want the first's evaluations shared", pst, st)
		}
		if pass == 0 {
			st = pst
		}
	}
	return st // the first container's
}

func rootOf(fsys scan.FS) func() (scan.FS, error) {
	return func() (scan.FS, error) { return fsys, nil }
}

func compareResults(t testing.TB, what string, want, got []report.ControlResult) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("%s: %d results, want %d", what, len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if w.ID != g.ID || w.Status != g.Status || w.Message != g.Message || len(w.Checks) != len(g.Checks) {
			t.Fatalf("%s: control %s: got %s %q, want %s %s %q", what, w.ID, g.Status, g.Message, w.Status, g.ID, w.Message)
		}
		for j := range w.Checks {
			if w.Checks[j].Status != g.Checks[j].Status || w.Checks[j].Message != g.Checks[j].Message {
				t.Fatalf("%s: control %s check %d: got %s %q, want %s %q", what, w.ID, j, g.Checks[j].Status, g.Checks[j].Message, w.Checks[j].Status, w.Checks[j].Message)
			}
		}
	}
}

func deltaImage(t testing.TB) (*Engine, *fixture, *ImageEval) {
	f := deltaFixture(t)
	e := probeEngine(t)
	ie := e.EvaluateImage(context.Background(), f.root, imageTarget(), &report.Result{Packages: []report.Package{{Name: "gcc-12"}}})
	return e, f, ie
}

// deltaFixture is the image the differential tests change.
func deltaFixture(t testing.TB) *fixture {
	files := map[string]string{}
	for k, v := range testFiles {
		files[k] = v
	}
	files["etc/ssh/sshd_config"] = "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin no\n"
	files["etc/ssh/sshd_config.d/a.conf"] = "PasswordAuthentication no\n"
	files["usr/share/doc/readme"] = "r"
	return newFixture(t, files)
}

// TestImageDeltaSameAsFull is the differential test: the image's evaluation plus a container's changes gives, control
// by control, what evaluating the container's root does, for every kind of change at every probed path, and for
// containers whose facts differ from the image's.
func TestImageDeltaSameAsFull(t *testing.T) {
	e, f, ie := deltaImage(t)
	var kept, evaluated int
	for i, p := range opPaths {
		for k := range deltaOps(p, rand.New(rand.NewPCG(0, 0))) {
			t.Run(fmt.Sprintf("%s/op%d", p, k), func(t *testing.T) {
				seed := uint64(i*10 + k)
				r := rand.New(rand.NewPCG(seed, 17))
				dir := copyTree(t, f.dir)
				d := Delta{Changed: []string{"/"}}
				if !deltaOps(p, r)[k](t, dir, &d) {
					t.Logf("op%d does not apply at %s", k, p)
					return
				}
				merged, err := fsaccess.OpenDir(dir, fsaccess.Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer merged.Close()
				compareTrees(t, f.root, merged, d, fmt.Sprintf("op%d(%s)", k, p))
				res := &report.Result{Packages: []report.Package{{Name: "gcc-12"}}}
				want := e.Evaluate(context.Background(), merged, imageTarget(), nil, res)
				got, st, err := ie.Evaluate(context.Background(), nil, rootOf(merged), imageTarget(), nil, res, d)
				if err != nil {
					t.Fatal(err)
				}
				compareResults(t, fmt.Sprintf("op%d(%s)", k, p), want, got)
				kept += st.Kept
				if st.Listed != 1 {
					t.Errorf("op%d(%s): the files() listing was walked, not made from the image's", k, p)
				}
				evaluated += st.Evaluated
			})
		}
	}
	if kept == 0 {
		t.Error("no control kept the image's result: the delta touches everything")
	}
	t.Logf("kept %d, evaluated %d", kept, evaluated)

	t.Run("facts", func(t *testing.T) {
		uid := int64(0)
		other := imageTarget()
		other.Security = &report.SecurityContext{RunAsUser: &uid, Privileged: true}
		other.Config = &report.ImageConfig{User: "root"}
		other.Mounts = []report.Mount{{ContainerPath: "/data"}}
		st := checkDelta(t, e, f, ie, 1, 0, other, nil)
		if st.Evaluated == 0 {
			t.Error("facts changed, nothing evaluated again")
		}
	})
	t.Run("volume", func(t *testing.T) {
		vfs := volumeFS(t)
		for _, at := range []string{"/vol", "/etc/ssh", "/srv/a/b"} {
			checkDelta(t, e, f, ie, 2, 1, imageTarget(), []Volume{{ContainerPath: at, FS: vfs}})
		}
	})
	t.Run("inventory", func(t *testing.T) {
		dir := copyTree(t, f.dir)
		merged, err := fsaccess.OpenDir(dir, fsaccess.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer merged.Close()
		res := &report.Result{Packages: []report.Package{{Name: "clang"}}}
		want := e.Evaluate(context.Background(), merged, imageTarget(), nil, res)
		got, _, err := ie.Evaluate(context.Background(), nil, rootOf(merged), imageTarget(), nil, res, Delta{Changed: []string{"/"}, InventoryChanged: true})
		if err != nil {
			t.Fatal(err)
		}
		compareResults(t, "inventory", want, got)
	})
}

// FuzzImageDelta applies random sequences of container changes and compares again.
func FuzzImageDelta(f *testing.F) {
	for s := range uint64(8) {
		f.Add(s, uint8(s%5+1))
	}
	e, img, ie := deltaImage(f)
	f.Fuzz(func(t *testing.T, seed uint64, n uint8) {
		checkDelta(t, e, img, ie, seed, int(n%8)+1, imageTarget(), nil)
	})
}

// An image evaluation made empty is filled as containers need it: the first container of an upper dir is evaluated
// on its own root, the next with that upper dir shares it, and one with another upper dir has the image evaluated.
func TestImageEvalLazy(t *testing.T) {
	e, f, _ := deltaImage(t)
	ie := e.NewImageEval()
	res := &report.Result{Packages: []report.Package{{Name: "gcc-12"}}}
	images := 0
	image := func() (scan.FS, error) { images++; return f.root, nil }
	root := int64(0)
	privileged := imageTarget()
	privileged.Security = &report.SecurityContext{RunAsUser: &root, Privileged: true}
	privileged.Mounts = []report.Mount{{ContainerPath: "/data", HostPath: "/x"}}
	containers := []struct {
		fingerprint string
		change      func(dir string)
		want        func(st DeltaStats) bool
		target      report.Target
	}{
		{"a", func(dir string) { os.WriteFile(filepath.Join(dir, "etc/hosts"), nil, 0o644) }, func(st DeltaStats) bool { return st.Kept == 0 && st.Shared == 0 }, report.Target{}},
		{"a", func(dir string) { os.WriteFile(filepath.Join(dir, "etc/hosts"), nil, 0o644) }, func(st DeltaStats) bool { return st.Evaluated == 0 && st.Kept == 0 }, report.Target{}},
		{"b", func(dir string) { os.WriteFile(filepath.Join(dir, "etc/shadow"), nil, 0o644) }, func(st DeltaStats) bool { return st.Kept > 0 && st.Evaluated > 0 }, report.Target{}},
		// The same layer as the first, other facts: the controls that read them are evaluated again.
		{"a", func(dir string) { os.WriteFile(filepath.Join(dir, "etc/hosts"), nil, 0o644) }, func(st DeltaStats) bool { return st.Evaluated > 0 && st.Shared > 0 }, privileged},
		// A layer with the image's inventory after the image was evaluated with a container's own (the "b" layer's,
		// below): packages() controls are evaluated again.
		{"c", func(dir string) { os.WriteFile(filepath.Join(dir, "etc/group"), nil, 0o644) }, func(st DeltaStats) bool { return st.Kept > 0 && st.Evaluated > 0 }, report.Target{}},
	}
	for i, c := range containers {
		dir := copyTree(t, f.dir)
		c.change(dir)
		merged, err := fsaccess.OpenDir(dir, fsaccess.Options{})
		if err != nil {
			t.Fatal(err)
		}
		p := map[string]string{"a": "/etc/hosts", "b": "/etc/shadow", "c": "/etc/group"}[c.fingerprint]
		d := Delta{Changed: []string{"/", "/etc"}, Replaced: []string{p}, Fingerprint: c.fingerprint}
		res := res
		if c.fingerprint == "b" {
			// A container whose layer changed its inventory has the image evaluated with it.
			res = &report.Result{Packages: []report.Package{{Name: "clang"}}}
			d.InventoryChanged = true
		}
		target := c.target
		if target.Security == nil {
			target = imageTarget()
		}
		want := e.Evaluate(context.Background(), merged, target, nil, res)
		got, st, err := ie.Evaluate(context.Background(), image, rootOf(merged), target, nil, res, d)
		if err != nil {
			t.Fatal(err)
		}
		compareResults(t, fmt.Sprintf("container %d", i), want, got)
		if !c.want(st) {
			t.Errorf("container %d: %+v", i, st)
		}
		merged.Close()
	}
	if images != 1 {
		t.Errorf("image opened %d times, want once (for the third container)", images)
	}
}

// volumeFS is a volume holding one file, conf, closed when the test ends.
func volumeFS(t testing.TB) *fsaccess.Root {
	t.Helper()
	vdir := t.TempDir()
	if err := os.WriteFile(filepath.Join(vdir, "conf"), []byte("from the volume"), 0o644); err != nil {
		t.Fatal(err)
	}
	vfs, err := fsaccess.OpenDir(vdir, fsaccess.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vfs.Close() })
	return vfs
}

// Containers of one layer checked at once: each adds what it evaluated (here the controls that read its own volume)
// to the layer's shared evaluations while the others read them, and each still gets its full evaluation's results.
// Run with -race to see the sharing is safe.
func TestImageEvalSharedConcurrently(t *testing.T) {
	e, f, ie := deltaImage(t)
	vfs := volumeFS(t)
	res := &report.Result{Packages: []report.Package{{Name: "gcc-12"}}}
	at := []string{"/vol", "/etc/ssh", "/srv/a/b", "/opt"}
	var wg sync.WaitGroup
	for i := range 16 {
		vols := []Volume{{ContainerPath: at[i%len(at)], FS: vfs}}
		want := e.Evaluate(context.Background(), f.root, imageTarget(), vols, res)
		wg.Go(func() {
			got, _, err := ie.Evaluate(context.Background(), nil, rootOf(f.root), imageTarget(), vols, res, Delta{Changed: []string{"/"}, Fingerprint: "one layer"})
			if err != nil {
				t.Error(err)
				return
			}
			compareResults(t, fmt.Sprintf("container %d, volume at %s", i, vols[0].ContainerPath), want, got)
		})
	}
	wg.Wait()
}
