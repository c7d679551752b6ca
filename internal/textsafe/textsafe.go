// Package textsafe shows attacker-controlled text (file names, package names and versions, labels taken from a
// container) without letting it act on whoever reads it: no escape sequence reaches a terminal, and no line break
// of any kind (\n, \r, NEL, U+2028, U+2029) splits a log line. It is for the CLI's table output and for the SIEM
// formats; machine formats with their own escaping (JSON) need only Unsafe's line breaks.
package textsafe

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Unsafe reports whether a terminal or a line-oriented reader would act on r rather than show it: C0 and C1
// control characters, DEL, the Unicode line and paragraph separators, and the bidirectional overrides and isolates
// that reorder what follows them on screen.
func Unsafe(r rune) bool {
	switch {
	case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
		return true
	case r == 0x2028 || r == 0x2029:
		return true
	case (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f || r == 0x061c:
		return true
	}
	return false
}

// EscapeRune is how Escape shows one unsafe rune: \n, \r and \t as such, other bytes below 0x80 as \xNN, the rest
// as \uNNNN (Go's spelling, which strconv.Unquote reads back).
func EscapeRune(r rune) string {
	switch r {
	case '\n':
		return `\n`
	case '\r':
		return `\r`
	case '\t':
		return `\t`
	}
	if r < 0x80 {
		return `\x` + hex2(byte(r))
	}
	return `\u` + strconv.FormatInt(int64(r)|0x10000, 16)[1:]
}

func hex2(b byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&15]})
}

// Escape returns s with every unsafe rune, every invalid UTF-8 byte (\xNN) and every backslash (\\) escaped, so
// what is shown cannot be taken for another string. A string with nothing to escape is returned as it is, without
// allocating.
func Escape(s string) string {
	i := firstToEscape(s)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\x` + hex2(s[i]))
		case r == '\\':
			b.WriteString(`\\`)
		case Unsafe(r):
			b.WriteString(EscapeRune(r))
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// firstToEscape returns the index of the first byte Escape changes, or -1.
func firstToEscape(s string) int {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f || c == '\\' {
				return i
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || Unsafe(r) {
			return i
		}
		i += size
	}
	return -1
}
