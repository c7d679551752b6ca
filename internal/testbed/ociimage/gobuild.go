package ociimage

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// The sources of the static programs the images run. They are embedded so the
// images can be built from any working directory, and built in a throwaway
// module so the caller's module and go.work play no part.
var (
	//go:embed progs/pause/main.go
	pauseSrc []byte
	//go:embed progs/app/main.go
	appSrc []byte
)

// DefaultCacheDir is where callers should keep built binaries and downloaded
// .debs between runs, so that reruns are fast and work offline:
// $ROOTSCAN_TESTBED_CACHE, else /var/cache/rootscan-testbed.
func DefaultCacheDir() string {
	if d := os.Getenv("ROOTSCAN_TESTBED_CACHE"); d != "" {
		return d
	}
	return "/var/cache/rootscan-testbed"
}

// buildStatic builds the single-file Go program src as a static linux binary
// for the running architecture and returns it. The binary is cached in
// cacheDir/bin under a key of the source, the Go version and the target, so a
// change to any of them rebuilds it.
func buildStatic(ctx context.Context, cacheDir, name string, src []byte) ([]byte, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("build %s: the go tool is needed: %w", name, err)
	}
	out, err := exec.CommandContext(ctx, goBin, "env", "GOVERSION").Output()
	if err != nil {
		return nil, fmt.Errorf("build %s: go env GOVERSION: %w", name, err)
	}
	goVersion := strings.TrimSpace(string(out))
	const ldflags = "-s -w"
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00linux/%s\x00%s\x00", name, goVersion, runtime.GOARCH, ldflags)
	h.Write(src)
	key := hex.EncodeToString(h.Sum(nil))[:16]

	binDir := filepath.Join(cacheDir, "bin")
	cached := filepath.Join(binDir, name+"-"+key)
	if b, err := os.ReadFile(cached); err == nil {
		return b, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("build %s: read cache: %w", name, err)
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return nil, fmt.Errorf("build %s: create cache: %w", name, err)
	}
	work, err := os.MkdirTemp(binDir, ".build-"+name+"-")
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", name, err)
	}
	defer os.RemoveAll(work)
	mod := "module rootscan.test/" + name + "\n\ngo 1.21\n"
	if err := os.WriteFile(filepath.Join(work, "go.mod"), []byte(mod), 0o644); err != nil {
		return nil, fmt.Errorf("build %s: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(work, "main.go"), src, 0o644); err != nil {
		return nil, fmt.Errorf("build %s: %w", name, err)
	}
	outFile := filepath.Join(work, name)
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags="+ldflags, "-o", outFile, ".")
	cmd.Dir = work
	cmd.Env = append(os.Environ(),
		"CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH,
		"GOWORK=off", "GOFLAGS=", "GOTOOLCHAIN=local")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("build %s: go build: %w: %s", name, err, strings.TrimSpace(stderr.String()))
	}
	b, err := os.ReadFile(outFile)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", name, err)
	}
	if err := os.Rename(outFile, cached); err != nil {
		return nil, fmt.Errorf("build %s: store in cache: %w", name, err)
	}
	return b, nil
}
