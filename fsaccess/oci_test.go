package fsaccess_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rootscan/rootscan/fsaccess"
)

// entry is one tar entry of a test layer.
type entry struct {
	name, body, link string
	typ              byte
}

func file(name, body string) entry        { return entry{name: name, body: body, typ: tar.TypeReg} }
func dir(name string) entry               { return entry{name: name, typ: tar.TypeDir} }
func link(name, target string) entry      { return entry{name: name, link: target, typ: tar.TypeSymlink} }
func special(name string, typ byte) entry { return entry{name: name, typ: typ} }

func tarball(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644, Size: int64(len(e.body))}
		switch e.typ {
		case tar.TypeDir:
			hdr.Mode = 0o755
		case tar.TypeChar:
			hdr.Devmajor, hdr.Devminor = 10, 130
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipped(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstded(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// layout writes an OCI image layout.
type layout struct {
	t   testing.TB
	dir string
}

func newLayout(t testing.TB) *layout {
	dir := t.TempDir()
	write(t, filepath.Join(dir, ocispec.ImageLayoutFile), `{"imageLayoutVersion":"1.0.0"}`)
	return &layout{t: t, dir: dir}
}

func (l *layout) blob(mediaType string, data []byte) ocispec.Descriptor {
	d := digest.FromBytes(data)
	write(l.t, filepath.Join(l.dir, "blobs", "sha256", d.Encoded()), string(data))
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
}

func (l *layout) json(mediaType string, v any) ocispec.Descriptor {
	data, err := json.Marshal(v)
	if err != nil {
		l.t.Fatal(err)
	}
	return l.blob(mediaType, data)
}

// layer is an uncompressed tar and the media type and encoding it is stored with.
type layer struct {
	tar       []byte
	mediaType string
	encode    func(testing.TB, []byte) []byte
}

// image writes config, layers and manifest; it returns the manifest's descriptor.
func (l *layout) image(arch string, cfg ocispec.ImageConfig, layers ...layer) ocispec.Descriptor {
	var img ocispec.Image
	img.OS, img.Architecture = "linux", arch
	img.Config = cfg
	img.RootFS.Type = "layers"
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest}
	for _, ly := range layers {
		img.RootFS.DiffIDs = append(img.RootFS.DiffIDs, digest.FromBytes(ly.tar))
		data := ly.tar
		if ly.encode != nil {
			data = ly.encode(l.t, data)
		}
		m.Layers = append(m.Layers, l.blob(ly.mediaType, data))
	}
	m.Config = l.json(ocispec.MediaTypeImageConfig, img)
	return l.json(ocispec.MediaTypeImageManifest, m)
}

func (l *layout) index(manifests ...ocispec.Descriptor) {
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: manifests}
	data, err := json.Marshal(idx)
	if err != nil {
		l.t.Fatal(err)
	}
	write(l.t, filepath.Join(l.dir, ocispec.ImageIndexFile), string(data))
}

func withRef(d ocispec.Descriptor, ref string) ocispec.Descriptor {
	d.Annotations = map[string]string{ocispec.AnnotationRefName: ref}
	return d
}

func assertEmpty(t testing.TB, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Errorf("%s not cleaned up: %v", dir, ents)
	}
}

