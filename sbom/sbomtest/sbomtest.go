// Package sbomtest checks SBOM documents the way their consumers will: CycloneDX against the official CycloneDX 1.6
// JSON schema (shipped in schemas/, copied from github.com/CycloneDX/cyclonedx-go v0.12.0's schema directory, which
// mirrors github.com/CycloneDX/specification), SPDX 2.3 by decoding with spdx/tools-golang plus the constraints of the
// SPDX 2.3 JSON schema for every field rootscan writes (the official spdx-schema.json is not obtainable offline
// here: github.com/spdx/spdx-spec is not served by the Go module proxy). Tests of the sbom package and the CLI use it.
package sbomtest

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	spdxjson "github.com/spdx/tools-golang/json"
)

//go:embed schemas/*.json
var schemas embed.FS

const cdxSchemaURL = "http://cyclonedx.org/schema/bom-1.6.schema.json"

// CycloneDXSchema compiles the official CycloneDX 1.6 schema with its referenced SPDX license-ID and JSF schemas,
// asserting formats (date-time, iri-reference, ...) as well.
func CycloneDXSchema() (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for file, id := range map[string]string{
		"bom-1.6.schema.json":  cdxSchemaURL,
		"spdx.schema.json":     "http://cyclonedx.org/schema/spdx.schema.json",
		"jsf-0.82.schema.json": "http://cyclonedx.org/schema/jsf-0.82.schema.json",
	} {
		b, err := schemas.ReadFile("schemas/" + file)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", file, err)
		}
		if err := c.AddResource(id, doc); err != nil {
			return nil, fmt.Errorf("add %s: %w", file, err)
		}
	}
	return c.Compile(cdxSchemaURL)
}

