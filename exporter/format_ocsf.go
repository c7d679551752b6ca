package exporter

import (
	"cmp"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/rootscan/rootscan/report"
)

// ocsfFormat renders events as OCSF 1.3 findings (category 2): Vulnerability Finding (2002), Compliance Finding
// (2003) and Detection Finding (2004) for drift, integrity and unowned files, which no narrower class fits. A failed
// scan is a Scan Activity (6007, activity Error); a removed container closes a Detection Finding about the container
// itself. Opened is activity Create with status New, resolved is Close with status Resolved (Suppressed for VEX).
type ocsfFormat struct{ version string }

func (ocsfFormat) Name() string { return "ocsf" }
func (ocsfFormat) JSON() bool   { return true }

// OCSF class and enum values used below.
const (
	ocsfVulnerabilityFinding = 2002
	ocsfComplianceFinding    = 2003
	ocsfDetectionFinding     = 2004
	ocsfScanActivity         = 6007

	ocsfActivityCreate = 1
	ocsfActivityUpdate = 2
	ocsfActivityClose  = 3
	ocsfScanError      = 6
)

func ocsfSeverity(s report.Severity) (int, string) {
	switch s {
	case report.SeverityCritical:
		return 5, "Critical"
	case report.SeverityHigh:
		return 4, "High"
	case report.SeverityMedium:
		return 3, "Medium"
	case report.SeverityLow:
		return 2, "Low"
	case report.SeverityNone:
		return 1, "Informational"
	}
	return 0, "Unknown"
}

func (f ocsfFormat) Marshal(e Event) ([]byte, error) {
	d := obj{}
	d.set("time", e.Time.UnixMilli())
	d.set("message", summary(e))
	d.set("metadata.version", "1.3.0")
	d.set("metadata.uid", e.ID)
	d.set("metadata.product.name", "rootscan")
	d.set("metadata.product.vendor_name", "rootscan")
	d.set("metadata.product.version", f.version)
	ocsfSubject(d, e)

	sevID, sev := ocsfSeverity(eventSeverity(e))
	if e.Finding != nil {
		sevID, sev = ocsfSeverity(e.Finding.Severity)
	}
	d.set("severity_id", sevID)
	d.set("severity", sev)

	class, activity := ocsfDetectionFinding, ocsfStatus(d, e)
	if e.Type.scanProblem() {
		class = ocsfScanActivity
	}
	if e.Finding != nil {
		class = ocsfFinding(d, e, class)
	}
	ocsfClass(d, class, activity)
	return marshalLine(d)
}

// ocsfSubject sets the node, the container and the resource an event is about.
func ocsfSubject(d obj, e Event) {
	if e.Node != "" {
		d.set("device.hostname", e.Node)
		d.set("device.type_id", 1)
		d.set("device.type", "Server")
	}
	if e.ContainerID != "" {
		d.set("container.uid", e.ContainerID)
		d.set("container.name", e.Container)
		d.set("container.image.name", e.Image)
		d.set("container.image.uid", e.ImageDigest)
	}
	res := obj{}
	res.set("uid", cmp.Or(e.ContainerID, e.Path))
	res.set("name", cmp.Or(strings.Trim(e.Namespace+"/"+e.Pod+"/"+e.Container, "/"), e.Path))
	res.set("type", map[bool]string{true: "container", false: "filesystem"}[e.ContainerID != ""])
	var labels []string
	for k, v := range map[string]string{"namespace": e.Namespace, "pod": e.Pod, "image": e.Image, "image_digest": e.ImageDigest} {
		if v != "" {
			labels = append(labels, k+":"+v)
		}
	}
	slices.Sort(labels)
	res.set("labels", labels)
	d.set("resources", []obj{res})
	d.set("unmapped.namespace", e.Namespace)
	d.set("unmapped.pod", e.Pod)
	d.set("unmapped.reason", e.Reason)
}

// ocsfStatus sets the status of the event's type and returns its OCSF activity (a failed scan is also class
// ocsfScanActivity, which Marshal sets).
func ocsfStatus(d obj, e Event) int {
	activity := ocsfActivityCreate
	switch e.Type {
	case EventScanFailed, EventScanIncomplete, EventScanCrashed:
		activity = ocsfScanError
		d.set("status_id", 2)
		d.set("status", "Failure")
		d.set("status_detail", e.Error)
		d.set("scan.type_id", 99)
		d.set("scan.type", "Container image and filesystem")
	case EventContainerRemoved:
		activity = ocsfActivityClose
		d.set("finding_info.uid", stableID(cmp.Or(e.ContainerID, e.Path), "container"))
		d.set("finding_info.title", "container removed")
		d.set("finding_info.types", []string{"container"})
		d.set("status_id", 4)
		d.set("status", "Resolved")
	case EventFindingOpened, EventExecDrift:
		d.set("status_id", 1)
		d.set("status", "New")
	case EventFindingInUse:
		activity = ocsfActivityUpdate
		d.set("status_id", 1)
		d.set("status", "New")
	case EventFindingResolved:
		activity = ocsfActivityClose
		d.set("status_id", 4)
		d.set("status", "Resolved")
		if e.Reason == ReasonSuppressed {
			d.set("status_id", 3)
			d.set("status", "Suppressed")
		}
	}
	return activity
}

