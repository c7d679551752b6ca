package scan

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
)

func debs(names ...string) []report.Package {
	var ps []report.Package
	for _, n := range names {
		ps = append(ps, report.Package{Name: n, Version: "1", Ecosystem: report.EcosystemDebian})
	}
	return ps
}

var (
	staticPkgs = []string{"base-files", "netbase", "tzdata", "ca-certificates"}
	basePkgs   = append(slices.Clone(staticPkgs), "libc6", "libssl3")
	ccPkgs     = append(slices.Clone(basePkgs), "libgcc-s1", "libgomp1", "libstdc++6")
)

func exe(data string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(data), Mode: 0o755} }
func link(target string) *fstest.MapFile {
	return &fstest.MapFile{Data: []byte(target), Mode: fs.ModeSymlink | 0o777}
}

func runDistroless(t *testing.T, fsys FS, pkgs []report.Package) *report.Result {
	t.Helper()
	out := &report.Result{Packages: pkgs}
	if err := NewDistroless().Analyze(context.Background(), fsys, out); err != nil {
		t.Fatal(err)
	}
	if out.Distroless == nil {
		t.Fatal("no Distroless result")
	}
	return out
}

func TestDistrolessFlavours(t *testing.T) {
	tests := []struct {
		name  string
		fsys  fstest.MapFS
		pkgs  []report.Package
		want  string
		isDis bool
	}{
		{name: "static", pkgs: debs(staticPkgs...), want: FlavourStatic, isDis: true},
		{name: "static with media-types", pkgs: debs(append(slices.Clone(staticPkgs), "media-types")...), want: FlavourStatic, isDis: true},
		{name: "base", pkgs: debs(basePkgs...), want: FlavourBase, isDis: true},
		{name: "cc", pkgs: debs(ccPkgs...), want: FlavourCC, isDis: true},
		{name: "java package", pkgs: debs(append(slices.Clone(ccPkgs), "zlib1g", "openjdk-17-jre-headless")...), want: FlavourJava, isDis: true},
		{name: "java 21 package", pkgs: debs(append(slices.Clone(ccPkgs), "openjdk-21-jre-headless")...), want: FlavourJava, isDis: true},
		{name: "java binary without package", pkgs: debs(ccPkgs...), fsys: fstest.MapFS{
			"usr/lib/jvm/default-java":                   link("temurin-17"),
			"usr/lib/jvm/temurin-17/bin/java":            exe("ELF"),
			"usr/lib/jvm/openjdk-broken/bin/java":        link("nowhere"),
			"usr/lib/jvm/openjdk-dir/bin/java/README.md": &fstest.MapFile{Data: []byte("x")},
		}, want: FlavourJava, isDis: true},
		{name: "java dir without java binary", pkgs: debs(ccPkgs...), fsys: fstest.MapFS{
			"usr/lib/jvm/openjdk-dir/bin/java/README.md": &fstest.MapFile{Data: []byte("x")},
			"usr/lib/jvm/dangling/bin/java":              link("../../nowhere"),
		}, want: FlavourCC, isDis: true},
		{name: "python", pkgs: debs(append(slices.Clone(ccPkgs), "libpython3.11-minimal", "python3.11-minimal", "libpython3.11-stdlib")...), want: FlavourPython, isDis: true},
		{name: "python 3.12 on base", pkgs: debs(append(slices.Clone(basePkgs), "python3.12-minimal")...), want: FlavourPython, isDis: true},
		{name: "nodejs package", pkgs: debs(append(slices.Clone(ccPkgs), "nodejs", "libnode108")...), want: FlavourNodejs, isDis: true},
		{name: "nodejs tarball", pkgs: debs(ccPkgs...), fsys: fstest.MapFS{"nodejs/bin/node": exe("ELF")}, want: FlavourNodejs, isDis: true},
		{name: "nodejs dir without node", pkgs: debs(ccPkgs...), fsys: fstest.MapFS{"nodejs/bin/node/x": exe("ELF")}, want: FlavourCC, isDis: true},
		{name: "two runtimes match no flavour", pkgs: debs(append(slices.Clone(ccPkgs), "nodejs", "python3.11-minimal")...), want: "", isDis: true},
		{name: "scratch with no packages", fsys: fstest.MapFS{"app": exe("ELF")}, want: "", isDis: true},
		{name: "other ecosystems do not count", pkgs: []report.Package{{Name: "base-files", Ecosystem: report.EcosystemAlpine}, {Name: "libc6", Ecosystem: report.EcosystemUbuntu}}, want: "", isDis: true},
		{name: "shell means no flavour", pkgs: debs(ccPkgs...), fsys: fstest.MapFS{"bin/sh": exe("ELF")}, want: "", isDis: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := tt.fsys
			if fsys == nil {
				fsys = fstest.MapFS{}
			}
			out := runDistroless(t, fsys, tt.pkgs)
			if out.Distroless.Distroless != tt.isDis || out.Distroless.Flavour != tt.want {
				t.Fatalf("got %+v, want distroless=%v flavour %q", out.Distroless, tt.isDis, tt.want)
			}
			if len(out.Errors) != 0 {
				t.Fatalf("errors: %+v", out.Errors)
			}
		})
	}
}

