package compliance

import (
	"testing"
)

// FuzzParseProfile: any document is a profile or an error, never a panic or a hang.
func FuzzParseProfile(f *testing.F) {
	b, err := builtinFS.ReadFile("builtin/container-baseline.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("name: p\ncontrols:\n  - id: a\n    only_if: 'true'\n    checks:\n      - expr: file(\"/x\").exists\n        observed: file(\"/x\").type\n"))
	f.Add([]byte("name: p\ncontrols:\n  - id: a\n    checks:\n      - expr: |\n          files(\"/\").filter(f, f.setuid).map(f, f.path) == []\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("controls: [{id: 1, impact: -1, tags: {nist: [AC-1]}, checks: [{expr: '1 +'}]}]"))
	l, err := NewLoader(Limits{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := l.Parse("fuzz.yaml", data)
		if err == nil && (p.Name == "" || len(p.Controls) == 0) {
			t.Fatalf("profile without name or controls accepted")
		}
	})
}

// FuzzParseConfig: every format either parses or fails cleanly.
func FuzzParseConfig(f *testing.F) {
	for _, s := range testFiles {
		f.Add([]byte(s), uint8(0))
	}
	f.Add([]byte("[a]\nb=c\n[d"), uint8(1))
	f.Add([]byte(`{"a": [1, 2.5, 99999999999999999999999, {"b": null}]}`), uint8(3))
	f.Add([]byte("a = [[1], [2]]\n[[t]]\nx = 1979-05-27T07:32:00Z\n"), uint8(4))
	f.Add([]byte("Port 22\nHostKey a\nAcceptEnv A B\nMatch User x Address y\n  Port 1\nMatch all\nInclude a b\n"), uint8(5))
	formats := []string{FormatKeyValue, FormatINI, FormatYAML, FormatJSON, FormatTOML, FormatSSHD, FormatLoginDefs}
	f.Fuzz(func(t *testing.T, data []byte, format uint8) {
		_, _ = ParseConfig(data, formats[int(format)%len(formats)])
	})
}

// FuzzAccounts: etc/passwd, etc/group and waiver files from hostile images or users.
func FuzzAccounts(f *testing.F) {
	f.Add([]byte(testFiles["etc/passwd"]))
	f.Add([]byte(testFiles["etc/group"]))
	f.Add([]byte("a:\n  justification: x\n  expiration_date: 2026-01-01\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if us, err := ParsePasswd(data); err == nil {
			for _, u := range us {
				if u.UID < 0 || u.GID < 0 {
					t.Fatalf("negative id accepted: %+v", u)
				}
			}
		}
		_, _ = ParseGroup(data)
		_ = parseShadow(data)
		_, _ = ParseWaivers("w.yaml", data)
		_, _ = ParseScope("s.yaml", data)
	})
}
