// Package output writes what `rootscan scan` and `rootscan sbom` found: the JSON document, the table, SARIF,
// CycloneDX VEX and HDF on stdout, and the per-target SBOM and HDF files of --sbom-dir and --hdf-dir.
package output

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/rootscan/rootscan/compliance"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/sbom"
	"github.com/rootscan/rootscan/vuln"
)

// Document is the JSON document `rootscan scan -o json` writes: stable field names for machines.
type Document struct {
	Node    string          `json:"node"`
	Runtime string          `json:"runtime,omitempty"`
	Reports []report.Report `json:"reports"`
	// VulnDB says whether (and against which database) vulnerabilities were checked.
	VulnDB *vuln.Status `json:"vulnerabilityDatabase,omitempty"`
}

// Formats are the values of `scan -o`.
var Formats = []string{"table", "json", "sarif", "cyclonedx-vex", "openvex", "hdf"}

// CheckFormat says whether format is one of Formats.
func CheckFormat(format string) error {
	if !slices.Contains(Formats, format) {
		return fmt.Errorf("%q: want table, json, sarif, cyclonedx-vex, openvex or hdf", format)
	}
	return nil
}

// Options shape a document.
type Options struct {
	// ShowPackages lists each target's packages in the table.
	ShowPackages bool
	// Single is true when one target was named: HDF is then one document, not an array.
	Single bool
	// Engine evaluated the compliance profiles; HDF needs it.
	Engine *compliance.Engine
	// ToolVersion is rootscan's version, recorded in SARIF and CycloneDX.
	ToolVersion string
	// UnreachableNotAffected states unreachable Go findings as not_affected in the VEX formats (cyclonedx-vex,
	// openvex); see sbom.Options.
	UnreachableNotAffected bool
}

// ErrNoProfiles is returned for HDF output when no compliance profile was evaluated.
var ErrNoProfiles = errors.New("needs at least one profile (drop --no-baseline or add --profile)")

// Write writes doc in format (one of Formats).
func Write(w io.Writer, format string, doc Document, o Options) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(withoutSymbols(doc))
	case "sarif":
		return sbom.SARIF(w, doc.Reports, sbom.Options{ToolVersion: o.ToolVersion})
	case "cyclonedx-vex":
		return sbom.CycloneDXVEX(w, doc.Reports, sbom.Options{ToolVersion: o.ToolVersion, UnreachableNotAffected: o.UnreachableNotAffected})
	case "openvex":
		return sbom.OpenVEX(w, doc.Reports, sbom.Options{ToolVersion: o.ToolVersion, UnreachableNotAffected: o.UnreachableNotAffected})
	case "hdf":
		return writeHDF(w, o.Engine, doc, o.Single)
	}
	return writeTable(w, doc, o.ShowPackages)
}

// withoutSymbols returns doc with the Go programs' function sets left out, doc itself unchanged. The sets are hashes
// (about 1.5 MB for a large program) kept in results for the daemon's image cache, which re-matches reachability
// when the database changes; to a reader of the JSON they are noise. Path, platform and symbolsFrom stay.
func withoutSymbols(doc Document) Document {
	reps := slices.Clone(doc.Reports)
	for i, r := range reps {
		if r.Result == nil || !slices.ContainsFunc(r.Result.GoBinaries, func(b report.GoBinary) bool { return b.Symbols != nil }) {
			continue
		}
		res := *r.Result
		res.GoBinaries = slices.Clone(res.GoBinaries)
		for j := range res.GoBinaries {
			res.GoBinaries[j].Symbols = nil
		}
		reps[i].Result = &res
	}
	doc.Reports = reps
	return doc
}

// writeHDF writes the HDF document of a single target, or a JSON array of them for a node scan.
func writeHDF(w io.Writer, e *compliance.Engine, doc Document, single bool) error {
	if e == nil {
		return fmt.Errorf("-o hdf %w", ErrNoProfiles)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if single && len(doc.Reports) == 1 {
		return enc.Encode(e.HDF(doc.Reports[0]))
	}
	docs := make([]compliance.HDF, 0, len(doc.Reports))
	for _, r := range doc.Reports {
		docs = append(docs, e.HDF(r))
	}
	return enc.Encode(docs)
}
