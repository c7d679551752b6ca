// Package sbomtest checks SBOM documents the way their consumers will: CycloneDX against the official CycloneDX 1.6
// JSON schema (shipped in schemas/, copied from github.com/CycloneDX/cyclonedx-go v0.12.0's schema directory, which
// mirrors github.com/CycloneDX/specification), SPDX 2.3 against the official SPDX 2.3 JSON schema (schemas/spdx-schema-2.3.json,
// spdx-spec's schema as github.com/anchore/syft v1.57.0 ships it through the Go module proxy), by decoding with
// spdx/tools-golang, and for the spec's text constraints the schema cannot express. Tests of the sbom package and the
// CLI use it.
package sbomtest

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
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

const spdxSchemaURL = "http://spdx.org/rdf/terms/2.3"

// SPDXSchema compiles the official SPDX 2.3 JSON schema (spdx-spec's schemas/spdx-schema.json, as shipped in
// github.com/anchore/syft v1.57.0's schema/spdx-json directory, the copy the Go module proxy serves).
func SPDXSchema() (*jsonschema.Schema, error) {
	b, err := schemas.ReadFile("schemas/spdx-schema-2.3.json")
	if err != nil {
		return nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("parse spdx-schema-2.3.json: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(spdxSchemaURL, doc); err != nil {
		return nil, fmt.Errorf("add spdx-schema-2.3.json: %w", err)
	}
	return c.Compile(spdxSchemaURL)
}

var (
	// The SPDX 2.3 specification's text constrains these beyond what its JSON schema encodes.
	spdxIDRe   = regexp.MustCompile(`^SPDXRef-[A-Za-z0-9.\-]+$`)
	creatorRe  = regexp.MustCompile(`^(Person|Organization|Tool): .+$`)
	supplierRe = regexp.MustCompile(`^(NOASSERTION|(Person|Organization): .+)$`)
)

// ValidateSPDX checks an SPDX 2.3 JSON document the way consumers read it: against the official JSON schema, by
// spdx/tools-golang, and for what the specification's text requires and the schema cannot say (SPDXID and creator
// syntax, an absolute namespace URI, unique IDs, relationships that point at elements of the document).
func ValidateSPDX(doc []byte) error {
	sch, err := SPDXSchema()
	if err != nil {
		return fmt.Errorf("compile SPDX schema: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("parse document: %w", err)
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("SPDX 2.3 schema: %w", err)
	}
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
	str := func(v any) string { s, _ := v.(string); return s }
	if str(d["spdxVersion"]) != "SPDX-2.3" || str(d["dataLicense"]) != "CC0-1.0" || str(d["SPDXID"]) != "SPDXRef-DOCUMENT" || str(d["name"]) == "" {
		bad("document header: spdxVersion %v dataLicense %v SPDXID %v name %v", d["spdxVersion"], d["dataLicense"], d["SPDXID"], d["name"])
	}
	if u, err := url.Parse(str(d["documentNamespace"])); err != nil || !u.IsAbs() || u.Fragment != "" || u.RawFragment != "" {
		bad("documentNamespace %q is not an absolute URI without fragment", d["documentNamespace"])
	}
	ci, _ := d["creationInfo"].(map[string]any)
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
	}
	rels, _ := d["relationships"].([]any)
	for i, rv := range rels {
		r, _ := rv.(map[string]any)
		if !ids[str(r["spdxElementId"])] || !ids[str(r["relatedSpdxElement"])] {
			bad("relationships[%d]: dangling reference %v -> %v", i, r["spdxElementId"], r["relatedSpdxElement"])
		}
	}
	return errors.Join(errs...)
}

const sarifSchemaURL = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

// ValidateSARIF validates a SARIF 2.1.0 log against the OASIS schema (errata01; the copy github.com/securego/gosec/v2
// v2.30.0 ships as report/sarif/testdata, served through the Go module proxy), which is what GitHub code scanning and
// other SARIF consumers check uploads against.
func ValidateSARIF(doc []byte) error {
	b, err := schemas.ReadFile("schemas/sarif-schema-2.1.0.json")
	if err != nil {
		return err
	}
	sch, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("parse sarif-schema-2.1.0.json: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(sarifSchemaURL, sch); err != nil {
		return fmt.Errorf("add sarif-schema-2.1.0.json: %w", err)
	}
	compiled, err := c.Compile(sarifSchemaURL)
	if err != nil {
		return fmt.Errorf("compile SARIF schema: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("parse document: %w", err)
	}
	return compiled.Validate(inst)
}
