package sbom

import (
	"fmt"
	"io"
	"strconv"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/rootscan/rootscan/report"
)

// CycloneDX writes the report as a CycloneDX 1.6 JSON document: the target as metadata.component, the OS as an
// operating-system component and one library component per package with its purl.
func CycloneDX(w io.Writer, rep report.Report, opts Options) error {
	bom := cdx.NewBOM()
	bom.SerialNumber = "urn:uuid:" + opts.uuid()
	bom.Metadata = &cdx.Metadata{
		Timestamp: opts.now().Format(time.RFC3339),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: "rootscan", Version: opts.version(),
		}}},
		Component: cdxTarget(rep.Target),
	}
	comps := []cdx.Component{}
	if os := resultOS(rep); os != nil && os.ID != "" {
		c := cdx.Component{
			BOMRef:      "os:" + os.ID + "@" + os.VersionID,
			Type:        cdx.ComponentTypeOS,
			Name:        os.ID,
			Version:     os.VersionID,
			Description: os.PrettyName,
		}
		props := []cdx.Property{}
		props = addProp(props, "rootscan:os:codename", os.VersionCodename)
		props = addProp(props, "rootscan:os:source", os.Source)
		if len(props) > 0 {
			c.Properties = &props
		}
		comps = append(comps, c)
	}
	seen := map[string]bool{}
	for i, p := range sortedPackages(rep) {
		u := purl(p, resultOS(rep))
		ref := u
		if ref == "" || seen[ref] {
			ref = fmt.Sprintf("rootscan:%s/%s@%s:%d", p.Ecosystem, p.Name, p.Version, i)
		}
		seen[ref] = true
		c := cdx.Component{
			BOMRef:     ref,
			Type:       cdx.ComponentTypeLibrary,
			Name:       p.Name,
			Version:    p.Version,
			PackageURL: u,
		}
		props := []cdx.Property{}
		props = addProp(props, "rootscan:package:ecosystem", p.Ecosystem)
		props = addProp(props, "rootscan:package:foundBy", p.FoundBy)
		props = addProp(props, "rootscan:package:arch", p.Arch)
		if p.Source != "" && p.Source != p.Name {
			props = addProp(props, "rootscan:package:source", p.Source)
		}
		if p.SourceVersion != p.Version {
			props = addProp(props, "rootscan:package:sourceVersion", p.SourceVersion)
		}
		props = addProp(props, "rootscan:package:evidence", string(p.Evidence))
		for j, l := range p.Locations {
			props = addProp(props, "rootscan:location:"+strconv.Itoa(j)+":path", l)
		}
		if len(props) > 0 {
			c.Properties = &props
		}
		c.Evidence = cdxEvidence(p, u != "")
		comps = append(comps, c)
	}
	bom.Components = &comps
	return encodeCycloneDX(w, bom, "CycloneDX")
}

// encodeCycloneDX writes bom as indented CycloneDX 1.6 JSON; what names the document in the error.
func encodeCycloneDX(w io.Writer, bom *cdx.BOM, what string) error {
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	if err := enc.EncodeVersion(bom, cdx.SpecVersion1_6); err != nil {
		return fmt.Errorf("encode %s: %w", what, err)
	}
	return nil
}

// cdxEvidence says how sure the identity is (CycloneDX 1.6 component evidence), so SBOM consumers can weigh a jar
// named by its file name below one named by its pom.properties, and where it was found (occurrences).
func cdxEvidence(p report.Package, hasPURL bool) *cdx.Evidence {
	technique, confidence := cdx.EvidenceIdentityTechniqueManifestAnalysis, float32(1)
	switch p.Evidence {
	case report.EvidenceJarManifest:
		confidence = 0.7
	case report.EvidenceFileName:
		technique, confidence = cdx.EvidenceIdentityTechniqueFilename, 0.4
	case report.EvidenceLockFile:
		confidence = 0.5
	}
	if p.Evidence == report.EvidenceInstalled && (p.FoundBy == "go-binary" || p.FoundBy == "rust-binary") {
		// Build info read out of an executable.
		technique = cdx.EvidenceIdentityTechniqueBinaryAnalysis
	}
	// The identity is the purl when there is one; a Maven jar with no known group has none, only a name.
	field := cdx.EvidenceIdentityFieldTypePURL
	if !hasPURL {
		field = cdx.EvidenceIdentityFieldTypeName
	}
	ev := &cdx.Evidence{Identity: &cdx.EvidenceIdentityChoice{Identities: &[]cdx.EvidenceIdentity{{
		Field:      field,
		Confidence: &confidence,
		Methods:    &[]cdx.EvidenceIdentityMethod{{Technique: technique, Confidence: &confidence}},
	}}}}
	if len(p.Locations) > 0 {
		occ := make([]cdx.EvidenceOccurrence, len(p.Locations))
		for i, l := range p.Locations {
			occ[i].Location = l
		}
		ev.Occurrences = &occ
	}
	return ev
}

// cdxTarget describes what was scanned: a container image (name = image, version = manifest digest) or a directory.
func cdxTarget(t report.Target) *cdx.Component {
	c := &cdx.Component{BOMRef: "target", Name: targetName(t)}
	switch {
	case t.Kind == "dir":
		c.Type = cdx.ComponentTypeFile
	default:
		c.Type = cdx.ComponentTypeContainer
		c.Version = t.ImageDigest
	}
	props := []cdx.Property{}
	props = addProp(props, "rootscan:target:kind", t.Kind)
	props = addProp(props, "rootscan:target:path", t.Path)
	props = addProp(props, "rootscan:target:node", t.Node)
	props = addProp(props, "rootscan:target:namespace", t.Namespace)
	props = addProp(props, "rootscan:target:pod", t.Pod)
	props = addProp(props, "rootscan:target:container", t.Container)
	props = addProp(props, "rootscan:target:containerId", t.ContainerID)
	props = addProp(props, "rootscan:target:imageId", t.ImageID)
	c.Properties = &props
	return c
}

func addProp(props []cdx.Property, name, value string) []cdx.Property {
	if value == "" {
		return props
	}
	return append(props, cdx.Property{Name: name, Value: value})
}
