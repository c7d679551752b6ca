package ociimage

import (
	"archive/tar"
	"bytes"
	"context"
	"maps"
	"path"
	"slices"
	"strings"
	"testing"
)

func TestFlavourPackages(t *testing.T) {
	cc := []string{"base-files", "netbase", "tzdata", "ca-certificates", "libc6", "libssl3", "libgcc-s1", "libgomp1", "libstdc++6"}
	if got := FlavourPackages("cc"); !slices.Equal(got, cc) {
		t.Fatalf("cc = %v, want %v", got, cc)
	}
	if got := FlavourPackages("static"); slices.Contains(got, "libc6") {
		t.Fatalf("static has libc6: %v", got)
	}
	for _, f := range []string{"java", "python", "nodejs"} {
		got := FlavourPackages(f)
		if !slices.Equal(got[:len(cc)], cc) {
			t.Fatalf("%s does not start with cc's packages: %v", f, got)
		}
		seen := map[string]bool{}
		for _, p := range got {
			if seen[p] {
				t.Fatalf("%s lists %s twice", f, p)
			}
			seen[p] = true
		}
	}
	if FlavourPackages("alpine") != nil {
		t.Fatal("unknown flavour has packages")
	}
	if _, err := Flavour(context.Background(), t.TempDir(), "alpine"); err == nil {
		t.Fatal("unknown flavour built")
	}
}

func TestParseMadison(t *testing.T) {
	out := "    nodejs | 18.20.4+dfsg-1~deb12u3 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages\n" +
		"    nodejs | 18.20.4+dfsg-1~deb12u2 | http://deb.debian.org/debian bookworm/main amd64 Packages\n" +
		"    nodejs | 18.20.4+dfsg-1~deb12u2 | http://deb.debian.org/debian bookworm/main Sources\n" +
		"  zlib1g | 1:1.2.13.dfsg-1 | http://deb.debian.org/debian bookworm/main amd64 Packages\n" +
		"garbage\n"
	got := parseMadison(out)
	want := map[string]string{"nodejs": "18.20.4+dfsg-1~deb12u3", "zlib1g": "1:1.2.13.dfsg-1"}
	if len(got) != len(want) || got["nodejs"] != want["nodejs"] || got["zlib1g"] != want["zlib1g"] {
		t.Fatalf("parseMadison = %v, want %v", got, want)
	}
}

func TestInstalledStanza(t *testing.T) {
	got := string(installedStanza([]byte("Package: dash\nVersion: 0.5.12-2\nDescription: shell\n more\n")))
	want := "Package: dash\nStatus: install ok installed\nVersion: 0.5.12-2\nDescription: shell\n more\n"
	if got != want {
		t.Fatalf("installedStanza = %q, want %q", got, want)
	}
}

// shellAndManagerPaths are paths none of the distroless flavours may have.
var shellAndManagerPaths = []string{"bin/sh", "bin/bash", "bin/dash", "bin/busybox", "usr/bin/sh", "usr/bin/bash",
	"usr/bin/dpkg", "usr/bin/apt", "usr/bin/apt-get", "sbin/apk", "usr/bin/rpm", "var/lib/dpkg/status"}

