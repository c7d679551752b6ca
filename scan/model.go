package scan

import "time"

// Result is what the analyzers found in one root. It is plain data, JSON-encodable, shared by every output.
type Result struct {
	OS         *OS         `json:"os,omitempty"`
	Distroless *Distroless `json:"distroless,omitempty"`
	Packages   []Package   `json:"packages"`
	// Files are executables no package claims (a copied-in curl, a static binary), with their hash.
	Files []File `json:"files,omitempty"`
	// Integrity lists package files whose content no longer matches the package database (debsums, rpm -V).
	Integrity []IntegrityFinding `json:"integrity,omitempty"`
	Errors    []FileError        `json:"errors,omitempty"`
}

// Distroless says whether a root has no shell and no package manager, which is what makes exec-based scanners fail,
// and which of Google's distroless flavours it matches.
type Distroless struct {
	Distroless bool `json:"distroless"`
	// Flavour is static, base, cc, java, python or nodejs when Distroless; empty when no flavour matches.
	Flavour         string   `json:"flavour,omitempty"`
	Shells          []string `json:"shells,omitempty"`
	PackageManagers []string `json:"packageManagers,omitempty"`
}

// File is an executable found on its own, not owned by any package.
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Kind is "elf", "script", ... as far as the analyzer could tell.
	Kind string `json:"kind,omitempty"`
}

// IntegrityFinding is one package file that differs from what its package database recorded. Found is empty when
// the file is missing.
type IntegrityFinding struct {
	Package   string `json:"package"`
	Ecosystem string `json:"ecosystem"`
	Path      string `json:"path"`
	Algorithm string `json:"algorithm"`
	Expected  string `json:"expected"`
	Found     string `json:"found,omitempty"`
}

// OS identifies the distribution a root is built on, from os-release. Vulnerability matching needs ID and
// VersionID (Debian advisories are per release); Source says which file it came from.
type OS struct {
	ID              string   `json:"id"`
	IDLike          []string `json:"idLike,omitempty"`
	Name            string   `json:"name,omitempty"`
	PrettyName      string   `json:"prettyName,omitempty"`
	VersionID       string   `json:"versionId,omitempty"`
	VersionCodename string   `json:"versionCodename,omitempty"`
	Source          string   `json:"source"`
}

// Ecosystem names follow OSV's ecosystem names where one exists, so later vulnerability matching needs no mapping.
// Language ecosystems carry OSV's names too ("Go", "PyPI", "npm", "Maven", "crates.io", "RubyGems", "NuGet",
// "Packagist"). RPM distributions use their OSV name ("Red Hat", "AlmaLinux", "Rocky Linux", "SUSE", ...) where known.
const (
	EcosystemDebian    = "Debian"
	EcosystemUbuntu    = "Ubuntu"
	EcosystemAlpine    = "Alpine"
	EcosystemRedHat    = "Red Hat"
	EcosystemGo        = "Go"
	EcosystemPyPI      = "PyPI"
	EcosystemNpm       = "npm"
	EcosystemMaven     = "Maven"
	EcosystemCratesIO  = "crates.io"
	EcosystemRubyGems  = "RubyGems"
	EcosystemNuGet     = "NuGet"
	EcosystemPackagist = "Packagist"
)

// Package is one installed package. Source and SourceVersion are kept because Debian advisories are keyed by source
// package; Locations are the files that say the package is installed.
type Package struct {
	Name          string `json:"name"`
	Version       string `json:"version"`
	Ecosystem     string `json:"ecosystem"`
	Arch          string `json:"arch,omitempty"`
	Source        string `json:"source,omitempty"`
	SourceVersion string `json:"sourceVersion,omitempty"`
	// PURL is the package URL (github.com/package-url/purl-spec), the identifier SBOM consumers and vulnerability
	// databases join on.
	PURL      string   `json:"purl,omitempty"`
	Locations []string `json:"locations"`
	// FoundBy is the analyzer that reported the package.
	FoundBy string `json:"foundBy,omitempty"`
}

// FileError is a problem with one file (or, with Path empty, with one analyzer). It is reported, never fatal:
// a hostile or damaged file must not cost the rest of the result.
type FileError struct {
	Analyzer string `json:"analyzer"`
	Path     string `json:"path,omitempty"`
	Err      string `json:"error"`
}

// Target says what a report is about, in the words SIEM events and metrics use: which node, pod, namespace,
// container and image digest. It is plain data so exporters need nothing of the CRI.
type Target struct {
	// Kind is "container", "dir" or "oci".
	Kind        string `json:"kind"`
	Node        string `json:"node,omitempty"`
	ContainerID string `json:"containerId,omitempty"`
	Container   string `json:"container,omitempty"`
	Pod         string `json:"pod,omitempty"`
	Namespace   string `json:"namespace,omitempty"`
	PodUID      string `json:"podUid,omitempty"`
	State       string `json:"state,omitempty"`
	Image       string `json:"image,omitempty"`
	ImageDigest string `json:"imageDigest,omitempty"`
	ImageID     string `json:"imageId,omitempty"`
	// Path is the directory or OCI layout scanned, for dir and oci targets.
	Path string `json:"path,omitempty"`
	// Access says how the root was read ("overlay-lowerdir", "bind", "proc-root", "dir", "oci-extract"), so an
	// operator can tell a degraded fallback from the normal path.
	Access string `json:"access,omitempty"`
}

// Name is how a target reads in tables and logs: namespace/pod/container for Kubernetes containers.
func (t Target) Name() string {
	switch {
	case t.Pod != "":
		return t.Namespace + "/" + t.Pod + "/" + t.Container
	case t.Container != "":
		return t.Container
	case t.Path != "":
		return t.Path
	}
	return t.ContainerID
}

// Report is one target's scan: the result, or why there is none. One target's failure is its own report and never
// stops the others.
type Report struct {
	Target    Target        `json:"target"`
	StartedAt time.Time     `json:"startedAt"`
	Duration  time.Duration `json:"durationNs"`
	Result    *Result       `json:"result,omitempty"`
	Error     string        `json:"error,omitempty"`
}
