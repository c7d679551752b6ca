// Command mkimage writes the testbed's images as an OCI image layout (or, with
// -archive, as a tar importable by `ctr images import`), for `make demo` and
// for trying the scanner by hand without a registry:
//
//	go run ./internal/testbed/cmd/mkimage -o DIR pause distroless hostile
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/rootscan/rootscan/internal/testbed/ociimage"
)

// builders maps the names accepted on the command line to the image builders.
var builders = map[string]func(context.Context, string) (*ociimage.Image, error){
	"pause":      ociimage.Pause,
	"distroless": ociimage.Distroless,
	"hostile":    ociimage.Hostile,
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run() error {
	out := flag.String("o", "", "output directory (OCI image layout; images are added to an existing index.json)")
	archive := flag.String("archive", "", "also write each image as NAME.tar under this directory (for ctr images import)")
	cache := flag.String("cache", ociimage.DefaultCacheDir(), "cache for built binaries and downloaded .debs")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: mkimage -o DIR [-archive DIR] [-cache DIR] pause|distroless|hostile...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if (*out == "" && *archive == "") || flag.NArg() == 0 {
		flag.Usage()
		return fmt.Errorf("need -o or -archive and at least one image")
	}
	for _, name := range flag.Args() {
		if builders[name] == nil {
			return fmt.Errorf("unknown image %q (want pause, distroless or hostile)", name)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, name := range flag.Args() {
		img, err := builders[name](ctx, *cache)
		if err != nil {
			return err
		}
		if *out != "" {
			dgst, err := img.WriteLayout(*out)
			if err != nil {
				return err
			}
			slog.Info("wrote image", "name", img.Name, "manifest", dgst, "layout", *out)
		}
		if *archive != "" {
			if err := writeArchive(img, *archive, name); err != nil {
				return err
			}
		}
		for _, p := range img.Packages() {
			slog.Info("package", "image", img.Name, "name", p.Name, "version", p.Version, "arch", p.Architecture, "source", p.Source, "sourceVersion", p.SourceVersion)
		}
	}
	return nil
}

// writeArchive writes img as DIR/NAME.tar.
func writeArchive(img *ociimage.Image, dir, name string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	path := dir + "/" + name + ".tar"
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create archive: %w", err)
	}
	dgst, err := img.WriteArchive(f)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	slog.Info("wrote archive", "name", img.Name, "manifest", dgst, "file", path)
	return nil
}
