package integration

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rootscan/rootscan/internal/testbed"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
	"github.com/rootscan/rootscan/report"
)

// inUseDebs are the real Debian 12 packages of the in-use image: the container runs coreutils' sleep, which maps
// libc6's libc and loader; apt (with an advisory in the test records) is installed and never runs.
var inUseDebs = []string{"base-files", "libc6", "coreutils", "dash", "apt"}

// mergedUsrImage installs pkgs as dpkg does on a merged-/usr Debian 12 image: bin, sbin, lib and lib64 are links into
// usr and each package's files land behind them, while its info/<pkg>.list and the status database name them as
// the package does (/lib/x86_64-linux-gnu/libc.so.6, /bin/sleep).
func mergedUsrImage(t *testing.T, ctx context.Context, name string, pkgs []string) *ociimage.Image {
	t.Helper()
	debs := langFetchDebs(t, ctx, pkgs)
	img := &ociimage.Image{Name: name}
	var links []ociimage.File
	for _, d := range []string{"bin", "sbin", "lib", "lib64"} {
		links = append(links, ociimage.File{Path: "usr/" + d, Mode: fs.ModeDir | 0o755},
			ociimage.File{Path: d, Mode: fs.ModeSymlink | 0o777, Linkname: "usr/" + d})
	}
	img.Layers = append(img.Layers, ociimage.Layer{Files: links})
	var status bytes.Buffer
	var info []ociimage.File
	for _, pkg := range pkgs {
		dc, err := ociimage.ReadDeb(ctx, debs[pkg])
		if err != nil {
			t.Fatal(err)
		}
		list := "/.\n"
		var files []ociimage.File
		seen := map[string]bool{}
		for _, f := range dc.Files {
			list += "/" + f.Path + "\n"
			top, rest, _ := strings.Cut(f.Path, "/")
			switch top {
			case "bin", "sbin", "lib", "lib64":
				if rest == "" {
					continue // the link stands for the directory
				}
				f.Path = "usr/" + f.Path
			}
			if seen[f.Path] {
				continue // a directory the package has under both spellings (lib/x86_64-linux-gnu, usr/lib/...)
			}
			seen[f.Path] = true
			files = append(files, f)
		}
		img.Layers = append(img.Layers, ociimage.Layer{Files: files})
		info = append(info, ociimage.File{Path: "var/lib/dpkg/info/" + pkg + ".list", Mode: 0o644, Data: []byte(list)})
		for _, line := range strings.SplitAfter(strings.TrimRight(string(dc.Control), "\n")+"\n", "\n") {
			status.WriteString(line)
			if strings.HasPrefix(line, "Package:") {
				status.WriteString("Status: install ok installed\n")
			}
		}
		status.WriteByte('\n')
	}
	info = append(info, ociimage.File{Path: "var/lib/dpkg/status", Mode: 0o644, Data: status.Bytes()})
	img.Layers = append(img.Layers, ociimage.Layer{Files: info})
	return img
}

