package scan

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"maps"
	"path"
	"regexp"
	"slices"
	"syscall"

	"github.com/rootscan/rootscan/report"
)

// Flavours of Google's distroless images, as Distroless.Flavour names them.
const (
	FlavourStatic = "static"
	FlavourBase   = "base"
	FlavourCC     = "cc"
	FlavourJava   = "java"
	FlavourPython = "python"
	FlavourNodejs = "nodejs"
)

// shellNames are the shells an exec-based scanner (or an attacker) could run; busybox counts because it is one.
var shellNames = []string{"sh", "bash", "dash", "ash", "busybox", "zsh", "ksh", "mksh"}

// shellDirs are the directories shells are installed in; merged-/usr roots make bin/x and usr/bin/x the same file,
// and both paths are reported, since both work for exec.
var shellDirs = []string{"bin", "usr/bin", "sbin", "usr/sbin"}

// packageManagerPaths are where the package managers of the common base distributions live. They are fixed paths,
// not a walk, so detection costs a few dozen stat calls whatever the size of the root.
var packageManagerPaths = []string{
	"usr/bin/apt", "usr/bin/apt-get", "usr/bin/dpkg", "bin/dpkg", // Debian, Ubuntu
	"sbin/apk", "usr/sbin/apk", "bin/apk", "usr/bin/apk", // Alpine, Wolfi
	"usr/bin/rpm", "bin/rpm", "usr/bin/microdnf", "usr/bin/dnf", "usr/bin/dnf5", "usr/bin/yum", "usr/bin/tdnf", // RPM
	"usr/bin/zypper",           // SUSE
	"usr/bin/pacman",           // Arch
	"bin/opkg", "usr/bin/opkg", // OpenWrt
	"sbin/xbps-install", "usr/bin/xbps-install", // Void
}

// Where distroless puts runtimes that do not come from a .deb.
const (
	// distrolessNodePath is the node binary of gcr.io/distroless/nodejs*, unpacked from the upstream tarball.
	distrolessNodePath = "nodejs/bin/node"
	// jvmDir holds Debian's (and distroless's) JREs, one directory each, each with bin/java.
	jvmDir = "usr/lib/jvm"
	// distrolessMaxJVMs bounds the usr/lib/jvm entries looked at; a real root has one to three.
	distrolessMaxJVMs = 64
)

var (
	// javaPackage matches Debian's JRE and JDK packages of any release (openjdk-17-jre-headless, openjdk-21-jdk).
	javaPackage = regexp.MustCompile(`^openjdk-[0-9]+-(jre|jdk)(-headless)?$`)
	// pythonPackage matches the interpreter packages distroless python is made of (python3.11-minimal,
	// libpython3.11-minimal).
	pythonPackage = regexp.MustCompile(`^(lib)?python3(\.[0-9]+)?-minimal$`)
)

// distrolessAnalyzer decides whether a root is distroless and which flavour.
type distrolessAnalyzer struct{}

// NewDistroless returns the analyzer that says whether a root has no shell and no package manager (what makes
// exec-based scanners fail) and which of Google's distroless flavours it matches.
func NewDistroless() Analyzer { return distrolessAnalyzer{} }

func (distrolessAnalyzer) Name() string { return "distroless" }

func (distrolessAnalyzer) Version() int { return 1 }

// Requires dpkg: the flavour comes from the Debian packages found.
func (distrolessAnalyzer) Requires() []string { return []string{dpkgName} }

func (distrolessAnalyzer) Paths() []string {
	ps := shellPaths()
	ps = append(ps, packageManagerPaths...)
	// The flavour depends on the packages and on the runtimes outside packages.
	return append(ps, dpkgStatusPath, dpkgStatusDir+"/*", distrolessNodePath, jvmDir+"/*/bin/java")
}

// shellPaths lists every directory/shell combination.
func shellPaths() []string {
	var ps []string
	for _, d := range shellDirs {
		for _, s := range shellNames {
			ps = append(ps, d+"/"+s)
		}
	}
	return ps
}

