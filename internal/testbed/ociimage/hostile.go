package ociimage

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Facts about the hostile image that tests assert against.
const (
	// HostileName is the reference the hostile image is imported under.
	HostileName = "rootscan.test/hostile:1"
	// HostileShadow is the content of the image's own etc/shadow. A scanner
	// following etc/os-release -> /etc/shadow must read this, never the
	// host's file.
	HostileShadow = "IMAGE-SHADOW\n"
	// HostileBigSize is the size of var/lib/dpkg/status.d/big.
	HostileBigSize = 50 << 20
	// HostileDepth is the number of nested directories under opt/deep.
	HostileDepth = 200
	// HostileGoodPackage and HostileGoodVersion name the one valid package
	// stanza, in var/lib/dpkg/status.d/good.
	HostileGoodPackage = "hostile-good"
	HostileGoodVersion = "1.0"
)

// Hostile returns an image built to attack a scanner that reads container
// filesystems from the host. Besides /pause (its entrypoint, so it runs) it has:
//
//   - etc/os-release -> /etc/shadow: an absolute link that, resolved on the
//     host, reads the host's shadow; inside the image it reads etc/shadow,
//     which holds HostileShadow;
//   - usr/lib/os-release -> ../../../../../../etc/hostname: a relative link
//     climbing above the root;
//   - var/lib/dpkg/status: a FIFO, which blocks a reader that opens it;
//   - var/lib/dpkg/status.d/big: HostileBigSize bytes of pseudo-random junk;
//   - var/lib/dpkg/status.d/garbage: 64 KiB of binary junk, for the parser's
//     error path;
//   - var/lib/dpkg/status.d/dev: the character device 1:3 (/dev/null);
//   - var/lib/dpkg/status.d/link-out -> /etc/passwd;
//   - var/lib/dpkg/status.d/good: a valid stanza for HostileGoodPackage
//     HostileGoodVersion, which a scanner should still report;
//   - opt/deep: HostileDepth nested directories with a file at the bottom;
//   - opt/cycle -> . : a symlink loop for walkers that follow links.
//
// A 10 GiB sparse file is not in the image: Go's archive/tar cannot write
// sparse entries and containerd's applier writes every byte of a file anyway,
// so a test that needs one creates it in the container's upper directory.
func Hostile(ctx context.Context, cacheDir string) (*Image, error) {
	if cacheDir == "" {
		cacheDir = DefaultCacheDir()
	}
	bin, err := buildStatic(ctx, cacheDir, "pause", pauseSrc)
	if err != nil {
		return nil, fmt.Errorf("hostile image: %w", err)
	}
	const statusD = "var/lib/dpkg/status.d/"
	good := "Package: " + HostileGoodPackage + "\n" +
		"Version: " + HostileGoodVersion + "\n" +
		"Architecture: all\n" +
		"Maintainer: rootscan testbed <testbed@rootscan.test>\n" +
		"Installed-Size: 1\n" +
		"Section: misc\n" +
		"Priority: optional\n" +
		"Description: the one valid package of the hostile image\n" +
		" A scanner must still report it among the hostile entries around it.\n"
	deep := "opt/deep" + strings.Repeat("/d", HostileDepth-1)
	files := []File{
		{Path: "etc/shadow", Mode: 0o640, Data: []byte(HostileShadow)},
		{Path: "etc/os-release", Mode: fs.ModeSymlink | 0o777, Linkname: "/etc/shadow"},
		{Path: "usr/lib/os-release", Mode: fs.ModeSymlink | 0o777, Linkname: "../../../../../../etc/hostname"},
		{Path: "var/lib/dpkg/status", Mode: fs.ModeNamedPipe | 0o644},
		{Path: statusD + "big", Mode: 0o644, Size: HostileBigSize, Open: func() io.Reader { return junk(1) }},
		{Path: statusD + "garbage", Mode: 0o644, Size: 64 << 10, Open: func() io.Reader { return junk(2) }},
		{Path: statusD + "dev", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o666, Devmajor: 1, Devminor: 3},
		{Path: statusD + "link-out", Mode: fs.ModeSymlink | 0o777, Linkname: "/etc/passwd"},
		{Path: statusD + "good", Mode: 0o644, Data: []byte(good)},
		{Path: deep + "/bottom", Mode: 0o644, Data: []byte("the bottom of opt/deep\n")},
		{Path: "opt/cycle", Mode: fs.ModeSymlink | 0o777, Linkname: "."},
	}
	return &Image{
		Name: HostileName,
		Layers: []Layer{
			{Files: []File{{Path: "pause", Mode: 0o755, Data: bin}}},
			{Files: files},
		},
		Config: ocispec.ImageConfig{
			Entrypoint: []string{"/pause"},
			Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			StopSignal: "SIGTERM",
		},
	}, nil
}

// junk is a deterministic stream of pseudo-random bytes: the same seed gives
// the same layer, and so the same digests, on every build.
func junk(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}
