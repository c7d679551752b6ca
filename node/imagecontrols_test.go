package node

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rootscan/rootscan/compliance"
	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// overlayProbes are controls over every kind of read, each failing with what it observed, so that comparing messages
// compares what the controls saw.
var overlayProbes = []string{
	`file("/etc/passwd").mode_octal + file("/etc/passwd").owner`,
	`[file("/etc/shadow").exists, file("/etc/shadow").content]`,
	`[file("/etc/localtime").link_target, file("/etc/localtime").content]`,
	`directory("/etc").entries`,
	`glob("/etc/ssh/**")`,
	`glob("/srv/*/*.conf")`,
	`glob("/etc/ssh/sshd_config.d/*")`,
	`glob("/usr/*/t*")`,
	`glob("/*")`,
	`which("tool")`,
	`parse_config("/etc/ssh/sshd_config", "sshd")`,
	`users().map(u, u.name + ":" + string(u.uid))`,
	`files("/srv").map(f, f.path + " " + f.type + " " + f.mode_octal)`,
	`[file("/bin/tool").exists, file("/bin").is_symlink]`,
	`[file("/missing").exists, file("/etc/hosts").exists]`,
	`file("/").mode_octal`,
	`file("/srv/a/b/c.conf").content`,
	`file("/usr/bin/tool").sha256`,
	// The whole listing, made from the image's and the upper dir (not walked) when the image's is at hand.
	`files("/").map(f, f.path + " " + f.type + " " + f.mode_octal + " " + f.owner + " " + string(f.size))`,
}

// probesYAML is a profile with one control per probe.
func probesYAML() []byte {
	var b strings.Builder
	b.WriteString("name: probes\ncontrols:\n")
	for i, v := range overlayProbes {
		fmt.Fprintf(&b, "  - id: p%02d\n    impact: 0.5\n    checks:\n      - expr: %q\n        observed: %q\n", i, "["+v+"] == []", v)
	}
	return []byte(b.String())
}

func overlayEngine(t testing.TB) *compliance.Engine {
	t.Helper()
	l, err := compliance.NewLoader(compliance.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.Parse("probes.yaml", probesYAML())
	if err != nil {
		t.Fatal(err)
	}
	base, err := l.Load(compliance.Baseline)
	if err != nil {
		t.Fatal(err)
	}
	return compliance.NewEngine(l, append([]*compliance.Profile{p}, base...))
}

// overlayImage is the lower layer of the overlay tests.
var overlayImage = map[string]string{
	"etc/passwd":              "root:x:0:0:root:/root:/sbin/nologin\napp:x:1000:1000::/home/app:/sbin/nologin\n",
	"etc/shadow":              "root:!:19000::::::\n",
	"etc/group":               "root:x:0:\n",
	"etc/localtime":           "->/usr/share/zoneinfo/UTC",
	"usr/share/zoneinfo/UTC":  "TZif",
	"etc/ssh/sshd_config":     "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin no\n",
	"etc/ssh/sshd_config.d/a": "x",
	"bin":                     "->usr/bin",
	"usr/bin/tool":            "tool",
	"srv/a/b/c.conf":          "c",
	"srv/a/d.conf":            "d",
	"var/lib/x":               "x",
}

func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		mode := os.FileMode(0o644)
		if strings.Contains(name, "bin/") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
}

// overlayPaths are where the random changes land.
var overlayPaths = []string{
	"etc/passwd", "etc/shadow", "etc/ssh", "etc/ssh/sshd_config", "etc/ssh/sshd_config.d/b", "etc", "etc/hosts",
	"bin", "usr/bin", "usr/bin/tool", "srv/a", "srv/a/b", "srv/a/b/c.conf", "srv/new.conf", "etc/localtime",
	"usr/share/zoneinfo", "var/lib", "var/lib/x", "opt/new/dir", "srv/a/e.conf", "srv/b/x.conf", "usr/bin/tail",
	"etc/ssh/sshd_config.d/a",
}

