// Package ociimage builds the testbed's container images in Go, with no
// registry and no Dockerfile: the integration harness, `make demo` and the
// benchmarks import them into a private containerd, and the scanner's tests
// read them as OCI layouts. internal/imagebuild writes the project's own
// release image with it too. Output is deterministic (fixed mtimes, sorted
// entries, fixed JSON), so the same inputs always give the same digests and
// containerd's content store and the scanner's chain-ID cache can be relied on
// across runs.
package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// AnnotationImageName is the annotation containerd's importer reads to name the
// image it creates; ocispec.AnnotationRefName alone would give only a tag.
const AnnotationImageName = "io.containerd.image.name"

// Epoch is the modification and creation time stamped on every entry and on
// the image config, so that rebuilding an image gives the same digests.
var Epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// File is one entry of a layer. The type comes from Mode: a plain mode is a
// regular file, fs.ModeDir a directory, fs.ModeSymlink a symlink to Linkname,
// fs.ModeNamedPipe a FIFO, fs.ModeDevice|fs.ModeCharDevice a character device
// and fs.ModeDevice alone a block device (Devmajor/Devminor). A zero
// permission means the usual default (0644 files, 0755 directories, 0777
// links, 0666 devices); setuid, setgid and sticky bits are kept.
//
// A regular file's content is Data, or Open() when set. Size, when larger than
// len(Data) and Open is nil, pads Data with zeros up to Size: a big file then
// costs no memory to describe (it still costs its size in the layer). With
// Open, Size is required and exactly Size bytes are read from it.
type File struct {
	Path     string
	Mode     fs.FileMode
	Data     []byte
	Open     func() io.Reader
	Size     int64
	Linkname string
	Uid, Gid int
	Devmajor int64
	Devminor int64
}

// Layer is one filesystem layer. Parent directories missing from Files are
// added (0755, root) so that every entry's parent precedes it, as the OCI
// layer spec and containerd's applier expect.
type Layer struct {
	Files []File
}

// Image is a single-platform image described entirely in Go.
type Image struct {
	// Name is the full reference containerd names the image by once
	// imported, e.g. "rootscan.test/pause:1".
	Name   string
	Layers []Layer
	Config ocispec.ImageConfig
	// Platform defaults to linux and the running architecture.
	Platform ocispec.Platform
	// Created is the config's creation time and every entry's modification
	// time; zero means Epoch. A release image uses its commit's time, so that
	// it is fixed per commit and still says when the source was made.
	Created time.Time
	// Annotations go on the manifest (org.opencontainers.image.source and
	// the like), next to the reference names Write adds to the index.
	Annotations map[string]string
	// GzipLevel compresses the layers; zero means gzip.BestSpeed, which is
	// right for test images built on every run. The level is an input of the
	// digests: one image built with two levels has two digests.
	GzipLevel int

	packages []DebPackage
}

// Result describes what WriteLayout wrote, for callers that need more than the
// manifest digest (tests comparing chain IDs, for instance).
type Result struct {
	Manifest ocispec.Descriptor
	Config   ocispec.Descriptor
	Layers   []ocispec.Descriptor
	DiffIDs  []digest.Digest
}

// created returns the image's time with the default filled in.
func (img *Image) created() time.Time {
	if img.Created.IsZero() {
		return Epoch
	}
	return img.Created.UTC()
}

// gzipLevel returns the layers' compression level with the default filled in.
func (img *Image) gzipLevel() int {
	if img.GzipLevel == 0 {
		return gzip.BestSpeed
	}
	return img.GzipLevel
}

// platform returns the image's platform with defaults filled in.
func (img *Image) platform() ocispec.Platform {
	p := img.Platform
	if p.OS == "" {
		p.OS = "linux"
	}
	if p.Architecture == "" {
		p.Architecture = runtime.GOARCH
	}
	return p
}

// WriteLayout writes the image into dir as an OCI image layout (oci-layout,
// index.json, blobs/sha256 with gzip layers) and returns the manifest digest.
// An index.json already in dir is kept and this image's entry added to it
// (replacing any entry of the same name), so several images can share one
// layout.
func (img *Image) WriteLayout(dir string) (digest.Digest, error) {
	res, err := img.Write(dir)
	if err != nil {
		return "", err
	}
	return res.Manifest.Digest, nil
}

