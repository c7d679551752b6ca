package integration

import (
	"context"
	"crypto/md5"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/internal/testbed"
)

// --oci and --dir targets: the same image scanned from an OCI layout and from a plain directory gives the same
// inventory as the container scan, with the manifest digest of the layout.
func TestScanOCIAndDirTargets(t *testing.T) {
	testbed.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	img, layout, manifest := distrolessLayout(t, ctx)
	scratch := t.TempDir()
	res := runRootscan(t, 2*time.Minute, "scan", "-o", "json", "--oci", layout, "--scratch-dir", scratch)
	if res.code != 0 {
		t.Fatalf("--oci exit %d: %s", res.code, res.stderr)
	}
	doc := decode(t, res)
	if len(doc.Reports) != 1 {
		t.Fatalf("reports: %d", len(doc.Reports))
	}
	r := doc.Reports[0]
	if r.Target.Kind != "oci" || r.Target.ImageDigest != manifest.String() || r.Target.Image != img.Name {
		t.Errorf("--oci target = %+v, want digest %s", r.Target, manifest)
	}
	if got, want := gotPackages(r.Result), wantPackages(img); !equalStrings(got, want) {
		t.Errorf("--oci packages\n got  %q\n want %q", got, want)
	}
	if ents, _ := os.ReadDir(scratch); len(ents) != 0 {
		t.Errorf("--oci left %d entries in the scratch dir", len(ents))
	}

	// The same image unpacked as a plain directory.
	root, _, err := fsaccess.OpenOCI(ctx, layout, t.TempDir(), fsaccess.OCIOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	res = runRootscan(t, time.Minute, "scan", "-o", "json", "--dir", root.Path())
	if res.code != 0 {
		t.Fatalf("--dir exit %d: %s", res.code, res.stderr)
	}
	doc = decode(t, res)
	if got, want := gotPackages(doc.Reports[0].Result), wantPackages(img); !equalStrings(got, want) {
		t.Errorf("--dir packages\n got  %q\n want %q", got, want)
	}
	if o := doc.Reports[0].Result.OS; o == nil || o.ID != "debian" {
		t.Errorf("--dir OS = %+v", o)
	}

	// --verify-packages: a changed libc6 file in the root is an integrity finding with the md5 the package recorded.
	libc := "usr/lib/x86_64-linux-gnu/libc.so.6"
	if _, err := os.Stat(filepath.Join(root.Path(), libc)); err != nil {
		libc = "lib/x86_64-linux-gnu/libc.so.6"
	}
	if err := os.WriteFile(filepath.Join(root.Path(), libc), []byte("tampered"), 0o755); err != nil {
		t.Fatal(err)
	}
	res = runRootscan(t, time.Minute, "scan", "-o", "json", "--dir", root.Path(), "--verify-packages")
	if res.code != 0 {
		t.Fatalf("--verify-packages exit %d: %s", res.code, res.stderr)
	}
	in := decode(t, res).Reports[0].Result.Integrity
	if len(in) != 1 || in[0].Package != "libc6" || in[0].Path != libc || in[0].Found != fmt.Sprintf("%x", md5.Sum([]byte("tampered"))) || len(in[0].Expected) != 32 {
		t.Errorf("integrity findings = %+v, want libc6 %s with md5 of %q", in, libc, "tampered")
	}

	// A target that cannot be opened is a failed report (exit 1), not a crash.
	res = runRootscan(t, time.Minute, "scan", "-o", "json", "--oci", filepath.Join(t.TempDir(), "missing"))
	if res.code != 1 || decode(t, res).Reports[0].Error == "" {
		t.Errorf("missing layout: exit %d, output %s", res.code, res.stdout)
	}
}
