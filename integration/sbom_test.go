package integration

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	spdxjson "github.com/spdx/tools-golang/json"

	"github.com/rootscan/rootscan/internal/testbed"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
	"github.com/rootscan/rootscan/internal/testbed/sbomtest"
)

// wantDebPURLs are the package URLs of the image's Debian packages, written out from the .deb control fields the
// way purl-spec's deb type and syft spell them (not through rootscan's own PURL function).
func wantDebPURLs(img *ociimage.Image) []string {
	esc := func(s string) string { return strings.ReplaceAll(s, "+", "%2B") }
	var out []string
	for _, p := range img.Packages() {
		u := "pkg:deb/debian/" + p.Name + "@" + esc(p.Version) + "?arch=" + p.Architecture + "&distro=debian-12"
		src, srcDiffers := p.Source, p.Source != "" && p.Source != p.Name
		if src == "" {
			src = p.Name
		}
		verDiffers := p.SourceVersion != "" && p.SourceVersion != p.Version
		if verDiffers {
			u += "&upstream=" + src + "%40" + esc(p.SourceVersion)
		} else if srcDiffers {
			u += "&upstream=" + src
		}
		out = append(out, p.Name+" "+p.Version+" "+u)
	}
	sort.Strings(out)
	return out
}

// `rootscan sbom --oci` writes CycloneDX 1.6 and SPDX 2.3 documents that validate and list exactly the image's
// Debian packages with their purls; `rootscan scan --sbom-dir` writes one document per target.
func TestSBOMFromOCILayout(t *testing.T) {
	testbed.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	img, layout, manifest := distrolessLayout(t, ctx)
	goVer := strings.TrimPrefix(runtime.Version(), "go")
	want := append(wantDebPURLs(img), "rootscan.test/app (devel) pkg:golang/rootscan.test/app", "stdlib "+goVer+" pkg:golang/stdlib@"+goVer)
	sort.Strings(want)

	t.Run("cyclonedx", func(t *testing.T) {
		res := runRootscan(t, 2*time.Minute, "sbom", "--oci", layout, "--scratch-dir", t.TempDir())
		if res.code != 0 {
			t.Fatalf("exit %d: %s", res.code, res.stderr)
		}
		if err := sbomtest.ValidateCycloneDX([]byte(res.stdout)); err != nil {
			t.Fatalf("CycloneDX 1.6 schema: %v", err)
		}
		var bom cdx.BOM
		if err := cdx.NewBOMDecoder(strings.NewReader(res.stdout), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
			t.Fatal(err)
		}
		if mc := bom.Metadata.Component; mc == nil || mc.Type != cdx.ComponentTypeContainer || mc.Version != manifest.String() {
			t.Errorf("metadata.component = %+v, want container with version %s", mc, manifest)
		}
		var got []string
		var oses []string
		for _, c := range *bom.Components {
			switch c.Type {
			case cdx.ComponentTypeLibrary:
				got = append(got, c.Name+" "+c.Version+" "+c.PackageURL)
			case cdx.ComponentTypeOS:
				oses = append(oses, c.Name+" "+c.Version)
			default:
				t.Errorf("unexpected component %+v", c)
			}
		}
		sort.Strings(got)
		if !equalStrings(got, want) {
			t.Errorf("components\n got  %q\n want %q", got, want)
		}
		if !equalStrings(oses, []string{"debian 12"}) {
			t.Errorf("OS components = %q", oses)
		}
	})

	t.Run("spdx to file", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "image.spdx.json")
		res := runRootscan(t, 2*time.Minute, "sbom", "--oci", layout, "--scratch-dir", t.TempDir(), "-f", "spdx", "-o", out)
		if res.code != 0 || res.stdout != "" {
			t.Fatalf("exit %d, stdout %q: %s", res.code, res.stdout, res.stderr)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if err := sbomtest.ValidateSPDX(b); err != nil {
			t.Fatalf("SPDX 2.3: %v", err)
		}
		doc, err := spdxjson.Read(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range doc.Packages {
			if p.PrimaryPackagePurpose != "LIBRARY" {
				continue
			}
			var purls []string
			for _, r := range p.PackageExternalReferences {
				if r.RefType == "purl" {
					purls = append(purls, r.Locator)
				}
			}
			got = append(got, p.PackageName+" "+p.PackageVersion+" "+strings.Join(purls, ","))
		}
		sort.Strings(got)
		if !equalStrings(got, want) {
			t.Errorf("packages\n got  %q\n want %q", got, want)
		}
		if len(doc.Relationships) != len(doc.Packages) { // DESCRIBES root + CONTAINS for every other package
			t.Errorf("%d relationships for %d packages", len(doc.Relationships), len(doc.Packages))
		}
	})

	t.Run("scan --sbom-dir", func(t *testing.T) {
		for _, format := range []string{"cyclonedx", "spdx"} {
			dir := filepath.Join(t.TempDir(), "sboms")
			res := runRootscan(t, 2*time.Minute, "scan", "--oci", layout, "--scratch-dir", t.TempDir(), "--sbom-dir", dir, "--sbom-format", format)
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			if !strings.Contains(res.stdout, "Debian") {
				t.Errorf("table does not count packages per ecosystem:\n%s", res.stdout)
			}
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			ext := map[string]string{"cyclonedx": ".cdx.json", "spdx": ".spdx.json"}[format]
			if len(ents) != 1 || ents[0].Name() != "oci_layout"+ext {
				t.Fatalf("%s: files %v, want oci_layout%s", format, ents, ext)
			}
			b, err := os.ReadFile(filepath.Join(dir, ents[0].Name()))
			if err != nil {
				t.Fatal(err)
			}
			validate := sbomtest.ValidateCycloneDX
			if format == "spdx" {
				validate = sbomtest.ValidateSPDX
			}
			if err := validate(b); err != nil {
				t.Errorf("%s: %v", format, err)
			}
		}
	})

	// A target that cannot be scanned gives no document and exit 1; bad flags exit 2.
	t.Run("failures", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "x.cdx.json")
		res := runRootscan(t, time.Minute, "sbom", "--oci", filepath.Join(t.TempDir(), "missing"), "-o", out)
		if res.code != 1 {
			t.Errorf("missing layout: exit %d: %s", res.code, res.stderr)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("missing layout left %s (%v)", out, err)
		}
		if res := runRootscan(t, time.Minute, "sbom", "--oci", layout, "-f", "xml"); res.code != 2 {
			t.Errorf("-f xml: exit %d", res.code)
		}
		if res := runRootscan(t, time.Minute, "sbom"); res.code != 2 {
			t.Errorf("no target: exit %d", res.code)
		}
	})
}
