package sbom

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	spdxjson "github.com/spdx/tools-golang/json"

	"github.com/rootscan/rootscan/internal/testbed/sbomtest"
	"github.com/rootscan/rootscan/report"
)

var fixedOpts = Options{ToolVersion: "1.2.3", Now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), UUID: "3f2504e0-4f89-41d3-9a0c-0305e82c3301"}

func fixedReport() report.Report {
	os := &report.OS{ID: "debian", VersionID: "12", VersionCodename: "bookworm", PrettyName: "Debian GNU/Linux 12 (bookworm)", Source: "etc/os-release"}
	pkgs := []report.Package{
		{Name: "libc6", Version: "2.36-9+deb12u14", Ecosystem: report.EcosystemDebian, Arch: "amd64", Source: "glibc", SourceVersion: "2.36-9+deb12u14", Locations: []string{"var/lib/dpkg/status.d/libc6"}, FoundBy: "dpkg"},
		{Name: "github.com/spf13/cobra", Version: "v1.8.0", Ecosystem: report.EcosystemGo, Locations: []string{"usr/bin/app"}, FoundBy: "go-binary"},
		{Name: "base-files", Version: "12.4+deb12u11", Ecosystem: report.EcosystemDebian, Arch: "amd64", Source: "base-files", SourceVersion: "12.4+deb12u11", Locations: []string{"var/lib/dpkg/status.d/base-files"}, FoundBy: "dpkg"},
	}
	for i := range pkgs {
		pkgs[i].PURL = report.PURL(pkgs[i], os)
	}
	return report.Report{
		Target: report.Target{Kind: "container", Node: "n1", ContainerID: "abcdef0123456789", Container: "app", Pod: "web-0", Namespace: "shop",
			Image: "registry.example/shop/web:1.0", ImageDigest: "sha256:" + strings.Repeat("a", 64)},
		Result: &report.Result{OS: os, Packages: pkgs},
	}
}

func TestCycloneDX(t *testing.T) {
	var buf bytes.Buffer
	if err := CycloneDX(&buf, fixedReport(), fixedOpts); err != nil {
		t.Fatal(err)
	}
	if err := sbomtest.ValidateCycloneDX(buf.Bytes()); err != nil {
		t.Fatalf("schema: %v\n%s", err, buf.String())
	}
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(buf.Bytes()), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	if bom.SpecVersion != cdx.SpecVersion1_6 || bom.SerialNumber != "urn:uuid:"+fixedOpts.UUID || bom.Metadata.Timestamp != "2026-01-02T03:04:05Z" {
		t.Errorf("header: spec %v serial %q timestamp %q", bom.SpecVersion, bom.SerialNumber, bom.Metadata.Timestamp)
	}
	tool := (*bom.Metadata.Tools.Components)[0]
	if tool.Name != "rootscan" || tool.Version != "1.2.3" {
		t.Errorf("tool = %s %s", tool.Name, tool.Version)
	}
	mc := bom.Metadata.Component
	if mc.Type != cdx.ComponentTypeContainer || mc.Name != "registry.example/shop/web:1.0" || mc.Version != "sha256:"+strings.Repeat("a", 64) {
		t.Errorf("metadata.component = %+v", mc)
	}
	var got []string
	for _, c := range *bom.Components {
		got = append(got, strings.Join([]string{string(c.Type), c.BOMRef, c.Name, c.Version, c.PackageURL}, " "))
	}
	want := []string{
		"operating-system os:debian@12 debian 12 ",
		"library pkg:deb/debian/base-files@12.4%2Bdeb12u11?arch=amd64&distro=debian-12 base-files 12.4+deb12u11 pkg:deb/debian/base-files@12.4%2Bdeb12u11?arch=amd64&distro=debian-12",
		"library pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64&distro=debian-12&upstream=glibc libc6 2.36-9+deb12u14 pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64&distro=debian-12&upstream=glibc",
		"library pkg:golang/github.com/spf13/cobra@v1.8.0 github.com/spf13/cobra v1.8.0 pkg:golang/github.com/spf13/cobra@v1.8.0",
	}
	if !slices.Equal(got, want) {
		t.Errorf("components\n got  %q\n want %q", got, want)
	}
	props := map[string]string{}
	for _, p := range *(*bom.Components)[2].Properties {
		props[p.Name] = p.Value
	}
	wantProps := map[string]string{"rootscan:package:ecosystem": "Debian", "rootscan:package:foundBy": "dpkg", "rootscan:package:arch": "amd64",
		"rootscan:package:source": "glibc", "rootscan:location:0:path": "var/lib/dpkg/status.d/libc6"}
	if !mapsEqual(props, wantProps) {
		t.Errorf("libc6 properties = %v, want %v", props, wantProps)
	}
}