// ocsfFinding sets what the event's finding says and returns the OCSF class that fits it (class when none is
// narrower).
func ocsfFinding(d obj, e Event, class int) int {
	fi := e.Finding
	d.set("finding_info.uid", fi.ID)
	d.set("finding_info.title", fi.Title)
	d.set("finding_info.types", []string{string(fi.Kind)})
	switch {
	case fi.Vulnerability != nil:
		class = ocsfVulnerabilityFinding
		d.set("vulnerabilities", []obj{ocsfVulnerability(fi.Vulnerability)})
		d.set("unmapped.reachable", string(fi.Vulnerability.Reachable))
		d.set("unmapped.in_use", string(fi.Vulnerability.InUse))
	case fi.Control != nil:
		class = ocsfComplianceFinding
		c := fi.Control
		d.set("finding_info.desc", c.Message)
		d.set("compliance.standards", []string{c.Profile})
		d.set("compliance.control", c.ID)
		if e.Type == EventFindingOpened {
			d.set("compliance.status_id", 3)
			d.set("compliance.status", "Fail")
		}
		d.set("compliance.status_detail", c.Message)
	case fi.Drift != nil:
		d.set("evidences", []obj{{"file": ocsfFile(fi.Drift.Path, fi.Drift.Type, fi.Drift.Size, fi.Drift.SHA256)}})
		d.set("unmapped.drift_change", fi.Drift.Change)
		d.set("unmapped.executable", fi.Drift.Executable)
	case fi.Integrity != nil:
		d.set("evidences", []obj{{"file": ocsfFile(fi.Integrity.Path, "file", 0, fi.Integrity.Found)}})
		d.set("unmapped.package", fi.Integrity.Package)
		d.set("unmapped.expected_digest", fi.Integrity.Expected)
	case fi.File != nil:
		d.set("evidences", []obj{{"file": ocsfFile(fi.File.Path, "file", fi.File.Size, fi.File.SHA256)}})
	case fi.Exec != nil:
		x := fi.Exec
		proc := obj{"pid": x.PID, "name": x.Comm, "file": ocsfFile(x.Path, "file", x.Size, x.SHA256),
			"user":           obj{"uid": strconv.FormatUint(uint64(x.UID), 10), "name": x.User},
			"parent_process": obj{"pid": x.PPID, "name": x.ParentName, "cmd_line": x.ParentCmdline}}
		d.set("evidences", []obj{{"process": proc}})
		d.set("unmapped.exec_count", x.Count)
	}
	return class
}

// ocsfClass sets the class, category, activity and type names and ids.
func ocsfClass(d obj, class, activity int) {
	d.set("class_uid", class)
	d.set("class_name", map[int]string{ocsfVulnerabilityFinding: "Vulnerability Finding", ocsfComplianceFinding: "Compliance Finding",
		ocsfDetectionFinding: "Detection Finding", ocsfScanActivity: "Scan Activity"}[class])
	category := 2
	if class == ocsfScanActivity {
		category = 6
	}
	d.set("category_uid", category)
	d.set("category_name", map[int]string{2: "Findings", 6: "Application Activity"}[category])
	d.set("activity_id", activity)
	actName := map[int]string{ocsfActivityCreate: "Create", ocsfActivityUpdate: "Update", ocsfActivityClose: "Close"}[activity]
	if class == ocsfScanActivity {
		actName = "Error"
	}
	d.set("activity_name", actName)
	d.set("type_uid", class*100+activity)
	d.set("type_name", d["class_name"].(string)+": "+actName)
}

func ocsfVulnerability(v *report.Vulnerability) obj {
	o := obj{}
	o.set("title", v.ID)
	o.set("desc", v.Summary)
	_, sev := ocsfSeverity(v.Severity)
	o.set("severity", sev)
	o.set("vendor_name", "rootscan")
	o.set("is_fix_available", v.Fixable())
	o.set("cve.uid", v.ID)
	if v.Score > 0 || v.Vector != "" {
		c := obj{}
		c.set("base_score", v.Score)
		c.set("vector_string", v.Vector)
		if ver, ok := strings.CutPrefix(v.Vector, "CVSS:"); ok {
			c.set("version", strings.SplitN(ver, "/", 2)[0])
		}
		o.set("cve.cvss", []obj{c})
	}
	var related []string
	for _, a := range v.Aliases {
		if a != v.ID {
			related = append(related, a)
		}
	}
	o.set("related_vulnerabilities", related)
	p := obj{}
	p.set("name", v.Package)
	p.set("version", v.Version)
	p.set("purl", v.PURL)
	p.set("package_manager", v.Ecosystem)
	p.set("fixed_in_version", v.FixedVersion)
	o.set("affected_packages", []obj{p})
	return o
}

// ocsfFile is an OCSF file object; type_id: 1 regular file, 2 folder, 7 symbolic link, 99 other.
func ocsfFile(p, typ string, size int64, sha string) obj {
	o := obj{}
	o.set("path", p)
	o.set("name", path.Base(p))
	id, name := 99, "Other"
	switch typ {
	case "file":
		id, name = 1, "Regular File"
	case "dir":
		id, name = 2, "Folder"
	case "symlink":
		id, name = 7, "Symbolic Link"
	}
	o.set("type_id", id)
	o.set("type", name)
	if size > 0 {
		o.set("size", size)
	}
	if sha != "" {
		o.set("hashes", []obj{{"algorithm_id": 3, "algorithm": "SHA-256", "value": sha}})
	}
	return o
}
