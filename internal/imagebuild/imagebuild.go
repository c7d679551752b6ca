// Package imagebuild builds rootscan's own container image in Go, with no
// docker engine: the static binary, CA certificates from Debian's
// ca-certificates package, users and the scanner's directories, written with
// the test bed's deterministic OCI writer (internal/testbed/ociimage), so one
// commit always gives one digest. `make image` runs it through cmd/mkimage;
// the Dockerfile at the repository root runs the same code for users who
// build with docker.
package imagebuild

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rootscan/rootscan/internal/testbed/ociimage"
)

// DefaultRepository is where the project publishes the image.
const DefaultRepository = "ghcr.io/rootscan/rootscan"

// SourceURL is the org.opencontainers.image.source annotation.
const SourceURL = "https://github.com/rootscan/rootscan"

// BinaryPath is the scanner in the image, and the image's entrypoint.
const BinaryPath = "usr/bin/rootscan"

// NonrootUID is the uid and gid the image runs as unless told otherwise
// (distroless's "nonroot"); the DaemonSet runs it as root, which it needs.
const NonrootUID = 65532

// The Debian package the CA certificates come from, pinned by version and
// hash: apt's candidate changes with every point release, which would change
// the digest of a rebuild of an old commit. When the mirror stops offering
// this version (Debian's security archive keeps only the newest), the build
// fails and the pin moves on: `apt-cache madison ca-certificates` for the
// version, `sha256sum` of the downloaded .deb for the hash.
const (
	caCertsPackage = "ca-certificates"
	caCertsVersion = "20250419~deb12u2"
	caCertsSHA256  = "b9f76b5271a7ac373fd5e7e1b5b826a71ddd702b42a0d104955ecb1acfffc94b"
	// debianRelease is the release the pinned package belongs to, for
	// os-release: scanners match Debian advisories by it.
	debianRelease  = "12"
	debianCodename = "bookworm"
)

// Source is what the image is built from and says about itself.
type Source struct {
	// Dir is the module's root directory (a git work tree for GitSource).
	Dir string
	// Version is linked into the binary (main.version) and is the
	// org.opencontainers.image.version annotation.
	Version string
	// Revision is the commit, with "-dirty" when the work tree differs from it.
	Revision string
	// Created is the commit's time: the config's creation time and every
	// file's modification time. Zero means ociimage.Epoch.
	Created time.Time
}

// Options say which image to build.
type Options struct {
	Source Source
	// Repository and Tag name the image (DefaultRepository and
	// Source.Version when empty).
	Repository, Tag string
	// Arch is the GOARCH of the binary and the image (the running one when
	// empty); the OS is always linux.
	Arch string
	// CacheDir keeps the downloaded .debs (ociimage.DefaultCacheDir() when
	// empty), so a warm build works offline.
	CacheDir string
}

// Ref is the image's name, repository:tag.
func (o Options) Ref() string {
	repo, tag := o.Repository, o.Tag
	if repo == "" {
		repo = DefaultRepository
	}
	if tag == "" {
		tag = o.Source.Version
	}
	return repo + ":" + tag
}

func (o Options) arch() string {
	if o.Arch == "" {
		return runtime.GOARCH
	}
	return o.Arch
}

// Build compiles the binary and assembles the image. Its layers are the base
// (users, certificates, directories; it changes only when the pinned package
// does, so nodes keep it across upgrades) and the binary.
func Build(ctx context.Context, o Options) (*ociimage.Image, error) {
	if o.Source.Version == "" {
		return nil, fmt.Errorf("build image: no version")
	}
	cache := o.CacheDir
	if cache == "" {
		cache = ociimage.DefaultCacheDir()
	}
	base, err := baseFiles(ctx, filepath.Join(cache, "debs"))
	if err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	bin, err := buildBinary(ctx, o.Source.Dir, o.Source.Version, o.arch())
	if err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	annotations := Annotations(o.Source)
	return &ociimage.Image{
		Name: o.Ref(),
		Layers: []ociimage.Layer{
			{Files: base},
			{Files: []ociimage.File{{Path: BinaryPath, Mode: 0o755, Data: bin}}},
		},
		Config:      Config(annotations),
		Platform:    ocispec.Platform{OS: "linux", Architecture: o.arch()},
		Created:     o.Source.Created,
		Annotations: annotations,
		GzipLevel:   9, // gzip.BestCompression: the binary is most of the image; 13 MB instead of 15
	}, nil
}