func TestOpenOCI(t *testing.T) {
	l := newLayout(t)
	canaryDir, err := os.MkdirTemp("/tmp", "rootscan-canary-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(canaryDir) })
	base := tarball(t,
		dir("etc/"), file("etc/os-release", "ID=test\n"), file("etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
		dir("var/lib/old/"), file("var/lib/old/a", "a"), dir("opt/keep/"), file("opt/keep/x", "x"),
		link("etc/localtime", "/usr/share/zoneinfo/UTC"), file("usr/share/zoneinfo/UTC", "TZif"),
		special("dev/watchdog", tar.TypeChar), special("run/fifo", tar.TypeFifo),
	)
	top := tarball(t,
		file("etc/.wh.passwd", ""),
		file("var/lib/old/.wh..wh..opq", ""), file("var/lib/old/new", "new"),
		file("opt/keep/y", "y"),
		// Hostile entries: a name that climbs out, and a file written through an absolute link to a host dir.
		file("../../escape", "escaped"),
		link("evil", canaryDir), file("evil/pwned", "pwned"),
	)
	third := tarball(t, file("etc/motd", "hello"))
	m := l.image(runtime.GOARCH, ocispec.ImageConfig{User: "65532", Env: []string{"PATH=/bin"}},
		layer{base, ocispec.MediaTypeImageLayerGzip, gzipped},
		layer{top, ocispec.MediaTypeImageLayerZstd, zstded},
		layer{third, ocispec.MediaTypeImageLayer, nil},
	)
	l.index(withRef(m, "example.com/app:1.0"))

	scratch := t.TempDir()
	r, img, err := fsaccess.OpenOCI(context.Background(), l.dir, scratch, fsaccess.OCIOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	for name, want := range map[string]string{
		"etc/os-release": "ID=test\n", "etc/localtime": "TZif", "var/lib/old/new": "new", "opt/keep/x": "x",
		"opt/keep/y": "y", "etc/motd": "hello", "escape": "escaped", canaryDir[1:] + "/pwned": "pwned",
	} {
		if got, err := r.ReadFile(name); err != nil || string(got) != want {
			t.Errorf("ReadFile(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
	for _, name := range []string{"etc/passwd", "var/lib/old/a", "etc/.wh.passwd", "var/lib/old/.wh..wh..opq", "dev/watchdog"} {
		if _, err := r.Lstat(name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Lstat(%q) err = %v, want ErrNotExist (whited out or not created)", name, err)
		}
	}
	if fi, err := r.Lstat("run/fifo"); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		t.Errorf("Lstat(run/fifo) = %v, %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(canaryDir, "pwned")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a layer wrote through a link to the host: %v", err)
	}
	for _, d := range []string{filepath.Dir(scratch), scratch, filepath.Dir(filepath.Dir(r.Path()))} {
		if _, err := os.Stat(filepath.Join(d, "escape")); err == nil {
			t.Errorf("a layer wrote %s/escape", d)
		}
	}

	if img.RefName != "example.com/app:1.0" || img.ManifestDigest != m.Digest || img.Config.Config.User != "65532" {
		t.Errorf("image = %+v", img)
	}
	if img.ChainID != identity.ChainID(img.Config.RootFS.DiffIDs) || img.ChainID == "" {
		t.Errorf("chain ID %s", img.ChainID)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, scratch)
}

func TestOpenOCISelect(t *testing.T) {
	l := newLayout(t)
	img := func(arch string) ocispec.Descriptor {
		return l.image(arch, ocispec.ImageConfig{}, layer{tarball(t, file("arch", arch)), ocispec.MediaTypeImageLayerGzip, gzipped})
	}
	amd, arm := img("amd64"), img("arm64")
	amd.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	arm.Platform = &ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	multi := l.json(ocispec.MediaTypeImageIndex, ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{amd, arm}})
	single := img("riscv64")
	l.index(withRef(multi, "multi:latest"), withRef(single, "single:latest"))
	ctx := context.Background()

	open := func(opts fsaccess.OCIOptions) (string, error) {
		t.Helper()
		scratch := t.TempDir()
		r, _, err := fsaccess.OpenOCI(ctx, l.dir, scratch, opts)
		if err != nil {
			assertEmpty(t, scratch)
			return "", err
		}
		defer r.Close()
		b, err := r.ReadFile("arch")
		return string(b), err
	}
	if _, err := open(fsaccess.OCIOptions{Platform: "linux/amd64"}); err != nil {
		t.Errorf("only one image has linux/amd64, yet: %v", err)
	}
	if got, err := open(fsaccess.OCIOptions{Ref: "multi:latest", Platform: "linux/arm64"}); err != nil || got != "arm64" {
		t.Errorf("multi linux/arm64 = %q, %v", got, err)
	}
	if got, err := open(fsaccess.OCIOptions{Ref: "multi:latest"}); err != nil || (runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64") && got != runtime.GOARCH {
		t.Errorf("multi default platform = %q, %v; want %s", got, err, runtime.GOARCH)
	}
	// The only image of a ref is taken whatever its architecture, unless a platform is asked for.
	if got, err := open(fsaccess.OCIOptions{Ref: "single:latest"}); err != nil || got != "riscv64" {
		t.Errorf("single = %q, %v", got, err)
	}
	if _, err := open(fsaccess.OCIOptions{Ref: "single:latest", Platform: "linux/amd64"}); err == nil || !strings.Contains(err.Error(), "linux/riscv64") {
		t.Errorf("single with linux/amd64 err = %v, want one naming the platform the layout has", err)
	}
	if _, err := open(fsaccess.OCIOptions{Ref: "nope"}); err == nil || !strings.Contains(err.Error(), "multi:latest, single:latest") {
		t.Errorf("unknown ref err = %v, want the choices", err)
	}
	// Two images of the same platform without a ref: ambiguous.
	l.index(withRef(multi, "multi:latest"), withRef(img(runtime.GOARCH), "other:latest"))
	if _, err := open(fsaccess.OCIOptions{}); err == nil || !strings.Contains(err.Error(), "multi:latest, other:latest") {
		t.Errorf("ambiguous err = %v, want the choices", err)
	}
	if got, err := open(fsaccess.OCIOptions{Ref: "other:latest"}); err != nil || got != runtime.GOARCH {
		t.Errorf("other = %q, %v", got, err)
	}
	if _, _, err := fsaccess.OpenOCI(ctx, t.TempDir(), t.TempDir(), fsaccess.OCIOptions{}); err == nil || !strings.Contains(err.Error(), "not an OCI image layout") {
		t.Errorf("empty dir err = %v", err)
	}
}

func TestOpenOCIDigestMismatch(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		corrupt func(l *layout, m ocispec.Manifest)
	}{
		{"layer", func(l *layout, m ocispec.Manifest) {
			// Same size, still a valid tar: only the digest can tell.
			p := filepath.Join(l.dir, "blobs/sha256", m.Layers[0].Digest.Encoded())
			b, _ := os.ReadFile(p)
			i := bytes.Index(b, []byte("ID=test"))
			b[i] = 'X'
			os.WriteFile(p, b, 0o644)
		}},
		{"config", func(l *layout, m ocispec.Manifest) {
			p := filepath.Join(l.dir, "blobs/sha256", m.Config.Digest.Encoded())
			b, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.Replace(b, []byte("amd64"), []byte("AMD64"), 1), 0o644)
		}},
		{"size", func(l *layout, m ocispec.Manifest) {
			p := filepath.Join(l.dir, "blobs/sha256", m.Layers[0].Digest.Encoded())
			f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			f.Write([]byte("trailing"))
			f.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLayout(t)
			md := l.image("amd64", ocispec.ImageConfig{}, layer{tarball(t, file("etc/os-release", "ID=test\n")), ocispec.MediaTypeImageLayer, nil})
			l.index(md)
			var m ocispec.Manifest
			b, _ := os.ReadFile(filepath.Join(l.dir, "blobs/sha256", md.Digest.Encoded()))
			json.Unmarshal(b, &m)
			tc.corrupt(l, m)
			scratch := t.TempDir()
			r, _, err := fsaccess.OpenOCI(ctx, l.dir, scratch, fsaccess.OCIOptions{})
			if !errors.Is(err, fsaccess.ErrDigestMismatch) {
				if r != nil {
					r.Close()
				}
				t.Fatalf("err = %v, want ErrDigestMismatch", err)
			}
			assertEmpty(t, scratch)
		})
	}
}

// zeros streams n zero bytes.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > z.n {
		p = p[:z.n]
	}
	clear(p)
	z.n -= int64(len(p))
	return len(p), nil
}

