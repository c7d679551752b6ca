// Package sbom turns a scan report into the SBOM documents other tools read: CycloneDX 1.6 JSON and SPDX 2.3 JSON.
// It only presents a report.Report; it never reads a root itself.
//
// The same report gives the same document apart from the timestamp and the serial number/namespace UUID, which
// Options can fix. Packages are ordered by ecosystem, name, version, arch and first location.
//
// CycloneDX component properties use a "rootscan:" namespace (CycloneDX reserves "cdx:" for its own taxonomy):
//
//	rootscan:package:ecosystem      OSV ecosystem name ("Debian", "Go", ...)
//	rootscan:package:foundBy        analyzer that reported the package
//	rootscan:package:arch           architecture, when known
//	rootscan:package:source         source package (OS packages)
//	rootscan:package:sourceVersion  source package version, when it differs from the version
//	rootscan:location:<n>:path      the files that say the package is installed, n from 0
//	rootscan:target:*               pod, namespace, container, containerId, node, imageId of the described target
package sbom

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/rootscan/rootscan/report"
)

// Options carry what a document needs beyond the report; the zero value works.
type Options struct {
	// ToolVersion is rootscan's version, recorded as the document's creator tool.
	ToolVersion string
	// Now is the document's creation time; zero means time.Now(). Tests fix it to compare documents.
	Now time.Time
	// UUID makes the CycloneDX serial number and the SPDX document namespace unique; empty means a random one.
	UUID string
	// UnreachableNotAffected states, in VEX outputs (CycloneDX VEX, OpenVEX), Go findings whose vulnerable code is
	// not in the program (Reachable "false") as not_affected, vulnerable_code_not_in_execute_path. Off by default:
	// the verdict says the vulnerable functions are not compiled in, which consumers may weigh differently from a
	// vendor's statement.
	UnreachableNotAffected bool
}

func (o Options) now() time.Time {
	if o.Now.IsZero() {
		return time.Now().UTC()
	}
	return o.Now.UTC()
}

func (o Options) uuid() string {
	if o.UUID == "" {
		return uuid.NewString()
	}
	return o.UUID
}

func (o Options) version() string {
	if o.ToolVersion == "" {
		return "devel"
	}
	return o.ToolVersion
}

// sortedPackages returns the report's packages in the documents' order, leaving the report untouched.
func sortedPackages(rep report.Report) []report.Package {
	if rep.Result == nil {
		return nil
	}
	pkgs := slices.Clone(rep.Result.Packages)
	first := func(p report.Package) string {
		if len(p.Locations) > 0 {
			return p.Locations[0]
		}
		return ""
	}
	slices.SortStableFunc(pkgs, func(a, b report.Package) int {
		return cmp.Or(
			cmp.Compare(a.Ecosystem, b.Ecosystem),
			cmp.Compare(a.Name, b.Name),
			cmp.Compare(a.Version, b.Version),
			cmp.Compare(a.Arch, b.Arch),
			cmp.Compare(a.PURL, b.PURL),
			cmp.Compare(first(a), first(b)),
		)
	})
	return pkgs
}

// purl is the package's URL, computed when the report predates central filling.
func purl(p report.Package, os *report.OS) string {
	if p.PURL != "" {
		return p.PURL
	}
	return report.PURL(p, os)
}

func resultOS(rep report.Report) *report.OS {
	if rep.Result == nil {
		return nil
	}
	return rep.Result.OS
}

// targetName is how the target is named in documents: the image reference when there is one, else the target's name.
func targetName(t report.Target) string {
	if t.Image != "" {
		return t.Image
	}
	if n := t.Name(); n != "" {
		return n
	}
	return t.Kind
}

// sanitize keeps [A-Za-z0-9.-] (plus extra) and turns every other run of bytes into one dash, for SPDX IDs, URIs and
// file names.
func sanitize(s, extra string) string {
	var b strings.Builder
	dash := false
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || strings.ContainsRune(extra, c)
		if ok {
			b.WriteRune(c)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.Trim(b.String(), "-")
}
