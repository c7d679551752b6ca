package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rootscan/rootscan/internal/testbed"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
	"github.com/rootscan/rootscan/report"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// driftLibs are the libraries DebianShell leaves out that its coreutils and bash need to run (DebianShell is built
// to be scanned; the drift test must run a shell and coreutils in it).
var driftLibs = []string{"libacl1", "libattr1", "libgmp10", "libselinux1", "libpcre2-8-0", "libtinfo6"}

// driftImage is DebianShell plus one layer per library coreutils and bash need, so that it runs.
func driftImage(t *testing.T, ctx context.Context) *ociimage.Image {
	t.Helper()
	img, err := ociimage.DebianShell(ctx, ociimage.DefaultCacheDir())
	if err != nil {
		t.Fatalf("build debian shell image: %v", err)
	}
	img.Name = "rootscan.test/debian-shell-runnable:1"
	img.Config.Entrypoint = nil
	debs := langFetchDebs(t, ctx, driftLibs)
	for _, name := range driftLibs {
		deb := debs[name]
		dir := t.TempDir()
		if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", deb, dir).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb -x %s: %v\n%s", deb, err, out)
		}
		img.Layers = append(img.Layers, dirLayer(t, dir))
	}
	return img
}

// dirLayer turns an unpacked directory into a layer (directories, regular files, symlinks), sorted for a stable
// digest.
func dirLayer(t *testing.T, dir string) ociimage.Layer {
	t.Helper()
	var l ociimage.Layer
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		f := ociimage.File{Path: filepath.ToSlash(rel), Mode: fi.Mode()}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			if f.Linkname, err = os.Readlink(p); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			if f.Data, err = os.ReadFile(p); err != nil {
				return err
			}
		}
		l.Files = append(l.Files, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(l.Files, func(a, b ociimage.File) int { return strings.Compare(a.Path, b.Path) })
	return l
}

// imageFile returns the content of the topmost regular file at p in img.
func imageFile(t *testing.T, img *ociimage.Image, p string) []byte {
	t.Helper()
	for i := len(img.Layers) - 1; i >= 0; i-- {
		for _, f := range img.Layers[i].Files {
			if f.Path == p && f.Mode.IsRegular() {
				return f.Data
			}
		}
	}
	t.Fatalf("image has no file %s", p)
	return nil
}

// imageDirEntries lists the names the image holds directly in dir (across its layers), with their drift type.
func imageDirEntries(img *ociimage.Image, dir string) map[string]string {
	out := map[string]string{}
	for _, l := range img.Layers {
		for _, f := range l.Files {
			rest, ok := strings.CutPrefix(f.Path, dir+"/")
			if !ok || rest == "" {
				continue
			}
			name, _, nested := strings.Cut(rest, "/")
			switch {
			case nested:
				out[name] = "dir"
			case f.Mode.IsDir():
				out[name] = "dir"
			case f.Mode&fs.ModeSymlink != 0:
				out[name] = "symlink"
			default:
				out[name] = "file"
			}
		}
	}
	return out
}

func driftLine(e report.DriftEntry) string {
	return fmt.Sprintf("%s %s %s %o size=%d exec=%v sha=%s", e.Change, e.Path, e.Type, e.Mode, e.Size, e.Executable, e.SHA256)
}