func TestOpenOCIBombs(t *testing.T) {
	ctx := context.Background()
	// A 1 GiB file of zeros, about 1 MiB gzip'd.
	var big bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&big, gzip.BestSpeed)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1 << 30})
	if _, err := io.Copy(tw, &zeros{1 << 30}); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	gz.Close()
	t.Logf("1 GiB bomb is %d bytes compressed", big.Len())

	// A small tar followed by 1 GiB of zeros after its end marker: only the stream counter sees those.
	var trailing bytes.Buffer
	gz, _ = gzip.NewWriterLevel(&trailing, gzip.BestSpeed)
	gz.Write(tarball(t, file("small", "x")))
	io.Copy(gz, &zeros{1 << 30})
	gz.Close()

	many := make([]entry, 0, 2000)
	for i := range 2000 {
		many = append(many, file("f/"+strconv.Itoa(i), ""))
	}

	for _, tc := range []struct {
		name string
		blob []byte
		opts fsaccess.OCIOptions
	}{
		{"declared", big.Bytes(), fsaccess.OCIOptions{MaxExtractBytes: 64 << 20}},
		{"stream", trailing.Bytes(), fsaccess.OCIOptions{MaxExtractBytes: 64 << 20}},
		{"entries", gzipped(t, tarball(t, many...)), fsaccess.OCIOptions{MaxExtractEntries: 1000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLayout(t)
			// The diff ID is irrelevant: extraction must stop before it is checked.
			var img ocispec.Image
			img.OS, img.Architecture, img.RootFS.DiffIDs = "linux", "amd64", []digest.Digest{digest.FromString("unused")}
			m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
				Config: l.json(ocispec.MediaTypeImageConfig, img),
				Layers: []ocispec.Descriptor{l.blob(ocispec.MediaTypeImageLayerGzip, tc.blob)}}
			l.index(l.json(ocispec.MediaTypeImageManifest, m))
			scratch := t.TempDir()
			_, _, err := fsaccess.OpenOCI(ctx, l.dir, scratch, tc.opts)
			if !errors.Is(err, fsaccess.ErrLimit) {
				t.Fatalf("err = %v, want ErrLimit", err)
			}
			assertEmpty(t, scratch)
		})
	}
}
