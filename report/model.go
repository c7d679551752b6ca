package report

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
	// Vulnerabilities are the known advisories that affect Packages (filled by the vulnerability matcher, after the
	// analyzers). VEX-suppressed ones stay in the list with Suppressed set, so they are counted, not lost.
	Vulnerabilities []Vulnerability `json:"vulnerabilities,omitempty"`
	// Compliance holds one result per control of every profile evaluated on the root.
	Compliance []ControlResult `json:"compliance,omitempty"`
	// Drift lists what a running container added, changed or deleted on top of its image.
	Drift  []DriftEntry `json:"drift,omitempty"`
	Errors []FileError  `json:"errors,omitempty"`
	// GoBinaries are the Go programs found, with what vulnerability matching needs beyond their modules: the
	// platform they were built for and the functions compiled into them.
	GoBinaries []GoBinary `json:"goBinaries,omitempty"`
}

// Severity is one scale for every kind of finding, so metrics, --severity filters and SIEM events need no per-kind
// mapping. Unknown is a severity of its own: an advisory without a score must be counted, never dropped.
type Severity string

// Severities, most severe first. Compliance results map impact onto the same scale (InSpec: >=0.9 critical, >=0.7
// high, >=0.4 medium, >0 low, 0 none).
const (
	SeverityCritical Severity = "CRITICAL"
	SeverityHigh     Severity = "HIGH"
	SeverityMedium   Severity = "MEDIUM"
	SeverityLow      Severity = "LOW"
	SeverityNone     Severity = "NONE"
	SeverityUnknown  Severity = "UNKNOWN"
)

// Rank orders severities for thresholds (--severity, --exit-code): higher is more severe; Unknown ranks between Low
// and None so an unscored advisory still trips a LOW threshold but not a MEDIUM one.
func (s Severity) Rank() int {
	switch s {
	case SeverityCritical:
		return 5
	case SeverityHigh:
		return 4
	case SeverityMedium:
		return 3
	case SeverityLow:
		return 2
	case SeverityUnknown:
		return 1
	}
	return 0
}

// Vulnerability is one advisory affecting one installed package. Package/Version/Ecosystem are the inventory's
// words (for Debian, the binary package; the advisory itself may be keyed by the source package).
type Vulnerability struct {
	// ID is the advisory's OSV id (CVE-..., GHSA-..., DSA-..., GO-...).
	ID      string   `json:"id"`
	Aliases []string `json:"aliases,omitempty"`
	Summary string   `json:"summary,omitempty"`
	// Severity comes from the CVSS vector when there is one, else from the ecosystem's own rating.
	Severity Severity `json:"severity"`
	// Score and Vector are the CVSS base score and vector the severity was computed from, when there was one.
	Score     float64 `json:"score,omitempty"`
	Vector    string  `json:"vector,omitempty"`
	Package   string  `json:"package"`
	Version   string  `json:"version"`
	Ecosystem string  `json:"ecosystem"`
	PURL      string  `json:"purl,omitempty"`
	// FixedVersion is the first version that fixes it in the package's ecosystem; empty when no fix exists.
	FixedVersion string `json:"fixedVersion,omitempty"`
	// Suppressed is set when a VEX statement says the target is not affected or has it fixed.
	Suppressed *Suppression `json:"suppressed,omitempty"`
	// Reachable says, for Go findings, whether the advisory's vulnerable code is compiled into a program that
	// contains the module (govulncheck's binary verdict); empty for other ecosystems.
	Reachable Reachability `json:"reachable,omitempty"`
	// InUse says whether the package was seen in use at run time: one of its files was executed or mapped
	// executable by a process of the container since rootscan began watching it (see package inuse). Empty when the
	// report was not marked at all (a directory or image scan).
	InUse InUse `json:"inUse,omitempty"`
}

// Reachability is a Go finding's verdict on whether the vulnerable code is in the program: three values, so
// metrics can carry it as a label.
type Reachability string

const (
	// ReachableTrue: a vulnerable function (or, for advisories that name none, a package or module the advisory
	// covers) is in the program's function table, inlined copies included.
	ReachableTrue Reachability = "true"
	// ReachableFalse: the program's function table was read and holds none of the advisory's vulnerable code.
	ReachableFalse Reachability = "false"
	// ReachableUnknown: the program gives nothing to decide on (no readable function table, a toolchain before
	// Go 1.18, an advisory database without symbol data).
	ReachableUnknown Reachability = "unknown"
)

// InUse is a finding's runtime verdict on whether its package is loaded: three values, so metrics can carry it as
// a label.
type InUse string