func TestDistrolessShellsAndPackageManagers(t *testing.T) {
	tests := []struct {
		name           string
		fsys           fstest.MapFS
		shells, pkgMgr []string
	}{
		{name: "debian", fsys: fstest.MapFS{
			"bin/bash":        exe("ELF"),
			"bin/dash":        exe("ELF"),
			"bin/sh":          link("dash"),
			"bin/rbash":       link("bash"),
			"usr/bin/dpkg":    exe("ELF"),
			"usr/bin/apt":     exe("ELF"),
			"usr/bin/apt-get": exe("ELF"),
		}, shells: []string{"bin/bash", "bin/dash", "bin/sh"}, pkgMgr: []string{"usr/bin/apt", "usr/bin/apt-get", "usr/bin/dpkg"}},
		{name: "merged usr", fsys: fstest.MapFS{
			"bin":          link("usr/bin"),
			"sbin":         link("usr/sbin"),
			"usr/bin/bash": exe("ELF"),
			"usr/bin/rpm":  exe("ELF"),
			"usr/sbin/x":   exe("ELF"),
		}, shells: []string{"bin/bash", "usr/bin/bash"}, pkgMgr: []string{"bin/rpm", "usr/bin/rpm"}},
		{name: "alpine busybox", fsys: fstest.MapFS{
			"bin/busybox": exe("ELF"),
			"bin/sh":      link("busybox"),
			"sbin/apk":    exe("ELF"),
		}, shells: []string{"bin/busybox", "bin/sh"}, pkgMgr: []string{"sbin/apk"}},
		{name: "ubi micro package manager only", fsys: fstest.MapFS{"usr/bin/microdnf": exe("ELF")}, pkgMgr: []string{"usr/bin/microdnf"}},
		{name: "not shells", fsys: fstest.MapFS{
			"bin/sh":       link("nowhere"), // dangling
			"bin/bash/x":   exe("ELF"),      // a directory named bash
			"bin/dash":     link("bash"),    // a link to a directory
			"usr/bin/ash":  {Mode: fs.ModeNamedPipe},
			"usr/bin/sh":   link("../../bin/sh"), // a chain ending nowhere
			"usr/bin/yum":  link("dnf-3"),
			"bin/busybox~": exe("ELF"),
			"bin/python3":  exe("ELF"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := runDistroless(t, tt.fsys, nil)
			d := out.Distroless
			if !slices.Equal(d.Shells, tt.shells) || !slices.Equal(d.PackageManagers, tt.pkgMgr) {
				t.Fatalf("shells %v, package managers %v; want %v, %v", d.Shells, d.PackageManagers, tt.shells, tt.pkgMgr)
			}
			if want := len(tt.shells) == 0 && len(tt.pkgMgr) == 0; d.Distroless != want {
				t.Fatalf("distroless = %v, want %v", d.Distroless, want)
			}
			if d.Distroless == false && d.Flavour != "" {
				t.Fatalf("flavour %q on a non-distroless root", d.Flavour)
			}
			if len(out.Errors) != 0 {
				t.Fatalf("errors: %+v", out.Errors)
			}
		})
	}
}

// failingFS fails Lstat of one path with a permission error.
type failingFS struct {
	fstest.MapFS
	bad string
}

func (f failingFS) Lstat(name string) (fs.FileInfo, error) {
	if name == f.bad {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: fs.ErrPermission}
	}
	return f.MapFS.Lstat(name)
}

