package exporter

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rootscan/rootscan/internal/textsafe"
	"github.com/rootscan/rootscan/report"
)

func vulnEvent() Event {
	v := report.Vulnerability{ID: "CVE-2024-0001", Aliases: []string{"CVE-2024-0001", "DSA-1"}, Summary: "heap overflow",
		Severity: report.SeverityCritical, Score: 9.8, Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
		Package: "openssl", Version: "3.0.1", Ecosystem: "Debian", PURL: "pkg:deb/debian/openssl@3.0.1", FixedVersion: "3.0.2"}
	return Event{ID: "e1", Type: EventFindingOpened, Time: t0, Node: "node-1", Namespace: "shop", Pod: "web-1",
		Container: "app", ContainerID: "c0ffee", Image: "registry.local/web:1", ImageDigest: "sha256:abcd",
		Finding: &Finding{ID: "f1", Kind: KindVulnerability, Title: "CVE-2024-0001 in openssl 3.0.1", Severity: report.SeverityCritical, Vulnerability: &v}}
}

func render(t *testing.T, format string, e Event) map[string]any {
	t.Helper()
	f, err := ParseFormat(format)
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s is not JSON: %v\n%s", format, err, b)
	}
	return m
}

// field follows a dotted path through nested objects (and the first element of arrays).
func field(m map[string]any, path string) any {
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		if a, ok := cur.([]any); ok && len(a) > 0 {
			cur = a[0]
		}
		o, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = o[k]
	}
	return cur
}