// Write is WriteLayout returning every descriptor it wrote.
func (img *Image) Write(dir string) (*Result, error) {
	blobDir := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobDir, 0o755); err != nil {
		return nil, fmt.Errorf("create layout %s: %w", dir, err)
	}
	res := &Result{}
	for i, l := range img.Layers {
		desc, diffID, err := writeLayerBlob(blobDir, l, img.created(), img.gzipLevel())
		if err != nil {
			return nil, fmt.Errorf("image %s layer %d: %w", img.Name, i, err)
		}
		res.Layers = append(res.Layers, desc)
		res.DiffIDs = append(res.DiffIDs, diffID)
	}
	plat := img.platform()
	created := img.created()
	cfg := ocispec.Image{
		Created:  &created,
		Platform: plat,
		Config:   img.Config,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: res.DiffIDs},
	}
	for range img.Layers {
		cfg.History = append(cfg.History, ocispec.History{Created: &created, CreatedBy: "rootscan testbed ociimage"})
	}
	if cfg.RootFS.DiffIDs == nil {
		cfg.RootFS.DiffIDs = []digest.Digest{}
	}
	var err error
	res.Config, err = writeJSONBlob(blobDir, ocispec.MediaTypeImageConfig, cfg)
	if err != nil {
		return nil, fmt.Errorf("image %s config: %w", img.Name, err)
	}
	layers := res.Layers
	if layers == nil {
		layers = []ocispec.Descriptor{}
	}
	man := ocispec.Manifest{
		Versioned:   specs.Versioned{SchemaVersion: 2},
		MediaType:   ocispec.MediaTypeImageManifest,
		Config:      res.Config,
		Layers:      layers,
		Annotations: img.Annotations,
	}
	res.Manifest, err = writeJSONBlob(blobDir, ocispec.MediaTypeImageManifest, man)
	if err != nil {
		return nil, fmt.Errorf("image %s manifest: %w", img.Name, err)
	}
	res.Manifest.Platform = &plat
	if img.Name != "" {
		res.Manifest.Annotations = map[string]string{
			ocispec.AnnotationRefName: img.Name,
			AnnotationImageName:       img.Name,
		}
	}
	if err := addToIndex(dir, img.Name, res.Manifest); err != nil {
		return nil, err
	}
	return res, nil
}

// WriteArchive writes the image as a tar of its OCI layout that is also a
// docker-archive (a manifest.json naming the config and layer blobs by path,
// as `docker save` of Docker 25 and later writes it), and returns the manifest
// digest. containerd's client.Import and `ctr images import` read the OCI
// layout; `docker load` of any Docker version reads manifest.json. The layout
// is staged in a temporary directory.
func (img *Image) WriteArchive(w io.Writer) (digest.Digest, error) {
	tmp, err := os.MkdirTemp("", "ociimage-")
	if err != nil {
		return "", fmt.Errorf("stage archive: %w", err)
	}
	defer os.RemoveAll(tmp)
	res, err := img.Write(tmp)
	if err != nil {
		return "", err
	}
	if err := writeDockerManifest(tmp, img.Name, res); err != nil {
		return "", fmt.Errorf("archive image %s: %w", img.Name, err)
	}
	if err := tarDir(w, tmp, img.created()); err != nil {
		return "", fmt.Errorf("archive image %s: %w", img.Name, err)
	}
	return res.Manifest.Digest, nil
}

// DockerManifest is one entry of a docker-archive's manifest.json: the paths
// of the config and layer files inside the archive and the tags to load the
// image under.
type DockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// writeDockerManifest writes dir/manifest.json for the image res describes,
// pointing into the layout's blobs, tagged name when it has one.
func writeDockerManifest(dir, name string, res *Result) error {
	blobPath := func(d digest.Digest) string { return "blobs/" + d.Algorithm().String() + "/" + d.Encoded() }
	m := DockerManifest{Config: blobPath(res.Config.Digest), RepoTags: []string{}, Layers: []string{}}
	if name != "" {
		m.RepoTags = append(m.RepoTags, name)
	}
	for _, l := range res.Layers {
		m.Layers = append(m.Layers, blobPath(l.Digest))
	}
	b, err := json.Marshal([]DockerManifest{m})
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, "manifest.json"), b)
}

