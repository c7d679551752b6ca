package scan

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
)

// driftTree writes files into dir: a value ending in "/" is a directory, "->x" a symlink to x, "fifo" a FIFO,
// "whiteout" a 0/0 character device, "null" a 1/3 one; anything else is file content (mode 0644, or 0755 with a
// leading "+x:").
func driftTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, v := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasSuffix(name, "/") || strings.HasSuffix(v, "/"):
			err = os.MkdirAll(p, 0o755)
		case strings.HasPrefix(v, "->"):
			err = os.Symlink(v[2:], p)
		case v == "fifo":
			err = unix.Mkfifo(p, 0o644)
		case v == "whiteout":
			err = unix.Mknod(p, unix.S_IFCHR, 0)
		case v == "null":
			if err = unix.Mknod(p, unix.S_IFCHR, int(unix.Mkdev(1, 3))); err == nil {
				err = os.Chmod(p, 0o666) // mknod's mode is cut by the umask
			}
		case strings.HasPrefix(v, "+x:"):
			err = os.WriteFile(p, []byte(v[3:]), 0o755)
		default:
			err = os.WriteFile(p, []byte(v), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func requireRootForDrift(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("ROOTSCAN_INTEGRATION") == "require" {
			t.Fatal("drift tests need root (mknod whiteouts, trusted.* xattrs)")
		}
		t.Skip("drift tests need root (mknod whiteouts, trusted.* xattrs)")
	}
}