// overlayChange makes one change through the merged mount, as a container's process would: the kernel writes the
// upper dir (copy-ups, whiteouts, opaque directories).
func overlayChange(merged string, r *rand.Rand) string {
	p := overlayPaths[r.IntN(len(overlayPaths))]
	full := filepath.Join(merged, p)
	switch k := r.IntN(6); k {
	case 0: // add or modify
		os.MkdirAll(filepath.Dir(full), 0o755)
		os.WriteFile(full, []byte(fmt.Sprintf("changed %d\nroot:x:0:0::/:/bin/sh\n", r.IntN(3))), 0o644)
	case 1: // chmod
		os.Chmod(full, os.FileMode(0o600+r.IntN(2)*0o177))
	case 2: // delete: a whiteout
		os.RemoveAll(full)
	case 3: // an opaque directory: removed and made again
		os.RemoveAll(full)
		os.MkdirAll(full, 0o755)
		os.WriteFile(filepath.Join(full, "only"), []byte("o"), 0o666)
	case 4: // a symlink swap
		os.RemoveAll(full)
		targets := []string{"/etc/passwd", "../usr/bin", "missing", "/srv/a"}
		os.MkdirAll(filepath.Dir(full), 0o755)
		os.Symlink(targets[r.IntN(len(targets))], full)
	case 5: // a directory's attributes only
		os.Chmod(filepath.Dir(full), 0o700)
	}
	return p
}

// TestImageChecksOverOverlay is the differential test on a real overlay: random container changes are made through
// an overlay mount, the delta is read from its upper dir as the daemon reads it, and the image's evaluation plus the
// delta must give what evaluating the merged mount gives, control by control.
func TestImageChecksOverOverlay(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount an overlay")
	}
	e := overlayEngine(t)
	base := t.TempDir()
	lower := filepath.Join(base, "lower")
	writeTree(t, lower, overlayImage)
	image, err := fsaccess.OpenDir(lower, fsaccess.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer image.Close()
	uid := int64(1000)
	target := report.Target{Config: &report.ImageConfig{User: "app"}, Security: &report.SecurityContext{RunAsUser: &uid}}
	res := &report.Result{}
	ie := e.EvaluateImage(context.Background(), image, target, res)
	kept, evaluated, listed := 0, 0, 0
	for seed := range uint64(150) {
		r := rand.New(rand.NewPCG(seed, 17))
		dir := filepath.Join(base, fmt.Sprint(seed))
		upper, work, merged := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "merged")
		for _, d := range []string{upper, work, merged} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
		if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
			t.Skipf("mount overlay: %v", err)
		}
		var did []string
		for range 1 + r.IntN(5) {
			did = append(did, overlayChange(merged, r))
		}
		ks, ev, ls := compareOverlay(t, e, ie, upper, merged, target, res, fmt.Sprintf("seed %d %v", seed, did))
		kept, evaluated, listed = kept+ks, evaluated+ev, listed+ls
		if err := unix.Unmount(merged, 0); err != nil {
			t.Fatalf("unmount %s: %v", merged, err)
		}
	}
	if kept == 0 || evaluated == 0 {
		t.Errorf("kept %d, evaluated %d: the delta decides nothing", kept, evaluated)
	}
	if listed == 0 {
		t.Error("no files() listing was made from the image's and the upper dir")
	}
	t.Logf("kept %d, evaluated %d, listings from the delta %d of 150", kept, evaluated, listed)
}

func compareOverlay(t *testing.T, e *compliance.Engine, ie *compliance.ImageEval, upper, merged string, target report.Target, res *report.Result, what string) (kept, evaluated, listed int) {
	t.Helper()
	ufs, err := fsaccess.OpenDir(upper, fsaccess.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ufs.Close()
	st, err := readUpper(context.Background(), ufs)
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := fsaccess.OpenDir(merged, fsaccess.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer mfs.Close()
	want := e.Evaluate(context.Background(), mfs, target, nil, res)
	d := upperDelta(ufs, st)
	d.Fingerprint = upperFingerprint(ufs, st)
	got, ds, err := ie.Evaluate(context.Background(), nil, func() (scan.FS, error) { return mfs, nil }, target, nil, res, d)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d results, want %d", what, len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID || got[i].Status != want[i].Status || got[i].Message != want[i].Message {
			t.Errorf("%s: control %s: got %s %q, want %s %q", what, want[i].ID, got[i].Status, got[i].Message, want[i].Status, want[i].Message)
		}
	}
	return ds.Kept, ds.Evaluated + ds.Shared, ds.Listed
}

