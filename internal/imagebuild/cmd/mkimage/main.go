// Command mkimage builds rootscan's container image without a docker engine
// (see package imagebuild); `make image` runs it from the repository root:
//
//	go run ./internal/imagebuild/cmd/mkimage -version 0.1.0 -o bin/image [-pin deploy]
//
// It writes DIR/oci (an OCI layout), DIR/rootscan.tar (for `docker load` and
// `ctr images import`), DIR/image.env and DIR/sbom.cdx.json, and prints
// repository:tag@digest. With -rootfs it writes only the image's files into a
// directory, for the Dockerfile.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/rootscan/rootscan/internal/imagebuild"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run() error {
	var o imagebuild.Options
	var out, pin, rootfs string
	flag.StringVar(&o.Source.Version, "version", "", "version linked into the binary and annotated (required)")
	flag.StringVar(&o.Repository, "repository", imagebuild.DefaultRepository, "image repository")
	flag.StringVar(&o.Tag, "tag", "", "image tag (default: the version)")
	flag.StringVar(&o.Arch, "arch", runtime.GOARCH, "GOARCH of the binary and the image")
	flag.StringVar(&o.CacheDir, "cache", ociimage.DefaultCacheDir(), "cache of downloaded .debs")
	flag.StringVar(&o.Source.Dir, "src", ".", "the module's root, a git work tree")
	flag.StringVar(&out, "o", "bin/image", "output directory")
	flag.StringVar(&pin, "pin", "", "deploy directory whose manifests to point at the built image (needs a clean work tree)")
	flag.StringVar(&rootfs, "rootfs", "", "write only the image's files into this directory (no git needed)")
	flag.Parse()
	if o.Source.Version == "" || flag.NArg() != 0 {
		flag.Usage()
		return fmt.Errorf("need -version and no arguments")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if rootfs != "" {
		img, err := imagebuild.Build(ctx, o)
		if err != nil {
			return err
		}
		return imagebuild.WriteRootFS(img, rootfs)
	}
	src, err := imagebuild.GitSource(ctx, o.Source.Dir, o.Source.Version)
	if err != nil {
		return err
	}
	if pin != "" && src.Dirty() {
		return fmt.Errorf("-pin: the work tree has uncommitted changes, so nobody could rebuild the digest; commit first")
	}
	o.Source = src
	img, err := imagebuild.Build(ctx, o)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	res, err := imagebuild.Write(img, src, out)
	if err != nil {
		return err
	}
	slog.Info("wrote image", "dir", out, "ref", res.Pin.Ref(), "revision", src.Revision,
		"compressed_bytes", res.Compressed, "unpacked_bytes", res.Unpacked)
	if o.Arch == runtime.GOARCH {
		if err := imagebuild.WriteSBOM(ctx, img, out); err != nil {
			return err
		}
	} else {
		slog.Warn("no SBOM: the image's scanner does not run on this machine", "arch", o.Arch)
	}
	if pin != "" {
		if err := imagebuild.PinDeploy(pin, res.Pin); err != nil {
			return err
		}
		slog.Info("pinned", "deploy", pin)
	}
	fmt.Println(res.Pin.Ref())
	return nil
}