func TestSPDX(t *testing.T) {
	var buf bytes.Buffer
	if err := SPDX(&buf, fixedReport(), fixedOpts); err != nil {
		t.Fatal(err)
	}
	if err := sbomtest.ValidateSPDX(buf.Bytes()); err != nil {
		t.Fatalf("validate: %v\n%s", err, buf.String())
	}
	doc, err := spdxjson.Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if doc.DocumentNamespace != "https://rootscan.dev/spdxdocs/registry.example-shop-web-1.0-"+fixedOpts.UUID || doc.CreationInfo.Created != "2026-01-02T03:04:05Z" {
		t.Errorf("namespace %q created %q", doc.DocumentNamespace, doc.CreationInfo.Created)
	}
	var creators []string
	for _, c := range doc.CreationInfo.Creators {
		creators = append(creators, c.CreatorType+": "+c.Creator)
	}
	if !slices.Contains(creators, "Tool: rootscan-1.2.3") {
		t.Errorf("creators = %q", creators)
	}
	var got []string
	for _, p := range doc.Packages {
		s := string(p.PackageSPDXIdentifier) + " " + p.PackageName + " " + p.PackageVersion
		for _, r := range p.PackageExternalReferences {
			s += " " + r.Category + ":" + r.RefType + ":" + r.Locator
		}
		if p.PackageSupplier == nil || p.PackageSupplier.Supplier != "NOASSERTION" || p.PackageDownloadLocation != "NOASSERTION" {
			t.Errorf("%s: supplier %+v downloadLocation %q", p.PackageName, p.PackageSupplier, p.PackageDownloadLocation)
		}
		got = append(got, s)
	}
	want := []string{
		"Root registry.example/shop/web:1.0 sha256:" + strings.Repeat("a", 64) + " PACKAGE-MANAGER:purl:pkg:oci/web@sha256:" + strings.Repeat("a", 64) + "?repository_url=registry.example%2Fshop%2Fweb",
		"OperatingSystem-debian-12 debian 12",
		"Package-0-base-files base-files 12.4+deb12u11 PACKAGE-MANAGER:purl:pkg:deb/debian/base-files@12.4%2Bdeb12u11?arch=amd64&distro=debian-12",
		"Package-1-libc6 libc6 2.36-9+deb12u14 PACKAGE-MANAGER:purl:pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64&distro=debian-12&upstream=glibc",
		"Package-2-github.com-spf13-cobra github.com/spf13/cobra v1.8.0 PACKAGE-MANAGER:purl:pkg:golang/github.com/spf13/cobra@v1.8.0",
	}
	if !slices.Equal(got, want) {
		t.Errorf("packages\n got  %q\n want %q", got, want)
	}
	var rels []string
	for _, r := range doc.Relationships {
		rels = append(rels, string(r.RefA.ElementRefID)+" "+r.Relationship+" "+string(r.RefB.ElementRefID))
	}
	wantRels := []string{"DOCUMENT DESCRIBES Root", "Root CONTAINS OperatingSystem-debian-12", "Root CONTAINS Package-0-base-files",
		"Root CONTAINS Package-1-libc6", "Root CONTAINS Package-2-github.com-spf13-cobra"}
	if !slices.Equal(rels, wantRels) {
		t.Errorf("relationships\n got  %q\n want %q", rels, wantRels)
	}
}

