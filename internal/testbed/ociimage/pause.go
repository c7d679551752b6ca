package ociimage

import (
	"context"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PauseName is the reference the pause image is imported under.
const PauseName = "rootscan.test/pause:1"

// Pause returns the testbed's sandbox image: one static binary, /pause, that
// sleeps until SIGTERM or SIGINT. No registry is reachable in the testbed, so
// CRI pods use this instead of registry.k8s.io/pause. cacheDir keeps the
// built binary (DefaultCacheDir when empty).
func Pause(ctx context.Context, cacheDir string) (*Image, error) {
	if cacheDir == "" {
		cacheDir = DefaultCacheDir()
	}
	bin, err := buildStatic(ctx, cacheDir, "pause", pauseSrc)
	if err != nil {
		return nil, fmt.Errorf("pause image: %w", err)
	}
	return &Image{
		Name:   PauseName,
		Layers: []Layer{{Files: []File{{Path: "pause", Mode: 0o755, Data: bin}}}},
		Config: ocispec.ImageConfig{
			Entrypoint: []string{"/pause"},
			Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			StopSignal: "SIGTERM",
		},
	}, nil
}