// A running container whose process maps libc6 and coreutils: `rootscan scan` reads its processes' maps and marks
// the glibc findings in use and apt's not; --in-use-only leaves apt's out; the table shows IN USE; --in-use=false
// leaves every finding unmarked.
func TestInUseRunningContainer(t *testing.T) {
	bed := testbed.StartT(t, testbed.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	img := mergedUsrImage(t, ctx, "rootscan.test/inuse:1", inUseDebs)
	ref, err := bed.Import(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	_, id := runPodWith(t, ctx, bed, testbed.PodSpec{Name: "inuse", Namespace: "inuse"},
		testbed.ContainerSpec{Name: "app", Image: ref.Name, Command: []string{"/usr/bin/sleep", "600"}})
	db := vulnImportDB(t)
	mountDir := filepath.Join(t.TempDir(), "mounts")
	verdicts := func(extra ...string) map[string]report.InUse {
		t.Helper()
		doc, res := scanJSON(t, bed, mountDir, append([]string{"--db", db, "--namespace", "inuse", "--no-baseline"}, extra...)...)
		if res.code != 0 {
			t.Fatalf("scan %q: exit %d: %s", extra, res.code, res.stderr)
		}
		r := reportFor(t, doc, id)
		got := map[string]report.InUse{}
		for _, v := range r.Result.Vulnerabilities {
			got[v.ID+" "+v.Package] = v.InUse
		}
		for _, e := range r.Result.Errors {
			if e.Analyzer == "in-use" {
				t.Errorf("in-use error: %+v", e)
			}
		}
		return got
	}
	got := verdicts()
	want := map[string]report.InUse{}
	for k := range got {
		switch {
		case strings.HasSuffix(k, " libc6"):
			want[k] = report.InUseTrue
		case strings.HasSuffix(k, " apt"):
			want[k] = report.InUseFalse
		}
	}
	if !slices.ContainsFunc(keysOf(want), func(k string) bool { return strings.HasSuffix(k, " apt") }) ||
		!slices.ContainsFunc(keysOf(want), func(k string) bool { return strings.HasSuffix(k, " libc6") }) {
		t.Fatalf("the test records give no glibc or no apt finding: %v", got)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: in use %q, want %q (all: %v)", k, got[k], w, got)
		}
	}

	only := verdicts("--in-use-only")
	for k := range got {
		if _, kept := only[k]; kept != (got[k] != report.InUseFalse) {
			t.Errorf("--in-use-only: %s (in use %q) kept %v", k, got[k], kept)
		}
	}
	for k, u := range verdicts("--in-use=false") {
		if u != "" {
			t.Errorf("--in-use=false: %s is %q, want it unmarked", k, u)
		}
	}

	res := runRootscan(t, 2*time.Minute, "scan", "--runtime-endpoint", "unix://"+bed.Address(), "--mount-dir", mountDir, "--db", db,
		"--namespace", "inuse", "--packages=false", "--no-baseline")
	if !strings.Contains(res.stdout, "IN USE") || !regexp.MustCompile(`(?m)^  DEBIAN-CVE-2011-3374 .* apt .* false `).MatchString(res.stdout) {
		t.Errorf("table lacks the IN USE column or apt's verdict:\n%s", res.stdout)
	}
	assertNoMountsUnder(t, mountDir)
}

// The distroless container runs /app, a static Go program: its own package (stdlib, with a test advisory on every
// version) is in use, while the distroless Debian packages, owned through status.d's md5sums, are installed and not
// mapped by anything.
func TestInUseDistrolessGoProgram(t *testing.T) {
	bed, ctx, _, ref := startBed(t, ociimage.Distroless)
	_, id := runPodWith(t, ctx, bed, testbed.PodSpec{Name: "goapp", Namespace: "inuse-go"}, testbed.ContainerSpec{Name: "app", Image: ref.Name})
	recs := t.TempDir()
	rec := `{"id":"GO-TEST-9999","modified":"2024-01-01T00:00:00Z","summary":"every stdlib","affected":[{"package":` +
		`{"ecosystem":"Go","name":"stdlib"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}`
	if err := os.WriteFile(filepath.Join(recs, "GO-TEST-9999.json"), []byte(rec), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "db")
	if res := runRootscan(t, time.Minute, "db", "import", "--db", db, vulnTestdata, recs); res.code != 0 {
		t.Fatalf("db import exit %d: %s", res.code, res.stderr)
	}
	mountDir := filepath.Join(t.TempDir(), "mounts")
	doc, res := scanJSON(t, bed, mountDir, "--db", db, "--namespace", "inuse-go", "--no-baseline")
	if res.code != 0 {
		t.Fatalf("scan exit %d: %s", res.code, res.stderr)
	}
	r := reportFor(t, doc, id)
	got := map[string]report.InUse{}
	for _, v := range r.Result.Vulnerabilities {
		got[v.ID+" "+v.Package] = v.InUse
	}
	if got["GO-TEST-9999 stdlib"] != report.InUseTrue {
		t.Errorf("the running program's stdlib finding: in use %q, want true (all: %v)", got["GO-TEST-9999 stdlib"], got)
	}
	debian := 0
	for k, u := range got {
		if strings.HasSuffix(k, " libc6") || strings.HasSuffix(k, " libssl3") {
			debian++
			if u != report.InUseFalse {
				t.Errorf("%s: in use %q, want false (/app is static)", k, u)
			}
		}
	}
	if debian == 0 {
		t.Errorf("no glibc or openssl finding to check: %v", got)
	}
	assertNoMountsUnder(t, mountDir)
}

func keysOf[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