// The same report, in any package order, gives byte-identical documents once time and UUID are fixed; without them
// two documents differ in serial number / namespace.
func TestDeterministic(t *testing.T) {
	for name, write := range map[string]func(*bytes.Buffer, report.Report, Options) error{
		"cyclonedx": func(b *bytes.Buffer, r report.Report, o Options) error { return CycloneDX(b, r, o) },
		"spdx":      func(b *bytes.Buffer, r report.Report, o Options) error { return SPDX(b, r, o) },
	} {
		t.Run(name, func(t *testing.T) {
			a, b := fixedReport(), fixedReport()
			slices.Reverse(b.Result.Packages)
			var ba, bb bytes.Buffer
			if err := write(&ba, a, fixedOpts); err != nil {
				t.Fatal(err)
			}
			if err := write(&bb, b, fixedOpts); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ba.Bytes(), bb.Bytes()) {
				t.Errorf("package order changed the document")
			}
			ba.Reset()
			bb.Reset()
			_ = write(&ba, a, Options{})
			_ = write(&bb, a, Options{})
			if bytes.Equal(ba.Bytes(), bb.Bytes()) {
				t.Errorf("two documents without fixed UUID are identical")
			}
		})
	}
}

// A directory target, a report without result and duplicate packages still give valid documents.
func TestEdgeCases(t *testing.T) {
	dup := fixedReport()
	dup.Target = report.Target{Kind: "dir", Path: "/srv/root fs"}
	dup.Result.Packages = append(dup.Result.Packages, dup.Result.Packages[0])
	dup.Result.Packages = append(dup.Result.Packages, report.Package{Name: "weird pkg", Version: "1", Ecosystem: "Hackage"})
	empty := report.Report{Target: report.Target{Kind: "oci", Path: "/tmp/layout"}, Error: "cannot open"}
	for name, rep := range map[string]report.Report{"dir with duplicates": dup, "no result": empty} {
		t.Run(name, func(t *testing.T) {
			var c, s bytes.Buffer
			if err := CycloneDX(&c, rep, fixedOpts); err != nil {
				t.Fatal(err)
			}
			if err := sbomtest.ValidateCycloneDX(c.Bytes()); err != nil {
				t.Errorf("CycloneDX: %v\n%s", err, c.String())
			}
			if err := SPDX(&s, rep, fixedOpts); err != nil {
				t.Fatal(err)
			}
			if err := sbomtest.ValidateSPDX(s.Bytes()); err != nil {
				t.Errorf("SPDX: %v\n%s", err, s.String())
			}
		})
	}
}