const (
	// InUseTrue: a file of the package (a program, a shared library) was executed or mapped executable.
	InUseTrue InUse = "true"
	// InUseFalse: runtime data exists for the container and none of the package's files was seen executed or
	// mapped; only since watching began.
	InUseFalse InUse = "false"
	// InUseUnknown: no runtime data for the container, or a package whose use the kernel cannot see (interpreted
	// code, which is read rather than mapped).
	InUseUnknown InUse = "unknown"
)

// Fixable says whether upgrading the package would remove the finding.
func (v Vulnerability) Fixable() bool { return v.FixedVersion != "" }

// Suppression records why a finding is not reported as open: the VEX status and justification and the document
// that said so, so an auditor can trace every suppressed finding.
type Suppression struct {
	Status        string `json:"status"`
	Justification string `json:"justification,omitempty"`
	Source        string `json:"source,omitempty"`
}

// Control result statuses, as HDF and InSpec name them.
const (
	ControlPassed  = "passed"
	ControlFailed  = "failed"
	ControlSkipped = "skipped"
	ControlError   = "error"
)

// ControlResult is one compliance control evaluated on one root. The full HDF document carries more (code,
// descriptions, every check); this is what metrics, tables and SIEM events need.
type ControlResult struct {
	Profile  string   `json:"profile"`
	ID       string   `json:"id"`
	Title    string   `json:"title,omitempty"`
	Impact   float64  `json:"impact"`
	Severity Severity `json:"severity"`
	// Status is ControlPassed, ControlFailed, ControlSkipped or ControlError.
	Status string `json:"status"`
	// Message says which check failed and what it observed, or why the control was skipped or errored.
	Message string `json:"message,omitempty"`
	// Waiver is set when a waiver applied (the control then counts as skipped until the waiver expires).
	Waiver *Waiver             `json:"waiver,omitempty"`
	Tags   map[string][]string `json:"tags,omitempty"`
	// Checks are the results of the control's checks, in profile order (empty when only_if skipped it).
	Checks []CheckResult `json:"checks,omitempty"`
}

// Waiver is an accepted exception to a control, with the reason and the date it stops applying.
type Waiver struct {
	Justification string    `json:"justification"`
	Expires       time.Time `json:"expires,omitempty"`
}

// Drift changes, as a container's upper dir shows them relative to its image.
const (
	DriftAdded   = "added"
	DriftChanged = "changed"
	DriftDeleted = "deleted"
)

// DriftEntry is one path a running container added, changed or deleted on top of its image. Executable is the
// signal that matters most: a container that gains a binary its image never had is the classic sign of compromise.
type DriftEntry struct {
	Path   string `json:"path"`
	Change string `json:"change"`
	// Type is "file", "dir", "symlink" or "other".
	Type       string `json:"type"`
	Mode       uint32 `json:"mode,omitempty"`
	Size       int64  `json:"size,omitempty"`
	Executable bool   `json:"executable,omitempty"`
	SHA256     string `json:"sha256,omitempty"`
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
	// Evidence is how the analyzer knows the package is there; empty for the package's own installed record.
	Evidence Evidence `json:"evidence,omitempty"`
}

// Evidence names how an analyzer learned of a package, because a version read from a package database and one
// guessed from a jar's file name deserve different trust in triage, and a package a lock file only declares may not
// be on disk at all. The zero value is the strongest: the package's own installed record (a dpkg, apk or rpm
// database entry; node_modules/*/package.json; *.dist-info/METADATA; pom.properties; a gemspec; build info compiled
// into a binary).
type Evidence string

const (
	// EvidenceInstalled is the package's own installed record.
	EvidenceInstalled Evidence = ""
	// EvidenceJarManifest is a jar named by its META-INF/MANIFEST.MF (Implementation-* or Bundle-* headers) because
	// it carries no pom.properties: the version is the jar's own, the Maven group may be a guess.
	EvidenceJarManifest Evidence = "jar-manifest"
	// EvidenceFileName is a jar named only by its file name (name-1.2.3.jar): the weakest evidence.
	EvidenceFileName Evidence = "file-name"
	// EvidenceLockFile is a package a lock file (package-lock.json, yarn.lock, pnpm-lock.yaml) declares with no
	// installed copy beside it: a bundled application may contain its code, a stray lock file means nothing is
	// installed. It is listed in the inventory and SBOM, marked, and not matched against advisories.
	EvidenceLockFile Evidence = "lock-file"
)

// Stronger reports whether e is better evidence than o, so merging an installed copy with a lock file's entry of
// the same package keeps "installed".
func (e Evidence) Stronger(o Evidence) bool {
	rank := func(e Evidence) int {
		switch e {
		case EvidenceInstalled:
			return 0
		case EvidenceJarManifest:
			return 1
		case EvidenceFileName:
			return 2
		default:
			return 3
		}
	}
	return rank(e) < rank(o)
}

