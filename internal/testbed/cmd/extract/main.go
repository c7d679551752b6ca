// Command extract unpacks one image of an OCI image layout into a plain directory, so tools that only scan
// directories (syft dir:, scalibr --root, rootscan scan --dir) can be compared on exactly the tree rootscan
// extracts with fsaccess.OpenOCI:
//
//	go run ./internal/testbed/cmd/extract -layout LAYOUT [-ref NAME] -o DIR
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/rootscan/rootscan/fsaccess"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "extract:", err)
		os.Exit(1)
	}
}

func run() error {
	layout := flag.String("layout", "", "OCI image layout directory")
	ref := flag.String("ref", "", "image ref name to pick when the layout holds several")
	out := flag.String("o", "", "directory to create with the image's root filesystem (must not exist)")
	flag.Parse()
	if *layout == "" || *out == "" {
		flag.Usage()
		return errors.New("need -layout and -o")
	}
	if _, err := os.Lstat(*out); err == nil {
		return fmt.Errorf("%s already exists", *out)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Extract next to the destination so the final rename stays on one filesystem.
	scratch := filepath.Dir(filepath.Clean(*out))
	root, img, err := fsaccess.OpenOCI(ctx, *layout, scratch, fsaccess.OCIOptions{Ref: *ref})
	if err != nil {
		return fmt.Errorf("extract %s: %w", *layout, err)
	}
	// Moving the rootfs out before Close keeps it: Close removes only the (then empty) scratch directory.
	renameErr := os.Rename(root.Path(), *out)
	if err := errors.Join(renameErr, root.Close()); err != nil {
		return fmt.Errorf("extract %s to %s: %w", *layout, *out, err)
	}
	fmt.Fprintf(os.Stderr, "extracted %s (%s) to %s\n", *layout, img.ManifestDigest, *out)
	return nil
}