// upperFingerprint is equal for upper dirs with the same contents whatever their times, and differs for any change
// a control can see: content of the same size, a mode, the root directory's mode, a link target, a new entry.
func TestUpperFingerprint(t *testing.T) {
	files := map[string]string{"etc/hosts": "", "etc/shadow": "aaaa", "etc/l": "->/x", "etc/ssh/c": "c"}
	fingerprint := func(change func(dir string)) string {
		t.Helper()
		dir := t.TempDir()
		writeTree(t, dir, files)
		if change != nil {
			change(dir)
		}
		ufs, err := fsaccess.OpenDir(dir, fsaccess.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer ufs.Close()
		st, err := readUpper(context.Background(), ufs)
		if err != nil {
			t.Fatal(err)
		}
		return upperFingerprint(ufs, st)
	}
	base := fingerprint(nil)
	if base == "" {
		t.Fatal("no fingerprint")
	}
	if again := fingerprint(func(dir string) { os.Chtimes(filepath.Join(dir, "etc/shadow"), time.Unix(1, 0), time.Unix(1, 0)) }); again != base {
		t.Error("same contents at other times: fingerprints differ")
	}
	for name, change := range map[string]func(dir string){
		"content":   func(dir string) { os.WriteFile(filepath.Join(dir, "etc/shadow"), []byte("bbbb"), 0o644) },
		"mode":      func(dir string) { os.Chmod(filepath.Join(dir, "etc/shadow"), 0o600) },
		"root mode": func(dir string) { os.Chmod(dir, 0o700) },
		"dir mode":  func(dir string) { os.Chmod(filepath.Join(dir, "etc/ssh"), 0o700) },
		"link": func(dir string) {
			os.Remove(filepath.Join(dir, "etc/l"))
			os.Symlink("/y", filepath.Join(dir, "etc/l"))
		},
		"new entry": func(dir string) { os.WriteFile(filepath.Join(dir, "etc/new"), nil, 0o644) },
		"owner":     func(dir string) { os.Lchown(filepath.Join(dir, "etc/hosts"), 1, 1) },
	} {
		if got := fingerprint(change); got == base || got == "" {
			t.Errorf("%s changed: fingerprint %q, want a new one", name, got)
		}
	}
}

// The daemon's compliance results, from the image's evaluation plus each container's delta, are control by control
// those of a full evaluation of the container's merged root, for a running container (the runtime's files in its
// upper dir) and a created one whose upper dir changed etc/passwd, added a file and deleted one; a second check of a
// container of the same image with the same layer shares the first's evaluations.
func TestDaemonImageChecksSameAsFull(t *testing.T) {
	r := startMountRig(t)
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "probes.yaml"), probesYAML(), 0o644); err != nil {
		t.Fatal(err)
	}
	live, err := compliance.NewLive(compliance.Sources{Profiles: []string{compliance.Baseline, filepath.Join(dir, "probes.yaml")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	checker := &compliance.Checker{Profiles: live}
	d := r.daemon(t, checker)
	var mergedOpens []int
	for _, c := range []cri.Container{r.running, r.created, r.running} {
		d.gen.Add(1)
		r.count.reset()
		outcome, rep := d.checkContainer(ctx, c)
		opens, _ := r.count.counts()
		mergedOpens = append(mergedOpens, opens[fsaccess.ViewContainer])
		if outcome != "analyzed" || rep.Error != "" || rep.Result.Errors != nil {
			t.Fatalf("%s: outcome %q, error %q, %v", c.Name, outcome, rep.Error, rep.Result.Errors)
		}
		root, _, err := r.roots.OpenContainer(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		full := rep
		res := *rep.Result
		full.Result = &res
		if err := checker.Check(ctx, root, &full); err != nil {
			t.Fatal(err)
		}
		root.Close()
		if len(full.Result.Compliance) != len(rep.Result.Compliance) || len(full.Result.Compliance) == 0 {
			t.Fatalf("%s: %d results, full evaluation %d", c.Name, len(rep.Result.Compliance), len(full.Result.Compliance))
		}
		for i, w := range full.Result.Compliance {
			g := rep.Result.Compliance[i]
			if g.ID != w.ID || g.Status != w.Status || g.Message != w.Message {
				t.Errorf("%s: control %s: %s %q, full evaluation %s %q", c.Name, w.ID, g.Status, g.Message, w.Status, w.Message)
			}
		}
		r.noLeftovers(t)
	}
	// The second look at the running container finds every control kept or shared: no merged root is mounted.
	if !slices.Equal(mergedOpens, []int{1, 1, 0}) {
		t.Errorf("merged roots opened per check: %v, want [1 1 0]", mergedOpens)
	}
	if ie := d.imageEvals.m; len(ie) != 1 {
		t.Errorf("%d image evaluations, want 1", len(ie))
	}
	for _, e := range d.imageEvals.m {
		t.Logf("image evaluation: %d reads, %d bytes as JSON, files() listing %d bytes", e.ie.Reads(), e.ie.EncodedSize(), e.ie.TreeBytes())
		// The created container (the image's second layer) had the image evaluated: its listing, kept, made the
		// container's, which the probes' files("/") compare with a full evaluation's walk above.
		if e.ie.TreeBytes() == 0 {
			t.Error("the image evaluation kept no files() listing")
		}
	}
}

// The one-shot scan with an ImageCheck (each image evaluated once per scan) finds, control by control, what the scan
// with the compliance analyzer in every container's walk finds.
func TestScanByImageSameAsPerTarget(t *testing.T) {
	r := startMountRig(t)
	ctx := context.Background()
	live, err := compliance.NewLive(compliance.Sources{Profiles: []string{compliance.Baseline}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	checker := &compliance.Checker{Profiles: live}
	cs := []cri.Container{r.running, r.created, r.running, r.created}
	perTarget := &Scanner{Roots: r.roots, Analyzers: scan.DefaultAnalyzers(), PerTarget: checker.Analyzers}
	byImage := &Scanner{Roots: r.roots, Views: r.roots, Analyzers: scan.DefaultAnalyzers(), PerTarget: checker.Analyzers, ImageCheck: checker}
	want, got := perTarget.ScanContainers(ctx, cs), byImage.ScanContainers(ctx, cs)
	for i := range cs {
		w, g := want[i].Result.Compliance, got[i].Result.Compliance
		if len(w) == 0 || len(w) != len(g) {
			t.Fatalf("%s: %d results, want %d", cs[i].Name, len(g), len(w))
		}
		for j := range w {
			if g[j].ID != w[j].ID || g[j].Status != w[j].Status || g[j].Message != w[j].Message {
				t.Errorf("%s: control %s: %s %q, want %s %q", cs[i].Name, w[j].ID, g[j].Status, g[j].Message, w[j].Status, w[j].Message)
			}
		}
		if got[i].Error != "" || got[i].Result.Errors != nil {
			t.Errorf("%s: %s %v", cs[i].Name, got[i].Error, got[i].Result.Errors)
		}
	}
	if n := len(byImage.imageEvals.m); n != 1 {
		t.Errorf("%d image evaluations, want 1", n)
	}
	for _, e := range byImage.imageEvals.m {
		t.Logf("baseline image evaluation: %d reads, %d bytes as JSON, files() listing %d bytes", e.ie.Reads(), e.ie.EncodedSize(), e.ie.TreeBytes())
	}
	r.noLeftovers(t)
}