// A running container adds a file, copies an executable into /usr/local/bin, modifies /etc/issue, deletes a file and
// replaces a directory; `rootscan scan --drift` lists exactly that (not its volumes' mount points), leaves no mount behind, and the container can
// still copy files up afterwards (the live overlay was not mounted a second time). The same drift is found once the
// container has exited.
func TestDriftContainer(t *testing.T) {
	bed := testbed.StartT(t, testbed.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	img := driftImage(t, ctx)
	ref, err := bed.Import(ctx, img)
	if err != nil {
		t.Fatalf("import image: %v", err)
	}
	pod, err := bed.RunPod(ctx, testbed.PodSpec{Name: "drift", Namespace: "drift"})
	if err != nil {
		t.Fatal(err)
	}
	// Volumes as kubelet passes them: runc creates each mount point, and the parents the image lacks, in the upper
	// dir. They are the runtime's, not drift, and the exact list below fails on any of them.
	vol := func() string {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, "f"), []byte("v"), 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	mounts := []*runtimeapi.Mount{
		{ContainerPath: "/etc/appcfg", HostPath: vol(), Readonly: true},
		{ContainerPath: "/data/app/state", HostPath: vol()},
		{ContainerPath: "/var/run/secrets/kubernetes.io/serviceaccount", HostPath: vol(), Readonly: true},
	}
	id, err := bed.RunContainer(ctx, pod, testbed.ContainerSpec{Name: "shell", Image: ref.Name, Command: []string{"/bin/sleep", "infinity"}, Mounts: mounts})
	if err != nil {
		t.Fatal(err)
	}
	exec := func(script string) string {
		t.Helper()
		stdout, stderr, code, err := bed.ExecSync(ctx, id, []string{"/bin/sh", "-c", script})
		if err != nil || code != 0 {
			t.Fatalf("exec %q: exit %d, %v\nstdout: %s\nstderr: %s", script, code, err, stdout, stderr)
		}
		return string(stdout)
	}
	exec(`set -e
echo hello > /root/notes.txt
mkdir -p /usr/local/bin
cp /bin/ls /usr/local/bin/tool
echo modified >> /etc/issue
rm /etc/debian_version
rm -rf /usr/share/common-licenses
mkdir /usr/share/common-licenses
echo mine > /usr/share/common-licenses/MINE
echo written > /data/app/state/out`)

	issue := imageFile(t, img, "etc/issue")
	ls := sha256.Sum256(imageFile(t, img, "bin/ls"))
	want := []string{
		driftLine(report.DriftEntry{Path: "etc/debian_version", Change: report.DriftDeleted, Type: "file"}),
		driftLine(report.DriftEntry{Path: "etc/issue", Change: report.DriftChanged, Type: "file", Mode: 0o644, Size: int64(len(issue) + len("modified\n"))}),
		driftLine(report.DriftEntry{Path: "root/notes.txt", Change: report.DriftAdded, Type: "file", Mode: 0o644, Size: 6}),
		driftLine(report.DriftEntry{Path: "usr/local", Change: report.DriftAdded, Type: "dir", Mode: 0o755}),
		driftLine(report.DriftEntry{Path: "usr/local/bin", Change: report.DriftAdded, Type: "dir", Mode: 0o755}),
		driftLine(report.DriftEntry{Path: "usr/local/bin/tool", Change: report.DriftAdded, Type: "file", Mode: 0o755, Size: int64(len(imageFile(t, img, "bin/ls"))), Executable: true, SHA256: hex.EncodeToString(ls[:])}),
		driftLine(report.DriftEntry{Path: "usr/share/common-licenses", Change: report.DriftChanged, Type: "dir", Mode: 0o755}),
		driftLine(report.DriftEntry{Path: "usr/share/common-licenses/MINE", Change: report.DriftAdded, Type: "file", Mode: 0o644, Size: 5}),
	}
	licenses := imageDirEntries(img, "usr/share/common-licenses")
	if len(licenses) < 10 {
		t.Fatalf("fixture: usr/share/common-licenses holds only %v", licenses)
	}
	for name, typ := range licenses {
		want = append(want, driftLine(report.DriftEntry{Path: "usr/share/common-licenses/" + name, Change: report.DriftDeleted, Type: typ}))
	}
	slices.Sort(want)

	mountDir := filepath.Join(t.TempDir(), "mounts")
	check := func(state string) {
		t.Helper()
		doc, res := scanJSON(t, bed, mountDir, "--drift", "--container", id)
		if res.code != 0 {
			t.Fatalf("%s: exit %d\nstderr: %s", state, res.code, res.stderr)
		}
		rep := reportFor(t, doc, id)
		if rep.Result == nil {
			t.Fatalf("%s: no result: %s", state, rep.Error)
		}
		var got []string
		for _, e := range rep.Result.Drift {
			got = append(got, driftLine(e))
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s drift:\n%s\nwant:\n%s", state, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		for _, e := range rep.Result.Errors {
			if e.Analyzer == "drift" {
				t.Errorf("%s: drift error %+v", state, e)
			}
		}
		assertNoMountsUnder(t, mountDir)
	}
	check("running")

	// Copy-up still works in the live container: a file of the image, never written before, is appended to.
	if out := exec(`echo more >> /etc/issue.net && echo again >> /etc/host.conf && cat /etc/host.conf`); !strings.HasSuffix(out, "again\n") {
		t.Fatalf("copy-up after the scan: /etc/host.conf reads %q", out)
	}
	want = append(want,
		driftLine(report.DriftEntry{Path: "etc/host.conf", Change: report.DriftChanged, Type: "file", Mode: 0o644, Size: int64(len(imageFile(t, img, "etc/host.conf")) + len("again\n"))}),
		driftLine(report.DriftEntry{Path: "etc/issue.net", Change: report.DriftChanged, Type: "file", Mode: 0o644, Size: int64(len(imageFile(t, img, "etc/issue.net")) + len("more\n"))}),
	)
	slices.Sort(want)

	if err := bed.StopContainer(ctx, id, time.Second); err != nil {
		t.Fatal(err)
	}
	check("exited")
}
