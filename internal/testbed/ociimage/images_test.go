package ociimage

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testCacheDir shares built binaries and downloaded .debs between test runs:
// $ROOTSCAN_TESTBED_CACHE or the default cache when it is writable, else a
// per-test directory.
func testCacheDir(t *testing.T) string {
	t.Helper()
	d := DefaultCacheDir()
	if err := os.MkdirAll(d, 0o755); err == nil {
		if f, err := os.CreateTemp(d, ".probe-"); err == nil {
			f.Close()
			os.Remove(f.Name())
			return d
		}
	}
	return t.TempDir()
}

// needTools skips when a host tool is missing, unless ROOTSCAN_INTEGRATION is
// "require" (CI), where a missing tool is a failure rather than a silent skip.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("ROOTSCAN_INTEGRATION") == "require" {
				t.Fatalf("%s is required (ROOTSCAN_INTEGRATION=require): %v", tool, err)
			}
			t.Skipf("%s not found: %v", tool, err)
		}
	}
}

// assertStatic checks that b is an ELF executable with no program
// interpreter: it must run in an image that has no dynamic loader.
func assertStatic(t *testing.T, name string, b []byte) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s is not ELF: %v", name, err)
	}
	if f.Type != elf.ET_EXEC {
		t.Fatalf("%s: ELF type %v, want a static executable", name, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatalf("%s has a program interpreter: it is dynamically linked", name)
		}
	}
}

