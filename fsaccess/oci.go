package fsaccess

import (
	"archive/tar"
	"bufio"
	"context"
	_ "crypto/sha256" // digest algorithms go-digest verifies with
	_ "crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/containerd/containerd/v2/pkg/archive"
	"github.com/containerd/containerd/v2/pkg/archive/compression"
	"github.com/containerd/platforms"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultMaxExtractBytes bounds what OpenOCI writes to the scratch directory when OCIOptions.MaxExtractBytes is zero.
// Both the decompressed tar streams and the sizes the tar headers declare count, so neither a gzip bomb nor a
// sparse-file entry that expands to terabytes gets past it (the applier writes a sparse file's holes as zeros, so
// its declared size is what it costs the disk). Application images stay far below 2 GiB unpacked; larger ones
// (CUDA, ML runtimes) need OCIOptions.MaxExtractBytes raised.
const DefaultMaxExtractBytes = 2 << 30

// DefaultMaxExtractEntries bounds the tar entries of all layers together when OCIOptions.MaxExtractEntries is zero,
// so a layer of millions of empty files cannot exhaust the scratch file system's inodes.
const DefaultMaxExtractEntries = 4 << 20

// maxJSONSize bounds index, manifest and config blobs; registries refuse manifests above 4 MiB.
const maxJSONSize = 8 << 20

// maxIndexDepth bounds how many nested indexes OpenOCI follows from index.json.
const maxIndexDepth = 4

// Media types of Docker's schema 2, which containerd keeps when it exports an image as an OCI layout.
const (
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	mediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	mediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

// ErrDigestMismatch is returned when a blob of an OCI layout does not hash to the digest that names it (or has
// another size than its descriptor says): the layout is corrupt or was tampered with.
var ErrDigestMismatch = errors.New("blob does not match its digest")

// OCIOptions select and bound the image OpenOCI extracts.
type OCIOptions struct {
	// Platform ("linux/arm64", "linux/arm/v7") selects the image of a multi-platform index. Empty means: the only
	// image when the layout holds one, else linux on the scanner's own architecture.
	Platform string
	// Ref selects among several images of one layout: the value of a manifest's org.opencontainers.image.ref.name
	// or io.containerd.image.name annotation, or its digest. Empty is an error when the choice is ambiguous; the
	// error lists the choices.
	Ref string
	// MaxExtractBytes bounds the bytes extracted from all layers, sparse files counted at their declared size; zero
	// means DefaultMaxExtractBytes. It is what the CLI's --max-unpacked-size sets.
	MaxExtractBytes int64
	// MaxExtractEntries bounds the tar entries of all layers; zero means DefaultMaxExtractEntries.
	MaxExtractEntries int64
	// Root configures the returned Root. Its OnClose, if any, runs before the extracted tree is removed.
	Root Options
	// Log receives the removal of scratch directories a killed run left behind (see RemoveStaleScratch); nil
	// discards it.
	Log *slog.Logger
}

// OCIImage describes the image OpenOCI extracted, so reports can name it the way a registry or a cluster does.
type OCIImage struct {
	// RefName is the ref.name annotation of the chosen index entry, if it had one.
	RefName string
	// ManifestDigest is the image's identity in registries and in containerd's image store (the "@sha256:..."
	// of a pinned reference).
	ManifestDigest digest.Digest
	// Manifest lists the layers that were applied, in order.
	Manifest ocispec.Manifest
	// ConfigDigest is the image ID Docker and crictl show.
	ConfigDigest digest.Digest
	// Config holds the image's user, environment, entrypoint, labels and history.
	Config ocispec.Image
	// ChainID identifies the layer stack like containerd's snapshots do, so a scan of this layout and of a running
	// container of the same image share a cache entry.
	ChainID digest.Digest
}

// OpenOCI extracts one image of the OCI image layout at layoutDir into a fresh directory under scratchDir and returns
// it as a Root; closing the Root removes the directory. Every blob is checked against its digest while it is read,
// layers' uncompressed content against the config's diff IDs, and extraction is bounded by MaxExtractBytes and
// MaxExtractEntries. Layers are applied with containerd's applier: OCI whiteouts and opaque directories are honored
// and no entry lands outside the directory, whatever its name or the links before it. Device nodes are not created
// (the scanner never opens them, and a device node in a host directory is a door into the host); FIFOs are.
// Gzip, zstd and uncompressed layers are read in-process.
func OpenOCI(ctx context.Context, layoutDir, scratchDir string, opts OCIOptions) (*Root, *OCIImage, error) {
	if opts.MaxExtractBytes <= 0 {
		opts.MaxExtractBytes = DefaultMaxExtractBytes
	}
	if opts.MaxExtractEntries <= 0 {
		opts.MaxExtractEntries = DefaultMaxExtractEntries
	}
	// The layout is read through a confined Root too: it may come from anywhere, and a blob that is a symlink to a
	// host file or a FIFO must not be read.
	layout, err := OpenDir(layoutDir, Options{MaxFileSize: maxJSONSize})
	if err != nil {
		return nil, nil, fmt.Errorf("open OCI layout: %w", err)
	}
	defer layout.Close()
	l := &ociLayout{r: layout}

	img, err := l.selectImage(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("open OCI layout %s: %w", layoutDir, err)
	}

	if _, err := RemoveStaleScratch(scratchDir, opts.Log); err != nil {
		return nil, nil, fmt.Errorf("open OCI layout %s: %w", layoutDir, err)
	}
	tmp, cleanup, err := newScratchDir(scratchDir, "")
	if err != nil {
		return nil, nil, fmt.Errorf("open OCI layout %s: scratch dir: %w", layoutDir, err)
	}
	// tmp is 0700, so nothing extracted (setuid binaries, world-writable dirs) is reachable by other users;
	// rootfs below it carries the usual mode of an image's top directory.
	rootfs := filepath.Join(tmp, "rootfs")
	fail := func(err error) (*Root, *OCIImage, error) {
		return nil, nil, errors.Join(fmt.Errorf("open OCI layout %s: %w", layoutDir, err), cleanup())
	}
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		return fail(err)
	}
	budget := &extractBudget{maxBytes: opts.MaxExtractBytes, maxEntries: opts.MaxExtractEntries}
	diffIDs := img.Config.RootFS.DiffIDs
	if len(diffIDs) != len(img.Manifest.Layers) {
		return fail(fmt.Errorf("manifest %s has %d layers but its config %d diff IDs", img.ManifestDigest, len(img.Manifest.Layers), len(diffIDs)))
	}
	for i, layer := range img.Manifest.Layers {
		diffID, err := l.applyLayer(ctx, rootfs, layer, budget)
		if err != nil {
			return fail(fmt.Errorf("layer %d (%s): %w", i, layer.Digest, err))
		}
		if diffID != diffIDs[i] {
			return fail(fmt.Errorf("layer %d (%s): uncompressed content is %s, config says %s: %w", i, layer.Digest, diffID, diffIDs[i], ErrDigestMismatch))
		}
	}
	img.ChainID = identity.ChainID(diffIDs)

	ropts := opts.Root
	userClose := ropts.OnClose
	ropts.OnClose = func() error {
		var err error
		if userClose != nil {
			err = userClose()
		}
		return errors.Join(err, cleanup())
	}
	r, err := OpenDir(rootfs, ropts)
	if err != nil {
		return fail(err)
	}
	return r, img, nil
}

// ociLayout reads blobs of one layout.
type ociLayout struct {
	r *Root
}

// candidate is an image manifest reachable from index.json.
type candidate struct {
	desc ocispec.Descriptor
	top  int    // position of the index.json entry it was reached from
	ref  string // that entry's ref name
}

// selectImage picks the image OCIOptions ask for and loads its manifest and config.
func (l *ociLayout) selectImage(opts OCIOptions) (*OCIImage, error) {
	if _, err := l.r.Stat(ocispec.ImageLayoutFile); err != nil {
		return nil, fmt.Errorf("not an OCI image layout (no %s file): %w", ocispec.ImageLayoutFile, err)
	}
	data, err := l.r.ReadFile(ocispec.ImageIndexFile)
	if err != nil {
		return nil, err
	}
	var index ocispec.Index
	if err := json.Unmarshal(data, &index); err != nil {
		return nil, fmt.Errorf("parse %s: %w", ocispec.ImageIndexFile, err)
	}
	var choices []string
	var cands []candidate
	for i, d := range index.Manifests {
		ref := d.Annotations[ocispec.AnnotationRefName]
		name := ref
		if name == "" {
			name = d.Digest.String()
		}
		choices = append(choices, name)
		if opts.Ref != "" && opts.Ref != ref && opts.Ref != d.Annotations["io.containerd.image.name"] && opts.Ref != d.Digest.String() {
			continue
		}
		if err := l.collect(d, i, ref, 0, &cands); err != nil {
			return nil, err
		}
	}
	if len(cands) == 0 {
		if opts.Ref != "" {
			return nil, fmt.Errorf("no image %q in layout (it has: %s)", opts.Ref, strings.Join(choices, ", "))
		}
		return nil, errors.New("no image manifest in layout")
	}

	explicit := opts.Platform != ""
	want := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if explicit {
		if want, err = platforms.Parse(opts.Platform); err != nil {
			return nil, fmt.Errorf("platform %q: %w", opts.Platform, err)
		}
	}
	want = platforms.Normalize(want)
	match := platforms.Only(want)
	plat := make(map[digest.Digest]ocispec.Platform)
	if explicit || len(cands) > 1 {
		var kept []candidate
		var seen []string
		for _, c := range cands {
			p, err := l.platformOf(c.desc)
			if err != nil {
				return nil, err
			}
			plat[c.desc.Digest] = p
			seen = append(seen, platforms.Format(p))
			if match.Match(p) {
				kept = append(kept, c)
			}
		}
		if len(kept) == 0 {
			return nil, fmt.Errorf("no image for platform %s in layout (it has: %s)", platforms.Format(want), strings.Join(slices.Compact(slices.Sorted(slices.Values(seen))), ", "))
		}
		cands = kept
	}
	var tops []string
	for _, c := range cands {
		if !slices.Contains(tops, choices[c.top]) {
			tops = append(tops, choices[c.top])
		}
	}
	if len(tops) > 1 {
		return nil, fmt.Errorf("layout holds several images; choose one with a ref: %s", strings.Join(tops, ", "))
	}
	slices.SortStableFunc(cands, func(a, b candidate) int {
		switch {
		case match.Less(plat[a.desc.Digest], plat[b.desc.Digest]):
			return -1
		case match.Less(plat[b.desc.Digest], plat[a.desc.Digest]):
			return 1
		}
		return 0
	})
	return l.loadImage(cands[0])
}

// collect adds the image manifests reachable from d, descending into nested indexes.
func (l *ociLayout) collect(d ocispec.Descriptor, top int, ref string, depth int, out *[]candidate) error {
	switch d.MediaType {
	case ocispec.MediaTypeImageManifest, mediaTypeDockerManifest:
		*out = append(*out, candidate{desc: d, top: top, ref: ref})
	case ocispec.MediaTypeImageIndex, mediaTypeDockerManifestList:
		if depth >= maxIndexDepth {
			return fmt.Errorf("index %s: indexes nested more than %d deep", d.Digest, maxIndexDepth)
		}
		data, err := l.readBlob(d, maxJSONSize)
		if err != nil {
			return err
		}
		var index ocispec.Index
		if err := json.Unmarshal(data, &index); err != nil {
			return fmt.Errorf("parse index %s: %w", d.Digest, err)
		}
		for _, child := range index.Manifests {
			if err := l.collect(child, top, ref, depth+1, out); err != nil {
				return err
			}
		}
	default:
		// Signatures, attestations stored as artifacts, and other content that is no image.
		slog.Debug("skipping OCI index entry that is no image", "digest", d.Digest, "mediaType", d.MediaType)
	}
	return nil
}

// platformOf is the descriptor's platform, or the one its config states when the index did not say.
func (l *ociLayout) platformOf(d ocispec.Descriptor) (ocispec.Platform, error) {
	if d.Platform != nil {
		return platforms.Normalize(*d.Platform), nil
	}
	m, err := l.readManifest(d)
	if err != nil {
		return ocispec.Platform{}, err
	}
	cfg, err := l.readConfig(m.Config)
	if err != nil {
		return ocispec.Platform{}, err
	}
	return platforms.Normalize(cfg.Platform), nil
}

func (l *ociLayout) loadImage(c candidate) (*OCIImage, error) {
	m, err := l.readManifest(c.desc)
	if err != nil {
		return nil, err
	}
	cfg, err := l.readConfig(m.Config)
	if err != nil {
		return nil, err
	}
	return &OCIImage{
		RefName:        c.ref,
		ManifestDigest: c.desc.Digest,
		Manifest:       *m,
		ConfigDigest:   m.Config.Digest,
		Config:         *cfg,
	}, nil
}

func (l *ociLayout) readManifest(d ocispec.Descriptor) (*ocispec.Manifest, error) {
	data, err := l.readBlob(d, maxJSONSize)
	if err != nil {
		return nil, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("parse manifest %s: %w", d.Digest, err)
	}
	return &m, nil
}

func (l *ociLayout) readConfig(d ocispec.Descriptor) (*ocispec.Image, error) {
	if d.MediaType != ocispec.MediaTypeImageConfig && d.MediaType != mediaTypeDockerConfig {
		return nil, fmt.Errorf("config %s has media type %q: not a container image", d.Digest, d.MediaType)
	}
	data, err := l.readBlob(d, maxJSONSize)
	if err != nil {
		return nil, err
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("parse config %s: %w", d.Digest, err)
	}
	return &cfg, nil
}

// openBlob opens the blob d names, checking that it is a regular file of the descriptor's size.
func (l *ociLayout) openBlob(d ocispec.Descriptor) (fs.File, error) {
	if err := d.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("blob %q: %w", d.Digest, err)
	}
	name := path.Join(ocispec.ImageBlobsDir, d.Digest.Algorithm().String(), d.Digest.Encoded())
	f, err := l.r.Open(name)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("blob %s: %w", d.Digest, ErrNotRegular)
	}
	if fi.Size() != d.Size {
		f.Close()
		return nil, fmt.Errorf("blob %s: %d bytes, descriptor says %d: %w", d.Digest, fi.Size(), d.Size, ErrDigestMismatch)
	}
	return f, nil
}