// tarDir writes the regular files and directories under dir as a
// deterministic tar stream (sorted, mtime, root-owned).
func tarDir(w io.Writer, dir string, mtime time.Time) error {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	tw := tar.NewWriter(w)
	for _, p := range paths {
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case st.IsDir():
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: rel + "/", Mode: 0o755, ModTime: mtime}); err != nil {
				return err
			}
		case st.Mode().IsRegular():
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: 0o644, Size: st.Size(), ModTime: mtime}); err != nil {
				return err
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("copy %s: %w", rel, err)
			}
		default:
			return fmt.Errorf("%s: unexpected file type %v in layout", rel, st.Mode().Type())
		}
	}
	return tw.Close()
}

// addToIndex writes oci-layout and index.json, keeping other images' entries.
func addToIndex(dir, name string, desc ocispec.Descriptor) error {
	layout, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ocispec.ImageLayoutFile), layout, 0o644); err != nil {
		return fmt.Errorf("write oci-layout: %w", err)
	}
	idxPath := filepath.Join(dir, ocispec.ImageIndexFile)
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	if b, err := os.ReadFile(idxPath); err == nil {
		var old ocispec.Index
		if err := json.Unmarshal(b, &old); err != nil {
			return fmt.Errorf("read existing %s: %w", idxPath, err)
		}
		for _, m := range old.Manifests {
			if name != "" && m.Annotations[AnnotationImageName] == name {
				continue
			}
			if m.Digest == desc.Digest && name == "" && len(m.Annotations) == 0 {
				continue
			}
			idx.Manifests = append(idx.Manifests, m)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read existing index: %w", err)
	}
	idx.Manifests = append(idx.Manifests, desc)
	sort.SliceStable(idx.Manifests, func(i, j int) bool {
		return idx.Manifests[i].Annotations[AnnotationImageName] < idx.Manifests[j].Annotations[AnnotationImageName]
	})
	b, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(idxPath, b); err != nil {
		return fmt.Errorf("write index.json: %w", err)
	}
	return nil
}

// writeJSONBlob stores v as a content-addressed blob.
func writeJSONBlob(blobDir, mediaType string, v any) (ocispec.Descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	d := digest.FromBytes(b)
	if err := writeFileAtomic(filepath.Join(blobDir, d.Encoded()), b); err != nil {
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}, nil
}

// writeFileAtomic writes through a temporary file and a rename, so a reader
// (or a concurrent builder of the same blob) never sees a partial file.
func writeFileAtomic(name string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), name)
}