func openDriftRoot(t testing.TB, dir string) *fsaccess.Root {
	t.Helper()
	r, err := fsaccess.OpenDir(dir, fsaccess.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// An upper dir as overlayfs leaves it after a container wrote, chmodded and deleted things, against its image.
func driftFixture(t testing.TB) (upper, image string) {
	requireRootForDrift(t)
	image, upper = t.TempDir(), t.TempDir()
	driftTree(t, image, map[string]string{
		"etc/issue":       "Debian GNU/Linux 12\n",
		"etc/keep":        "unchanged",
		"usr/bin/tool":    "+x:\x7fELF-tool",
		"opt/app/a":       "a",
		"opt/app/b/c":     "c",
		"opt/app/d":       "->a",
		"var/lib/old":     "old",
		"var/lib/olddir/": "",
		"home/":           "",
		"bin/":            "",
	})
	driftTree(t, upper, map[string]string{
		"etc/issue":          "pwned\n",
		"etc/new.conf":       "x=1",
		"etc/link":           "->issue",
		"etc/resolv.conf":    "",
		"etc/hostname":       "not-empty: the container wrote it",
		"usr/bin/tool":       "+x:\x7fELF-tool-patched",
		"usr/local/bin/evil": "+x:\x7fELF-evil",
		"tmp/payload":        "#!/bin/sh\necho hi\n",
		"tmp/data":           "plain data",
		"tmp/fifo":           "fifo",
		"tmp/null":           "null",
		"var/lib/old":        "whiteout",
		"var/lib/olddir":     "whiteout",
		"var/lib/never":      "whiteout",
		"opt/app/b":          "replaced dir by a file",
		"opt/app/new/":       "",
		"home/":              "",
		"proc/":              "",
		"sys/":               "",
		"run/secrets/kubernetes.io/serviceaccount/": "",
	})
	if err := unix.Setxattr(filepath.Join(upper, "opt/app"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(upper, "home"), 0o700); err != nil {
		t.Fatal(err)
	}
	return upper, image
}

func TestDrift(t *testing.T) {
	upper, image := driftFixture(t)
	got, errs, err := Drift(context.Background(), openDriftRoot(t, upper), openDriftRoot(t, image), DriftOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != 0 {
		t.Errorf("errors: %+v", errs)
	}
	want := []report.DriftEntry{
		{Path: "etc/hostname", Change: report.DriftAdded, Type: "file", Mode: 0o644, Size: 33},
		{Path: "etc/issue", Change: report.DriftChanged, Type: "file", Mode: 0o644, Size: 6},
		{Path: "etc/link", Change: report.DriftAdded, Type: "symlink", Mode: 0o777},
		{Path: "etc/new.conf", Change: report.DriftAdded, Type: "file", Mode: 0o644, Size: 3},
		{Path: "home", Change: report.DriftChanged, Type: "dir", Mode: 0o700},
		{Path: "opt/app", Change: report.DriftChanged, Type: "dir", Mode: 0o755},
		{Path: "opt/app/a", Change: report.DriftDeleted, Type: "file"},
		{Path: "opt/app/b", Change: report.DriftChanged, Type: "file", Mode: 0o644, Size: 22},
		{Path: "opt/app/d", Change: report.DriftDeleted, Type: "symlink"},
		{Path: "opt/app/new", Change: report.DriftAdded, Type: "dir", Mode: 0o755},
		{Path: "tmp", Change: report.DriftAdded, Type: "dir", Mode: 0o755},
		{Path: "tmp/data", Change: report.DriftAdded, Type: "file", Mode: 0o644, Size: 10},
		{Path: "tmp/fifo", Change: report.DriftAdded, Type: "other", Mode: 0o644},
		{Path: "tmp/null", Change: report.DriftAdded, Type: "other", Mode: 0o666},
		{Path: "tmp/payload", Change: report.DriftAdded, Type: "file", Mode: 0o644, Size: 18, Executable: true, SHA256: sha("#!/bin/sh\necho hi\n")},
		{Path: "usr/bin/tool", Change: report.DriftChanged, Type: "file", Mode: 0o755, Size: 17, Executable: true, SHA256: sha("\x7fELF-tool-patched")},
		{Path: "usr/local", Change: report.DriftAdded, Type: "dir", Mode: 0o755},
		{Path: "usr/local/bin", Change: report.DriftAdded, Type: "dir", Mode: 0o755},
		{Path: "usr/local/bin/evil", Change: report.DriftAdded, Type: "file", Mode: 0o755, Size: 9, Executable: true, SHA256: sha("\x7fELF-evil")},
		{Path: "var/lib/old", Change: report.DriftDeleted, Type: "file"},
		{Path: "var/lib/olddir", Change: report.DriftDeleted, Type: "dir"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("drift:\n%s\nwant:\n%s", driftLines(got), driftLines(want))
	}
}

// The result's bytes are bounded as its count is: a bound of half the whole list's bytes cuts it within the bound.
func TestDriftResultBytes(t *testing.T) {
	upper, image := driftFixture(t)
	up, img := openDriftRoot(t, upper), openDriftRoot(t, image)
	size := func(es []report.DriftEntry) int {
		n := 0
		for _, e := range es {
			n += len(e.Path) + len(e.Change) + len(e.Type) + len(e.SHA256)
		}
		return n
	}
	all, _, err := Drift(context.Background(), up, img, DriftOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bound := size(all) / 2
	got, errs, err := Drift(context.Background(), up, img, DriftOptions{MaxResultBytes: bound})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || len(got) >= len(all) || size(got) > bound {
		t.Errorf("%d entries of %d bytes under a %d-byte bound (all: %d entries)", len(got), size(got), bound, len(all))
	}
	want := fmt.Sprintf("drift truncated: the changes listed reached %d bytes", bound)
	if len(errs) == 0 || !strings.Contains(errs[len(errs)-1].Err, want) {
		t.Errorf("errors %+v, want the last with %q", errs, want)
	}
}

func driftLines(es []report.DriftEntry) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "  %+v\n", e)
	}
	return b.String()
}

// Every bound cuts the work and says so: results, entries walked, depth, hash size and hash count.
func TestDriftBounds(t *testing.T) {
	upper, image := driftFixture(t)
	up, img := openDriftRoot(t, upper), openDriftRoot(t, image)
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		opts     DriftOptions
		entries  int
		wantErr  string
		wantHash int
	}{
		{"results", DriftOptions{MaxResults: 3}, 3, "drift truncated: more than 3 changes", 0},
		{"entries", DriftOptions{MaxEntries: 2}, 1, "drift truncated: the upper dir has more than 2 entries", 0},
		{"depth", DriftOptions{MaxDepth: 1}, 10, "drift truncated: deeper than 1 directories", 1},
		{"hash size", DriftOptions{MaxHashSize: 10}, 21, "not hashed: 17 bytes is above the 10 byte limit", 1},
		{"hash count", DriftOptions{MaxHashes: 1}, 21, "more than 1 executables changed", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, errs, err := Drift(ctx, up, img, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.entries {
				t.Errorf("%d entries, want %d:\n%s", len(got), tc.entries, driftLines(got))
			}
			found := false
			for _, e := range errs {
				found = found || strings.Contains(e.Err, tc.wantErr)
			}
			if !found {
				t.Errorf("errors %+v, want one with %q", errs, tc.wantErr)
			}
			hashed := 0
			for _, e := range got {
				if e.SHA256 != "" {
					hashed++
				}
			}
			if hashed != tc.wantHash && tc.wantHash > 0 {
				t.Errorf("%d hashed, want %d", hashed, tc.wantHash)
			}
		})
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := Drift(cctx, up, img, DriftOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled drift: err = %v", err)
	}
}

// A sparse executable in the upper dir (a 256 MiB ELF header with holes, 8 KiB on disk) is listed without a hash,
// and says why, instead of costing a second of SHA-256 over zeros per file.
func TestDriftSparse(t *testing.T) {
	requireRootForDrift(t)
	image, upper := t.TempDir(), t.TempDir()
	driftTree(t, image, map[string]string{"usr/bin/": ""})
	driftTree(t, upper, map[string]string{"usr/bin/small": "+x:\x7fELF small"})
	sparse := filepath.Join(upper, "usr/bin/sparse")
	if err := os.WriteFile(sparse, []byte("\x7fELF\x02"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(sparse, 256<<20); err != nil {
		t.Fatal(err)
	}
	got, errs, err := Drift(context.Background(), openDriftRoot(t, upper), openDriftRoot(t, image), DriftOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	for _, e := range got {
		sums[e.Path] = e.SHA256
	}
	if sums["usr/bin/small"] != sha("\x7fELF small") || sums["usr/bin/sparse"] != "" {
		t.Errorf("hashes %q: want the small program hashed and the sparse file not", sums)
	}
	if len(errs) != 1 || errs[0].Path != "usr/bin/sparse" || !strings.Contains(errs[0].Err, "not hashed: sparse file of 268435456 bytes") {
		t.Errorf("errors %+v, want the sparse file's", errs)
	}
}

// A metadata-only copy-up (metacopy=on: chmod of an image binary) keeps the data in the image: the hash is the image
// file's, not the sparse upper shell's.
func TestDriftMetacopy(t *testing.T) {
	requireRootForDrift(t)
	image, upper := t.TempDir(), t.TempDir()
	driftTree(t, image, map[string]string{"usr/bin/tool": "+x:\x7fELF real content"})
	driftTree(t, upper, map[string]string{"usr/bin/": ""})
	shell := filepath.Join(upper, "usr/bin/tool")
	if err := os.WriteFile(shell, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(shell, 17); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(shell, 0o4755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(shell, "trusted.overlay.metacopy", nil, 0); err != nil {
		t.Fatal(err)
	}
	got, errs, err := Drift(context.Background(), openDriftRoot(t, upper), openDriftRoot(t, image), DriftOptions{})
	if err != nil || len(errs) != 0 {
		t.Fatalf("%v %+v", err, errs)
	}
	want := []report.DriftEntry{{Path: "usr/bin/tool", Change: report.DriftChanged, Type: "file", Mode: 0o4755, Size: 17, Executable: true, SHA256: sha("\x7fELF real content")}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("drift:\n%s\nwant:\n%s", driftLines(got), driftLines(want))
	}
}

func TestDriftMagic(t *testing.T) {
	for in, want := range map[string]string{"\x7fELF\x02": KindELF, "#!/bin/sh": KindScript, "#!": KindScript, "#": "", "": "", "MZ\x90\x00": "", "\x7fEL": ""} {
		if got := magicKind([]byte(in)); got != want {
			t.Errorf("magicKind(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[os.FileMode]uint32{0o755: 0o755, 0o644 | os.ModeSetuid: 0o4644, 0o755 | os.ModeSetgid | os.ModeSticky | os.ModeDir: 0o3755} {
		if got := UnixPerm(in); got != want {
			t.Errorf("UnixPerm(%v) = %o, want %o", in, got, want)
		}
	}
}

// BenchmarkDrift10k: an upper dir with 10,000 added files (100 dirs of 100; every tenth file an executable, hashed)
// over an image of the same shape's parent dirs.
func BenchmarkDrift10k(b *testing.B) {
	requireRootForDrift(b)
	image, upper := b.TempDir(), b.TempDir()
	driftTree(b, image, map[string]string{"srv/": "", "etc/issue": "x"})
	for d := range 100 {
		dir := filepath.Join(upper, "srv", fmt.Sprintf("d%03d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range 100 {
			mode, data := os.FileMode(0o644), []byte("data data data data\n")
			if f%10 == 0 {
				mode, data = 0o755, make([]byte, 16<<10)
				copy(data, "\x7fELF")
			}
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", f)), data, mode); err != nil {
				b.Fatal(err)
			}
		}
	}
	up, img := openDriftRoot(b, upper), openDriftRoot(b, image)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		got, errs, err := Drift(context.Background(), up, img, DriftOptions{MaxResults: 20_000})
		if err != nil || len(errs) != 0 || len(got) != 10_100 {
			b.Fatalf("%d entries, errors %v %v", len(got), errs, err)
		}
	}
}