// readBlob reads a small blob whole and verifies it.
func (l *ociLayout) readBlob(d ocispec.Descriptor, limit int64) ([]byte, error) {
	if d.Size > limit {
		return nil, fmt.Errorf("blob %s: %d bytes: %w (%d)", d.Digest, d.Size, ErrTooLarge, limit)
	}
	f, err := l.openBlob(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, d.Size+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", d.Digest, err)
	}
	if int64(len(data)) != d.Size || d.Digest.Algorithm().FromBytes(data) != d.Digest {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, ErrDigestMismatch)
	}
	return data, nil
}

// isLayer reports whether mediaType is a filesystem layer this package can apply. Encrypted layers and artifacts
// are not.
func isLayer(mediaType string) bool {
	switch mediaType {
	case ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd,
		ocispec.MediaTypeImageLayerNonDistributable, ocispec.MediaTypeImageLayerNonDistributableGzip, //nolint:staticcheck // still found in old images
		ocispec.MediaTypeImageLayerNonDistributableZstd, //nolint:staticcheck
		mediaTypeDockerLayer, mediaTypeDockerForeignLayer:
		return true
	}
	return false
}

// applyLayer extracts one layer into rootfs and returns its diff ID (the digest of the uncompressed tar). The
// compressed blob is hashed as it streams; a mismatch fails the layer even when the tar itself applied.
func (l *ociLayout) applyLayer(ctx context.Context, rootfs string, d ocispec.Descriptor, budget *extractBudget) (digest.Digest, error) {
	if !isLayer(d.MediaType) {
		return "", fmt.Errorf("unsupported layer media type %q", d.MediaType)
	}
	f, err := l.openBlob(d)
	if err != nil {
		return "", err
	}
	defer f.Close()
	verifier := d.Digest.Verifier()
	blob := bufio.NewReaderSize(io.TeeReader(io.LimitReader(f, d.Size), verifier), 64<<10)
	checkBlob := func(cause error) error {
		// Read what the decompressor left (trailers, padding): the digest covers the whole blob, and a mismatch
		// explains a decompression failure better than the failure itself.
		if _, err := io.Copy(io.Discard, blob); err != nil {
			return errors.Join(cause, fmt.Errorf("read blob: %w", err))
		}
		if !verifier.Verified() {
			return fmt.Errorf("blob %s: %w", d.Digest, ErrDigestMismatch)
		}
		return cause
	}

	magic, err := blob.Peek(10)
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("read blob: %w", err)
	}
	dec, err := decompress(blob, compression.DetectCompression(magic))
	if err != nil {
		return "", checkBlob(err)
	}
	defer dec.Close()
	diffID := digest.Canonical.Digester()
	stream := io.TeeReader(&budgetReader{r: dec, b: budget}, diffID.Hash())

	applyOpts := []archive.ApplyOpt{archive.WithFilter(budget.filter)}
	if os.Geteuid() != 0 {
		applyOpts = append(applyOpts, archive.WithNoSameOwner())
	}
	if _, err := archive.Apply(ctx, rootfs, stream, applyOpts...); err != nil {
		return "", checkBlob(fmt.Errorf("apply: %w", err))
	}
	// The tar reader stops at the end-of-archive marker; the diff ID covers the padding after it too.
	if _, err := io.Copy(io.Discard, stream); err != nil {
		return "", checkBlob(fmt.Errorf("read layer: %w", err))
	}
	if err := checkBlob(nil); err != nil {
		return "", err
	}
	return diffID.Digest(), nil
}

