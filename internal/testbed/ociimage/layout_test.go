package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// entry is one tar entry of a layer as read back; Data is kept only for
// files up to 1 MiB, Sum for every regular file.
type entry struct {
	Hdr  *tar.Header
	Data []byte
	Sum  digest.Digest
}

// readImage is an independent reader of what WriteLayout wrote: it follows
// index.json to the manifest named name, verifies every blob's digest and
// size on the way, checks each layer's diff ID and entry order, and returns
// the layers' entries.
type readImage struct {
	Index    ocispec.Index
	Desc     ocispec.Descriptor
	Manifest ocispec.Manifest
	Config   ocispec.Image
	Layers   [][]entry
}

func readBlob(t *testing.T, dir string, d ocispec.Descriptor) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "blobs", d.Digest.Algorithm().String(), d.Digest.Encoded()))
	if err != nil {
		t.Fatalf("blob %s: %v", d.Digest, err)
	}
	if got := digest.FromBytes(b); got != d.Digest {
		t.Fatalf("blob %s has digest %s", d.Digest, got)
	}
	if int64(len(b)) != d.Size {
		t.Fatalf("blob %s is %d bytes, descriptor says %d", d.Digest, len(b), d.Size)
	}
	return b
}

func readLayout(t *testing.T, dir, name string) *readImage {
	t.Helper()
	var layout ocispec.ImageLayout
	b, err := os.ReadFile(filepath.Join(dir, ocispec.ImageLayoutFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &layout); err != nil || layout.Version != ocispec.ImageLayoutVersion {
		t.Fatalf("oci-layout %q: %v", b, err)
	}
	ri := &readImage{}
	b, err = os.ReadFile(filepath.Join(dir, ocispec.ImageIndexFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ri.Index); err != nil {
		t.Fatal(err)
	}
	if ri.Index.SchemaVersion != 2 || ri.Index.MediaType != ocispec.MediaTypeImageIndex {
		t.Fatalf("index: schema %d media type %q", ri.Index.SchemaVersion, ri.Index.MediaType)
	}
	found := 0
	for _, m := range ri.Index.Manifests {
		if m.Annotations[AnnotationImageName] == name {
			ri.Desc = m
			found++
		}
	}
	if found != 1 {
		t.Fatalf("index has %d manifests named %q: %+v", found, name, ri.Index.Manifests)
	}
	if ri.Desc.Annotations[ocispec.AnnotationRefName] != name {
		t.Fatalf("ref.name annotation = %q, want %q", ri.Desc.Annotations[ocispec.AnnotationRefName], name)
	}
	if ri.Desc.MediaType != ocispec.MediaTypeImageManifest || ri.Desc.Platform == nil || ri.Desc.Platform.OS != "linux" {
		t.Fatalf("manifest descriptor: %+v", ri.Desc)
	}
	if err := json.Unmarshal(readBlob(t, dir, ri.Desc), &ri.Manifest); err != nil {
		t.Fatal(err)
	}
	if ri.Manifest.Config.MediaType != ocispec.MediaTypeImageConfig {
		t.Fatalf("config media type %q", ri.Manifest.Config.MediaType)
	}
	if err := json.Unmarshal(readBlob(t, dir, ri.Manifest.Config), &ri.Config); err != nil {
		t.Fatal(err)
	}
	if len(ri.Config.RootFS.DiffIDs) != len(ri.Manifest.Layers) {
		t.Fatalf("%d diff IDs for %d layers", len(ri.Config.RootFS.DiffIDs), len(ri.Manifest.Layers))
	}
	for i, l := range ri.Manifest.Layers {
		if l.MediaType != ocispec.MediaTypeImageLayerGzip {
			t.Fatalf("layer %d media type %q", i, l.MediaType)
		}
		zr, err := gzip.NewReader(bytes.NewReader(readBlob(t, dir, l)))
		if err != nil {
			t.Fatal(err)
		}
		diff := sha256.New()
		entries := readTar(t, io.TeeReader(zr, diff), *ri.Config.Created)
		if _, err := io.Copy(diff, zr); err != nil { // tar's trailing padding
			t.Fatal(err)
		}
		if got := digest.NewDigest(digest.SHA256, diff); got != ri.Config.RootFS.DiffIDs[i] {
			t.Fatalf("layer %d diff ID %s, config says %s", i, got, ri.Config.RootFS.DiffIDs[i])
		}
		ri.Layers = append(ri.Layers, entries)
	}
	return ri
}

// readTar reads a layer tar and checks what containerd's applier relies on:
// clean relative names, no duplicates, every parent directory listed before
// its children, every mtime the image's creation time.
func readTar(t *testing.T, r io.Reader, mtime time.Time) []entry {
	t.Helper()
	tr := tar.NewReader(r)
	seen := map[string]byte{}
	var out []entry
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if name == "" || path.Clean(name) != name || strings.HasPrefix(name, "/") || strings.HasPrefix(name, "../") {
			t.Fatalf("unclean entry name %q", h.Name)
		}
		if _, dup := seen[name]; dup {
			t.Fatalf("duplicate entry %q", name)
		}
		if dir := path.Dir(name); dir != "." && seen[dir] != tar.TypeDir {
			t.Fatalf("entry %q comes before its parent directory %q", name, dir)
		}
		if !h.ModTime.Equal(mtime) {
			t.Fatalf("entry %q has mtime %v", name, h.ModTime)
		}
		seen[name] = h.Typeflag
		e := entry{Hdr: h}
		if h.Typeflag == tar.TypeReg {
			sum := sha256.New()
			var keep bytes.Buffer
			w := io.Writer(sum)
			if h.Size <= 1<<20 {
				w = io.MultiWriter(sum, &keep)
			}
			if _, err := io.Copy(w, tr); err != nil {
				t.Fatal(err)
			}
			e.Sum = digest.NewDigest(digest.SHA256, sum)
			if h.Size <= 1<<20 {
				e.Data = keep.Bytes()
			}
		}
		out = append(out, e)
	}
	return out
}

// flatten applies the layers in order (the testbed's images have no
// whiteouts) and returns the resulting filesystem by path.
func (ri *readImage) flatten() map[string]entry {
	fsys := map[string]entry{}
	for _, l := range ri.Layers {
		for _, e := range l {
			fsys[strings.TrimSuffix(e.Hdr.Name, "/")] = e
		}
	}
	return fsys
}

func testImage() *Image {
	return &Image{
		Name: "rootscan.test/unit:1",
		Layers: []Layer{
			{Files: []File{
				// Deliberately unsorted, without parent directories.
				{Path: "usr/bin/tool", Mode: 0o755, Data: []byte("#!tool\n"), Uid: 7, Gid: 8},
				{Path: "/etc/motd", Data: []byte("hello\n")},
				{Path: "etc/link", Mode: fs.ModeSymlink, Linkname: "/etc/motd"},
				{Path: "run/fifo", Mode: fs.ModeNamedPipe},
				{Path: "dev/null", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o666, Devmajor: 1, Devminor: 3},
				{Path: "tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
				{Path: "padded", Data: []byte("ab"), Size: 10},
				{Path: "streamed", Size: 3, Open: func() io.Reader { return strings.NewReader("xyz-ignored") }},
				{Path: "a-b/c"},
				{Path: "a/b"},
			}},
			{Files: []File{{Path: "etc/motd", Mode: 0o600, Data: []byte("overridden\n")}}},
		},
		Config: ocispec.ImageConfig{Entrypoint: []string{"/usr/bin/tool"}},
	}
}

func TestWriteLayoutRoundTrip(t *testing.T) {
	dir := t.TempDir()
	img := testImage()
	dgst, err := img.WriteLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	ri := readLayout(t, dir, img.Name)
	if ri.Desc.Digest != dgst {
		t.Fatalf("WriteLayout returned %s, index has %s", dgst, ri.Desc.Digest)
	}
	if got := ri.Config.Config.Entrypoint; len(got) != 1 || got[0] != "/usr/bin/tool" {
		t.Fatalf("entrypoint %v", got)
	}
	if ri.Config.OS != "linux" || ri.Config.Architecture == "" || ri.Config.RootFS.Type != "layers" {
		t.Fatalf("config platform/rootfs: %+v", ri.Config)
	}
	var names []string
	for _, e := range ri.Layers[0] {
		names = append(names, e.Hdr.Name)
	}
	want := []string{"a/", "a/b", "a-b/", "a-b/c", "dev/", "dev/null", "etc/", "etc/link", "etc/motd", "padded",
		"run/", "run/fifo", "streamed", "tmp/", "usr/", "usr/bin/", "usr/bin/tool"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("layer 0 entries\n got %v\nwant %v", names, want)
	}
	fsys := ri.flatten()
	check := func(p string, typ byte, mode int64) entry {
		t.Helper()
		e, ok := fsys[p]
		if !ok {
			t.Fatalf("%s missing", p)
		}
		if e.Hdr.Typeflag != typ || e.Hdr.Mode != mode {
			t.Fatalf("%s: type %q mode %o, want %q %o", p, e.Hdr.Typeflag, e.Hdr.Mode, typ, mode)
		}
		return e
	}
	if e := check("usr/bin/tool", tar.TypeReg, 0o755); string(e.Data) != "#!tool\n" || e.Hdr.Uid != 7 || e.Hdr.Gid != 8 {
		t.Fatalf("usr/bin/tool: %q uid %d gid %d", e.Data, e.Hdr.Uid, e.Hdr.Gid)
	}
	check("usr", tar.TypeDir, 0o755)
	if e := check("etc/motd", tar.TypeReg, 0o600); string(e.Data) != "overridden\n" {
		t.Fatalf("upper layer does not override etc/motd: %q", e.Data)
	}
	if e := check("etc/link", tar.TypeSymlink, 0o777); e.Hdr.Linkname != "/etc/motd" {
		t.Fatalf("etc/link -> %q", e.Hdr.Linkname)
	}
	check("run/fifo", tar.TypeFifo, 0o644)
	if e := check("dev/null", tar.TypeChar, 0o666); e.Hdr.Devmajor != 1 || e.Hdr.Devminor != 3 {
		t.Fatalf("dev/null is %d:%d", e.Hdr.Devmajor, e.Hdr.Devminor)
	}
	check("tmp", tar.TypeDir, 0o1777)
	if e := check("padded", tar.TypeReg, 0o644); string(e.Data) != "ab\x00\x00\x00\x00\x00\x00\x00\x00" {
		t.Fatalf("padded: %q", e.Data)
	}
	if e := check("streamed", tar.TypeReg, 0o644); string(e.Data) != "xyz" {
		t.Fatalf("streamed: %q", e.Data)
	}

	// Same inputs, same digests: containerd's and the scanner's caches
	// depend on it.
	dir2 := t.TempDir()
	dgst2, err := testImage().WriteLayout(dir2)
	if err != nil {
		t.Fatal(err)
	}
	if dgst2 != dgst {
		t.Fatalf("rebuild gave manifest %s, first build %s", dgst2, dgst)
	}
	b1, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	b2, _ := os.ReadFile(filepath.Join(dir2, "index.json"))
	if !bytes.Equal(b1, b2) {
		t.Fatalf("index.json differs between builds:\n%s\n%s", b1, b2)
	}
}

func TestWriteLayoutSharesIndex(t *testing.T) {
	dir := t.TempDir()
	a := testImage()
	b := &Image{Name: "rootscan.test/other:1", Layers: []Layer{{Files: []File{{Path: "x", Data: []byte("x")}}}}}
	if _, err := a.WriteLayout(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WriteLayout(dir); err != nil {
		t.Fatal(err)
	}
	// Rewriting a name replaces its entry rather than adding a second one.
	b.Layers[0].Files[0].Data = []byte("y")
	dgst, err := b.WriteLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	readLayout(t, dir, a.Name)
	if ri := readLayout(t, dir, b.Name); ri.Desc.Digest != dgst {
		t.Fatalf("index points %s at %s, want %s", b.Name, ri.Desc.Digest, dgst)
	}
	var idx ocispec.Index
	raw, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	if err := json.Unmarshal(raw, &idx); err != nil || len(idx.Manifests) != 2 {
		t.Fatalf("index has %d manifests (%v), want 2", len(idx.Manifests), err)
	}
}

func TestWriteArchive(t *testing.T) {
	img := testImage()
	var buf bytes.Buffer
	dgst, err := img.WriteArchive(&buf)
	if err != nil {
		t.Fatal(err)
	}
	// Unpack the archive and read it as a layout: the same checks apply.
	dir := t.TempDir()
	tr := tar.NewReader(&buf)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("archive entry %q has type %q", h.Name, h.Typeflag)
		}
	}
	for _, want := range []string{"oci-layout", "index.json", "blobs/sha256/" + dgst.Encoded()} {
		if !contains(names, want) {
			t.Fatalf("archive lacks %s: %v", want, names)
		}
	}
	if ri := readLayout(t, dir, img.Name); ri.Desc.Digest != dgst {
		t.Fatalf("archive index points at %s, WriteArchive returned %s", ri.Desc.Digest, dgst)
	}
	layoutDigest, err := testImage().WriteLayout(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if layoutDigest != dgst {
		t.Fatalf("archive manifest %s differs from layout manifest %s", dgst, layoutDigest)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestLayerRejectsBadEntries(t *testing.T) {
	for name, files := range map[string][]File{
		"duplicate":         {{Path: "a"}, {Path: "/a"}},
		"dotdot":            {{Path: "a/../../etc/passwd"}},
		"root":              {{Path: "/", Mode: fs.ModeDir}},
		"under a file":      {{Path: "a"}, {Path: "a/b"}},
		"under a symlink":   {{Path: "lib", Mode: fs.ModeSymlink, Linkname: "usr/lib"}, {Path: "lib/x"}},
		"symlink no target": {{Path: "l", Mode: fs.ModeSymlink}},
		"short content":     {{Path: "s", Size: 5, Open: func() io.Reader { return strings.NewReader("abc") }}},
		"socket":            {{Path: "s", Mode: fs.ModeSocket}},
	} {
		t.Run(name, func(t *testing.T) {
			img := &Image{Name: "rootscan.test/bad:1", Layers: []Layer{{Files: files}}}
			if _, err := img.WriteLayout(t.TempDir()); err == nil {
				t.Fatal("WriteLayout accepted the layer")
			}
		})
	}
}