func TestDistrolessReportsUnreadablePaths(t *testing.T) {
	fsys := failingFS{MapFS: fstest.MapFS{"usr/bin/dpkg": exe("ELF")}, bad: "bin/bash"}
	out := runDistroless(t, fsys, nil)
	if len(out.Errors) != 1 || out.Errors[0].Path != "bin/bash" || out.Errors[0].Analyzer != "distroless" {
		t.Fatalf("errors = %+v, want one for bin/bash", out.Errors)
	}
	if out.Distroless.Distroless || !slices.Equal(out.Distroless.PackageManagers, []string{"usr/bin/dpkg"}) {
		t.Fatalf("got %+v", out.Distroless)
	}
}

func TestDistrolessCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := &report.Result{}
	if err := NewDistroless().Analyze(ctx, fstest.MapFS{}, out); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if out.Distroless != nil {
		t.Fatal("a result despite the cancelled context")
	}
}

// The analyzer reads what the dpkg analyzer found, so in Run it must come after it and see its packages.
func TestDistrolessAfterDpkg(t *testing.T) {
	fsys := fstest.MapFS{}
	for _, p := range ccPkgs {
		fsys["var/lib/dpkg/status.d/"+p] = &fstest.MapFile{Data: []byte("Package: " + p + "\nVersion: 1\nArchitecture: amd64\n")}
	}
	res := Run(context.Background(), fsys, []Analyzer{NewDpkg(), NewDistroless()})
	if res.Distroless == nil || !res.Distroless.Distroless || res.Distroless.Flavour != FlavourCC {
		t.Fatalf("distroless = %+v, errors %+v", res.Distroless, res.Errors)
	}
}

func TestDistrolessTouches(t *testing.T) {
	a := NewDistroless()
	for _, p := range []string{"bin/sh", "usr/bin/bash", "sbin/apk", "usr/bin/dpkg", "var/lib/dpkg/status",
		"var/lib/dpkg/status.d/libc6", "nodejs/bin/node", "usr/lib/jvm/java-17-openjdk-amd64/bin/java"} {
		if !Touches(a, p) {
			t.Errorf("a change to %s does not re-run distroless detection", p)
		}
	}
	for _, p := range []string{"etc/passwd", "app", "usr/bin/python3"} {
		if Touches(a, p) {
			t.Errorf("a change to %s re-runs distroless detection", p)
		}
	}
}

// On a real directory through fsaccess: a link loop is no shell, absolute links resolve inside the root, and a link
// out of the root resolves inside it too, so the host's /bin/bash does not make the image's usr/bin/bash count.
func TestDistrolessConfinedLinks(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"bin", "usr/bin", "sbin"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"bin/zsh":      "zsh",                     // a loop
		"bin/sh":       "/bin/sh",                 // a loop too, inside the root
		"usr/bin/bash": "/../../../../bin/bash",   // the host has one; the root does not
		"sbin/apk":     "../../../../usr/bin/rpm", // escapes upwards, resolves to the root's usr/bin/rpm
		"bin/ash":      "/bin/busybox",            // absolute, legitimate inside the image
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"usr/bin/rpm", "bin/busybox"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("ELF"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	root, err := fsaccess.OpenDir(dir, fsaccess.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	out := runDistroless(t, root, nil)
	d := out.Distroless
	if !slices.Equal(d.Shells, []string{"bin/ash", "bin/busybox"}) || !slices.Equal(d.PackageManagers, []string{"sbin/apk", "usr/bin/rpm"}) || d.Distroless {
		t.Fatalf("got %+v", d)
	}
	if len(out.Errors) != 0 {
		t.Fatalf("errors: %+v", out.Errors)
	}
}

// A JRE copied in without dpkg, found through fsaccess's directory listing: the java flavour.
func TestDistrolessJavaOnDisk(t *testing.T) {
	dir := t.TempDir()
	java := filepath.Join(dir, "usr/lib/jvm/jdk-21/bin/java")
	if err := os.MkdirAll(filepath.Dir(java), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(java, []byte("ELF"), 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := fsaccess.OpenDir(dir, fsaccess.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	out := runDistroless(t, root, debs(ccPkgs...))
	if d := out.Distroless; !d.Distroless || d.Flavour != FlavourJava || len(out.Errors) != 0 {
		t.Fatalf("got %+v, errors %+v", d, out.Errors)
	}
}
