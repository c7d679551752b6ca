package inspec

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

func (ev *evaluator) stringMethod(s, name string, args []any, blk *proc) (any, bool, error) {
	if err := ev.charge(len(s) / bytesPerStep); err != nil {
		return nil, true, err
	}
	arg := func(i int) string {
		if i < len(args) {
			return toS(args[i])
		}
		return ""
	}
	switch name {
	case "strip":
		return strings.TrimSpace(s), true, nil
	case "lstrip":
		return strings.TrimLeftFunc(s, unicode.IsSpace), true, nil
	case "rstrip":
		return strings.TrimRightFunc(s, unicode.IsSpace), true, nil
	case "chomp":
		if len(args) > 0 {
			return strings.TrimSuffix(s, arg(0)), true, nil
		}
		return strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r"), true, nil
	case "downcase":
		return strings.ToLower(s), true, nil
	case "upcase":
		return strings.ToUpper(s), true, nil
	case "capitalize":
		if s == "" {
			return s, true, nil
		}
		return strings.ToUpper(s[:1]) + strings.ToLower(s[1:]), true, nil
	case "to_s", "to_str":
		return s, true, nil
	case "to_sym":
		return s, true, nil
	case "to_i":
		base := int64(10)
		if len(args) > 0 {
			base, _ = args[0].(int64)
		}
		return leadingInt(s, int(base)), true, nil
	case "to_f":
		f, _ := strconv.ParseFloat(leadingFloat(strings.TrimSpace(s)), 64)
		return f, true, nil
	case "length", "size":
		return int64(len([]rune(s))), true, nil
	case "empty?":
		return s == "", true, nil
	case "start_with?", "end_with?":
		for _, a := range args {
			if (name == "start_with?" && strings.HasPrefix(s, toS(a))) || (name == "end_with?" && strings.HasSuffix(s, toS(a))) {
				return true, true, nil
			}
		}
		return false, true, nil
	case "include?":
		return strings.Contains(s, arg(0)), true, nil
	case "split":
		return splitString(s, args), true, nil
	case "lines":
		return newArray(strsToAny(strings.SplitAfter(s, "\n"), true)), true, nil
	case "each_line":
		lines := newArray(strsToAny(strings.SplitAfter(s, "\n"), true))
		if blk == nil {
			return lines, true, nil
		}
		v, _, err := ev.arrayMethod(lines, "each", nil, blk)
		return v, true, err
	case "chars":
		out := []any{}
		for _, r := range s {
			out = append(out, string(r))
		}
		return newArray(out), true, nil
	case "=~", "match", "match?", "scan", "sub", "gsub", "tr", "delete", "squeeze", "count", "index":
		return ev.stringPattern(s, name, args)
	case "[]":
		return stringIndex(s, args)
	case "%":
		v, err := ev.stringOp("%", s, argOr(args, 0))
		return v, true, err
	case "+", "*", "<<":
		v, err := ev.stringOp(name, s, argOr(args, 0))
		return v, true, err
	case "<", ">", "<=", ">=", "<=>":
		v, err := compareOp(name, s, argOr(args, 0))
		return v, true, err
	case "reverse":
		r := []rune(s)
		for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
			r[i], r[j] = r[j], r[i]
		}
		return string(r), true, nil
	case "hex":
		return leadingInt(strings.TrimPrefix(strings.ToLower(s), "0x"), 16), true, nil
	case "oct":
		return leadingInt(s, 8), true, nil
	case "ljust", "rjust", "center":
		return s, true, nil
	}
	return nil, false, nil
}

func argOr(args []any, i int) any {
	if i < len(args) {
		return args[i]
	}
	return nil
}

