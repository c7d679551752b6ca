package testbed

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/rootscan/rootscan/internal/testbed/ociimage"
)

// Snapshotter is the snapshotter the testbed's CRI uses and images are
// unpacked into.
const Snapshotter = "overlayfs"

// ImageRef identifies an imported image the ways the CRI and a scanner see it.
type ImageRef struct {
	// Name is the tagged reference, e.g. "rootscan.test/pause:1".
	Name string
	// ID is the CRI image ID: the config digest, as kubelet passes it to
	// CreateContainer and ContainerStatus reports it.
	ID string
	// RepoDigest is name@manifest-digest, as the CRI lists in RepoDigests.
	RepoDigest string
	// Manifest is the manifest digest.
	Manifest digest.Digest
	// ChainID is the chain ID of the image's layers: the key of the top
	// committed snapshot, by which rootscan caches image reports.
	ChainID digest.Digest
}

// CRI image labels: "managed" marks an image as the CRI's own (containerd 2.x
// sets it on pull), "pinned" keeps the sandbox image from kubelet's GC.
const (
	criImageLabel  = "io.cri-containerd.image"
	criPinnedLabel = "io.cri-containerd.pinned"
)

// Import imports img into the CRI's namespace, unpacks it into the overlayfs
// snapshotter and waits until the CRI's ImageStatus knows it, so that the
// image is to the CRI what a pulled one would be.
func (c *Containerd) Import(ctx context.Context, img *ociimage.Image) (ImageRef, error) {
	ref, err := c.importImage(ctx, img, false)
	if err != nil {
		return ImageRef{}, fmt.Errorf("import image %s: %w", img.Name, err)
	}
	return ref, nil
}

func (c *Containerd) importImage(ctx context.Context, img *ociimage.Image, pinned bool) (ImageRef, error) {
	named, err := reference.ParseNormalizedNamed(img.Name)
	if err != nil {
		return ImageRef{}, fmt.Errorf("parse image name: %w", err)
	}
	repo := named.Name()
	labels := map[string]string{criImageLabel: "managed"}
	if pinned {
		labels[criPinnedLabel] = "pinned"
	}

	pr, pw := io.Pipe()
	go func() {
		_, err := img.WriteArchive(pw)
		pw.CloseWithError(err)
	}()
	imgs, err := c.client.Import(ctx, pr,
		containerd.WithImageLabels(labels),
		// A pulled image also has a name@digest record; the CRI reports it
		// as the repo digest.
		containerd.WithDigestRef(func(d digest.Digest) string { return repo + "@" + d.String() }),
	)
	pr.CloseWithError(io.ErrClosedPipe) // unblock the writer if Import stopped early
	if err != nil {
		return ImageRef{}, fmt.Errorf("import archive: %w", err)
	}
	i := slices.IndexFunc(imgs, func(m images.Image) bool { return m.Name == img.Name })
	if i < 0 {
		return ImageRef{}, fmt.Errorf("archive did not name an image %s", img.Name)
	}
	image := containerd.NewImage(c.client, imgs[i])
	if err := image.Unpack(ctx, Snapshotter); err != nil {
		return ImageRef{}, fmt.Errorf("unpack into %s: %w", Snapshotter, err)
	}
	cfg, err := image.Config(ctx)
	if err != nil {
		return ImageRef{}, fmt.Errorf("read config: %w", err)
	}
	diffIDs, err := image.RootFS(ctx)
	if err != nil {
		return ImageRef{}, fmt.Errorf("read rootfs: %w", err)
	}
	ref := ImageRef{
		Name:       img.Name,
		ID:         cfg.Digest.String(),
		RepoDigest: repo + "@" + imgs[i].Target.Digest.String(),
		Manifest:   imgs[i].Target.Digest,
		ChainID:    identity.ChainID(diffIDs),
	}
	if err := c.waitCRIImage(ctx, ref); err != nil {
		return ImageRef{}, err
	}
	return ref, nil
}

// waitCRIImage waits until the CRI has caught up with the image store: the
// CRI keeps its own image cache, fed by containerd's image events.
func (c *Containerd) waitCRIImage(ctx context.Context, ref ImageRef) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var last string
	for {
		resp, err := c.is.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref.Name}})
		switch {
		case err != nil:
			last = err.Error()
		case resp.Image == nil:
			last = "not found"
		case resp.Image.Id != ref.ID:
			last = fmt.Sprintf("ID %s, want %s", resp.Image.Id, ref.ID)
		default:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CRI does not see image %s: %s", ref.Name, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
