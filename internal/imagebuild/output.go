package imagebuild

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/rootscan/rootscan/internal/testbed/ociimage"
)

// Output names, under the directory Write is given.
const (
	LayoutDir   = "oci"          // OCI image layout
	ArchiveFile = "rootscan.tar" // OCI layout and docker-archive in one tar
	PinFile     = "image.env"    // the reference, as deploy/image.env holds it
	SBOMFile    = "sbom.cdx.json"
)

// Output is what Write wrote.
type Output struct {
	Pin Pin
	// Compressed is the bytes a registry stores and a node pulls: the
	// manifest, config and gzip layers.
	Compressed int64
	// Unpacked is the bytes of the files in the image.
	Unpacked int64
}

// Write writes the image under dir as an OCI layout (replacing one there) and
// as an archive, and the image.env that `mkimage -pin` would put in deploy/.
func Write(img *ociimage.Image, src Source, dir string) (*Output, error) {
	layout := filepath.Join(dir, LayoutDir)
	if err := os.RemoveAll(layout); err != nil {
		return nil, fmt.Errorf("replace %s: %w", layout, err)
	}
	res, err := img.Write(layout)
	if err != nil {
		return nil, err
	}
	if err := writeArchive(img, filepath.Join(dir, ArchiveFile), res.Manifest.Digest); err != nil {
		return nil, err
	}
	repo, tag, _ := strings.Cut(img.Name, ":")
	out := &Output{
		Pin:        Pin{Repository: repo, Tag: tag, Digest: res.Manifest.Digest.String(), Revision: src.Revision},
		Compressed: res.Manifest.Size + res.Config.Size,
	}
	for _, l := range res.Layers {
		out.Compressed += l.Size
	}
	for _, l := range img.Layers {
		for _, f := range l.Files {
			out.Unpacked += max(int64(len(f.Data)), f.Size)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, PinFile), out.Pin.Format(), 0o644); err != nil {
		return nil, fmt.Errorf("write %s: %w", PinFile, err)
	}
	return out, nil
}

// writeArchive writes the archive through a temporary file, checking it holds
// the manifest the layout does.
func writeArchive(img *ociimage.Image, path string, want digest.Digest) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".archive-")
	if err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	defer os.Remove(f.Name())
	got, err := img.WriteArchive(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	if got != want {
		return fmt.Errorf("archive holds manifest %s, the layout %s", got, want)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// Binary returns the scanner the image holds.
func Binary(img *ociimage.Image) ([]byte, error) {
	for _, l := range img.Layers {
		for _, f := range l.Files {
			if f.Path == BinaryPath {
				return f.Data, nil
			}
		}
	}
	return nil, fmt.Errorf("image %s has no %s", img.Name, BinaryPath)
}

// RunBinary runs the image's scanner on this machine (it must be built for
// its architecture) with args and returns its stdout: how `make image`
// writes the image's SBOM, and how tests scan the image with itself.
func RunBinary(ctx context.Context, img *ociimage.Image, args ...string) ([]byte, error) {
	bin, err := Binary(img)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "imagebuild-run-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	exe := filepath.Join(tmp, "rootscan")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("rootscan %s: %w: %.2000s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// WriteSBOM writes the CycloneDX SBOM of the layout under dir, made by the
// image's own scanner, as dir/sbom.cdx.json.
func WriteSBOM(ctx context.Context, img *ociimage.Image, dir string) error {
	sbom, err := RunBinary(ctx, img, "sbom", "--oci", filepath.Join(dir, LayoutDir), "-f", "cyclonedx")
	if err != nil {
		return fmt.Errorf("sbom: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, SBOMFile), sbom, 0o644)
}
