// Package vuln matches an inventory against known vulnerabilities from an offline OSV database.
//
// The OSV schema (https://ossf.github.io/osv-schema) is the input format: rootscan imports OSV JSON records, folders
// of them or the per-ecosystem all.zip archives osv.dev publishes into one bbolt file (see db.go), indexed by
// ecosystem and package name, opened read-only and memory-mapped so a daemon does not hold the advisories in its
// heap. Matching (match.go) turns scan.Packages into scan.Vulnerabilities; VEX documents (vex.go) mark findings as
// suppressed; Store (store.go) swaps in a database that `rootscan db update` replaced, without a restart.
package vuln

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Bounds on one OSV record. Real records stay far below them (the largest osv.dev records, Linux kernel CVEs with
// thousands of versions, are about 1 MiB); they keep a hostile archive from costing unbounded memory.
const (
	maxRecordSize   = 8 << 20
	maxAffected     = 4096
	maxEvents       = 4096
	maxVersions     = 65536
	maxAliases      = 1024
	maxSummaryBytes = 1024
)

// Record is an OSV record as published, limited to the fields rootscan uses.
type Record struct {
	SchemaVersion    string          `json:"schema_version,omitempty"`
	ID               string          `json:"id"`
	Modified         string          `json:"modified"`
	Published        string          `json:"published,omitempty"`
	Withdrawn        string          `json:"withdrawn,omitempty"`
	Aliases          []string        `json:"aliases,omitempty"`
	Upstream         []string        `json:"upstream,omitempty"`
	Summary          string          `json:"summary,omitempty"`
	Details          string          `json:"details,omitempty"`
	Severity         []Severity      `json:"severity,omitempty"`
	Affected         []Affected      `json:"affected,omitempty"`
	DatabaseSpecific json.RawMessage `json:"database_specific,omitempty"`
}

// Severity is one OSV severity entry: a CVSS vector ("CVSS_V3", "CVSS_V4", "CVSS_V2") or an ecosystem's rating
// ("Ubuntu": "medium").
type Severity struct {
	Type  string `json:"type"`
	Score string `json:"score"`
}

// Affected is one package an advisory affects, with the versions it affects.
type Affected struct {
	Package           Package         `json:"package"`
	Severity          []Severity      `json:"severity,omitempty"`
	Ranges            []Range         `json:"ranges,omitempty"`
	Versions          []string        `json:"versions,omitempty"`
	EcosystemSpecific json.RawMessage `json:"ecosystem_specific,omitempty"`
	DatabaseSpecific  json.RawMessage `json:"database_specific,omitempty"`
}

// Package names a package in an OSV ecosystem ("Debian:12" / "openssl", "Go" / "stdlib").
type Package struct {
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
	PURL      string `json:"purl,omitempty"`
}

// Range is a version range: ECOSYSTEM (the ecosystem's ordering), SEMVER, or GIT (commits; not usable on installed
// packages and ignored).
type Range struct {
	Type   string  `json:"type"`
	Events []Event `json:"events"`
}

// Event is one point of a range: exactly one field is set.
type Event struct {
	Introduced   string `json:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty"`
	Limit        string `json:"limit,omitempty"`
}

// ParseRecord decodes and checks one OSV JSON record. A record rootscan cannot use safely (no id, too large, too many
// entries) is an error, never a panic.
func ParseRecord(data []byte) (*Record, error) {
	if len(data) > maxRecordSize {
		return nil, fmt.Errorf("OSV record of %d bytes exceeds %d", len(data), maxRecordSize)
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("decode OSV record: %w", err)
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

func (r *Record) validate() error {
	if r.ID == "" {
		return errors.New("OSV record without id")
	}
	if len(r.ID) > 256 || strings.ContainsAny(r.ID, "\x00\n") {
		return fmt.Errorf("OSV record id %.64q is not an id", r.ID)
	}
	if len(r.Affected) > maxAffected {
		return fmt.Errorf("OSV record %s: %d affected entries exceed %d", r.ID, len(r.Affected), maxAffected)
	}
	if len(r.Aliases)+len(r.Upstream) > maxAliases {
		return fmt.Errorf("OSV record %s: too many aliases", r.ID)
	}
	for i, a := range r.Affected {
		if strings.ContainsRune(a.Package.Name, 0) || strings.ContainsRune(a.Package.Ecosystem, 0) {
			return fmt.Errorf("OSV record %s: affected[%d]: NUL in package name", r.ID, i)
		}
		if len(a.Versions) > maxVersions {
			return fmt.Errorf("OSV record %s: affected[%d]: %d versions exceed %d", r.ID, i, len(a.Versions), maxVersions)
		}
		for _, rg := range a.Ranges {
			if len(rg.Events) > maxEvents {
				return fmt.Errorf("OSV record %s: affected[%d]: %d range events exceed %d", r.ID, i, len(rg.Events), maxEvents)
			}
		}
	}
	return nil
}
