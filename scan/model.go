package scan

import "time"

// Result is what the analyzers found in one root. It is plain data, JSON-encodable, shared by every output.
type Result struct {
	OS       *OS         `json:"os,omitempty"`
	Packages []Package   `json:"packages"`
	Errors   []FileError `json:"errors,omitempty"`
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
const (
	EcosystemDebian = "Debian"
)

// Package is one installed package. Source and SourceVersion are kept because Debian advisories are keyed by source
// package; Locations are the files that say the package is installed.
type Package struct {
	Name          string   `json:"name"`
	Version       string   `json:"version"`
	Ecosystem     string   `json:"ecosystem"`
	Arch          string   `json:"arch,omitempty"`
	Source        string   `json:"source,omitempty"`
	SourceVersion string   `json:"sourceVersion,omitempty"`
	Locations     []string `json:"locations"`
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