// Analyze stats the fixed shell and package manager paths and names the flavour. It sets out.Distroless, replacing
// any earlier value.
func (a distrolessAnalyzer) Analyze(ctx context.Context, fsys FS, out *report.Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d := &report.Distroless{
		Shells:          a.present(fsys, shellPaths(), out),
		PackageManagers: a.present(fsys, packageManagerPaths, out),
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	d.Distroless = len(d.Shells) == 0 && len(d.PackageManagers) == 0
	if d.Distroless {
		d.Flavour = a.flavour(fsys, out)
	}
	out.Distroless = d
	return nil
}

// present returns, sorted, the paths that are regular files or symlinks resolving (within the root) to one. A
// dangling link or a directory named bash is no shell. Errors other than absence are reported per path.
func (a distrolessAnalyzer) present(fsys FS, paths []string, out *report.Result) []string {
	var found []string
	for _, p := range paths {
		ok, err := isRegularOrLinkToRegular(fsys, p)
		if err != nil {
			out.Errors = append(out.Errors, report.FileError{Analyzer: a.Name(), Path: p, Err: err.Error()})
			continue
		}
		if ok {
			found = append(found, p)
		}
	}
	slices.Sort(found)
	return found
}

// isRegularOrLinkToRegular reports whether p is a regular file, or a symlink fsys resolves to one. Absence of p, of
// a parent or of a link's target (and a parent that is not a directory) is a plain false.
func isRegularOrLinkToRegular(fsys FS, p string) (bool, error) {
	fi, err := fs.Lstat(fsys, p)
	if err != nil {
		return false, ignoreAbsent(err)
	}
	switch {
	case fi.Mode().IsRegular():
		return true, nil
	case fi.Mode()&fs.ModeSymlink == 0:
		return false, nil
	}
	fi, err = fsys.Stat(p)
	if err != nil {
		return false, ignoreAbsent(err)
	}
	return fi.Mode().IsRegular(), nil
}

// ignoreAbsent turns "does not exist", a path through a non-directory and a link loop into no error: they all
// mean there is no file there to exec.
func ignoreAbsent(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.ELOOP) {
		return nil
	}
	return err
}

// flavour names the distroless flavour from the packages found and from runtimes distroless installs outside
// packages. The most specific wins: a language runtime over cc over base over static. A root with more than one
// language runtime matches none of Google's images and gets no flavour; so does one without base-files, which every
// distroless image has (a scratch image with one static binary is distroless, but not Google's).
func (a distrolessAnalyzer) flavour(fsys FS, out *report.Result) string {
	pkgs := map[string]bool{}
	for _, p := range out.Packages {
		if p.Ecosystem == report.EcosystemDebian {
			pkgs[p.Name] = true
		}
	}
	if !pkgs["base-files"] {
		return ""
	}
	var runtimes []string
	if a.hasJava(fsys, pkgs, out) {
		runtimes = append(runtimes, FlavourJava)
	}
	if slices.ContainsFunc(slices.Collect(maps.Keys(pkgs)), pythonPackage.MatchString) {
		runtimes = append(runtimes, FlavourPython)
	}
	if pkgs["nodejs"] || a.regular(fsys, distrolessNodePath, out) {
		runtimes = append(runtimes, FlavourNodejs)
	}
	switch {
	case len(runtimes) == 1:
		return runtimes[0]
	case len(runtimes) > 1:
		return ""
	case pkgs["libstdc++6"]:
		return FlavourCC
	case pkgs["libc6"]:
		return FlavourBase
	}
	return FlavourStatic
}

// hasJava looks for a JRE package, else for a usr/lib/jvm/*/bin/java file (a JRE copied in without dpkg).
func (a distrolessAnalyzer) hasJava(fsys FS, pkgs map[string]bool, out *report.Result) bool {
	if slices.ContainsFunc(slices.Collect(maps.Keys(pkgs)), javaPackage.MatchString) {
		return true
	}
	entries, err := a.jvms(fsys)
	if err != nil {
		out.Errors = append(out.Errors, report.FileError{Analyzer: a.Name(), Path: jvmDir, Err: err.Error()})
	}
	for _, e := range entries {
		if a.regular(fsys, path.Join(jvmDir, e.Name(), "bin/java"), out) {
			return true
		}
	}
	return false
}

// jvms lists at most distrolessMaxJVMs entries of usr/lib/jvm, so a hostile directory of millions of entries costs
// bounded memory. A missing directory is no error.
func (a distrolessAnalyzer) jvms(fsys FS) ([]fs.DirEntry, error) {
	dir, err := fsys.Open(jvmDir)
	if err != nil {
		return nil, ignoreAbsent(err)
	}
	defer dir.Close()
	rd, ok := dir.(fs.ReadDirFile)
	if !ok {
		return nil, nil // not a directory
	}
	entries, err := rd.ReadDir(distrolessMaxJVMs)
	if err != nil && !errors.Is(err, io.EOF) {
		return entries, err
	}
	return entries, nil
}

// regular is isRegularOrLinkToRegular with errors reported to out.
func (a distrolessAnalyzer) regular(fsys FS, p string, out *report.Result) bool {
	ok, err := isRegularOrLinkToRegular(fsys, p)
	if err != nil {
		out.Errors = append(out.Errors, report.FileError{Analyzer: a.Name(), Path: p, Err: err.Error()})
	}
	return ok
}
