package imagebuild

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/rootscan/rootscan/internal/testbed/ociimage"
)

// WriteRootFS writes the image's files, its layers applied in order, into dir
// with their modes and owners: the Dockerfile's build stage runs this and its
// final stage copies dir onto scratch, so a docker build ships the same files
// as `make image`. Parent directories missing from the layers are created 0755.
// Only directories and regular files are supported; the image has nothing else.
func WriteRootFS(img *ociimage.Image, dir string) error {
	for _, l := range img.Layers {
		for _, f := range l.Files {
			if err := writeRootFSFile(dir, f); err != nil {
				return fmt.Errorf("rootfs %s: %w", f.Path, err)
			}
		}
	}
	return nil
}

func writeRootFSFile(dir string, f ociimage.File) error {
	p := filepath.Join(dir, filepath.FromSlash(f.Path))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	switch f.Mode.Type() {
	case fs.ModeDir:
		if err := os.Mkdir(p, 0o700); err != nil && !os.IsExist(err) {
			return err
		}
	case 0:
		if f.Open != nil || f.Size > int64(len(f.Data)) {
			return fmt.Errorf("streamed or padded content is not supported")
		}
		if err := os.WriteFile(p, f.Data, 0o600); err != nil {
			return err
		}
	default:
		return fmt.Errorf("file type %v is not supported", f.Mode.Type())
	}
	if err := os.Lchown(p, f.Uid, f.Gid); err != nil {
		return err
	}
	// Chmod after chown: chown clears setuid and setgid bits.
	return os.Chmod(p, f.Mode&(fs.ModePerm|fs.ModeSticky|fs.ModeSetuid|fs.ModeSetgid))
}
