package fsaccess

import (
	"context"
	"errors"
	"fmt"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// CRINamespace is the containerd namespace the CRI plugin keeps Kubernetes containers, images and snapshots in.
const CRINamespace = "k8s.io"

// ErrSnapshotNotFound means the container's snapshot no longer exists (the container was removed mid-scan).
var ErrSnapshotNotFound = errors.New("snapshot not found")

// Snapshots reads containerd's snapshotters and image store. It only reads: it never prepares, views, commits or
// removes a snapshot, so a scan leaves no trace in containerd's metadata either.
type Snapshots struct {
	client *containerd.Client
}

// DialSnapshots connects to containerd's own API on address (the same socket that serves the CRI). The v2 client
// works against 1.6, 1.7 and 2.x servers.
func DialSnapshots(ctx context.Context, address string) (*Snapshots, error) {
	c, err := containerd.New(address, containerd.WithDefaultNamespace(CRINamespace), containerd.WithTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w", address, err)
	}
	return &Snapshots{client: c}, nil
}

// Close releases the connection.
func (s *Snapshots) Close() error { return s.client.Close() }

// Mounts returns how the snapshotter would mount the snapshot key, without mounting anything.
func (s *Snapshots) Mounts(ctx context.Context, snapshotter, key string) ([]mount.Mount, error) {
	if snapshotter == "" || key == "" {
		return nil, fmt.Errorf("snapshot mounts: the runtime did not report a snapshotter and key")
	}
	ms, err := s.client.SnapshotService(snapshotter).Mounts(ctx, key)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("snapshot %s/%s: %w", snapshotter, key, ErrSnapshotNotFound)
		}
		return nil, fmt.Errorf("snapshot %s/%s mounts: %w", snapshotter, key, err)
	}
	return ms, nil
}

// Parent is the snapshot's parent key: for a container it is the chain ID of the image's top layer, the key under
// which an image's analysis can be cached and shared by every container of that image on the node.
func (s *Snapshots) Parent(ctx context.Context, snapshotter, key string) (string, error) {
	info, err := s.client.SnapshotService(snapshotter).Stat(ctx, key)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return "", fmt.Errorf("snapshot %s/%s: %w", snapshotter, key, ErrSnapshotNotFound)
		}
		return "", fmt.Errorf("stat snapshot %s/%s: %w", snapshotter, key, err)
	}
	return info.Parent, nil
}

// ImageDigest is the manifest (or index) digest of the image a container was created from, as containerd's image
// store records it. The CRI only reports a repo digest for images pulled from a registry; this works for every image.
func (s *Snapshots) ImageDigest(ctx context.Context, containerID string) (string, error) {
	c, err := s.client.ContainerService().Get(ctx, containerID)
	if err != nil {
		return "", fmt.Errorf("get container %s: %w", containerID, err)
	}
	img, err := s.client.ImageService().Get(ctx, c.Image)
	if err != nil {
		return "", fmt.Errorf("get image %s of container %s: %w", c.Image, containerID, err)
	}
	return img.Target.Digest.String(), nil
}

// ImageConfig is the OCI config (user, env, entrypoint, ports, labels) of the image a container was created from,
// read from containerd's content store for the node's platform. Compliance controls check it; the CRI does not
// report it.
func (s *Snapshots) ImageConfig(ctx context.Context, containerID string) (*ocispec.ImageConfig, error) {
	c, err := s.client.ContainerService().Get(ctx, containerID)
	if err != nil {
		return nil, fmt.Errorf("get container %s: %w", containerID, err)
	}
	img, err := s.client.GetImage(ctx, c.Image)
	if err != nil {
		return nil, fmt.Errorf("get image %s of container %s: %w", c.Image, containerID, err)
	}
	spec, err := img.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("read config of image %s: %w", c.Image, err)
	}
	return &spec.Config, nil
}