// Annotations are the OCI annotations of the manifest, also the config's labels
// (which is where docker shows them).
func Annotations(s Source) map[string]string {
	a := map[string]string{
		ocispec.AnnotationSource:      SourceURL,
		ocispec.AnnotationVersion:     s.Version,
		ocispec.AnnotationTitle:       "rootscan",
		ocispec.AnnotationDescription: "Node-level container scanner: packages, vulnerabilities, compliance, drift",
	}
	if s.Revision != "" {
		a[ocispec.AnnotationRevision] = s.Revision
	}
	if !s.Created.IsZero() {
		a[ocispec.AnnotationCreated] = s.Created.UTC().Format(time.RFC3339)
	}
	return a
}

// Config is the image's runtime configuration. It runs as nonroot: reading an
// image layout or a directory needs no privilege, and the DaemonSet, which
// mounts and reads every container's files, sets runAsUser: 0 itself. No
// command is baked in: `daemon` and its flags are the DaemonSet's args.
func Config(labels map[string]string) ocispec.ImageConfig {
	return ocispec.ImageConfig{
		User: fmt.Sprintf("%d:%d", NonrootUID, NonrootUID),
		Env: []string{
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"SSL_CERT_FILE=/" + ociimage.CABundlePath,
		},
		Entrypoint:   []string{"/" + BinaryPath},
		WorkingDir:   "/",
		ExposedPorts: map[string]struct{}{"9090/tcp": {}},
		Labels:       labels,
		StopSignal:   "SIGTERM",
	}
}

// baseFiles are the files besides the binary: users and groups, os-release,
// the CA bundle with its package's copyright and dpkg entry, and the
// directories the scanner and its manifests use.
func baseFiles(ctx context.Context, debDir string) ([]ociimage.File, error) {
	debPath, err := ociimage.FetchPinnedDeb(ctx, debDir, ociimage.PinnedDeb{
		Name: caCertsPackage, Version: caCertsVersion, SHA256: caCertsSHA256})
	if err != nil {
		return nil, err
	}
	deb, err := ociimage.ReadDeb(ctx, debPath)
	if err != nil {
		return nil, err
	}
	bundle, err := ociimage.CABundle(deb.Files)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", debPath, err)
	}
	copyright := "usr/share/doc/" + caCertsPackage + "/copyright"
	files := []ociimage.File{
		{Path: ociimage.CABundlePath, Mode: 0o644, Data: bundle},
	}
	for _, f := range deb.Files {
		if f.Path == copyright {
			files = append(files, f)
		}
	}
	if len(files) != 2 {
		return nil, fmt.Errorf("%s: no %s", debPath, copyright)
	}
	// The package's dpkg entry, so scanners (and the SBOM) name it and its
	// version. Without its md5sums: they list the package's files, of which
	// the image has only the bundle update-ca-certificates makes from them.
	deb.MD5sums = nil
	files = append(files, ociimage.StatusDFiles(deb)...)
	return append(files, systemFiles()...), nil
}

// systemFiles are users and groups as distroless has them, os-release, and
// the directories: /tmp, nonroot's home, and the scanner's config, state and
// mount directories, which the DaemonSet mounts over (present in the image so
// that the read-only root needs no mount point created).
func systemFiles() []ociimage.File {
	passwd := "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
		fmt.Sprintf("nonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", NonrootUID, NonrootUID)
	group := fmt.Sprintf("root:x:0:\nnobody:x:65534:\nnonroot:x:%d:\n", NonrootUID)
	// Like distroless's: the distribution of the packages the image has, so
	// that a scanner matches their advisories, under the image's own name.
	osRelease := strings.Join([]string{
		`PRETTY_NAME="rootscan (distroless, Debian GNU/Linux ` + debianRelease + ` packages)"`,
		`NAME="Debian GNU/Linux"`,
		`ID=debian`,
		`VERSION_ID="` + debianRelease + `"`,
		`VERSION_CODENAME=` + debianCodename,
		`HOME_URL="` + SourceURL + `"`,
	}, "\n") + "\n"
	nsswitch := "passwd: files\ngroup: files\nhosts: files dns\n"
	return []ociimage.File{
		{Path: "etc/passwd", Mode: 0o644, Data: []byte(passwd)},
		{Path: "etc/group", Mode: 0o644, Data: []byte(group)},
		{Path: "etc/nsswitch.conf", Mode: 0o644, Data: []byte(nsswitch)},
		{Path: "etc/os-release", Mode: 0o644, Data: []byte(osRelease)},
		{Path: "tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
		{Path: "root", Mode: fs.ModeDir | 0o700},
		{Path: "home/nonroot", Mode: fs.ModeDir | 0o700, Uid: NonrootUID, Gid: NonrootUID},
		{Path: "etc/rootscan", Mode: fs.ModeDir | 0o755},
		{Path: "var/lib/rootscan", Mode: fs.ModeDir | 0o755},
		{Path: "run/rootscan", Mode: fs.ModeDir | 0o755},
	}
}
