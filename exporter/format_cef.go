package exporter

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"

	"github.com/rootscan/rootscan/internal/textsafe"
	"github.com/rootscan/rootscan/report"
)

// cefFormat renders events as ArcSight Common Event Format (CEF:0) lines, for ArcSight, QRadar and syslog pipelines
// that parse CEF. Header fields escape \ and |, extension values escape \ and = and encode newlines as \n and \r,
// per the CEF specification; the custom string fields cs1..cs6 carry the Kubernetes context with their labels.
type cefFormat struct{ version string }

func (cefFormat) Name() string { return "cef" }
func (cefFormat) JSON() bool   { return false }

// cefSeverity maps onto CEF's 0-10 scale (Low 0-3, Medium 4-6, High 7-8, Very-High 9-10).
func cefSeverity(s report.Severity) int {
	switch s {
	case report.SeverityCritical:
		return 10
	case report.SeverityHigh:
		return 8
	case report.SeverityMedium:
		return 5
	case report.SeverityLow:
		return 3
	}
	return 0
}

func (f cefFormat) Marshal(e Event) ([]byte, error) {
	sig, name := string(e.Type), summary(e)
	if fi := e.Finding; fi != nil {
		name = fi.Title
		switch {
		case fi.Vulnerability != nil:
			sig = fi.Vulnerability.ID
		case fi.Control != nil:
			sig = fi.Control.Profile + ":" + fi.Control.ID
		case fi.Drift != nil:
			sig = "drift-" + fi.Drift.Change
		default:
			sig = string(fi.Kind)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "CEF:0|rootscan|rootscan|%s|%s|%s|%d|", cefHeader(f.version), cefHeader(sig), cefHeader(name),
		cefSeverity(eventSeverity(e)))
	first := true
	ext := func(k, v string) {
		if v == "" {
			return
		}
		if !first {
			b.WriteByte(' ')
		}
		first = false
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(cefValue(v))
	}
	ext("rt", strconv.FormatInt(e.Time.UnixMilli(), 10))
	ext("externalId", e.ID)
	ext("act", string(e.Type))
	ext("dvchost", e.Node)
	msg := summary(e)
	if e.Finding != nil && e.Finding.Control != nil && e.Finding.Control.Message != "" {
		msg += " - " + truncate(e.Finding.Control.Message, 1023)
	}
	ext("msg", msg)
	ext("reason", cmp.Or(e.Reason, e.Error))
	labelled := func(key, label, v string) {
		if v != "" {
			ext(key+"Label", label)
			ext(key, v)
		}
	}
	labelled("cs2", "namespace", e.Namespace)
	labelled("cs3", "pod", e.Pod)
	labelled("cs4", "container", e.Container)
	labelled("cs5", "image", e.Image)
	labelled("cs6", "imageDigest", e.ImageDigest)
	labelled("flexString1", "containerId", e.ContainerID)
	if fi := e.Finding; fi != nil {
		ext("cat", string(fi.Kind))
		labelled("cs1", "findingId", fi.ID)
		labelled("flexString2", "findingSeverity", string(fi.Severity))
		switch {
		case fi.Vulnerability != nil:
			v := fi.Vulnerability
			if v.Score > 0 {
				labelled("cfp1", "cvssScore", strconv.FormatFloat(v.Score, 'f', 1, 64))
			}
			ext("requestClientApplication", v.Package+" "+v.Version)
			ext("fileType", v.Ecosystem)
			if v.FixedVersion != "" {
				ext("outcome", "fixable in "+v.FixedVersion)
			}
			// CEF's custom strings are taken; reachability is a number there: 1 reachable, 0 not, absent unknown.
			switch v.Reachable {
			case report.ReachableTrue:
				labelled("cn1", "reachable", "1")
			case report.ReachableFalse:
				labelled("cn1", "reachable", "0")
			}
			switch v.InUse {
			case report.InUseTrue:
				labelled("cn2", "inUse", "1")
			case report.InUseFalse:
				labelled("cn2", "inUse", "0")
			}
		case fi.Drift != nil:
			ext("filePath", fi.Drift.Path)
			ext("fileHash", fi.Drift.SHA256)
			ext("fileType", fi.Drift.Type)
		case fi.Integrity != nil:
			ext("filePath", fi.Integrity.Path)
			ext("fileHash", fi.Integrity.Found)
			ext("oldFileHash", fi.Integrity.Expected)
		case fi.File != nil:
			ext("filePath", fi.File.Path)
			ext("fileHash", fi.File.SHA256)
			if fi.File.Size > 0 {
				ext("fsize", strconv.FormatInt(fi.File.Size, 10))
			}
		case fi.Exec != nil:
			ext("filePath", fi.Exec.Path)
			ext("fileHash", fi.Exec.SHA256)
			ext("spid", strconv.FormatUint(uint64(fi.Exec.PID), 10))
			ext("suid", strconv.FormatUint(uint64(fi.Exec.UID), 10))
			ext("suser", fi.Exec.User)
			ext("sproc", fi.Exec.Comm)
		}
	}
	return []byte(b.String()), nil
}

// cefHeader escapes a header field: backslash and pipe are escaped, line breaks (not allowed in a header) become
// spaces, and other characters a terminal or log reader would act on (ESC, NEL, U+2028, ...) are shown as text
// (see cefUnsafe).
func cefHeader(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD") // CEF is UTF-8
	if strings.IndexFunc(s, func(r rune) bool { return r == '\\' || r == '|' || textsafe.Unsafe(r) }) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\' || r == '|':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\r' || r == '\n':
			b.WriteByte(' ')
		case textsafe.Unsafe(r):
			cefUnsafe(&b, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// cefValue escapes an extension value: backslash and equals sign are escaped, line breaks become \n and \r, and
// other characters a terminal or log reader would act on are shown as text (see cefUnsafe). Pipes need no escape in
// the extension.
func cefValue(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.IndexFunc(s, func(r rune) bool { return r == '\\' || r == '=' || textsafe.Unsafe(r) }) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\' || r == '=':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case textsafe.Unsafe(r):
			cefUnsafe(&b, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// cefUnsafe writes a control or separator character as the text of its Go escape ("\x1b", "\u2028"), with the
// backslash escaped, so a CEF reader decodes it to that text: CEF defines no escape for these characters, and
// passed through they colour a terminal or split the line for readers that honour NEL and U+2028.
func cefUnsafe(b *strings.Builder, r rune) {
	b.WriteByte('\\')
	b.WriteString(textsafe.EscapeRune(r))
}
