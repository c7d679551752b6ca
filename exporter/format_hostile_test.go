package exporter

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rootscan/rootscan/internal/textsafe"
	"github.com/rootscan/rootscan/report"
)

// hostileName carries every way a container's file or package name could act on whoever reads an event: a newline
// that forges a second line, an ANSI colour, the Unicode line and paragraph separators, NEL, NUL, and an 8-bit CSI.
const hostileName = "/usr/bin/x\nCEF:0|forged|line\x1b[31mred\u2028ls\u2029ps\u0085nel\x00nul\u009b1m"

// hostileEvents put the name where each kind of finding carries attacker-controlled text.
func hostileEvents() []Event {
	v := vulnEvent()
	v.Pod, v.Container, v.Image = hostileName, hostileName, hostileName
	v.Finding.Title = hostileName
	v.Finding.Vulnerability.Package, v.Finding.Vulnerability.Version = hostileName, hostileName
	return []Event{v,
		{ID: hostileName, Type: EventFindingOpened, Namespace: hostileName, Finding: &Finding{ID: hostileName, Kind: KindUnownedFile, Title: hostileName,
			File: &report.File{Path: hostileName, Size: 3}}},
		{ID: "d", Type: EventFindingOpened, Finding: &Finding{Kind: KindDrift, Title: hostileName, Drift: &report.DriftEntry{Path: hostileName, Change: "added"}}},
		{ID: "s", Type: EventScanFailed, Error: hostileName, Reason: hostileName},
	}
}

// TestFormatsHostileNames: in every format and through the syslog framing, a hostile name yields one line with no
// character a terminal or line reader acts on; JSON formats give the name back intact, CEF as its escaped text.
func TestFormatsHostileNames(t *testing.T) {
	for _, name := range []string{"ecs", "ocsf", "cef", "json"} {
		f, _ := ParseFormat(name)
		sink := NewSyslogSink("tcp", "127.0.0.1:1", nil, f)
		for _, e := range hostileEvents() {
			b, err := f.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := sink.message(e)
			if err != nil {
				t.Fatal(err)
			}
			for what, out := range map[string]string{name: string(b), "syslog+" + name: string(msg)} {
				if i := strings.IndexFunc(out, textsafe.Unsafe); i >= 0 {
					t.Errorf("%s of %s: unsafe %q at %d in %q", what, e.Type, out[i:i+4], i, out)
				}
			}
			switch {
			case f.JSON():
				var v any
				if err := json.Unmarshal(b, &v); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if !jsonHolds(v, hostileName) {
					t.Errorf("%s of %s: the name does not read back intact: %s", name, e.Type, b)
				}
			default:
				if !strings.Contains(string(b), cefValue(hostileName)) {
					t.Errorf("cef of %s: %s lacks the escaped name %s", e.Type, b, cefValue(hostileName))
				}
			}
		}
	}
	if got, ok := cefUnescapeValue(cefValue(hostileName)); !ok || strings.Contains(got, "\x1b") || !strings.Contains(got, `\x1b[31m`) {
		t.Errorf("cef value reads back as %q", got)
	}
}

// jsonHolds reports whether any string in a decoded JSON value is s.
func jsonHolds(v any, s string) bool {
	switch v := v.(type) {
	case string:
		return v == s
	case []any:
		for _, x := range v {
			if jsonHolds(x, s) {
				return true
			}
		}
	case map[string]any:
		for _, x := range v {
			if jsonHolds(x, s) {
				return true
			}
		}
	}
	return false
}