// runUntilTERM runs a program the images use as entrypoint, stops it with
// SIGTERM and returns its output: the container runtime relies on a clean
// exit 0 to stop test pods quickly.
func runUntilTERM(t *testing.T, bin []byte, wantLine string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(p, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(p)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	if wantLine != "" {
		select {
		case l := <-lines:
			if !strings.Contains(l, wantLine) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("first line %q, want one containing %q", l, wantLine)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("no line containing %q within 10s", wantLine)
		}
	} else {
		time.Sleep(200 * time.Millisecond) // let it install its signal handler
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("exited before SIGTERM: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit on SIGTERM: %v, want status 0", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("did not exit within 10s of SIGTERM")
	}
}

func TestPause(t *testing.T) {
	needTools(t, "go")
	img, err := Pause(context.Background(), testCacheDir(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := img.WriteLayout(dir); err != nil {
		t.Fatal(err)
	}
	ri := readLayout(t, dir, PauseName)
	if ep := ri.Config.Config.Entrypoint; len(ep) != 1 || ep[0] != "/pause" {
		t.Fatalf("entrypoint %v", ep)
	}
	fsys := ri.flatten()
	if len(fsys) != 1 {
		t.Fatalf("pause image has %d entries, want only /pause", len(fsys))
	}
	e := fsys["pause"]
	if e.Hdr == nil || e.Hdr.Mode != 0o755 {
		t.Fatalf("pause entry: %+v", e.Hdr)
	}
	bin := img.Layers[0].Files[0].Data
	assertStatic(t, "pause", bin)
	runUntilTERM(t, bin, "")
}

func TestDistroless(t *testing.T) {
	needTools(t, "go", "dpkg-deb", "apt-get")
	ctx := context.Background()
	cache := testCacheDir(t)
	img, err := Distroless(ctx, cache)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dgst, err := img.WriteLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	ri := readLayout(t, dir, DistrolessName)
	fsys := ri.flatten()

	pkgs := img.Packages()
	if len(pkgs) != len(DistrolessPackages) {
		t.Fatalf("Packages() = %+v, want the %d of DistrolessPackages", pkgs, len(DistrolessPackages))
	}
	for _, p := range pkgs {
		st, ok := fsys["var/lib/dpkg/status.d/"+p.Name]
		if !ok || st.Hdr.Typeflag != tar.TypeReg {
			t.Fatalf("no var/lib/dpkg/status.d/%s", p.Name)
		}
		fields, err := parseControl(st.Data)
		if err != nil {
			t.Fatalf("status.d/%s: %v", p.Name, err)
		}
		got, err := debPackageOf(fields)
		if err != nil || got != p {
			t.Fatalf("status.d/%s describes %+v (%v), Packages() says %+v", p.Name, got, err, p)
		}
		if p.Architecture == "" || p.Source == "" || p.SourceVersion == "" {
			t.Fatalf("incomplete package %+v", p)
		}
		if md5, ok := fsys["var/lib/dpkg/status.d/"+p.Name+".md5sums"]; !ok || len(md5.Data) == 0 {
			t.Fatalf("no var/lib/dpkg/status.d/%s.md5sums", p.Name)
		}
		if _, ok := fsys["usr/share/doc/"+p.Name+"/copyright"]; !ok {
			t.Fatalf("usr/share/doc/%s/copyright dropped", p.Name)
		}
	}
	byName := map[string]DebPackage{}
	for _, p := range pkgs {
		byName[p.Name] = p
	}
	if byName["libc6"].Source != "glibc" || byName["libssl3"].Source != "openssl" {
		t.Fatalf("source packages not resolved: %+v %+v", byName["libc6"], byName["libssl3"])
	}

	for p := range fsys {
		for _, dropped := range []string{"usr/share/man/", "usr/share/info/", "usr/share/lintian/"} {
			if strings.HasPrefix(p, dropped) {
				t.Fatalf("%s kept", p)
			}
		}
		if strings.HasPrefix(p, "usr/share/doc/") && strings.Count(p, "/") > 3 && !strings.HasSuffix(p, "/copyright") {
			t.Fatalf("documentation %s kept", p)
		}
	}
	for _, absent := range []string{"bin/sh", "usr/bin/sh", "bin/bash", "bin/busybox", "usr/bin/dpkg", "usr/bin/apt", "var/lib/dpkg/status"} {
		if _, ok := fsys[absent]; ok {
			t.Fatalf("%s is in the image", absent)
		}
	}
	for p, e := range fsys {
		if (strings.HasPrefix(p, "bin/") || strings.HasPrefix(p, "usr/bin/")) && e.Hdr.Typeflag != tar.TypeDir {
			t.Fatalf("an executable in PATH: %s", p)
		}
	}

	app, ok := fsys["app"]
	if !ok || app.Hdr.Mode != 0o755 {
		t.Fatal("no executable /app")
	}
	appBin := img.Layers[len(img.Layers)-1].Files[0].Data
	assertStatic(t, "app", appBin)
	if ep := ri.Config.Config.Entrypoint; len(ep) != 1 || ep[0] != "/app" {
		t.Fatalf("entrypoint %v", ep)
	}
	if ri.Config.Config.User != "65532" {
		t.Fatalf("user %q", ri.Config.Config.User)
	}
	runUntilTERM(t, appBin, "rootscan testbed app started")

	if lt := fsys["etc/localtime"]; lt.Hdr == nil || lt.Hdr.Typeflag != tar.TypeSymlink || lt.Hdr.Linkname != "/usr/share/zoneinfo/UTC" {
		t.Fatalf("etc/localtime: %+v", lt.Hdr)
	}
	if _, ok := fsys["usr/share/zoneinfo/Etc/UTC"]; !ok {
		t.Fatal("tzdata's zoneinfo missing")
	}
	if osr := fsys["etc/os-release"]; osr.Hdr == nil || osr.Hdr.Typeflag != tar.TypeSymlink {
		t.Fatal("base-files' etc/os-release symlink missing")
	}
	if osr := fsys["usr/lib/os-release"]; !bytes.Contains(osr.Data, []byte(`VERSION_CODENAME=bookworm`)) {
		t.Fatalf("usr/lib/os-release: %q", osr.Data)
	}
	if pw := fsys["etc/passwd"]; !bytes.Contains(pw.Data, []byte("nonroot:x:65532:65532:")) {
		t.Fatalf("etc/passwd: %q", pw.Data)
	}
	if home := fsys["home/nonroot"]; home.Hdr == nil || home.Hdr.Uid != NonrootUID || home.Hdr.Typeflag != tar.TypeDir {
		t.Fatal("home/nonroot missing or not owned by nonroot")
	}
	if tmp := fsys["tmp"]; tmp.Hdr == nil || tmp.Hdr.Mode != 0o1777 {
		t.Fatal("tmp is not 1777")
	}
	crts := 0
	for p := range fsys {
		if strings.HasPrefix(p, "usr/share/ca-certificates/") && strings.HasSuffix(p, ".crt") {
			crts++
		}
	}
	bundle := fsys["etc/ssl/certs/ca-certificates.crt"]
	if n := bytes.Count(bundle.Data, []byte("-----BEGIN CERTIFICATE-----")); crts == 0 || n != crts {
		t.Fatalf("CA bundle has %d certificates, ca-certificates ships %d", n, crts)
	}

	// A rebuild from the cached .debs and binary gives the same image.
	again, err := Distroless(ctx, cache)
	if err != nil {
		t.Fatal(err)
	}
	dgst2, err := again.WriteLayout(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if dgst2 != dgst {
		t.Fatalf("rebuild gave %s, first build %s", dgst2, dgst)
	}
}

func TestHostile(t *testing.T) {
	needTools(t, "go")
	img, err := Hostile(context.Background(), testCacheDir(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := img.WriteLayout(dir); err != nil {
		t.Fatal(err)
	}
	ri := readLayout(t, dir, HostileName)
	fsys := ri.flatten()
	get := func(p string, typ byte) entry {
		t.Helper()
		e, ok := fsys[p]
		if !ok || e.Hdr.Typeflag != typ {
			t.Fatalf("%s: missing or not of type %q", p, typ)
		}
		return e
	}
	if ep := ri.Config.Config.Entrypoint; len(ep) != 1 || ep[0] != "/pause" {
		t.Fatalf("entrypoint %v", ep)
	}
	get("pause", tar.TypeReg)
	if e := get("etc/shadow", tar.TypeReg); string(e.Data) != HostileShadow {
		t.Fatalf("etc/shadow: %q", e.Data)
	}
	if e := get("etc/os-release", tar.TypeSymlink); e.Hdr.Linkname != "/etc/shadow" {
		t.Fatalf("etc/os-release -> %s", e.Hdr.Linkname)
	}
	if e := get("usr/lib/os-release", tar.TypeSymlink); !strings.HasPrefix(e.Hdr.Linkname, "../../../../") {
		t.Fatalf("usr/lib/os-release -> %s", e.Hdr.Linkname)
	}
	get("var/lib/dpkg/status", tar.TypeFifo)
	if e := get("var/lib/dpkg/status.d/dev", tar.TypeChar); e.Hdr.Devmajor != 1 || e.Hdr.Devminor != 3 {
		t.Fatalf("dev is %d:%d", e.Hdr.Devmajor, e.Hdr.Devminor)
	}
	if e := get("var/lib/dpkg/status.d/link-out", tar.TypeSymlink); e.Hdr.Linkname != "/etc/passwd" {
		t.Fatalf("link-out -> %s", e.Hdr.Linkname)
	}
	if e := get("var/lib/dpkg/status.d/big", tar.TypeReg); e.Hdr.Size != HostileBigSize {
		t.Fatalf("big is %d bytes", e.Hdr.Size)
	}
	if e := get("var/lib/dpkg/status.d/garbage", tar.TypeReg); e.Hdr.Size == 0 || e.Hdr.Size >= 1<<20 {
		t.Fatalf("garbage is %d bytes", e.Hdr.Size)
	} else if _, err := parseControl(e.Data); err == nil {
		t.Fatal("garbage parses as a control stanza")
	}
	good := get("var/lib/dpkg/status.d/good", tar.TypeReg)
	fields, err := parseControl(good.Data)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := debPackageOf(fields); err != nil || p.Name != HostileGoodPackage || p.Version != HostileGoodVersion {
		t.Fatalf("good describes %+v (%v)", p, err)
	}
	depth := 0
	for p, e := range fsys {
		if strings.HasPrefix(p, "opt/deep") && e.Hdr.Typeflag == tar.TypeDir {
			if d := strings.Count(p, "/"); d > depth {
				depth = d
			}
		}
	}
	if depth != HostileDepth {
		t.Fatalf("opt/deep is %d directories deep, want %d", depth, HostileDepth)
	}
	get("opt/cycle", tar.TypeSymlink)
}

func TestParseControl(t *testing.T) {
	ctl := "Package: libssl3\nSource: openssl (3.0.11-1~deb12u2)\nVersion: 3.0.11-1~deb12u2+b1\n" +
		"Architecture: amd64\nDescription: Secure Sockets Layer toolkit\n more text\n .\n end\n\nPackage: ignored\n"
	fields, err := parseControl([]byte(ctl))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(fields["Description"], "\n end") {
		t.Fatalf("continuation lines: %q", fields["Description"])
	}
	p, err := debPackageOf(fields)
	if err != nil {
		t.Fatal(err)
	}
	want := DebPackage{Name: "libssl3", Version: "3.0.11-1~deb12u2+b1", Architecture: "amd64", Source: "openssl", SourceVersion: "3.0.11-1~deb12u2"}
	if p != want {
		t.Fatalf("got %+v, want %+v", p, want)
	}
	// No Source field: the package is its own source.
	p, err = debPackageOf(map[string]string{"Package": "netbase", "Version": "6.4", "Architecture": "all"})
	if err != nil || p.Source != "netbase" || p.SourceVersion != "6.4" {
		t.Fatalf("got %+v, %v", p, err)
	}
	// Source without a version: the binary's version.
	p, err = debPackageOf(map[string]string{"Package": "libc6", "Source": "glibc", "Version": "2.36-9"})
	if err != nil || p.Source != "glibc" || p.SourceVersion != "2.36-9" {
		t.Fatalf("got %+v, %v", p, err)
	}
	if _, err := debPackageOf(map[string]string{"Package": "x"}); err == nil {
		t.Fatal("accepted a stanza without Version")
	}
	if _, err := parseControl([]byte(" leading continuation\n")); err == nil {
		t.Fatal("accepted a continuation before any field")
	}
}

func TestKeepDebPath(t *testing.T) {
	for p, want := range map[string]bool{
		"usr/share/doc/libc6/copyright":       true,
		"usr/share/doc/libc6":                 true,
		"usr/share/doc/libc6/changelog.gz":    false,
		"usr/share/doc/other/copyright":       false,
		"usr/share/man/man1/x.1.gz":           false,
		"usr/share/man":                       false,
		"usr/share/info/dir":                  false,
		"usr/share/lintian/overrides/libc6":   false,
		"usr/share/manual":                    true,
		"lib/x86_64-linux-gnu/libc.so.6":      true,
		"usr/share/zoneinfo/Europe/Amsterdam": true,
	} {
		if got := keepDebPath("libc6", p); got != want {
			t.Errorf("keepDebPath(libc6, %s) = %v, want %v", p, got, want)
		}
	}
}
