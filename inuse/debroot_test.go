package inuse

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// rootDebs are the real Debian 12 packages of the test root: sleep (coreutils) maps libc6's libc.so.6 and
// ld-linux; libssl3 and dash are installed and not used by it.
var rootDebs = []string{"base-files", "libc6", "coreutils", "dash", "libssl3"}

// debianRoot installs rootDebs into a merged-/usr root (bin, sbin, lib and lib64 are links into usr, as on Debian 12
// hosts and images), the way dpkg does: each package's files unpacked through the links, its info/<pkg>.list (every
// path of its data, "/." first, as the package names them: /lib/x86_64-linux-gnu/libc.so.6 while the file is
// usr/lib/x86_64-linux-gnu/libc.so.6) and a status stanza. The .debs come from the test bed's cache (the
// ociimage builders fetch them with apt-get when missing).
func debianRoot(t testing.TB, ctx context.Context) string {
	return debianRootWith(t, ctx, rootDebs, "base")
}

// debianRootWith installs pkgs, which the named distroless flavours and DebianShell hold, into a merged-/usr root.
func debianRootWith(t testing.TB, ctx context.Context, pkgs []string, flavours ...string) string {
	t.Helper()
	for _, tool := range []string{"dpkg-deb", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
	// The image builders fetch what the root needs into the shared cache.
	if _, err := ociimage.DebianShell(ctx, ""); err != nil {
		t.Fatalf("fetch Debian packages: %v", err)
	}
	for _, f := range flavours {
		if _, err := ociimage.Flavour(ctx, "", f); err != nil {
			t.Fatalf("fetch Debian packages: %v", err)
		}
	}
	root := t.TempDir()
	for _, d := range []string{"usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "var/lib/dpkg/info"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []string{"bin", "sbin", "lib", "lib64"} {
		if err := os.Symlink("usr/"+l, filepath.Join(root, l)); err != nil {
			t.Fatal(err)
		}
	}
	var status bytes.Buffer
	for _, pkg := range pkgs {
		deb := cachedDeb(t, pkg)
		installDeb(t, ctx, root, pkg, deb)
		ctrl, err := exec.CommandContext(ctx, "dpkg-deb", "-f", deb).Output()
		if err != nil {
			t.Fatalf("dpkg-deb -f %s: %v", deb, err)
		}
		for _, line := range strings.SplitAfter(strings.TrimRight(string(ctrl), "\n")+"\n", "\n") {
			status.WriteString(line)
			if strings.HasPrefix(line, "Package:") {
				status.WriteString("Status: install ok installed\n")
			}
		}
		status.WriteByte('\n')
	}
	if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), status.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func cachedDeb(t testing.TB, name string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(ociimage.DefaultCacheDir(), "debs", name+"_*.deb"))
	if len(m) == 0 {
		t.Fatalf("no cached .deb of %s", name)
	}
	slices.Sort(m)
	return m[len(m)-1]
}

// installDeb unpacks deb into root through its directory links (tar --keep-directory-symlink, as dpkg keeps them) and
// writes the package's info/<pkg>.list.
func installDeb(t testing.TB, ctx context.Context, root, pkg, deb string) {
	t.Helper()
	data, err := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", deb).Output()
	if err != nil {
		t.Fatalf("dpkg-deb --fsys-tarfile %s: %v", deb, err)
	}
	x := exec.CommandContext(ctx, "tar", "-x", "--keep-directory-symlink", "-C", root)
	x.Stdin = bytes.NewReader(data)
	if out, err := x.CombinedOutput(); err != nil {
		t.Fatalf("unpack %s: %v\n%s", deb, err, out)
	}
	list := "/.\n"
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read %s: %v", deb, err)
		}
		if name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/"); name != "" {
			list += "/" + name + "\n"
		}
	}
	if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/info", pkg+".list"), []byte(list), 0o644); err != nil {
		t.Fatal(err)
	}
}

// scanRoot runs the package analyzers over root through a confined Root, as a scan does, and builds its Index.
func scanRoot(t testing.TB, ctx context.Context, root string) (*report.Result, *Index) {
	t.Helper()
	r, err := fsaccess.OpenDir(root, fsaccess.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res := scan.Run(ctx, r, scan.DefaultAnalyzers())
	x, errs := Build(ctx, r, res, Options{})
	if len(errs) > 0 {
		t.Fatalf("build: %v", errs)
	}
	return res, x
}

// pkgNames are the names of pkgs, sorted.
func pkgNames(pkgs []report.Package) []string {
	var n []string
	for _, p := range pkgs {
		n = append(n, p.Name)
	}
	slices.Sort(n)
	return n
}
