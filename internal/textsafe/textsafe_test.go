package textsafe

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"usr/bin/ls":                     "usr/bin/ls",
		"naïve-ü/日本":                     "naïve-ü/日本",
		"evil\nroot 0 0 ok":              `evil\nroot 0 0 ok`,
		"\x1b[31mred\x1b[0m":             `\x1b[31mred\x1b[0m`,
		"a\u2028b\u2029c\u0085d":         `a\u2028b\u2029c\u0085d`,
		"nul\x00del\x7f":                 `nul\x00del\x7f`,
		"bidi\u202egnp.exe":              `bidi\u202egnp.exe`,
		`back\slash`:                     `back\\slash`,
		"bad\xffutf8":                    `bad\xffutf8`,
		"tab\tcr\r":                      `tab\tcr\r`,
		"\u009b31m (8-bit CSI)":          `\u009b31m (8-bit CSI)`,
		"ok then \x1b]8;;http://x\x1b\\": `ok then \x1b]8;;http://x\x1b\\`,
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzEscape: the result has no unsafe rune and no invalid UTF-8, and Go's unquoting gives the input back (so no
// two inputs are shown alike).
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "plain", "\x1b[31m\n\u2028\u0085\x00", `a\b`, "\xff\xfe", "\u202e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Escape(s)
		if !utf8.ValidString(got) {
			t.Fatalf("invalid UTF-8 in %q", got)
		}
		for _, r := range got {
			if Unsafe(r) {
				t.Fatalf("unsafe %U in %q", r, got)
			}
		}
		back, err := strconv.Unquote(`"` + strings.ReplaceAll(got, `"`, `\"`) + `"`)
		if err != nil || back != s {
			t.Fatalf("Escape(%q) = %q reads back as %q (%v)", s, got, back, err)
		}
	})
}
