package compliance

import (
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"
)

// Limits of the literal-set analysis: patterns with a larger language keep the regexp engine.
const (
	maxLiteralSet = 64
	maxLiteralLen = 256
)

// matchesOptimizations compile the constant pattern of string.matches() and matches() once, like CEL's own
// optimization, and answer patterns whose language is a small set of literal strings ("(\.pem|\.key|/id_rsa)$",
// the baseline's key and credential file names) with strings.HasSuffix and friends instead of the regexp engine.
// files("/").filter(f, f.path.matches(...)) runs a pattern on every path of the image, and Go's unanchored regexp
// search tries every start position: on a 70,000-file image that was a fifth of the baseline's CPU. They are keyed by
// overload, which CEL's planner prefers over its own optimization keyed by function name.
func matchesOptimizations() []*interpreter.RegexOptimization {
	factory := func(call interpreter.InterpretableCall, pattern string) (interpreter.InterpretableCall, error) {
		m, err := newMatcher(pattern)
		if err != nil {
			return nil, err
		}
		return interpreter.NewCall(call.ID(), call.Function(), call.OverloadID(), call.Args(), func(values ...ref.Val) ref.Val {
			if len(values) != 2 {
				return types.NoSuchOverloadErr()
			}
			in, ok := values[0].Value().(string)
			if !ok {
				return types.NoSuchOverloadErr()
			}
			return types.Bool(m.MatchString(in))
		}), nil
	}
	return []*interpreter.RegexOptimization{
		{Function: "matches", OverloadID: "matches_string", RegexIndex: 1, Factory: factory},
		{Function: "matches", OverloadID: "matches", RegexIndex: 1, Factory: factory},
	}
}

// matcher is a compiled pattern: the regexp, and when the pattern's language is a small set of literals, that set
// and where the pattern is anchored.
type matcher struct {
	re         *regexp.Regexp
	lits       []string // nil: use re
	begin, end bool     // anchored at the start (^) and the end ($) of the text
}

func newMatcher(pattern string) (*matcher, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	m := &matcher{re: re}
	m.lits, m.begin, m.end = literalSet(pattern)
	return m, nil
}

// MatchString is regexp.MatchString. Texts that are not valid UTF-8 go to the regexp, whose decoding of invalid
// bytes the literal comparison does not reproduce.
func (m *matcher) MatchString(s string) bool {
	if m.lits == nil || !utf8.ValidString(s) {
		return m.re.MatchString(s)
	}
	for _, l := range m.lits {
		var ok bool
		switch {
		case m.begin && m.end:
			ok = s == l
		case m.begin:
			ok = strings.HasPrefix(s, l)
		case m.end:
			ok = strings.HasSuffix(s, l)
		default:
			ok = strings.Contains(s, l)
		}
		if ok {
			return true
		}
	}
	return false
}

// literalSet returns the strings a pattern matches when it is a finite set of literals (alternations,
// concatenations, optional parts and small character classes, case-sensitive), optionally anchored by ^ at its
// start and $ at its end; lits is nil for any other pattern.
func literalSet(pattern string) (lits []string, begin, end bool) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil, false, false
	}
	re = re.Simplify()
	subs := []*syntax.Regexp{re}
	if re.Op == syntax.OpConcat {
		subs = re.Sub
	}
	if len(subs) > 0 && subs[0].Op == syntax.OpBeginText {
		begin, subs = true, subs[1:]
	}
	if len(subs) > 0 && subs[len(subs)-1].Op == syntax.OpEndText {
		end, subs = true, subs[:len(subs)-1]
	}
	set := []string{""}
	for _, sub := range subs {
		next, ok := literals(sub)
		if !ok {
			return nil, false, false
		}
		if set, ok = product(set, next); !ok {
			return nil, false, false
		}
	}
	return dedupe(set), begin, end
}

// literals enumerates the finite language of re, or says it is not a small finite set of literals.
func literals(re *syntax.Regexp) ([]string, bool) {
	switch re.Op {
	case syntax.OpEmptyMatch:
		return []string{""}, true
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return nil, false
		}
		for _, r := range re.Rune {
			if r == utf8.RuneError || !utf8.ValidRune(r) {
				return nil, false
			}
		}
		return []string{string(re.Rune)}, true
	case syntax.OpCharClass:
		var out []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				if len(out) >= maxLiteralSet || r == utf8.RuneError || !utf8.ValidRune(r) {
					return nil, false
				}
				out = append(out, string(r))
			}
		}
		return out, len(out) > 0
	case syntax.OpCapture:
		return literals(re.Sub[0])
	case syntax.OpQuest:
		sub, ok := literals(re.Sub[0])
		if !ok {
			return nil, false
		}
		return append([]string{""}, sub...), len(sub) < maxLiteralSet
	case syntax.OpConcat:
		set := []string{""}
		for _, sub := range re.Sub {
			next, ok := literals(sub)
			if !ok {
				return nil, false
			}
			if set, ok = product(set, next); !ok {
				return nil, false
			}
		}
		return set, true
	case syntax.OpAlternate:
		var out []string
		for _, sub := range re.Sub {
			next, ok := literals(sub)
			if !ok || len(out)+len(next) > maxLiteralSet {
				return nil, false
			}
			out = append(out, next...)
		}
		return out, true
	}
	return nil, false
}

// product is every a+b, within the bounds.
func product(as, bs []string) ([]string, bool) {
	if len(as)*len(bs) > maxLiteralSet {
		return nil, false
	}
	out := make([]string, 0, len(as)*len(bs))
	for _, a := range as {
		for _, b := range bs {
			if len(a)+len(b) > maxLiteralLen {
				return nil, false
			}
			out = append(out, a+b)
		}
	}
	return out, true
}

func dedupe(set []string) []string {
	seen := map[string]bool{}
	out := set[:0]
	for _, s := range set {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
