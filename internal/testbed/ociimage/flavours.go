package ociimage

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Flavours are the names Flavour accepts, Google's distroless image flavours.
var Flavours = []string{"static", "base", "cc", "java", "python", "nodejs"}

// flavourPackages are the Debian packages of each flavour, in layer order, as
// distroless assembles its debian12 images: static is base-files, netbase,
// tzdata and ca-certificates with no libc; base adds glibc and OpenSSL; cc the
// GCC runtime libraries; java, python and nodejs add their runtime and the
// libraries distroless lists for it (java: the font and image libraries of
// its java_base; python: the libraries of its python3 image; nodejs: Debian's
// nodejs with libnode and its libraries, since distroless's own upstream
// tarball cannot be had here).
var flavourPackages = map[string][]string{
	"static": {"base-files", "netbase", "tzdata", "ca-certificates"},
	"base":   {"libc6", "libssl3"},
	"cc":     {"libgcc-s1", "libgomp1", "libstdc++6"},
	"java": {"zlib1g", "libjpeg62-turbo", "libpng16-16", "liblcms2-2", "libbrotli1", "libfreetype6",
		"fonts-dejavu-core", "fontconfig-config", "libexpat1", "libuuid1", "libfontconfig1", "openjdk-17-jre-headless"},
	"python": {"zlib1g", "libbz2-1.0", "libcrypt1", "libexpat1", "libffi8", "liblzma5", "libtinfo6", "libncursesw6",
		"libreadline8", "libsqlite3-0", "libuuid1", "libpython3.11-minimal", "libpython3.11-stdlib", "python3.11-minimal"},
	"nodejs": {"zlib1g", "libbrotli1", "libuv1", "libc-ares2", "libicu72", "libnghttp2-14", "libnode108", "nodejs"},
}

// flavourParent is the flavour each one is built on.
var flavourParent = map[string]string{"base": "static", "cc": "base", "java": "cc", "python": "cc", "nodejs": "cc"}

// FlavourPackages returns the Debian packages the flavour's image holds, in
// layer order, or nil for an unknown flavour.
func FlavourPackages(name string) []string {
	if _, ok := flavourPackages[name]; !ok {
		return nil
	}
	var chain []string
	for f := name; f != ""; f = flavourParent[f] {
		chain = append(chain, f)
	}
	var pkgs []string
	for i := len(chain) - 1; i >= 0; i-- {
		pkgs = append(pkgs, flavourPackages[chain[i]]...)
	}
	return pkgs
}

// DistrolessNodePath is where distroless's nodejs images keep node (from the
// upstream tarball, outside any package); the nodejs flavour has a copy of
// Debian's usr/bin/node there too.
const DistrolessNodePath = "nodejs/bin/node"

// Flavour returns an image assembled like Google's distroless image of that
// flavour (one of Flavours), named rootscan.test/distroless-<name>:1, from
// real Debian packages (cached in cacheDir/debs): distroless's base files,
// one layer per package with its status.d entries, the CA bundle. It has no
// shell and no package manager, and no entrypoint: it exists to be scanned.
// Packages() lists exactly the packages it holds.
func Flavour(ctx context.Context, cacheDir, name string) (*Image, error) {
	names := FlavourPackages(name)
	if names == nil {
		return nil, fmt.Errorf("unknown distroless flavour %q (known: %v)", name, Flavours)
	}
	if cacheDir == "" {
		cacheDir = DefaultCacheDir()
	}
	debs, err := fetchArchiveDebs(ctx, filepath.Join(cacheDir, "debs"), names)
	if err != nil {
		return nil, fmt.Errorf("distroless %s image: %w", name, err)
	}
	img, err := assembleDistroless(ctx, "rootscan.test/distroless-"+name+":1", debs, names)
	if err != nil {
		return nil, fmt.Errorf("distroless %s image: %w", name, err)
	}
	if name == "nodejs" {
		node, err := fileOfDeb(ctx, debs, "nodejs", "usr/bin/node")
		if err != nil {
			return nil, fmt.Errorf("distroless nodejs image: %w", err)
		}
		node.Path = DistrolessNodePath
		img.Layers = append(img.Layers, Layer{Files: []File{node}})
		img.Config.Entrypoint = []string{"/" + DistrolessNodePath}
	}
	return img, nil
}

// DebianShellPackages are the packages of the DebianShell image, in layer order.
var DebianShellPackages = []string{"base-files", "libc6", "bash", "dash", "coreutils", "dpkg", "apt"}

// DebianShellName is the reference of the DebianShell image.
const DebianShellName = "rootscan.test/debian-shell:1"

