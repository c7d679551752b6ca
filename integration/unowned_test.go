package integration

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rootscan/rootscan/internal/testbed"
)

// unownedDebs are real Debian packages unpacked into the test root, each with the info/<pkg>.list and .md5sums dpkg
// would have written when installing it.
var unownedDebs = []string{"base-files", "libc6", "dash", "bash", "libtinfo6", "coreutils", "libacl1", "libattr1",
	"libgmp10", "libselinux1", "libpcre2-8-0"}

// dpkgInstallRecords writes var/lib/dpkg/info/<pkg>.list (every path of the package's data, "/." first, as dpkg
// writes it) and <pkg>.md5sums (the package's own md5sums control file) for a .deb unpacked into root.
func dpkgInstallRecords(t *testing.T, ctx context.Context, root, pkg, deb string) {
	t.Helper()
	info := filepath.Join(root, "var/lib/dpkg/info")
	if err := os.MkdirAll(info, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", deb)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var list strings.Builder
	list.WriteString("/.\n")
	tr := tar.NewReader(out)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read %s: %v", deb, err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		if name != "" {
			list.WriteString("/" + name + "\n")
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("dpkg-deb --fsys-tarfile %s: %v", deb, err)
	}
	if err := os.WriteFile(filepath.Join(info, pkg+".list"), []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ctrl := t.TempDir()
	if b, err := exec.CommandContext(ctx, "dpkg-deb", "-e", deb, ctrl).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -e %s: %v\n%s", deb, err, b)
	}
	if sums, err := os.ReadFile(filepath.Join(ctrl, "md5sums")); err == nil {
		if err := os.WriteFile(filepath.Join(info, pkg+".md5sums"), sums, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func fileSHA256(t *testing.T, p string) (string, int64) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), int64(len(b))
}

// A root installed from real Debian packages, plus a static Go program and a script dropped into /usr/local/bin and a
// packaged binary copied elsewhere: `rootscan scan --dir` lists exactly those three as files no package owns, with
// their kind, size and hash, and none of the packages' own executables.
func TestUnownedFilesInDebianRoot(t *testing.T) {
	testbed.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root := t.TempDir()
	debs := langUnpackDebs(t, ctx, root, unownedDebs)
	for _, pkg := range unownedDebs {
		dpkgInstallRecords(t, ctx, root, pkg, debs[pkg])
	}
	bin := filepath.Join(root, "usr/local/bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	langBuildGo(t, ctx, filepath.Join(bin, "langtest"))
	if err := os.WriteFile(filepath.Join(bin, "hello.sh"), []byte("#!/bin/sh\necho hello\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "opt/tools"), 0o755); err != nil {
		t.Fatal(err)
	}
	ls, err := os.ReadFile(filepath.Join(root, "bin/ls"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "opt/tools/myls"), ls, 0o755); err != nil {
		t.Fatal(err)
	}
	// A data file with an x bit and a link to a program are not executables of their own.
	if err := os.WriteFile(filepath.Join(bin, "notes"), []byte("not a program"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("langtest", filepath.Join(bin, "link")); err != nil {
		t.Fatal(err)
	}

	var want []string
	for _, f := range []struct{ path, kind string }{{"opt/tools/myls", "elf"}, {"usr/local/bin/hello.sh", "script"}, {"usr/local/bin/langtest", "elf"}} {
		sum, size := fileSHA256(t, filepath.Join(root, f.path))
		want = append(want, fmt.Sprintf("%s %s %d %s", f.path, f.kind, size, sum))
	}
	res := runRootscan(t, 2*time.Minute, "scan", "--dir", root, "-o", "json")
	if res.code != 0 {
		t.Fatalf("exit %d\nstderr: %s", res.code, res.stderr)
	}
	doc := decode(t, res)
	if len(doc.Reports) != 1 || doc.Reports[0].Result == nil {
		t.Fatalf("reports: %+v", doc.Reports)
	}
	r := doc.Reports[0].Result
	var got []string
	for _, f := range r.Files {
		got = append(got, fmt.Sprintf("%s %s %d %s", f.Path, f.Kind, f.Size, f.SHA256))
	}
	if !slices.Equal(got, want) {
		t.Errorf("unowned files:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, e := range r.Errors {
		if e.Analyzer == "unowned-files" {
			t.Errorf("error: %+v", e)
		}
	}
}