// ValidateCycloneDX validates a CycloneDX 1.6 JSON document against the official schema.
func ValidateCycloneDX(doc []byte) error {
	sch, err := CycloneDXSchema()
	if err != nil {
		return fmt.Errorf("compile CycloneDX schema: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("parse document: %w", err)
	}
	return sch.Validate(inst)
}

var (
	spdxIDRe   = regexp.MustCompile(`^SPDXRef-[A-Za-z0-9.\-]+$`)
	creatorRe  = regexp.MustCompile(`^(Person|Organization|Tool): .+$`)
	supplierRe = regexp.MustCompile(`^(NOASSERTION|(Person|Organization): .+)$`)
	// Keys the SPDX 2.3 JSON schema allows on the objects rootscan writes (it sets additionalProperties false).
	docKeys = []string{"$schema", "SPDXID", "annotations", "comment", "creationInfo", "dataLicense", "documentDescribes",
		"documentNamespace", "externalDocumentRefs", "files", "hasExtractedLicensingInfos", "name", "packages",
		"relationships", "revieweds", "snippets", "spdxVersion"}
	creationKeys = []string{"comment", "created", "creators", "licenseListVersion"}
	pkgKeys      = []string{"SPDXID", "annotations", "attributionTexts", "builtDate", "checksums", "comment",
		"copyrightText", "description", "downloadLocation", "externalRefs", "filesAnalyzed", "hasFiles", "homepage",
		"licenseComments", "licenseConcluded", "licenseDeclared", "licenseInfoFromFiles", "name", "originator",
		"packageFileName", "packageVerificationCode", "primaryPackagePurpose", "releaseDate", "sourceInfo", "summary",
		"supplier", "validUntilDate", "versionInfo"}
	extRefKeys     = []string{"comment", "referenceCategory", "referenceLocator", "referenceType"}
	relKeys        = []string{"comment", "relatedSpdxElement", "relationshipType", "spdxElementId"}
	refCategories  = []string{"OTHER", "PERSISTENT-ID", "SECURITY", "PACKAGE-MANAGER", "PACKAGE_MANAGER"}
	purposes       = []string{"OTHER", "INSTALL", "ARCHIVE", "FIRMWARE", "APPLICATION", "FRAMEWORK", "LIBRARY", "CONTAINER", "SOURCE", "DEVICE", "OPERATING_SYSTEM", "OPERATING-SYSTEM", "FILE"}
	relationshipTs = []string{"DESCRIBES", "DESCRIBED_BY", "CONTAINS", "CONTAINED_BY", "DEPENDS_ON", "DEPENDENCY_OF", "OTHER"}
)

// ValidateSPDX checks an SPDX 2.3 JSON document: spdx/tools-golang must read it, and every object rootscan writes
// must meet the 2.3 schema's required fields, patterns, enums and closed property sets; relationships must point at
// elements of the document.
func ValidateSPDX(doc []byte) error {
	if _, err := spdxjson.Read(bytes.NewReader(doc)); err != nil {
		return fmt.Errorf("tools-golang read: %w", err)
	}
	var d map[string]any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&d); err != nil {
		return err
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	keys := func(where string, m map[string]any, allowed []string, required ...string) {
		for k := range m {
			if !slices.Contains(allowed, k) {
				bad("%s: property %q not allowed", where, k)
			}
		}
		for _, k := range required {
			if _, ok := m[k]; !ok {
				bad("%s: missing required %q", where, k)
			}
		}
	}
	str := func(v any) string { s, _ := v.(string); return s }
	keys("document", d, docKeys, "SPDXID", "creationInfo", "dataLicense", "name", "spdxVersion", "documentNamespace")
	if str(d["spdxVersion"]) != "SPDX-2.3" || str(d["dataLicense"]) != "CC0-1.0" || str(d["SPDXID"]) != "SPDXRef-DOCUMENT" || str(d["name"]) == "" {
		bad("document header: spdxVersion %v dataLicense %v SPDXID %v name %v", d["spdxVersion"], d["dataLicense"], d["SPDXID"], d["name"])
	}
	if u, err := url.Parse(str(d["documentNamespace"])); err != nil || !u.IsAbs() || u.Fragment != "" || u.RawFragment != "" {
		bad("documentNamespace %q is not an absolute URI without fragment", d["documentNamespace"])
	}
	ci, _ := d["creationInfo"].(map[string]any)
	keys("creationInfo", ci, creationKeys, "created", "creators")
	if _, err := time.Parse(time.RFC3339, str(ci["created"])); err != nil {
		bad("creationInfo.created: %v", err)
	}
	creators, _ := ci["creators"].([]any)
	if len(creators) == 0 {
		bad("creationInfo.creators empty")
	}
	for _, c := range creators {
		if !creatorRe.MatchString(str(c)) {
			bad("creator %q", c)
		}
	}
	ids := map[string]bool{"SPDXRef-DOCUMENT": true}
	pkgs, _ := d["packages"].([]any)
	for i, pv := range pkgs {
		p, _ := pv.(map[string]any)
		where := fmt.Sprintf("packages[%d]", i)
		keys(where, p, pkgKeys, "SPDXID", "name", "downloadLocation")
		id := str(p["SPDXID"])
		if !spdxIDRe.MatchString(id) || ids[id] {
			bad("%s: SPDXID %q invalid or duplicate", where, id)
		}
		ids[id] = true
		if str(p["name"]) == "" || str(p["downloadLocation"]) == "" {
			bad("%s: empty name or downloadLocation", where)
		}
		if s, ok := p["supplier"]; ok && !supplierRe.MatchString(str(s)) {
			bad("%s: supplier %q", where, s)
		}
		if s, ok := p["primaryPackagePurpose"]; ok && !slices.Contains(purposes, str(s)) {
			bad("%s: primaryPackagePurpose %q", where, s)
		}
		refs, _ := p["externalRefs"].([]any)
		for j, rv := range refs {
			r, _ := rv.(map[string]any)
			keys(fmt.Sprintf("%s.externalRefs[%d]", where, j), r, extRefKeys, "referenceCategory", "referenceLocator", "referenceType")
			if !slices.Contains(refCategories, str(r["referenceCategory"])) {
				bad("%s: referenceCategory %q", where, r["referenceCategory"])
			}
		}
	}
	rels, _ := d["relationships"].([]any)
	for i, rv := range rels {
		r, _ := rv.(map[string]any)
		where := fmt.Sprintf("relationships[%d]", i)
		keys(where, r, relKeys, "spdxElementId", "relatedSpdxElement", "relationshipType")
		if !ids[str(r["spdxElementId"])] || !ids[str(r["relatedSpdxElement"])] {
			bad("%s: dangling reference %v -> %v", where, r["spdxElementId"], r["relatedSpdxElement"])
		}
		if !slices.Contains(relationshipTs, str(r["relationshipType"])) {
			bad("%s: relationshipType %q", where, r["relationshipType"])
		}
	}
	return errors.Join(errs...)
}