func strsToAny(ss []string, dropEmptyLast bool) []any {
	if dropEmptyLast && len(ss) > 0 && ss[len(ss)-1] == "" {
		ss = ss[:len(ss)-1]
	}
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// splitString is Ruby's split: on runs of whitespace by default (leading blanks ignored), else on a string or
// regexp; trailing empty fields are dropped.
func splitString(s string, args []any) *array {
	var parts []string
	switch sep := argOr(args, 0).(type) {
	case nil:
		parts = strings.Fields(s)
	case string:
		if sep == " " {
			parts = strings.Fields(s)
		} else if sep == "" {
			parts = strings.Split(s, "")
		} else {
			parts = strings.Split(s, sep)
		}
	case *regex:
		parts = sep.re.Split(s, -1)
	default:
		parts = strings.Fields(s)
	}
	if lim, ok := argOr(args, 1).(int64); !ok || lim == 0 {
		for len(parts) > 0 && parts[len(parts)-1] == "" {
			parts = parts[:len(parts)-1]
		}
	}
	return newArray(strsToAny(parts, false))
}

func (ev *evaluator) stringPattern(s, name string, args []any) (any, bool, error) {
	if len(args) == 0 {
		return nil, true, rbErr("ArgumentError", "wrong number of arguments (given 0)")
	}
	re, isRe := args[0].(*regex)
	lit := toS(args[0])
	if !isRe && name != "tr" && name != "delete" && name != "squeeze" && name != "count" {
		re = &regex{re: regexp.MustCompile(regexp.QuoteMeta(lit)), src: regexpQuote(lit)}
	}
	switch name {
	case "=~", "index":
		loc := re.re.FindStringIndex(s)
		if loc == nil {
			return nil, true, nil
		}
		return int64(loc[0]), true, nil
	case "match?":
		return re.re.MatchString(s), true, nil
	case "match":
		m := re.re.FindStringSubmatch(s)
		if m == nil {
			return nil, true, nil
		}
		return newArray(strsToAny(m, false)), true, nil
	case "scan":
		out := []any{}
		for _, m := range re.re.FindAllStringSubmatch(s, ev.lim.MaxElems) {
			if len(m) == 1 {
				out = append(out, m[0])
			} else {
				out = append(out, newArray(strsToAny(m[1:], false)))
			}
		}
		return newArray(out), true, nil
	case "sub", "gsub":
		repl := strings.NewReplacer(`\0`, "${0}", `\1`, "${1}", `\2`, "${2}", `\3`, "${3}").Replace(toS(argOr(args, 1)))
		if name == "gsub" {
			return re.re.ReplaceAllString(s, repl), true, nil
		}
		done := false
		return re.re.ReplaceAllStringFunc(s, func(m string) string {
			if done {
				return m
			}
			done = true
			return re.re.ReplaceAllString(m, repl)
		}), true, nil
	case "delete":
		return strings.Map(func(r rune) rune {
			if strings.ContainsRune(lit, r) {
				return -1
			}
			return r
		}, s), true, nil
	case "count":
		n := 0
		for _, r := range s {
			if strings.ContainsRune(lit, r) {
				n++
			}
		}
		return int64(n), true, nil
	case "tr":
		to := toS(argOr(args, 1))
		return strings.Map(func(r rune) rune {
			if i := strings.IndexRune(lit, r); i >= 0 && i < len(to) {
				return rune(to[i])
			}
			return r
		}, s), true, nil
	}
	return s, true, nil
}

func stringIndex(s string, args []any) (any, bool, error) {
	switch a := argOr(args, 0).(type) {
	case int64:
		r := []rune(s)
		i := int(a)
		if i < 0 {
			i += len(r)
		}
		if n, ok := argOr(args, 1).(int64); ok {
			if i < 0 || i > len(r) || n < 0 {
				return nil, true, nil
			}
			return string(r[i:min(len(r), i+int(n))]), true, nil
		}
		if i < 0 || i >= len(r) {
			return nil, true, nil
		}
		return string(r[i]), true, nil
	case string:
		if strings.Contains(s, a) {
			return a, true, nil
		}
		return nil, true, nil
	case *regex:
		m := a.re.FindStringSubmatch(s)
		if m == nil {
			return nil, true, nil
		}
		if n, ok := argOr(args, 1).(int64); ok && int(n) < len(m) {
			return m[n], true, nil
		}
		return m[0], true, nil
	}
	return nil, true, rbErr("TypeError", "no implicit conversion into Integer")
}

// leadingInt is Ruby's String#to_i: the leading digits (after blanks and a sign), 0 when there are none.
func leadingInt(s string, base int) int64 {
	s = strings.TrimSpace(strings.ReplaceAll(s, "_", ""))
	end := 0
	for end < len(s) {
		c := s[end]
		if end == 0 && (c == '-' || c == '+') {
			end++
			continue
		}
		if _, err := strconv.ParseInt(string(c), base, 64); err != nil {
			break
		}
		end++
	}
	n, _ := strconv.ParseInt(s[:end], base, 64)
	return n
}

func leadingFloat(s string) string {
	end := 0
	for end < len(s) && (s[end] >= '0' && s[end] <= '9' || s[end] == '.' || (end == 0 && (s[end] == '-' || s[end] == '+'))) {
		end++
	}
	return s[:end]
}

func toInteger(v any, strict bool) (any, error) {
	switch t := v.(type) {
	case int64:
		return t, nil
	case float64:
		return int64(t), nil
	case string:
		s := strings.TrimSpace(strings.ReplaceAll(t, "_", ""))
		n, err := strconv.ParseInt(s, 0, 64)
		if err != nil && strict {
			return nil, rbErr("ArgumentError", "invalid value for Integer(): %s", inspect(t))
		}
		return n, nil
	}
	return nil, rbErr("TypeError", "can't convert %s into Integer", typeName(v))
}

func toFloat(v any) (any, error) {
	switch t := v.(type) {
	case int64:
		return float64(t), nil
	case float64:
		return t, nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
		if err != nil {
			return nil, rbErr("ArgumentError", "invalid value for Float(): %s", inspect(t))
		}
		return f, nil
	}
	return nil, rbErr("TypeError", "can't convert %s into Float", typeName(v))
}

func (ev *evaluator) numberMethod(n any, name string, args []any, blk *proc) (any, bool, error) {
	switch name {
	case "to_i", "to_int", "floor", "truncate":
		switch t := n.(type) {
		case float64:
			return int64(math.Floor(t)), true, nil
		}
		return n, true, nil
	case "to_f":
		v, err := toFloat(n)
		return v, true, err
	case "round", "ceil":
		if f, ok := n.(float64); ok {
			if name == "ceil" {
				return int64(math.Ceil(f)), true, nil
			}
			return int64(math.Round(f)), true, nil
		}
		return n, true, nil
	case "to_s":
		if b, ok := argOr(args, 0).(int64); ok {
			if i, ok := n.(int64); ok && b >= 2 && b <= 36 {
				return strconv.FormatInt(i, int(b)), true, nil
			}
		}
		return toS(n), true, nil
	case "zero?":
		return equal(n, int64(0)), true, nil
	case "positive?", "negative?":
		c, _ := compare(n, int64(0))
		return (name == "positive?" && c > 0) || (name == "negative?" && c < 0), true, nil
	case "even?", "odd?":
		i, _ := n.(int64)
		return (i%2 == 0) == (name == "even?"), true, nil
	case "abs":
		switch t := n.(type) {
		case int64:
			if t < 0 {
				return -t, true, nil
			}
		case float64:
			return math.Abs(t), true, nil
		}
		return n, true, nil
	case "between?":
		lo, ok1 := compare(n, argOr(args, 0))
		hi, ok2 := compare(n, argOr(args, 1))
		return ok1 && ok2 && lo >= 0 && hi <= 0, true, nil
	case "times":
		i, _ := n.(int64)
		if blk == nil {
			return n, true, nil
		}
		for k := int64(0); k < i; k++ {
			if _, err := ev.callProc(blk, k); err != nil {
				return nil, true, err
			}
		}
		return n, true, nil
	case "+", "-", "*", "/", "%", "**", "&", "|", "^", "<<", ">>":
		v, err := ev.arith(name, n, argOr(args, 0))
		return v, true, err
	case "<", ">", "<=", ">=", "<=>":
		v, err := compareOp(name, n, argOr(args, 0))
		return v, true, err
	}
	return nil, false, nil
}

func (ev *evaluator) regexMethod(r *regex, name string, args []any) (any, bool, error) {
	switch name {
	case "match", "=~", "match?", "===":
		s, ok := argOr(args, 0).(string)
		if !ok {
			return nil, true, nil
		}
		if name == "match?" || name == "===" {
			return r.re.MatchString(s), true, nil
		}
		v, _, err := ev.stringPattern(s, map[string]string{"match": "match", "=~": "=~"}[name], []any{r})
		return v, true, err
	case "source":
		return r.src, true, nil
	case "to_s":
		return toS(r), true, nil
	}
	return nil, false, nil
}

func (ev *evaluator) rangeMethod(r *rangeVal, name string, args []any, blk *proc) (any, bool, error) {
	switch name {
	case "include?", "cover?", "member?", "===":
		return caseEq(r, argOr(args, 0)), true, nil
	case "first", "begin", "min":
		return r.lo, true, nil
	case "last", "end", "max":
		return r.hi, true, nil
	}
	items, err := ev.iterItems(r)
	if err != nil {
		return nil, true, err
	}
	return ev.arrayMethod(newArray(items), name, args, blk)
}

// iterItems is what each iterates: an array's elements, a hash's pairs, a range's integers (bounded).
func (ev *evaluator) iterItems(v any) ([]any, error) {
	switch t := v.(type) {
	case *array:
		return t.v, nil
	case *hash:
		return hashPairs(t).v, nil
	case *rangeVal:
		lo, ok1 := t.lo.(int64)
		hi, ok2 := t.hi.(int64)
		if !ok1 || !ok2 {
			return nil, rbErr("TypeError", "can't iterate from %s", typeName(t.lo))
		}
		if t.exclusive {
			hi--
		}
		if hi-lo >= int64(ev.lim.MaxElems) {
			return nil, &limitError{fmt.Sprintf("a range of more than %d elements", ev.lim.MaxElems)}
		}
		out := []any{}
		for i := lo; i <= hi; i++ {
			out = append(out, i)
		}
		return out, nil
	case nil:
		return nil, rbErr("NoMethodError", "undefined method `each' for nil:NilClass")
	case resource:
		v, ok, err := t.method(ev, "entries", nil, nil)
		if ok && err == nil {
			return ev.iterItems(v)
		}
	}
	return nil, rbErr("NoMethodError", "undefined method `each' for %s", describeRecv(v))
}

func regexpQuote(s string) string { return regexp.QuoteMeta(s) }

// version is a Gem::Version: compared segment by segment, numbers as numbers.
type version string

func (v version) String() string { return string(v) }

func compareVersions(a, b string) int {
	sa, sb := versionSegments(a), versionSegments(b)
	for i := 0; i < max(len(sa), len(sb)); i++ {
		x, y := "0", "0"
		if i < len(sa) {
			x = sa[i]
		}
		if i < len(sb) {
			y = sb[i]
		}
		xi, errX := strconv.ParseInt(x, 10, 64)
		yi, errY := strconv.ParseInt(y, 10, 64)
		switch {
		case errX == nil && errY == nil:
			if xi != yi {
				return cmpOrdered(xi, yi)
			}
		case errX == nil: // a number sorts after a letter segment (1.0 > 1.0.a)
			return 1
		case errY == nil:
			return -1
		default:
			if c := strings.Compare(x, y); c != 0 {
				return c
			}
		}
	}
	return 0
}

func versionSegments(v string) []string {
	var out []string
	cur := ""
	isDigit := func(c rune) bool { return c >= '0' && c <= '9' }
	for _, c := range v {
		switch {
		case c == '.' || c == '-' || c == '_' || c == '~' || c == '+' || c == ':':
			if cur != "" {
				out = append(out, cur)
			}
			cur = ""
		case cur != "" && isDigit(c) != isDigit(rune(cur[len(cur)-1])):
			out = append(out, cur)
			cur = string(c)
		default:
			cur += string(c)
		}
	}
	if cur != "" {
		out = append(out, cur)
	}
	return out
}

func sortValues(v []any) error {
	var err error
	sort.SliceStable(v, func(i, j int) bool {
		c, ok := compare(v[i], v[j])
		if !ok && err == nil {
			err = rbErr("ArgumentError", "comparison of %s with %s failed", typeName(v[i]), typeName(v[j]))
		}
		return c < 0
	})
	return err
}