// DebianShell returns the counterpart of the distroless flavours: a Debian
// root with shells (bash, dash and its bin/sh link) and package managers (dpkg,
// apt) from their real .debs, and a var/lib/dpkg/status database listing
// them, as a regular Debian image has. Only these packages are in it (apt's
// libraries are not), which is enough to be scanned, not to be run.
func DebianShell(ctx context.Context, cacheDir string) (*Image, error) {
	if cacheDir == "" {
		cacheDir = DefaultCacheDir()
	}
	debs, err := fetchArchiveDebs(ctx, filepath.Join(cacheDir, "debs"), DebianShellPackages)
	if err != nil {
		return nil, fmt.Errorf("debian shell image: %w", err)
	}
	img := &Image{Name: DebianShellName}
	img.Config.Entrypoint = []string{"/bin/bash"}
	var status bytes.Buffer
	for _, pkg := range DebianShellPackages {
		dc, err := readNamedDeb(ctx, debs, pkg)
		if err != nil {
			return nil, fmt.Errorf("debian shell image: %w", err)
		}
		img.Layers = append(img.Layers, Layer{Files: dc.Files})
		img.packages = append(img.packages, dc.Package)
		status.Write(installedStanza(dc.Control))
		status.WriteByte('\n')
	}
	slices.SortFunc(img.packages, func(a, b DebPackage) int { return strings.Compare(a.Name, b.Name) })
	img.Layers = append(img.Layers, Layer{Files: []File{{Path: "var/lib/dpkg/status", Mode: 0o644, Data: status.Bytes()}}})
	return img, nil
}

// installedStanza turns a .deb's control file into its var/lib/dpkg/status
// stanza: dpkg adds "Status: install ok installed" after the Package field.
func installedStanza(control []byte) []byte {
	var b bytes.Buffer
	for _, line := range strings.SplitAfter(strings.TrimRight(string(control), "\n")+"\n", "\n") {
		b.WriteString(line)
		if strings.HasPrefix(line, "Package:") {
			b.WriteString("Status: install ok installed\n")
		}
	}
	return b.Bytes()
}

// fileOfDeb returns the file at p in package pkg's data.
func fileOfDeb(ctx context.Context, debs map[string]string, pkg, p string) (File, error) {
	dc, err := readNamedDeb(ctx, debs, pkg)
	if err != nil {
		return File{}, err
	}
	for _, f := range dc.Files {
		if f.Path == p && f.Mode.IsRegular() {
			return f, nil
		}
	}
	return File{}, fmt.Errorf("package %s has no regular file %s", pkg, p)
}

// fetchArchiveDebs is fetchDebs taking each package from the Debian archive's
// newest version (`apt-cache madison`), not apt's candidate: a machine with a
// locally installed build of a package (nodesource's nodejs, say) has a
// candidate apt cannot download.
func fetchArchiveDebs(ctx context.Context, debDir string, names []string) (map[string]string, error) {
	if err := os.MkdirAll(debDir, 0o755); err != nil {
		return nil, fmt.Errorf("create deb cache: %w", err)
	}
	found := map[string]string{}
	var missing []string
	for _, name := range names {
		p, err := newestDeb(debDir, name)
		if err != nil {
			return nil, err
		}
		if p == "" {
			missing = append(missing, name)
			continue
		}
		found[name] = p
	}
	if len(missing) == 0 {
		return found, nil
	}
	specs, err := archiveVersions(ctx, missing)
	if err != nil {
		// Stale or absent package lists are the usual cause; refresh once.
		if uerr := runQuiet(ctx, "", "apt-get", "update"); uerr != nil {
			return nil, fmt.Errorf("%w (and apt-get update failed: %v)", err, uerr)
		}
		if specs, err = archiveVersions(ctx, missing); err != nil {
			return nil, err
		}
	}
	if err := aptDownload(ctx, debDir, specs); err != nil {
		return nil, fmt.Errorf("download %v: %w", specs, err)
	}
	for _, name := range missing {
		p, err := newestDeb(debDir, name)
		if err != nil {
			return nil, err
		}
		if p == "" {
			return nil, fmt.Errorf("apt-get download left no .deb for %s in %s", name, debDir)
		}
		found[name] = p
	}
	return found, nil
}

// archiveVersions returns "name=version" for each package, the newest
// version a configured archive offers.
func archiveVersions(ctx context.Context, names []string) ([]string, error) {
	out, err := exec.CommandContext(ctx, "apt-cache", append([]string{"madison"}, names...)...).Output()
	if err != nil {
		return nil, fmt.Errorf("apt-cache madison %v: %w", names, err)
	}
	newest := parseMadison(string(out))
	specs := make([]string, 0, len(names))
	for _, n := range names {
		if newest[n] == "" {
			return nil, fmt.Errorf("no archive offers package %s", n)
		}
		specs = append(specs, n+"="+newest[n])
	}
	return specs, nil
}

// parseMadison reads `apt-cache madison` output ("name | version | source")
// into the first, newest, binary-package version of each name; source
// package lines are skipped.
func parseMadison(out string) map[string]string {
	newest := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(line, "|")
		if len(f) != 3 || !strings.HasSuffix(strings.TrimSpace(f[2]), " Packages") {
			continue
		}
		name, ver := strings.TrimSpace(f[0]), strings.TrimSpace(f[1])
		if _, seen := newest[name]; !seen && name != "" && ver != "" {
			newest[name] = ver
		}
	}
	return newest
}
