package integration

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/internal/testbed"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// scanImage writes img as an OCI layout, extracts it the way `rootscan scan --oci` does and runs the OS, dpkg and
// distroless analyzers on it, in the order the CLI runs them.
func scanImage(t *testing.T, ctx context.Context, img *ociimage.Image) *report.Result {
	t.Helper()
	layout := t.TempDir()
	if _, err := img.WriteLayout(layout); err != nil {
		t.Fatal(err)
	}
	root, _, err := fsaccess.OpenOCI(ctx, layout, t.TempDir(), fsaccess.OCIOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	res := scan.Run(ctx, root, []scan.Analyzer{scan.NewOSRelease(), scan.NewDpkg(), scan.NewDistroless()})
	if len(res.Errors) != 0 {
		t.Errorf("scan errors: %+v", res.Errors)
	}
	if res.OS == nil || res.OS.ID != "debian" {
		t.Errorf("os = %+v, want debian", res.OS)
	}
	if got, want := gotPackages(res), wantPackages(img); !slices.Equal(got, want) {
		t.Errorf("packages\n got  %q\n want %q", got, want)
	}
	if res.Distroless == nil {
		t.Fatal("no distroless result")
	}
	return res
}

// Each of Google's distroless flavours, assembled from real Debian packages, is recognised as distroless and named,
// with its exact inventory.
func TestDistrolessFlavours(t *testing.T) {
	testbed.Require(t)
	cache := ociimage.DefaultCacheDir()
	for _, flavour := range ociimage.Flavours {
		t.Run(flavour, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
			defer cancel()
			img, err := ociimage.Flavour(ctx, cache, flavour)
			if err != nil {
				t.Fatalf("build %s image: %v", flavour, err)
			}
			var names []string
			for _, p := range img.Packages() {
				names = append(names, p.Name)
			}
			if want := slices.Sorted(slices.Values(ociimage.FlavourPackages(flavour))); !slices.Equal(names, want) {
				t.Fatalf("fixture: %s image holds %v, want %v", flavour, names, want)
			}
			res := scanImage(t, ctx, img)
			d := res.Distroless
			if !d.Distroless || d.Flavour != flavour || len(d.Shells) != 0 || len(d.PackageManagers) != 0 {
				t.Errorf("distroless = %+v, want distroless flavour %q", d, flavour)
			}
		})
	}
}

// A Debian root with bash, dash and apt is not distroless, and the result says which shells and package managers an
// exec-based scanner would have found.
func TestDistrolessDebianShell(t *testing.T) {
	testbed.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	img, err := ociimage.DebianShell(ctx, ociimage.DefaultCacheDir())
	if err != nil {
		t.Fatalf("build debian shell image: %v", err)
	}
	d := scanImage(t, ctx, img).Distroless
	wantShells := []string{"bin/bash", "bin/dash", "bin/sh"}
	wantPMs := []string{"usr/bin/apt", "usr/bin/apt-get", "usr/bin/dpkg"}
	if d.Distroless || d.Flavour != "" || !slices.Equal(d.Shells, wantShells) || !slices.Equal(d.PackageManagers, wantPMs) {
		t.Errorf("distroless = %+v, want not distroless with shells %v and package managers %v", d, wantShells, wantPMs)
	}
}
