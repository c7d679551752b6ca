package compliance

import (
	"regexp"
	"slices"
	"testing"
)

func TestLiteralSet(t *testing.T) {
	for _, tc := range []struct {
		pattern    string
		lits       []string
		begin, end bool
	}{
		{pattern: `(\.(pem|key|p8|pk8|ppk)|/id_(rsa|dsa|ecdsa|ed25519))$`, end: true,
			lits: []string{".pem", ".key", ".p8", ".pk8", ".ppk", "/id_rsa", "/id_dsa", "/id_ecdsa", "/id_ed25519"}},
		{pattern: `^/etc/(passwd|group)$`, begin: true, end: true, lits: []string{"/etc/passwd", "/etc/group"}},
		{pattern: `^/usr/s?bin/`, begin: true, lits: []string{"/usr/bin/", "/usr/sbin/"}},
		{pattern: `id_[rd]sa`, lits: []string{"id_dsa", "id_rsa"}},
		{pattern: ``, lits: []string{""}},
		{pattern: `^$`, begin: true, end: true, lits: []string{""}},
		{pattern: `(?i)\.pem$`},
		{pattern: `\.pem(\.bak)*$`},
		{pattern: `[a-z]+\.conf$`},
		{pattern: `(?m)\.pem$`},
		{pattern: `a$b`},
		{pattern: `^a|b$`},
		{pattern: `\bkey\b`},
		{pattern: `[0-9a-f]{64}`},
	} {
		lits, begin, end := literalSet(tc.pattern)
		if !slices.Equal(lits, tc.lits) || begin != tc.begin || end != tc.end {
			t.Errorf("literalSet(%q) = %q, %v, %v; want %q, %v, %v", tc.pattern, lits, begin, end, tc.lits, tc.begin, tc.end)
		}
	}
}

// FuzzMatcher checks the literal-set matcher against the regexp engine on any pattern and text.
func FuzzMatcher(f *testing.F) {
	for _, s := range [][2]string{
		{`(\.(pem|key|p8|pk8|ppk)|/id_(rsa|dsa|ecdsa|ed25519))$`, "/root/.ssh/id_rsa"},
		{`(\.(pem|key|p8|pk8|ppk)|/id_(rsa|dsa|ecdsa|ed25519))$`, "/etc/ssl/a.pem.bak"},
		{`/(\.aws/credentials|\.docker/config\.json|\.kube/config)$`, "/home/app/.docker/config.json"},
		{`^/etc/(passwd|group)$`, "/etc/passwd"},
		{`^/usr/s?bin/`, "/usr/sbin/x"},
		{`id_[rd]sa`, "xid_dsay"},
		{`(a|)$`, ""},
		{`é$`, "caf\xc3\xa9"},
		{`é$`, "caf\xe9"},
		{`\x{fffd}`, "\xff"},
		{`^$`, "\n"},
		{`$`, "x\n"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, text string) {
		re, err := regexp.Compile(pattern)
		if err != nil {
			if _, err := newMatcher(pattern); err == nil {
				t.Fatalf("newMatcher(%q) accepted a pattern regexp refuses", pattern)
			}
			return
		}
		m, err := newMatcher(pattern)
		if err != nil {
			t.Fatalf("newMatcher(%q): %v", pattern, err)
		}
		if got, want := m.MatchString(text), re.MatchString(text); got != want {
			t.Fatalf("pattern %q (literals %q, begin %v, end %v) on %q = %v, regexp says %v", pattern, m.lits, m.begin, m.end, text, got, want)
		}
	})
}