// countingWriter counts bytes on their way to w.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeLayerBlob streams the layer's tar through gzip into a blob, computing
// the diff ID (uncompressed) and the blob digest (compressed) on the way.
func writeLayerBlob(blobDir string, l Layer, mtime time.Time, level int) (ocispec.Descriptor, digest.Digest, error) {
	entries, err := l.entries()
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	f, err := os.CreateTemp(blobDir, ".tmp-layer-")
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	blobHash := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(f, blobHash)}
	gz, err := gzip.NewWriterLevel(cw, level)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	diffHash := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(gz, diffHash))
	for _, e := range entries {
		if err := writeEntry(tw, e, mtime); err != nil {
			return ocispec.Descriptor{}, "", fmt.Errorf("write %s: %w", e.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	if err := gz.Close(); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	if err := f.Chmod(0o644); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	if err := f.Close(); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	d := digest.NewDigest(digest.SHA256, blobHash)
	if err := os.Rename(f.Name(), filepath.Join(blobDir, d.Encoded())); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	done = true
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: d, Size: cw.n}
	return desc, digest.NewDigest(digest.SHA256, diffHash), nil
}

// cleanPath turns a File path into a layer-relative one, refusing paths that
// would escape the layer.
func cleanPath(p string) (string, error) {
	c := path.Clean("/" + p)
	if c == "/" || strings.Contains(p, "\x00") {
		return "", fmt.Errorf("invalid layer path %q", p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", fmt.Errorf("layer path %q has ..", p)
		}
	}
	return c[1:], nil
}

// entries returns the layer's files with clean paths, implicit parent
// directories added, sorted so that every parent precedes its children.
func (l Layer) entries() ([]File, error) {
	byPath := make(map[string]File, len(l.Files))
	for _, f := range l.Files {
		p, err := cleanPath(f.Path)
		if err != nil {
			return nil, err
		}
		if _, dup := byPath[p]; dup {
			return nil, fmt.Errorf("duplicate layer entry %q", p)
		}
		f.Path = p
		byPath[p] = f
	}
	for p := range byPath {
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if parent, ok := byPath[dir]; ok {
				if !parent.Mode.IsDir() {
					return nil, fmt.Errorf("layer entry %q is under %q, which is not a directory", p, dir)
				}
				continue
			}
			byPath[dir] = File{Path: dir, Mode: fs.ModeDir | 0o755}
		}
	}
	out := make([]File, 0, len(byPath))
	for _, f := range byPath {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return pathLess(out[i].Path, out[j].Path) })
	return out, nil
}

// pathLess orders paths component by component, so that a directory comes
// right before its subtree ("a", "a/b", "a-b"), as tar tools list them; a
// parent, a proper prefix of its descendants, always comes first.
func pathLess(a, b string) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if ca == '/' {
			return true
		}
		if cb == '/' {
			return false
		}
		return ca < cb
	}
	return len(a) < len(b)
}

// tarMode maps a FileMode's permission and special bits to tar's mode field.
func tarMode(m fs.FileMode, def int64) int64 {
	mode := int64(m.Perm())
	if mode == 0 {
		mode = def
	}
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

// writeEntry writes one File as a tar entry.
func writeEntry(tw *tar.Writer, f File, mtime time.Time) error {
	h := &tar.Header{Name: f.Path, Uid: f.Uid, Gid: f.Gid, ModTime: mtime}
	switch t := f.Mode.Type(); {
	case t == fs.ModeDir:
		h.Typeflag, h.Name, h.Mode = tar.TypeDir, f.Path+"/", tarMode(f.Mode, 0o755)
	case t == fs.ModeSymlink:
		if f.Linkname == "" {
			return errors.New("symlink without a target")
		}
		h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, f.Linkname, tarMode(f.Mode, 0o777)
	case t == fs.ModeNamedPipe:
		h.Typeflag, h.Mode = tar.TypeFifo, tarMode(f.Mode, 0o644)
	case t == fs.ModeDevice|fs.ModeCharDevice:
		h.Typeflag, h.Mode, h.Devmajor, h.Devminor = tar.TypeChar, tarMode(f.Mode, 0o666), f.Devmajor, f.Devminor
	case t == fs.ModeDevice:
		h.Typeflag, h.Mode, h.Devmajor, h.Devminor = tar.TypeBlock, tarMode(f.Mode, 0o660), f.Devmajor, f.Devminor
	case t == 0:
		h.Typeflag, h.Mode = tar.TypeReg, tarMode(f.Mode, 0o644)
		h.Size = int64(len(f.Data))
		if f.Size > h.Size || f.Open != nil {
			h.Size = f.Size
		}
	default:
		return fmt.Errorf("unsupported file type %v", t)
	}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if h.Typeflag != tar.TypeReg {
		return nil
	}
	var r io.Reader
	if f.Open != nil {
		r = io.LimitReader(f.Open(), f.Size)
	} else {
		r = io.MultiReader(bytes.NewReader(f.Data), io.LimitReader(zeros{}, h.Size-int64(len(f.Data))))
	}
	n, err := io.Copy(tw, r)
	if err != nil {
		return err
	}
	if n != h.Size {
		return fmt.Errorf("content is %d bytes, declared %d", n, h.Size)
	}
	return nil
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
