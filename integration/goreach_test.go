package integration

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rootscan/rootscan/internal/testbed"
	"github.com/rootscan/rootscan/internal/testbed/gooracle"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
	"github.com/rootscan/rootscan/report"
)

// A Go program built with go1.22.0 against old x/net and x/text, stripped, runs in a container of the private
// containerd; `rootscan scan` through the CRI, with the real Go vulnerability database imported, reports exactly
// govulncheck's findings for the unstripped build, and marks reachable exactly those govulncheck finds at symbol
// level (govulncheck itself reports every finding of the stripped program).
func TestGoReachabilityInContainer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	o, err := gooracle.New(ctx, "../internal/tools", ociimage.DefaultCacheDir())
	if errors.Is(err, gooracle.ErrUnavailable) && os.Getenv(testbed.EnvIntegration) != "require" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	b := gooracle.Build{Src: "../scan/testdata/gooracle/old", Toolchain: "go1.22.0", GOOS: "linux", GOARCH: "amd64"}
	plain, err := o.Build(ctx, b, false)
	if err != nil {
		t.Fatal(err)
	}
	stripped, err := o.Build(ctx, b, true)
	if err != nil {
		t.Fatal(err)
	}
	want, err := o.Govulncheck(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := os.ReadFile(stripped)
	if err != nil {
		t.Fatal(err)
	}

	bed := testbed.StartT(t, testbed.Options{})
	img, err := ociimage.Pause(ctx, ociimage.DefaultCacheDir())
	if err != nil {
		t.Fatal(err)
	}
	img.Name = "rootscan.test/goreach:1"
	img.Layers = append(img.Layers, ociimage.Layer{Files: []ociimage.File{{Path: "usr/local/bin/old", Mode: 0o755, Data: prog}}})
	ref, err := bed.Import(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	_, id := runPodWith(t, ctx, bed, testbed.PodSpec{Name: "goapp", Namespace: "goreach"}, testbed.ContainerSpec{Name: "app", Image: ref.Name})
	db := filepath.Join(t.TempDir(), "db")
	if res := runRootscan(t, 2*time.Minute, "db", "import", "--db", db, o.OSVDir); res.code != 0 {
		t.Fatalf("db import exit %d: %s", res.code, res.stderr)
	}
	mountDir := filepath.Join(t.TempDir(), "mounts")
	doc, res := scanJSON(t, bed, mountDir, "--db", db, "--namespace", "goreach")
	if res.code != 0 {
		t.Fatalf("scan exit %d: %s", res.code, res.stderr)
	}
	r := reportFor(t, doc, id)
	assertNoMountsUnder(t, mountDir)

	// The pause binary beside it is a Go program too (current toolchain, no modules): keep the old program's
	// modules only.
	mine := map[string]string{"stdlib": "1.22.0", "golang.org/x/net": "0.0.0-20220722155237-a158d28d115b", "golang.org/x/text": "0.3.7"}
	mods, reach := map[gooracle.Finding]bool{}, map[gooracle.Finding]bool{}
	all, unreachable := len(r.Result.Vulnerabilities), 0
	for _, v := range r.Result.Vulnerabilities {
		if v.Reachable == report.ReachableFalse {
			unreachable++
		}
		if v.Ecosystem != report.EcosystemGo || mine[v.Package] != v.Version {
			continue
		}
		k := gooracle.Finding{ID: v.ID, Module: v.Package}
		mods[k] = true
		// The container runs pause, not the old program: a Go program is its own package, and this one never ran.
		if v.InUse != report.InUseFalse {
			t.Errorf("%v: in use %q, want false (the program is not running)", k, v.InUse)
		}
		if v.Reachable == report.ReachableTrue {
			reach[k] = true
		} else if v.Reachable != report.ReachableFalse {
			t.Errorf("%v: reachability %q", k, v.Reachable)
		}
	}
	if !maps.Equal(mods, want.Modules) {
		t.Errorf("findings differ from govulncheck's: rootscan %d, govulncheck %d", len(mods), len(want.Modules))
	}
	if !maps.Equal(reach, want.Symbols) {
		t.Errorf("reachable findings differ from govulncheck's symbol-level findings: rootscan %v, govulncheck %v", reach, want.Symbols)
	}
	t.Logf("container %s: %d findings, %d without the unreachable; the old program's: %d, %d reachable (govulncheck on "+
		"the unstripped build: %d, %d)", id[:12], all, all-unreachable, len(mods), len(reach), len(want.Modules), len(want.Symbols))
}