// The validators reject what consumers would reject, so a passing validation means something.
func TestValidatorsReject(t *testing.T) {
	var c bytes.Buffer
	if err := CycloneDX(&c, fixedReport(), fixedOpts); err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(c.Bytes(), []byte(`"type": "library"`), []byte(`"type": "bogus"`), 1)
	if err := sbomtest.ValidateCycloneDX(bad); err == nil {
		t.Error("CycloneDX with component type bogus validated")
	}
	var s bytes.Buffer
	if err := SPDX(&s, fixedReport(), fixedOpts); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(s.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	m["packages"].([]any)[1].(map[string]any)["SPDXID"] = "SPDXRef-has space"
	bad, _ = json.Marshal(m)
	if err := sbomtest.ValidateSPDX(bad); err == nil {
		t.Error("SPDX with invalid SPDXID validated")
	}
	var sar bytes.Buffer
	if err := SARIF(&sar, []report.Report{fixedReport()}, fixedOpts); err != nil {
		t.Fatal(err)
	}
	if err := sbomtest.ValidateSARIF(sar.Bytes()); err != nil {
		t.Fatalf("valid SARIF: %v", err)
	}
	for _, mut := range [][2]string{{`"version": "2.1.0"`, `"version": "2.0.0"`}, {`"runs"`, `"runz"`}} {
		if b := bytes.Replace(sar.Bytes(), []byte(mut[0]), []byte(mut[1]), 1); bytes.Equal(b, sar.Bytes()) {
			t.Errorf("SARIF output has no %s", mut[0])
		} else if err := sbomtest.ValidateSARIF(b); err == nil {
			t.Errorf("SARIF with %s validated", mut[1])
		}
	}
	// The official schema's closed property sets and enums.
	m["packages"].([]any)[1].(map[string]any)["SPDXID"] = "SPDXRef-ok"
	m["packages"].([]any)[1].(map[string]any)["primaryPackagePurpose"] = "OPERATING-SYSTEM"
	bad, _ = json.Marshal(m)
	if err := sbomtest.ValidateSPDX(bad); err == nil || !strings.Contains(err.Error(), "primaryPackagePurpose") {
		t.Errorf("SPDX with the tag-value spelling of a purpose: %v", err)
	}
	delete(m["packages"].([]any)[1].(map[string]any), "primaryPackagePurpose")
	m["packages"].([]any)[1].(map[string]any)["vendorExtension"] = "x"
	bad, _ = json.Marshal(m)
	if err := sbomtest.ValidateSPDX(bad); err == nil || !strings.Contains(err.Error(), "vendorExtension") {
		t.Errorf("SPDX with an unknown package property: %v", err)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestCycloneDXEvidence checks that each component says how sure its identity is: an installed record at full
// confidence, a jar named by its MANIFEST.MF or its file name lower, a lock file's declared entry marked, so an SBOM
// consumer can weigh them; and that the document stays valid CycloneDX 1.6.
func TestCycloneDXEvidence(t *testing.T) {
	rep := fixedReport()
	rep.Result.Packages = append(rep.Result.Packages,
		report.Package{Name: "commons-io:commons-io", Version: "2.11.0", Ecosystem: report.EcosystemMaven, Locations: []string{"usr/share/java/commons-io.jar"}, FoundBy: "java", Evidence: report.EvidenceJarManifest},
		report.Package{Name: "jsr305", Version: "3.0.2", Ecosystem: report.EcosystemMaven, Locations: []string{"opt/app/lib/jsr305-3.0.2.jar"}, FoundBy: "java", Evidence: report.EvidenceFileName},
		report.Package{Name: "ms", Version: "2.1.3", Ecosystem: report.EcosystemNpm, Locations: []string{"srv/app/package-lock.json"}, FoundBy: "npm", Evidence: report.EvidenceLockFile},
	)
	var buf bytes.Buffer
	if err := CycloneDX(&buf, rep, fixedOpts); err != nil {
		t.Fatal(err)
	}
	if err := sbomtest.ValidateCycloneDX(buf.Bytes()); err != nil {
		t.Fatalf("schema: %v\n%s", err, buf.String())
	}
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(buf.Bytes()), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range *bom.Components {
		if c.Type != cdx.ComponentTypeLibrary {
			continue
		}
		if c.Evidence == nil || c.Evidence.Identity == nil || c.Evidence.Identity.Identities == nil || c.Evidence.Occurrences == nil {
			t.Errorf("%s: no evidence: %+v", c.Name, c.Evidence)
			continue
		}
		id := (*c.Evidence.Identity.Identities)[0]
		m := (*id.Methods)[0]
		ev := ""
		for _, p := range *c.Properties {
			if p.Name == "rootscan:package:evidence" {
				ev = p.Value
			}
		}
		got[c.Name] = fmt.Sprintf("%s %s %.1f %s %s", id.Field, m.Technique, *id.Confidence, ev, (*c.Evidence.Occurrences)[0].Location)
	}
	want := map[string]string{
		"libc6":                  "purl manifest-analysis 1.0  var/lib/dpkg/status.d/libc6",
		"base-files":             "purl manifest-analysis 1.0  var/lib/dpkg/status.d/base-files",
		"github.com/spf13/cobra": "purl binary-analysis 1.0  usr/bin/app",
		"commons-io:commons-io":  "purl manifest-analysis 0.7 jar-manifest usr/share/java/commons-io.jar",
		"jsr305":                 "name filename 0.4 file-name opt/app/lib/jsr305-3.0.2.jar",
		"ms":                     "purl manifest-analysis 0.5 lock-file srv/app/package-lock.json",
	}
	if !mapsEqual(got, want) {
		t.Errorf("evidence:\n got  %q\n want %q", got, want)
	}
}
