package inuse

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rootscan/rootscan/report"
)

// On a merged-/usr Debian root, the files the kernel reports (resolved: usr/lib/..., usr/bin/...) belong to the
// packages whose lists name them by their other spelling (/lib/..., /bin/...).
func TestOwnersMergedUsr(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root := debianRoot(t, ctx)
	_, x := scanRoot(t, ctx, root)
	for _, c := range []struct {
		path string
		want []string
	}{
		// libc6 lists /lib/x86_64-linux-gnu/libc.so.6 (lib -> usr/lib).
		{"/usr/lib/x86_64-linux-gnu/libc.so.6", []string{"libc6"}},
		// /lib64/ld-linux-x86-64.so.2 is a link in libc6 to the real loader.
		{"/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", []string{"libc6"}},
		// coreutils lists /bin/sleep (bin -> usr/bin).
		{"/usr/bin/sleep", []string{"coreutils"}},
		{"/usr/bin/dash", []string{"dash"}},
		{"/usr/lib/x86_64-linux-gnu/libssl.so.3", []string{"libssl3"}},
		// Nobody owns these.
		{"/usr/local/bin/tool", nil},
		{"/etc/passwd-", nil},
		// Not a path of the root.
		{"anon_inode:[perf_event]", nil},
		{"", nil},
	} {
		if _, err := os.Lstat(filepath.Join(root, c.path)); c.want != nil && err != nil {
			t.Fatalf("%s: the root does not hold it: %v", c.path, err)
		}
		if got := pkgNames(x.ownersOf(c.path)); !slices.Equal(got, c.want) {
			t.Errorf("Owners(%q) = %v, want %v", c.path, got, c.want)
		}
	}
	// The list's spelling is not what the kernel reports on this root, and is not indexed.
	if got := x.ownersOf("/lib/x86_64-linux-gnu/libc.so.6"); len(got) != 0 {
		t.Errorf("the unresolved alias is indexed: %v", got)
	}
}

// A real process run from the root: its /proc/<pid>/maps names the program and the libraries it mapped executable.
// libc6 (libc, the loader) and coreutils (sleep) are in use; libssl3 and dash, installed and not mapped, are not.
func TestRealProcessMaps(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root := debianRoot(t, ctx)
	res, x := scanRoot(t, ctx, root)

	cmd := exec.CommandContext(ctx, "/usr/bin/sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var used []string
	// The loader maps libc after exec; wait until it has (or the test's deadline).
	for ctx.Err() == nil {
		paths, _, err := processMaps("/proc", cmd.Process.Pid, mapsMaxBytes)
		if err != nil {
			t.Fatal(err)
		}
		used = trimRoot(paths, root)
		if slices.Contains(used, "/usr/lib/x86_64-linux-gnu/libc.so.6") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("mapped executable: %v", used)
	if got, want := pkgNames(x.packagesOf(used)), []string{"coreutils", "libc6"}; !slices.Equal(got, want) {
		t.Fatalf("packages in use = %v, want %v", got, want)
	}

	// Findings on each installed package: the in-use ones are true, the rest false.
	for _, p := range res.Packages {
		res.Vulnerabilities = append(res.Vulnerabilities, report.Vulnerability{ID: "TEST-" + p.Name,
			Package: p.Name, Version: p.Version, Ecosystem: p.Ecosystem, PURL: p.PURL})
	}
	Mark(res, x, used, true)
	got := map[string]report.InUse{}
	for _, v := range res.Vulnerabilities {
		got[v.Package] = v.InUse
	}
	want := map[string]report.InUse{"libc6": report.InUseTrue, "coreutils": report.InUseTrue,
		"libssl3": report.InUseFalse, "dash": report.InUseFalse, "base-files": report.InUseFalse}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: in use %q, want %q (all: %v)", name, got[name], w, got)
		}
	}
	Mark(res, x, used, false)
	for _, v := range res.Vulnerabilities {
		if v.InUse != report.InUseUnknown {
			t.Errorf("%s without runtime data: %q, want unknown", v.Package, v.InUse)
		}
	}
}

// A process in a container's situation: its own mount namespace, the root pivoted into the Debian root, as runc
// does. Read from the host, its maps name the container's paths; the processes of its namespace use libc6 and
// coreutils, not libssl3 or dash.
func TestNamespaceMaps(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mount namespaces need root")
	}
	for _, tool := range []string{"unshare", "mount", "pivot_root", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root := debianRoot(t, ctx)
	_, x := scanRoot(t, ctx, root)
	if err := os.Mkdir(filepath.Join(root, "old"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The host's sh, mount and pivot_root set the namespace up, then the root's sleep replaces them.
	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount --bind "$1" "$1" && cd "$1" && pivot_root . old && exec /usr/bin/sleep 60`, "sh", root)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var used []string
	for ctx.Err() == nil {
		exe, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "exe"))
		if exe == "/usr/bin/sleep" {
			var err error
			if used, err = NamespaceMaps(ctx, "/proc", cmd.Process.Pid); err != nil {
				t.Fatal(err)
			}
			if slices.Contains(used, "/usr/lib/x86_64-linux-gnu/libc.so.6") {
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("mapped executable in the namespace: %v", used)
	if got, want := pkgNames(x.packagesOf(used)), []string{"coreutils", "libc6"}; !slices.Equal(got, want) {
		t.Fatalf("packages in use = %v, want %v", got, want)
	}
	// This test's own process is in the host's namespace: none of its mappings are counted.
	self, err := NamespaceMaps(ctx, "/proc", os.Getpid())
	if err != nil || slices.Equal(self, used) {
		t.Errorf("host namespace: %v, %v", self, err)
	}
}