// decompress opens the layer stream in-process. containerd's compression.DecompressStream would run unpigz or
// igzip from PATH when installed; a privileged scanner should not exec whatever it finds there.
func decompress(r io.Reader, c compression.Compression) (io.ReadCloser, error) {
	switch c {
	case compression.Uncompressed:
		return io.NopCloser(r), nil
	case compression.Gzip:
		return gzip.NewReader(r)
	case compression.Zstd:
		// --long=27 streams use 128 MiB windows; larger declared windows only serve to exhaust memory.
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(128<<20))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	default:
		return nil, fmt.Errorf("unsupported layer compression %q", c.Extension())
	}
}

// extractBudget is shared by all layers of one image.
type extractBudget struct {
	maxBytes, maxEntries int64
	streamed             int64 // decompressed tar bytes
	declared             int64 // sum of the sizes tar headers declare (sparse files declare more than they carry)
	entries              int64
}

// filter counts every tar entry against the budget and drops device nodes.
func (b *extractBudget) filter(hdr *tar.Header) (bool, error) {
	b.entries++
	if b.entries > b.maxEntries {
		return false, fmt.Errorf("%w: more than %d tar entries", ErrLimit, b.maxEntries)
	}
	if hdr.Size > 0 {
		b.declared += hdr.Size
		if b.declared > b.maxBytes {
			return false, fmt.Errorf("%w: entries declare more than %d bytes (at %s)", ErrLimit, b.maxBytes, hdr.Name)
		}
	}
	if hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock {
		return false, nil
	}
	return true, nil
}

// budgetReader fails once the decompressed stream passes the budget: the defence against decompression bombs.
type budgetReader struct {
	r io.Reader
	b *extractBudget
}

func (br *budgetReader) Read(p []byte) (int, error) {
	n, err := br.r.Read(p)
	br.b.streamed += int64(n)
	if br.b.streamed > br.b.maxBytes {
		return n, fmt.Errorf("%w: layers decompress to more than %d bytes", ErrLimit, br.b.maxBytes)
	}
	return n, err
}
