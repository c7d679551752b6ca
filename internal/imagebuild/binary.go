package imagebuild

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// buildBinary builds ./cmd/rootscan in the module at dir as `make build` does
// (static, -trimpath, stripped, the version linked in) for linux/arch, and
// returns it. The environment is fixed where it changes the output: no cgo, no
// GOFLAGS from the caller, the baseline amd64 level.
func buildBinary(ctx context.Context, dir, version, arch string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "imagebuild-")
	if err != nil {
		return nil, fmt.Errorf("build rootscan: %w", err)
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "rootscan")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath",
		"-ldflags", "-s -w -X main.version="+version, "-o", out, "./cmd/rootscan")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOFLAGS=", "GOAMD64=v1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("build rootscan: go build: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("build rootscan: %w", err)
	}
	return b, nil
}