// Declared reports whether the package is only declared (a lock file's entry), not found installed.
func (p Package) Declared() bool { return p.Evidence == EvidenceLockFile }

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
	// Config is the image's OCI config (user, env, entrypoint, ports, labels), when known; compliance controls read it.
	Config *ImageConfig `json:"config,omitempty"`
	// Security is the container's CRI security context, when the target is a container.
	Security *SecurityContext `json:"security,omitempty"`
	// Mounts are the container's volumes (ConfigMaps, Secrets, hostPaths) as the CRI reports them. Package scans skip
	// them; compliance controls on a mounted path read the volume, confined like every other read.
	Mounts []Mount `json:"mounts,omitempty"`
	// PodLabels are the pod's labels (the CRI sandbox's), so compliance scopes can select pods like Kubernetes does.
	PodLabels map[string]string `json:"podLabels,omitempty"`
}

// ImageConfig is the part of an OCI image config that controls check.
type ImageConfig struct {
	User         string            `json:"user,omitempty"`
	Env          []string          `json:"env,omitempty"`
	Entrypoint   []string          `json:"entrypoint,omitempty"`
	Cmd          []string          `json:"cmd,omitempty"`
	WorkingDir   string            `json:"workingDir,omitempty"`
	ExposedPorts []string          `json:"exposedPorts,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
}

// SecurityContext is what the runtime was asked to enforce for the container (from the CRI's view of its spec).
type SecurityContext struct {
	RunAsUser              *int64   `json:"runAsUser,omitempty"`
	RunAsGroup             *int64   `json:"runAsGroup,omitempty"`
	Privileged             bool     `json:"privileged"`
	ReadOnlyRootFilesystem bool     `json:"readOnlyRootFilesystem"`
	CapabilitiesAdd        []string `json:"capabilitiesAdd,omitempty"`
	CapabilitiesDrop       []string `json:"capabilitiesDrop,omitempty"`
	// Capabilities is the effective bounding set, when the runtime spec says it.
	Capabilities             []string `json:"capabilities,omitempty"`
	AllowPrivilegeEscalation *bool    `json:"allowPrivilegeEscalation,omitempty"`
}

// Mount is one volume of a container: where it appears inside the container and where it lives on the node.
type Mount struct {
	ContainerPath string `json:"containerPath"`
	HostPath      string `json:"hostPath"`
	ReadOnly      bool   `json:"readOnly"`
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
	// Incomplete is set when the check stopped at one of its budgets or was not run because an earlier check of the
	// same container took the scanner down (quarantine). Result then holds what was found before it stopped, if
	// anything, and is not the container's whole inventory.
	Incomplete *Incomplete `json:"incomplete,omitempty"`
}

// Budgets a check can stop at, for Incomplete.Reason.
const (
	// IncompleteDeadline: the check ran longer than its deadline.
	IncompleteDeadline = "deadline"
	// IncompleteMemory: the heap grew by more than the check's memory budget while it ran.
	IncompleteMemory = "memory"
	// IncompleteCrashed: the scanner process died during an earlier check of the container, which is quarantined
	// (not read) until its image or upper dir changes.
	IncompleteCrashed = "crashed"
)

// Incomplete says why a check did not finish and where it was: which analyzer, and which file when it was reading
// one, so an operator can find the file that costs so much.
type Incomplete struct {
	// Reason is IncompleteDeadline, IncompleteMemory or IncompleteCrashed.
	Reason string `json:"reason"`
	// Analyzer and Path are where the check was when it stopped (or when the process died).
	Analyzer string `json:"analyzer,omitempty"`
	Path     string `json:"path,omitempty"`
	// Detail says what was exceeded, in words ("heap grew by 80 MiB, budget 64 MiB").
	Detail string `json:"detail,omitempty"`
	// Since is when the quarantine began, for IncompleteCrashed.
	Since time.Time `json:"since,omitzero"`
}

// String is the one-line form logs and scan.failed-style messages use.
func (i *Incomplete) String() string {
	s := "scan incomplete: " + i.Reason
	if i.Detail != "" {
		s += " (" + i.Detail + ")"
	}
	if i.Analyzer != "" {
		s += " in " + i.Analyzer
	}
	if i.Path != "" {
		s += " at " + i.Path
	}
	return s
}

// CheckResult is one check of a compliance control, as HDF's results[] records it: what was checked, how it came
// out and what the target had when it failed.
type CheckResult struct {
	Desc      string        `json:"desc"`
	Status    string        `json:"status"`
	Message   string        `json:"message,omitempty"`
	StartTime time.Time     `json:"startTime"`
	RunTime   time.Duration `json:"runTimeNs"`
}
