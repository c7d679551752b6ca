package exporter

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/rootscan/rootscan/report"
)

// ecsFormat renders events with Elastic Common Schema field names (ECS 8.x), for Elasticsearch, Filebeat and
// Vector pipelines. Where ECS has no field (finding ID, drift change, VEX reason) the value goes under "rootscan.".
type ecsFormat struct{ version string }

func (ecsFormat) Name() string { return "ecs" }
func (ecsFormat) JSON() bool   { return true }

// ecsSeverity follows the risk scores Elastic's detection rules use (21 low, 47 medium, 73 high, 99 critical), so
// rootscan's events sort with Elastic's own alerts.
func ecsSeverity(s report.Severity) int {
	switch s {
	case report.SeverityCritical:
		return 99
	case report.SeverityHigh:
		return 73
	case report.SeverityMedium:
		return 47
	case report.SeverityLow:
		return 21
	}
	return 0
}

func (f ecsFormat) Marshal(e Event) ([]byte, error) {
	d := obj{}
	d.set("@timestamp", e.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	d.set("message", summary(e))
	d.set("ecs.version", "8.11.0")
	d.set("event.id", e.ID)
	d.set("event.kind", "event")
	d.set("event.action", strings.ReplaceAll(string(e.Type), ".", "-"))
	d.set("event.module", "rootscan")
	d.set("event.dataset", "rootscan.findings")
	d.set("event.severity", ecsSeverity(eventSeverity(e)))
	d.set("observer.vendor", "rootscan")
	d.set("observer.product", "rootscan")
	d.set("observer.version", f.version)
	d.set("host.name", e.Node)
	d.set("container.id", e.ContainerID)
	d.set("container.name", e.Container)
	d.set("container.image.name", e.Image)
	if e.ImageDigest != "" {
		d.set("container.image.hash.all", []string{e.ImageDigest})
	}
	if e.Pod != "" {
		d.set("orchestrator.type", "kubernetes")
		d.set("orchestrator.namespace", e.Namespace)
		d.set("orchestrator.resource.type", "pod")
		d.set("orchestrator.resource.name", e.Pod)
	}
	d.set("rootscan.path", e.Path)
	d.set("rootscan.reason", e.Reason)
	switch e.Type {
	case EventScanFailed, EventScanIncomplete, EventScanCrashed:
		d.set("event.category", []string{"host"})
		d.set("event.type", []string{"error"})
		d.set("event.outcome", "failure")
		d.set("error.message", e.Error)
		if inc := e.Incomplete; inc != nil {
			d.set("rootscan.incomplete.reason", inc.Reason)
			d.set("rootscan.incomplete.analyzer", inc.Analyzer)
			d.set("rootscan.incomplete.path", inc.Path)
		}
	case EventContainerRemoved:
		d.set("event.category", []string{"host"})
		d.set("event.type", []string{"end"})
	}
	if fi := e.Finding; fi != nil {
		d.set("rootscan.finding.id", fi.ID)
		d.set("rootscan.finding.kind", string(fi.Kind))
		d.set("rootscan.finding.title", fi.Title)
		d.set("rootscan.finding.severity", string(fi.Severity))
		d.set("rootscan.finding.status", map[EventType]string{EventFindingOpened: "open", EventFindingInUse: "open", EventFindingResolved: "resolved"}[e.Type])
		d.set("event.type", []string{"info"})
		ecsFinding(d, fi)
	}
	return marshalLine(d)
}

func ecsFinding(d obj, fi *Finding) {
	switch {
	case fi.Vulnerability != nil:
		v := fi.Vulnerability
		d.set("event.category", []string{"vulnerability", "package"})
		d.set("vulnerability.id", v.ID)
		d.set("vulnerability.description", v.Summary)
		d.set("vulnerability.severity", string(v.Severity))
		d.set("vulnerability.scanner.vendor", "rootscan")
		d.set("vulnerability.category", []string{"Package"})
		if v.Score > 0 {
			d.set("vulnerability.score.base", v.Score)
			d.set("vulnerability.classification", "CVSS")
		}
		if strings.HasPrefix(v.ID, "CVE-") {
			d.set("vulnerability.enumeration", "CVE")
		}
		d.set("package.name", v.Package)
		d.set("package.version", v.Version)
		d.set("package.type", v.Ecosystem)
		d.set("rootscan.vulnerability.purl", v.PURL)
		d.set("rootscan.vulnerability.aliases", v.Aliases)
		d.set("rootscan.vulnerability.vector", v.Vector)
		d.set("rootscan.vulnerability.fixed_version", v.FixedVersion)
		d.set("rootscan.vulnerability.fixable", v.Fixable())
		d.set("rootscan.vulnerability.reachable", string(v.Reachable))
		d.set("rootscan.vulnerability.in_use", string(v.InUse))
	case fi.Control != nil:
		c := fi.Control
		d.set("event.category", []string{"configuration"})
		d.set("rule.id", c.ID)
		d.set("rule.name", c.Title)
		d.set("rule.ruleset", c.Profile)
		d.set("rule.category", "compliance")
		d.set("rootscan.compliance.impact", c.Impact)
		d.set("rootscan.compliance.status", c.Status)
		d.set("rootscan.compliance.message", c.Message)
	case fi.Drift != nil:
		x := fi.Drift
		d.set("event.category", []string{"file"})
		ecsFile(d, x.Path, x.Type, x.Size, x.SHA256, x.Mode)
		d.set("rootscan.drift.change", x.Change)
		d.set("rootscan.drift.executable", x.Executable)
	case fi.Integrity != nil:
		x := fi.Integrity
		d.set("event.category", []string{"file", "package"})
		ecsFile(d, x.Path, "file", 0, "", 0)
		d.set("package.name", x.Package)
		d.set("package.type", x.Ecosystem)
		d.set("rootscan.integrity.algorithm", x.Algorithm)
		d.set("rootscan.integrity.expected", x.Expected)
		d.set("rootscan.integrity.found", x.Found)
	case fi.File != nil:
		x := fi.File
		d.set("event.category", []string{"file"})
		ecsFile(d, x.Path, "file", x.Size, x.SHA256, 0)
		d.set("rootscan.file.kind", x.Kind)
	case fi.Exec != nil:
		ecsExec(d, fi.Exec)
	}
}

func ecsFile(d obj, p, typ string, size int64, sha string, mode uint32) {
	d.set("file.path", p)
	d.set("file.name", path.Base(p))
	d.set("file.directory", path.Dir(p))
	d.set("file.type", typ)
	if size > 0 {
		d.set("file.size", size)
	}
	d.set("file.hash.sha256", sha)
	if mode != 0 {
		d.set("file.mode", fmt.Sprintf("%04o", mode&0o7777))
	}
}

// ecsExec renders an exec drift as a process start whose executable is a file from the container's writable layer.
func ecsExec(d obj, x *ExecDrift) {
	d.set("event.category", []string{"process", "file"})
	d.set("event.type", []string{"start"})
	ecsFile(d, x.Path, "file", x.Size, x.SHA256, 0)
	d.set("process.executable", x.Path)
	d.set("process.name", x.Comm)
	d.set("process.pid", x.PID)
	d.set("process.args", x.Argv)
	d.set("process.hash.sha256", x.SHA256)
	d.set("process.parent.pid", x.PPID)
	d.set("process.parent.name", x.ParentName)
	d.set("process.parent.command_line", x.ParentCmdline)
	d.set("user.id", strconv.FormatUint(uint64(x.UID), 10))
	d.set("user.name", x.User)
	d.set("rootscan.exec.count", x.Count)
	d.set("rootscan.exec.hash_error", x.HashError)
}