func checkFields(t *testing.T, m map[string]any, want map[string]any) {
	t.Helper()
	for k, w := range want {
		if g := field(m, k); !equalJSON(g, w) {
			t.Errorf("%s = %#v, want %#v", k, g, w)
		}
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestECS(t *testing.T) {
	m := render(t, "ecs", vulnEvent())
	checkFields(t, m, map[string]any{
		"@timestamp":                           "2025-03-01T12:00:00.000Z",
		"event.id":                             "e1",
		"event.kind":                           "event",
		"event.action":                         "finding-opened",
		"event.category":                       []string{"vulnerability", "package"},
		"event.type":                           []string{"info"},
		"event.severity":                       99,
		"host.name":                            "node-1",
		"container.id":                         "c0ffee",
		"container.name":                       "app",
		"container.image.name":                 "registry.local/web:1",
		"container.image.hash.all":             []string{"sha256:abcd"},
		"orchestrator.type":                    "kubernetes",
		"orchestrator.namespace":               "shop",
		"orchestrator.resource.name":           "web-1",
		"vulnerability.id":                     "CVE-2024-0001",
		"vulnerability.severity":               "CRITICAL",
		"vulnerability.score.base":             9.8,
		"vulnerability.enumeration":            "CVE",
		"package.name":                         "openssl",
		"package.version":                      "3.0.1",
		"rootscan.finding.id":                  "f1",
		"rootscan.finding.status":              "open",
		"rootscan.vulnerability.fixed_version": "3.0.2",
		"message":                              "opened CRITICAL vulnerability CVE-2024-0001 in openssl 3.0.1 on shop/web-1/app",
	})
	d := report.DriftEntry{Path: "/usr/bin/nc", Change: report.DriftAdded, Type: "file", Mode: 0o100755, Size: 10, Executable: true, SHA256: "aa"}
	e := Event{ID: "e2", Type: EventFindingResolved, Time: t0, Reason: ReasonAbsent, Finding: &Finding{ID: "f2", Kind: KindDrift, Severity: report.SeverityHigh, Drift: &d}}
	checkFields(t, render(t, "ecs", e), map[string]any{
		"event.category": []string{"file"}, "file.path": "/usr/bin/nc", "file.name": "nc", "file.mode": "0755",
		"file.hash.sha256": "aa", "rootscan.drift.executable": true, "rootscan.reason": "absent", "event.severity": 0,
		"rootscan.finding.status": "resolved",
	})
}

func TestOCSF(t *testing.T) {
	checkFields(t, render(t, "ocsf", vulnEvent()), map[string]any{
		"class_uid": 2002, "class_name": "Vulnerability Finding", "category_uid": 2, "activity_id": 1, "type_uid": 200201,
		"type_name": "Vulnerability Finding: Create", "severity_id": 5, "severity": "Critical", "status_id": 1,
		"time": t0.UnixMilli(), "metadata.uid": "e1", "metadata.version": "1.3.0", "metadata.product.name": "rootscan",
		"finding_info.uid": "f1", "finding_info.title": "CVE-2024-0001 in openssl 3.0.1",
		"vulnerabilities.cve.uid": "CVE-2024-0001", "vulnerabilities.cve.cvss.base_score": 9.8, "vulnerabilities.cve.cvss.version": "3.1",
		"vulnerabilities.is_fix_available": true, "vulnerabilities.related_vulnerabilities": []string{"DSA-1"},
		"vulnerabilities.affected_packages.name": "openssl", "vulnerabilities.affected_packages.fixed_in_version": "3.0.2",
		"vulnerabilities.affected_packages.purl": "pkg:deb/debian/openssl@3.0.1",
		"container.uid":                          "c0ffee", "container.image.uid": "sha256:abcd", "device.hostname": "node-1",
		"resources.uid": "c0ffee", "resources.name": "shop/web-1/app", "resources.type": "container",
	})
	c := report.ControlResult{Profile: "cis-docker", ID: "4.1", Title: "non-root user", Status: report.ControlFailed, Severity: report.SeverityHigh, Message: "runs as root"}
	e := Event{ID: "e3", Type: EventFindingResolved, Reason: ReasonSuppressed, Time: t0, ContainerID: "c0ffee",
		Finding: &Finding{ID: "f3", Kind: KindCompliance, Title: "4.1", Severity: report.SeverityHigh, Control: &c}}
	checkFields(t, render(t, "ocsf", e), map[string]any{
		"class_uid": 2003, "activity_id": 3, "type_uid": 200303, "status_id": 3, "status": "Suppressed",
		"compliance.standards": []string{"cis-docker"}, "compliance.control": "4.1", "compliance.status_id": nil,
	})
	checkFields(t, render(t, "ocsf", Event{ID: "e4", Type: EventScanFailed, Time: t0, Error: "boom"}), map[string]any{
		"class_uid": 6007, "category_uid": 6, "activity_id": 6, "type_uid": 600706, "status_id": 2, "status_detail": "boom",
	})
}

func TestCEF(t *testing.T) {
	f, _ := ParseFormat("cef")
	e := vulnEvent()
	e.Finding.Title = `pipe | back\slash` + "\nnewline"
	e.Pod = "a=b"
	b, err := f.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `CEF:0|rootscan|rootscan|dev|CVE-2024-0001|pipe \| back\\slash newline|10|rt=1740830400000 externalId=e1 ` +
		`act=finding.opened dvchost=node-1 msg=opened CRITICAL vulnerability pipe | back\\slash\nnewline on shop/a\=b/app ` +
		`cs2Label=namespace cs2=shop cs3Label=pod cs3=a\=b cs4Label=container cs4=app cs5Label=image cs5=registry.local/web:1 ` +
		`cs6Label=imageDigest cs6=sha256:abcd flexString1Label=containerId flexString1=c0ffee cat=vulnerability ` +
		`cs1Label=findingId cs1=f1 flexString2Label=findingSeverity flexString2=CRITICAL cfp1Label=cvssScore cfp1=9.8 ` +
		`requestClientApplication=openssl 3.0.1 fileType=Debian outcome=fixable in 3.0.2`
	if string(b) != want {
		t.Fatalf("got\n%s\nwant\n%s", b, want)
	}
}

// cefUnescapeValue reverses cefValue, failing on an escape CEF does not define.
func cefUnescapeValue(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '=' || c == '\n' || c == '\r' {
			return "", false // must have been escaped
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(s) {
			return "", false
		}
		switch s[i] {
		case '\\', '=':
			b.WriteByte(s[i])
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		default:
			return "", false
		}
	}
	return b.String(), true
}

func cefUnescapeHeader(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '|' || c == '\n' || c == '\r' {
			return "", false
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(s) || (s[i] != '\\' && s[i] != '|') {
			return "", false
		}
		b.WriteByte(s[i])
	}
	return b.String(), true
}

// cefShown is what a CEF reader gets back for s: line breaks as they are (values) or as spaces (headers), other
// unsafe characters as the text of their escape.
func cefShown(s string, header bool) string {
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") { // invalid UTF-8 is replaced, CEF being UTF-8
		switch {
		case (r == '\r' || r == '\n') && header:
			b.WriteByte(' ')
		case r == '\r' || r == '\n':
			b.WriteRune(r)
		case textsafe.Unsafe(r):
			b.WriteString(textsafe.EscapeRune(r))
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// FuzzCEFEscape: escaped values and headers read back as cefShown says, and never carry a character a terminal or
// log reader acts on.
func FuzzCEFEscape(f *testing.F) {
	for _, s := range []string{"", "plain", `a=b\c|d`, "line\nbreak\r\n", `\\\=`, "é|=\\\n", "\x1b[31m\u0085\u2028\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v := cefValue(raw)
		if got, ok := cefUnescapeValue(v); !ok || got != cefShown(raw, false) {
			t.Fatalf("value %q escaped to %q, which reads back as %q (ok=%v)", raw, v, got, ok)
		}
		h := cefHeader(raw)
		if got, ok := cefUnescapeHeader(h); !ok || got != cefShown(raw, true) {
			t.Fatalf("header %q escaped to %q, which reads back as %q (ok=%v)", raw, h, got, ok)
		}
		for _, out := range []string{v, h} {
			if i := strings.IndexFunc(out, textsafe.Unsafe); i >= 0 {
				t.Fatalf("%q escaped to %q, unsafe at %d", raw, out, i)
			}
		}
	})
}

func TestFormatsRenderEveryEventType(t *testing.T) {
	events := []Event{vulnEvent(),
		{ID: "a", Type: EventScanFailed, Error: "x"},
		{ID: "b", Type: EventContainerRemoved, ContainerID: "c"},
		{ID: "c", Type: EventFindingOpened, Finding: &Finding{Kind: KindIntegrity, Integrity: &report.IntegrityFinding{Path: "/bin/ls", Package: "coreutils"}}},
		{ID: "d", Type: EventFindingOpened, Finding: &Finding{Kind: KindUnownedFile, File: &report.File{Path: "/x", Size: 3}}},
	}
	for _, name := range []string{"ecs", "ocsf", "cef", "json"} {
		f, _ := ParseFormat(name)
		for _, e := range events {
			b, err := f.Marshal(e)
			if err != nil || len(b) == 0 || strings.ContainsAny(string(b), "\n\r") {
				t.Fatalf("%s of %s: %q %v", name, e.Type, b, err)
			}
			if f.JSON() && !json.Valid(b) {
				t.Fatalf("%s of %s is not JSON: %s", name, e.Type, b)
			}
		}
	}
	if _, err := ParseFormat("xml"); err == nil {
		t.Fatal("unknown format accepted")
	}
}

// TestReachableInEvents: a Go finding's reachability reaches every format (JSON through the finding itself), and
// a finding without one adds nothing.
func TestReachableInEvents(t *testing.T) {
	for _, r := range []report.Reachability{report.ReachableTrue, report.ReachableFalse, report.ReachableUnknown} {
		e := vulnEvent()
		e.Finding.Vulnerability.Ecosystem, e.Finding.Vulnerability.Reachable = "Go", r
		checkFields(t, render(t, "json", e), map[string]any{"finding.vulnerability.reachable": string(r)})
		checkFields(t, render(t, "ecs", e), map[string]any{"rootscan.vulnerability.reachable": string(r)})
		checkFields(t, render(t, "ocsf", e), map[string]any{"unmapped.reachable": string(r)})
		f, _ := ParseFormat("cef")
		b, err := f.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		want := map[report.Reachability]string{report.ReachableTrue: "cn1=1", report.ReachableFalse: "cn1=0"}[r]
		if got := strings.Contains(string(b), "cn1Label=reachable"); got != (want != "") || !strings.Contains(string(b), want) {
			t.Errorf("CEF for reachable=%s: %s", r, b)
		}
	}
	e := vulnEvent()
	checkFields(t, render(t, "ecs", e), map[string]any{"rootscan.vulnerability.reachable": nil})
	checkFields(t, render(t, "json", e), map[string]any{"finding.vulnerability.reachable": nil})
}

// TestInUseInEvents: a finding's runtime verdict reaches every format beside reachability (JSON through the finding
// itself, CEF as cn2), and a finding never marked adds nothing.
func TestInUseInEvents(t *testing.T) {
	for _, u := range []report.InUse{report.InUseTrue, report.InUseFalse, report.InUseUnknown} {
		e := vulnEvent()
		e.Finding.Vulnerability.InUse, e.Finding.Vulnerability.Reachable = u, report.ReachableTrue
		checkFields(t, render(t, "json", e), map[string]any{"finding.vulnerability.inUse": string(u), "finding.vulnerability.reachable": "true"})
		checkFields(t, render(t, "ecs", e), map[string]any{"rootscan.vulnerability.in_use": string(u), "rootscan.vulnerability.reachable": "true"})
		checkFields(t, render(t, "ocsf", e), map[string]any{"unmapped.in_use": string(u), "unmapped.reachable": "true"})
		f, _ := ParseFormat("cef")
		b, err := f.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		want := map[report.InUse]string{report.InUseTrue: "cn2=1", report.InUseFalse: "cn2=0"}[u]
		if got := strings.Contains(string(b), "cn2Label=inUse"); got != (want != "") || !strings.Contains(string(b), want) || !strings.Contains(string(b), "cn1=1") {
			t.Errorf("CEF for in_use=%s: %s", u, b)
		}
	}
	e := vulnEvent()
	checkFields(t, render(t, "ecs", e), map[string]any{"rootscan.vulnerability.in_use": nil})
	checkFields(t, render(t, "ocsf", e), map[string]any{"unmapped.in_use": nil})
	checkFields(t, render(t, "json", e), map[string]any{"finding.vulnerability.inUse": nil})
}
