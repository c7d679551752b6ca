package exporter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"strings"
	"unicode/utf8"

	"github.com/rootscan/rootscan/internal/textsafe"
	"github.com/rootscan/rootscan/report"
)

// Format renders an event for one SIEM schema. Sinks choose one per destination (?format=ecs|ocsf|cef|json).
type Format interface {
	// Name is the format's name in sink URLs.
	Name() string
	// Marshal renders one event: a JSON object for JSON formats, one line of text for CEF. No trailing newline.
	Marshal(e Event) ([]byte, error)
	// JSON says whether Marshal returns a JSON object (HTTP presets embed it as an object, not a string).
	JSON() bool
}

// ParseFormat returns the format named name: "ecs" (Elastic Common Schema), "ocsf" (Open Cybersecurity Schema
// Framework 1.3), "cef" (ArcSight Common Event Format) or "json" (rootscan's own event, as spooled).
func ParseFormat(name string) (Format, error) {
	version := productVersion()
	switch strings.ToLower(name) {
	case "ecs":
		return ecsFormat{version: version}, nil
	case "ocsf":
		return ocsfFormat{version: version}, nil
	case "cef":
		return cefFormat{version: version}, nil
	case "json":
		return jsonFormat{}, nil
	}
	return nil, fmt.Errorf("unknown event format %q (want ecs, ocsf, cef or json)", name)
}

// jsonFormat is the event as rootscan models it, for consumers that want every detail without a mapping.
type jsonFormat struct{}

func (jsonFormat) Name() string                    { return "json" }
func (jsonFormat) JSON() bool                      { return true }
func (jsonFormat) Marshal(e Event) ([]byte, error) { return marshalLine(e) }

// marshalLine renders v as JSON in which no reader finds a line break or a terminal control: encoding/json
// escapes ASCII control characters and U+2028/U+2029 but passes the C1 controls (NEL, U+0085, which Python's
// splitlines and some Java log readers take for a line break; CSI, U+009B, an 8-bit terminal escape) and the
// bidirectional overrides through. Outside strings JSON holds no non-ASCII byte, so these are escaped (\uXXXX)
// wherever they are.
func marshalLine(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil || bytes.IndexFunc(b, textsafe.Unsafe) < 0 {
		return b, err
	}
	out := make([]byte, 0, len(b)+16)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r >= utf8.RuneSelf && textsafe.Unsafe(r) {
			out = fmt.Appendf(out, `\u%04x`, r)
		} else {
			out = append(out, b[:size]...)
		}
		b = b[size:]
	}
	return out, nil
}

// productVersion is rootscan's module version as the binary was built, for the product version SIEM schemas carry.
func productVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// summary is a one-line description of an event, the message field of every format.
func summary(e Event) string {
	where := e.Namespace + "/" + e.Pod + "/" + e.Container
	if e.Pod == "" {
		where = report.Target{Container: e.Container, ContainerID: e.ContainerID, Path: e.Path}.Name()
	}
	switch e.Type {
	case EventScanFailed:
		return fmt.Sprintf("scan of %s failed: %s", where, e.Error)
	case EventScanIncomplete, EventScanCrashed:
		return fmt.Sprintf("scan of %s: %s", where, e.Error)
	case EventContainerRemoved:
		return fmt.Sprintf("container %s removed", where)
	}
	if e.Finding == nil {
		return string(e.Type) + " " + where
	}
	verb := "opened"
	switch e.Type {
	case EventExecDrift:
		verb = "detected"
	case EventFindingResolved:
		verb = "resolved (" + e.Reason + ")"
	case EventFindingInUse:
		verb = "in use"
	}
	return fmt.Sprintf("%s %s %s %s on %s", verb, e.Finding.Severity, strings.ReplaceAll(string(e.Finding.Kind), "_", " "), e.Finding.Title, where)
}

// eventSeverity is the severity an event is worth: its finding's when it opens or comes into use, none when it
// resolves (nothing to act on), high for a failed, incomplete or crashed scan (the node's findings go stale).
func eventSeverity(e Event) report.Severity {
	switch {
	case e.Type.scanProblem():
		return report.SeverityHigh
	case (e.Type == EventFindingOpened || e.Type == EventFindingInUse || e.Type == EventExecDrift) && e.Finding != nil:
		return e.Finding.Severity
	}
	return report.SeverityNone
}

// obj is a JSON object under construction; set nests dotted keys ("container.image.name"), skipping empty values
// so documents carry only what is known.
type obj map[string]any

func (o obj) set(key string, v any) {
	switch x := v.(type) {
	case string:
		if x == "" {
			return
		}
	case []string:
		if len(x) == 0 {
			return
		}
	case nil:
		return
	}
	m := o
	for {
		k, rest, ok := strings.Cut(key, ".")
		if !ok {
			m[k] = v
			return
		}
		sub, _ := m[k].(obj)
		if sub == nil {
			sub = obj{}
			m[k] = sub
		}
		m, key = sub, rest
	}
}
