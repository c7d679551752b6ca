package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rootscan/rootscan/internal/testbed"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
)

// A container built to attack the scanner: links to host paths and out through "..", a FIFO where the package
// database should be, a device node, a 50 MiB garbage entry, binary junk, a deep tree, a link cycle, and (written by
// "the container" into its upper dir) a 10 GiB sparse file. The scan must finish, report each bad file, find the one
// good package, read nothing of the host and keep its memory bounded.
func TestScanHostileContainer(t *testing.T) {
	bed, ctx, _, ref := startBed(t, ociimage.Hostile)
	_, id := runPodWith(t, ctx, bed, testbed.PodSpec{Name: "evil", Namespace: "attack"}, testbed.ContainerSpec{Name: "evil", Image: ref.Name})
	upper, _ := snapshotDirs(t, bed, id)
	sparse := filepath.Join(upper, "var/lib/dpkg/status.d/sparse")
	if err := os.MkdirAll(filepath.Dir(sparse), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(10 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()

	hostSecrets := []string{}
	for _, p := range []string{"/etc/hostname", "/etc/shadow", "/etc/passwd"} {
		if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			hostSecrets = append(hostSecrets, strings.SplitN(strings.TrimSpace(string(b)), "\n", 2)[0])
		}
	}

	mountDir := filepath.Join(t.TempDir(), "mounts")
	doc, res := scanJSON(t, bed, mountDir)
	t.Logf("hostile scan: exit %d in %v, max RSS %d KiB", res.code, res.elapsed, res.maxRSSKiB)
	if res.code != 0 {
		t.Fatalf("a hostile container is a per-file problem, not a failed scan: exit %d\n%s", res.code, res.stderr)
	}
	r := reportFor(t, doc, id)
	if r.Error != "" {
		t.Fatalf("report error: %s", r.Error)
	}
	if got := gotPackages(r.Result); len(got) != 1 || !strings.HasPrefix(got[0], ociimage.HostileGoodPackage+" "+ociimage.HostileGoodVersion+" ") {
		t.Errorf("packages = %q, want only %s %s", got, ociimage.HostileGoodPackage, ociimage.HostileGoodVersion)
	}
	if got, want := goPackages(r.Result), wantGoProgram("rootscan.test/pause", "pause"); !equalStrings(got, want) {
		t.Errorf("Go packages %q, want %q", got, want)
	}
	errsByPath := map[string]string{}
	for _, e := range r.Result.Errors {
		errsByPath[e.Path] += e.Err + "; "
	}
	for path, want := range map[string]string{
		"var/lib/dpkg/status":            "not a regular file",
		"var/lib/dpkg/status.d/dev":      "not a regular file",
		"var/lib/dpkg/status.d/big":      "exceeds size limit",
		"var/lib/dpkg/status.d/sparse":   "exceeds size limit",
		"var/lib/dpkg/status.d/garbage":  "",
		"var/lib/dpkg/status.d/link-out": "",
	} {
		got, ok := errsByPath[path]
		if !ok {
			t.Errorf("no per-file error for %s; errors: %+v", path, r.Result.Errors)
			continue
		}
		if !strings.Contains(got, want) {
			t.Errorf("error for %s = %q, want it to say %q", path, got, want)
		}
	}
	// etc/os-release -> /etc/shadow must resolve to the image's own etc/shadow, never the host's.
	if o := r.Result.OS; o != nil && o.ID != "linux" {
		t.Errorf("OS = %+v: read from outside the container?", o)
	}
	// Not the whole output: the node name is the host's hostname by design. Nor the Go programs' function sets:
	// base64 of 64-bit hashes, random text that may hold a short host string ("vm") by chance.
	checked := *r.Result
	checked.GoBinaries = slices.Clone(checked.GoBinaries)
	for i := range checked.GoBinaries {
		checked.GoBinaries[i].Symbols = nil
	}
	resultJSON, _ := json.Marshal(&checked)
	for _, s := range hostSecrets {
		if strings.Contains(string(resultJSON), s) {
			t.Errorf("output contains host content %.20q...", s)
		}
	}
	if res.maxRSSKiB <= 0 || res.maxRSSKiB > 128<<10 {
		t.Errorf("max RSS %d KiB: memory not bounded by the file size caps", res.maxRSSKiB)
	}
	assertNoMountsUnder(t, mountDir)
}
