package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/images/archive"
	"github.com/containerd/containerd/v2/plugins/content/local"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// releaseImage is testImage with what a release image sets: a creation time, manifest annotations and the best
// compression.
func releaseImage() *Image {
	img := testImage()
	img.Created = time.Date(2026, 12, 7, 7, 27, 28, 0, time.FixedZone("CET", 3600))
	img.Annotations = map[string]string{ocispec.AnnotationRevision: "9f27ded", ocispec.AnnotationVersion: "0.1.0"}
	img.GzipLevel = gzip.BestCompression
	return img
}

// TestReleaseFields: the creation time is the config's and every entry's (in UTC), the annotations are the
// manifest's, and the compression level changes the layer blobs but not what they hold.
func TestReleaseFields(t *testing.T) {
	img := releaseImage()
	dir := t.TempDir()
	if _, err := img.WriteLayout(dir); err != nil {
		t.Fatal(err)
	}
	ri := readLayout(t, dir, img.Name) // checks every entry's mtime against the config's
	if want := img.Created.UTC(); !ri.Config.Created.Equal(want) || ri.Config.Created.Location() != time.UTC {
		t.Errorf("config created %v, want %v in UTC", ri.Config.Created, want)
	}
	for k, v := range img.Annotations {
		if ri.Manifest.Annotations[k] != v {
			t.Errorf("manifest annotation %s = %q, want %q", k, ri.Manifest.Annotations[k], v)
		}
	}
	plain := testImage()
	pdir := t.TempDir()
	if _, err := plain.WriteLayout(pdir); err != nil {
		t.Fatal(err)
	}
	pri := readLayout(t, pdir, plain.Name)
	if !pri.Config.Created.Equal(Epoch) || pri.Manifest.Annotations != nil {
		t.Errorf("default image: created %v, annotations %v; want Epoch and none", pri.Config.Created, pri.Manifest.Annotations)
	}
	for i := range ri.Manifest.Layers {
		if ri.Manifest.Layers[i].Size >= pri.Manifest.Layers[i].Size && ri.Manifest.Layers[i].Size > 200 {
			t.Errorf("layer %d: %d bytes at BestCompression, %d at BestSpeed", i, ri.Manifest.Layers[i].Size, pri.Manifest.Layers[i].Size)
		}
		if len(ri.Layers[i]) != len(pri.Layers[i]) {
			t.Errorf("layer %d: %d entries, %d with the default level", i, len(ri.Layers[i]), len(pri.Layers[i]))
		}
	}
}

// TestArchiveIsDockerArchive reads WriteArchive's output the way a docker-archive is read: containerd's importer,
// given the tar without oci-layout and index.json, falls back to manifest.json exactly as for `docker save` output
// of Docker before 25. The image it builds must have our config and layers and the image's name as its tag.
func TestArchiveIsDockerArchive(t *testing.T) {
	img := releaseImage()
	var buf bytes.Buffer
	dgst, err := img.WriteArchive(&buf)
	if err != nil {
		t.Fatal(err)
	}
	layout := t.TempDir()
	if _, err := img.WriteLayout(layout); err != nil {
		t.Fatal(err)
	}
	want := readLayout(t, layout, img.Name)
	if want.Desc.Digest != dgst {
		t.Fatalf("archive manifest %s, layout manifest %s", dgst, want.Desc.Digest)
	}

	docker := dropEntries(t, buf.Bytes(), ocispec.ImageLayoutFile, ocispec.ImageIndexFile)
	ctx := context.Background()
	store, err := local.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	idxDesc, err := archive.ImportIndex(ctx, store, bytes.NewReader(docker))
	if err != nil {
		t.Fatalf("import as docker-archive: %v", err)
	}
	var idx ocispec.Index
	readJSON(t, ctx, store, idxDesc, &idx)
	if len(idx.Manifests) != 1 {
		t.Fatalf("docker-archive import gave %d manifests, want 1", len(idx.Manifests))
	}
	m := idx.Manifests[0]
	if m.MediaType != images.MediaTypeDockerSchema2Manifest || m.Annotations[images.AnnotationImageName] != "rootscan.test/unit:1" {
		t.Fatalf("imported %s named %q, want a Docker manifest named rootscan.test/unit:1", m.MediaType, m.Annotations[images.AnnotationImageName])
	}
	var man ocispec.Manifest
	readJSON(t, ctx, store, m, &man)
	if man.Config.Digest != want.Manifest.Config.Digest {
		t.Errorf("docker-archive config %s, want %s", man.Config.Digest, want.Manifest.Config.Digest)
	}
	var got, wantLayers []string
	for _, l := range man.Layers {
		got = append(got, l.Digest.String())
	}
	for _, l := range want.Manifest.Layers {
		wantLayers = append(wantLayers, l.Digest.String())
	}
	if !slices.Equal(got, wantLayers) {
		t.Errorf("docker-archive layers %v, want %v", got, wantLayers)
	}
}

// dropEntries copies a tar without the named entries.
func dropEntries(t *testing.T, archive []byte, names ...string) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(archive))
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(names, h.Name) {
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func readJSON(t *testing.T, ctx context.Context, store content.Store, desc ocispec.Descriptor, v any) {
	t.Helper()
	b, err := content.ReadBlob(ctx, store, desc)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}
