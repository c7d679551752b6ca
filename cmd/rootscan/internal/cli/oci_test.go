package cli

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootscan/rootscan/internal/testbed/ociimage"
)

// TestMaxUnpackedSize: --max-unpacked-size bounds what an OCI layout unpacks (a 2 MiB layer is refused at 1MiB and
// read at 4MiB), and takes sizes with IEC suffixes.
func TestMaxUnpackedSize(t *testing.T) {
	layout := filepath.Join(t.TempDir(), "layout")
	img := &ociimage.Image{Name: "rootscan.test/big:1", Layers: []ociimage.Layer{{Files: []ociimage.File{
		{Path: "data/blob", Mode: 0o644, Data: bytes.Repeat([]byte("x"), 2<<20)},
	}}}}
	if _, err := img.WriteLayout(layout); err != nil {
		t.Fatal(err)
	}
	scan := func(size string) (string, string, int) {
		return run(t, "scan", "--oci", layout, "--scratch-dir", t.TempDir(), "--no-baseline", "-q", "--db", t.TempDir(), "--max-unpacked-size", size)
	}
	out, stderr, code := scan("1MiB")
	if code != exitPartial || !strings.Contains(out, "more than 1048576 bytes") {
		t.Errorf("1MiB: exit %d, want %d and the limit named:\n%s%s", code, exitPartial, out, stderr)
	}
	if out, stderr, code := scan("4MiB"); code != exitOK {
		t.Errorf("4MiB: exit %d:\n%s%s", code, out, stderr)
	}
	if _, stderr, code := scan("lots"); code != exitFatal || !strings.Contains(stderr, "want a size such as 2GiB") {
		t.Errorf("lots: exit %d, %s", code, stderr)
	}
}