func TestFlavours(t *testing.T) {
	needTools(t, "dpkg-deb", "apt-get", "apt-cache")
	ctx := context.Background()
	cache := testCacheDir(t)
	runtimes := map[string][]string{
		"static": {"usr/share/zoneinfo/Etc/UTC", "etc/ssl/certs/ca-certificates.crt"},
		"base":   {"lib/*-linux-gnu*/libc.so.6", "usr/lib/*-linux-gnu*/libssl.so.3"},
		"cc":     {"usr/lib/*-linux-gnu*/libstdc++.so.6"},
		"java":   {"usr/lib/jvm/java-17-openjdk-*/bin/java"},
		"python": {"usr/bin/python3.11", "usr/lib/python3.11/json/__init__.py"},
		"nodejs": {"usr/bin/node", DistrolessNodePath},
	}
	for _, name := range Flavours {
		t.Run(name, func(t *testing.T) {
			img, err := Flavour(ctx, cache, name)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if _, err := img.WriteLayout(dir); err != nil {
				t.Fatal(err)
			}
			fsys := readLayout(t, dir, "rootscan.test/distroless-"+name+":1").flatten()
			var got []string
			for _, p := range img.Packages() {
				got = append(got, p.Name)
				if st := fsys["var/lib/dpkg/status.d/"+p.Name]; st.Hdr == nil || !bytes.HasPrefix(st.Data, []byte("Package: "+p.Name+"\n")) {
					t.Errorf("no status.d entry for %s", p.Name)
				}
			}
			want := slices.Sorted(slices.Values(FlavourPackages(name)))
			if !slices.Equal(got, want) {
				t.Fatalf("Packages() = %v, want %v", got, want)
			}
			var statusD []string
			for p := range fsys {
				if rest, ok := strings.CutPrefix(p, "var/lib/dpkg/status.d/"); ok && !strings.HasSuffix(rest, ".md5sums") {
					statusD = append(statusD, rest)
				}
			}
			slices.Sort(statusD)
			if !slices.Equal(statusD, want) {
				t.Fatalf("status.d holds %v, want %v", statusD, want)
			}
			for _, p := range shellAndManagerPaths {
				if _, ok := fsys[p]; ok {
					t.Errorf("%s is in the %s image", p, name)
				}
			}
			for _, pattern := range runtimes[name] {
				if !slices.ContainsFunc(slices.Collect(maps.Keys(fsys)), func(p string) bool {
					ok, _ := path.Match(pattern, p)
					return ok && (fsys[p].Hdr.Typeflag == tar.TypeReg || fsys[p].Hdr.Typeflag == tar.TypeSymlink)
				}) {
					t.Errorf("no file %s in the %s image", pattern, name)
				}
			}
			if name == "static" {
				for p := range fsys {
					if strings.Contains(p, "libc.so") || strings.Contains(p, "ld-linux") {
						t.Errorf("static image has a libc: %s", p)
					}
				}
			}
		})
	}
}

func TestDebianShell(t *testing.T) {
	needTools(t, "dpkg-deb", "apt-get", "apt-cache")
	img, err := DebianShell(context.Background(), testCacheDir(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := img.WriteLayout(dir); err != nil {
		t.Fatal(err)
	}
	fsys := readLayout(t, dir, DebianShellName).flatten()
	for _, p := range []string{"bin/bash", "bin/dash", "usr/bin/dpkg", "usr/bin/apt", "usr/bin/apt-get"} {
		if e := fsys[p]; e.Hdr == nil || e.Hdr.Typeflag != tar.TypeReg {
			t.Errorf("%s is not a file in the image", p)
		}
	}
	if sh := fsys["bin/sh"]; sh.Hdr == nil || sh.Hdr.Typeflag != tar.TypeSymlink || sh.Hdr.Linkname != "dash" {
		t.Errorf("bin/sh is not dash's symlink: %+v", sh.Hdr)
	}
	status := string(fsys["var/lib/dpkg/status"].Data)
	var names []string
	for _, p := range img.Packages() {
		names = append(names, p.Name)
		if !strings.Contains(status, "Package: "+p.Name+"\nStatus: install ok installed\n") {
			t.Errorf("status lacks an installed stanza for %s", p.Name)
		}
	}
	if want := slices.Sorted(slices.Values(DebianShellPackages)); !slices.Equal(names, want) {
		t.Fatalf("Packages() = %v, want %v", names, want)
	}
	if n := strings.Count(status, "\nStatus: "); n != len(DebianShellPackages) {
		t.Fatalf("status has %d stanzas, want %d", n, len(DebianShellPackages))
	}
}
