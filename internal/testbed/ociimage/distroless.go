package ociimage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DistrolessName is the reference the distroless-like image is imported under.
const DistrolessName = "rootscan.test/distroless-base:1"

// DistrolessPackages are the Debian packages the distroless-like image is made
// of, in layer order: those of Google's distroless base image.
var DistrolessPackages = []string{"base-files", "netbase", "tzdata", "libc6", "libssl3", "ca-certificates"}

// NonrootUID is the uid (and gid) of distroless's "nonroot" user, which the
// distroless image runs as.
const NonrootUID = 65532

// Distroless returns an image assembled like Google's distroless base: the
// data of real Debian packages (downloaded with apt-get, cached in
// cacheDir/debs), one var/lib/dpkg/status.d/<pkg> control stanza and
// <pkg>.md5sums per package instead of a dpkg status database, root and
// nonroot users, the CA bundle, and no shell or package manager. Its
// entrypoint is /app, a static Go program that prints a line and waits for
// SIGTERM. Packages() tells the exact package versions used, which are
// whatever apt's candidate was when the .debs were first downloaded.
//
// The layers are: distroless's own base files, one layer per package, the
// generated files (CA bundle, /etc/localtime), and the app.
func Distroless(ctx context.Context, cacheDir string) (*Image, error) {
	if cacheDir == "" {
		cacheDir = DefaultCacheDir()
	}
	debs, err := fetchDebs(ctx, filepath.Join(cacheDir, "debs"), DistrolessPackages)
	if err != nil {
		return nil, fmt.Errorf("distroless image: %w", err)
	}
	app, err := buildStatic(ctx, cacheDir, "app", appSrc)
	if err != nil {
		return nil, fmt.Errorf("distroless image: %w", err)
	}
	img, err := assembleDistroless(ctx, DistrolessName, debs, DistrolessPackages)
	if err != nil {
		return nil, fmt.Errorf("distroless image: %w", err)
	}
	img.Config.Entrypoint = []string{"/app"}
	img.Layers = append(img.Layers, Layer{Files: []File{{Path: "app", Mode: 0o755, Data: app}}})
	return img, nil
}

// assembleDistroless builds an image named name the way distroless does from
// the .debs (package name to file) of the packages names, in layer order: a
// layer of distroless's own base files, one layer per package (its filtered
// data plus its status.d entries), and a layer of generated files (CA bundle,
// /etc/localtime). The image runs as nonroot and has no entrypoint.
func assembleDistroless(ctx context.Context, name string, debs map[string]string, names []string) (*Image, error) {
	img := &Image{
		Name: name,
		Config: ocispec.ImageConfig{
			User: fmt.Sprint(NonrootUID),
			Env: []string{
				"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
				"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
			},
			WorkingDir: "/",
			StopSignal: "SIGTERM",
		},
	}
	img.Layers = append(img.Layers, Layer{Files: distrolessBaseFiles()})
	var files []File
	for _, pkg := range names {
		dc, err := readNamedDeb(ctx, debs, pkg)
		if err != nil {
			return nil, err
		}
		img.Layers = append(img.Layers, Layer{Files: append(dc.Files, StatusDFiles(dc)...)})
		img.packages = append(img.packages, dc.Package)
		files = append(files, dc.Files...)
	}
	sort.Slice(img.packages, func(i, j int) bool { return img.packages[i].Name < img.packages[j].Name })
	bundle, err := CABundle(files)
	if err != nil {
		return nil, err
	}
	img.Layers = append(img.Layers, Layer{Files: []File{
		{Path: CABundlePath, Mode: 0o644, Data: bundle},
		// Distroless has no /etc/localtime; the testbed adds it as an
		// absolute symlink that is legitimate inside the image, which a
		// scanner must resolve within the image root, not on the host.
		{Path: "etc/localtime", Mode: fs.ModeSymlink | 0o777, Linkname: "/usr/share/zoneinfo/UTC"},
	}})
	return img, nil
}

// readNamedDeb reads the .deb of package pkg from debs and checks that it
// holds that package.
func readNamedDeb(ctx context.Context, debs map[string]string, pkg string) (*Deb, error) {
	if debs[pkg] == "" {
		return nil, fmt.Errorf("no .deb for package %s", pkg)
	}
	dc, err := ReadDeb(ctx, debs[pkg])
	if err != nil {
		return nil, err
	}
	if dc.Package.Name != pkg {
		return nil, fmt.Errorf("%s holds package %q, not %q", debs[pkg], dc.Package.Name, pkg)
	}
	return dc, nil
}

// StatusDFiles are a package's entries in distroless's dpkg database: its
// control stanza as var/lib/dpkg/status.d/<pkg> and its md5sums as
// <pkg>.md5sums.
func StatusDFiles(dc *Deb) []File {
	const statusDir = "var/lib/dpkg/status.d/"
	control := dc.Control
	if !bytes.HasSuffix(control, []byte("\n")) {
		control = append(control, '\n')
	}
	files := []File{{Path: statusDir + dc.Package.Name, Mode: 0o644, Data: control}}
	if dc.MD5sums != nil {
		files = append(files, File{Path: statusDir + dc.Package.Name + ".md5sums", Mode: 0o644, Data: dc.MD5sums})
	}
	return files
}

// distrolessBaseFiles are the files distroless adds itself, outside any
// package: users and groups, home directories, /tmp and nsswitch.conf.
func distrolessBaseFiles() []File {
	passwd := "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group := "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n"
	nsswitch := "passwd:         files\ngroup:          files\nshadow:         files\n\n" +
		"hosts:          files dns\nnetworks:       files\n\nprotocols:      db files\nservices:       db files\n" +
		"ethers:         db files\nrpc:            db files\n"
	return []File{
		{Path: "etc/passwd", Mode: 0o644, Data: []byte(passwd)},
		{Path: "etc/group", Mode: 0o644, Data: []byte(group)},
		{Path: "etc/nsswitch.conf", Mode: 0o644, Data: []byte(nsswitch)},
		{Path: "home/nonroot", Mode: fs.ModeDir | 0o700, Uid: NonrootUID, Gid: NonrootUID},
		{Path: "root", Mode: fs.ModeDir | 0o700},
		{Path: "tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
		{Path: "var/lib/dpkg/status.d", Mode: fs.ModeDir | 0o755},
	}
}

// CABundlePath is where Debian's update-ca-certificates writes the bundle,
// and where Go's crypto/x509 looks first on Linux.
const CABundlePath = "etc/ssl/certs/ca-certificates.crt"

// CABundle concatenates the certificates ca-certificates ships
// (usr/share/ca-certificates/**/*.crt among files) in path order, each ending
// in a newline: what update-ca-certificates writes with the default
// configuration (every certificate the package ships enabled). It fails when
// files hold no certificate, so a wrong package cannot give an empty bundle.
func CABundle(files []File) ([]byte, error) {
	var certs []File
	for _, f := range files {
		if f.Mode.IsRegular() && strings.HasPrefix(f.Path, "usr/share/ca-certificates/") && strings.HasSuffix(f.Path, ".crt") {
			certs = append(certs, f)
		}
	}
	if len(certs) == 0 {
		return nil, errors.New("no certificates under usr/share/ca-certificates")
	}
	sort.Slice(certs, func(i, j int) bool { return certs[i].Path < certs[j].Path })
	var b bytes.Buffer
	for _, c := range certs {
		b.Write(c.Data)
		if len(c.Data) > 0 && c.Data[len(c.Data)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.Bytes(), nil
}
