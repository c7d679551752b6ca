package sbom

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/package-url/packageurl-go"
	"github.com/rootscan/rootscan/report"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

// NamespaceBase prefixes SPDX document namespaces; SPDX only asks that the URI be unique, not that it resolve.
const NamespaceBase = "https://rootscan.dev/spdxdocs/"

const noAssertion = "NOASSERTION"

// SPDX writes the report as an SPDX 2.3 JSON document: a root package for the target that the document DESCRIBES
// and that CONTAINS the OS and one package per installed package, each with its purl as a PACKAGE-MANAGER reference.
func SPDX(w io.Writer, rep report.Report, opts Options) error {
	name := targetName(rep.Target)
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      name,
		DocumentNamespace: NamespaceBase + sanitize(name, "") + "-" + opts.uuid(),
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{
				{CreatorType: "Organization", Creator: "rootscan"},
				{CreatorType: "Tool", Creator: "rootscan-" + opts.version()},
			},
			Created: opts.now().Format(time.RFC3339),
		},
	}
	root := &spdx.Package{
		PackageName:             name,
		PackageSPDXIdentifier:   "Root",
		PackageVersion:          rep.Target.ImageDigest,
		PackageSupplier:         &common.Supplier{Supplier: noAssertion},
		PackageDownloadLocation: noAssertion,
		PrimaryPackagePurpose:   "CONTAINER",
	}
	if rep.Target.Kind == "dir" {
		root.PrimaryPackagePurpose = "FILE"
	}
	if rep.Target.Image != "" && rep.Target.ImageDigest != "" {
		root.PackageExternalReferences = []*spdx.PackageExternalReference{{
			Category: common.CategoryPackageManager, RefType: "purl", Locator: imagePURL(rep.Target),
		}}
	}
	doc.Packages = append(doc.Packages, root)
	doc.Relationships = append(doc.Relationships, &spdx.Relationship{
		RefA: common.MakeDocElementID("", "DOCUMENT"), RefB: common.MakeDocElementID("", "Root"), Relationship: common.TypeRelationshipDescribe,
	})
	contains := func(id common.ElementID) {
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA: common.MakeDocElementID("", "Root"), RefB: common.MakeDocElementID("", string(id)), Relationship: common.TypeRelationshipContains,
		})
	}
	if os := resultOS(rep); os != nil && os.ID != "" {
		p := &spdx.Package{
			PackageName:             os.ID,
			PackageSPDXIdentifier:   common.ElementID("OperatingSystem-" + sanitize(os.ID+"-"+os.VersionID, "")),
			PackageVersion:          os.VersionID,
			PackageSupplier:         &common.Supplier{Supplier: noAssertion},
			PackageDownloadLocation: noAssertion,
			PackageDescription:      os.PrettyName,
			// The JSON schema spells it with an underscore (the tag-value form has a hyphen).
			PrimaryPackagePurpose: "OPERATING_SYSTEM",
		}
		doc.Packages = append(doc.Packages, p)
		contains(p.PackageSPDXIdentifier)
	}
	for i, pkg := range sortedPackages(rep) {
		id := common.ElementID("Package-" + strconv.Itoa(i) + "-" + sanitize(pkg.Name, ""))
		p := &spdx.Package{
			PackageName:             pkg.Name,
			PackageSPDXIdentifier:   id,
			PackageVersion:          pkg.Version,
			PackageSupplier:         &common.Supplier{Supplier: noAssertion},
			PackageDownloadLocation: noAssertion,
			PrimaryPackagePurpose:   "LIBRARY",
		}
		if u := purl(pkg, resultOS(rep)); u != "" {
			p.PackageExternalReferences = []*spdx.PackageExternalReference{{
				Category: common.CategoryPackageManager, RefType: "purl", Locator: u,
			}}
		}
		if pkg.Source != "" && (pkg.Source != pkg.Name || pkg.SourceVersion != pkg.Version) {
			v := pkg.SourceVersion
			if v == "" {
				v = pkg.Version
			}
			p.PackageSourceInfo = "built package from: " + pkg.Source + " " + v
		}
		p.PackageComment = packageComment(pkg)
		doc.Packages = append(doc.Packages, p)
		contains(id)
	}
	if err := spdxjson.Write(doc, w, spdxjson.Indent("  "), spdxjson.EscapeHTML(false)); err != nil {
		return fmt.Errorf("encode SPDX: %w", err)
	}
	return nil
}

// imagePURL is the OCI purl of the scanned image (pkg:oci/<name>@<digest>?repository_url=<repo>), the identifier
// registries and scanners share for an image.
func imagePURL(t report.Target) string {
	repo, _, _ := strings.Cut(t.Image, "@")
	if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
		repo = repo[:i]
	}
	short := repo[strings.LastIndexByte(repo, '/')+1:]
	q := packageurl.Qualifiers{{Key: "repository_url", Value: repo}}
	return packageurl.NewPackageURL(packageurl.TypeOCI, "", short, t.ImageDigest, q, "").ToString()
}

// packageComment keeps what SPDX 2.3 has no field for (ecosystem, analyzer, evidence files) readable for people.
func packageComment(p report.Package) string {
	parts := []string{"ecosystem: " + p.Ecosystem}
	if p.FoundBy != "" {
		parts = append(parts, "found by: "+p.FoundBy)
	}
	if p.Evidence != report.EvidenceInstalled {
		parts = append(parts, "evidence: "+string(p.Evidence))
	}
	if len(p.Locations) > 0 {
		parts = append(parts, "locations: "+strings.Join(p.Locations, ", "))
	}
	return strings.Join(parts, "; ")
}
