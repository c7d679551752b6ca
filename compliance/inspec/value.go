package inspec

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// The evaluator's values are Go values standing for Ruby's: nil, bool, int64, float64, string (symbols too: profiles
// use them as hash keys and its() names, where a string does the same), *array, *hash, *rangeVal, *regex, *proc,
// *matcher and resources. Arrays and hashes are pointers because Ruby code mutates them in blocks (list << x).

type array struct {
	v []any
	// set is a Ruby Set (Set[], Set.new): << and add keep one of each element. It is otherwise an array, which is
	// what the profiles that build one do with it (any?, each, count, to_a).
	set bool
	// seen indexes a set's scalar elements (strings, numbers, booleans), so adding one is not a scan of the set;
	// seenLen is len(v) when it was last in step, and a change of length by another method rebuilds it.
	seen    map[any]bool
	seenLen int
}

// setHas says whether the set a holds x, and records x as held when it is a scalar the caller will add.
func (a *array) setHas(x any) bool {
	switch x.(type) {
	case string, int64, float64, bool:
	default:
		return contains(a.v, x)
	}
	if a.seen == nil || a.seenLen != len(a.v) {
		a.seen = map[any]bool{}
		for _, e := range a.v {
			switch e.(type) {
			case string, int64, float64, bool:
				a.seen[e] = true
			}
		}
	}
	if a.seen[x] {
		return true
	}
	a.seen[x] = true
	a.seenLen = len(a.v) + 1 // the caller appends x
	return false
}

// hash keeps Ruby's insertion order.
type hash struct {
	keys []any
	vals map[any]any
}

type rangeVal struct {
	lo, hi    any
	exclusive bool
}

type regex struct {
	re  *regexp.Regexp
	src string // as written, for messages (/src/flags)
}

func newArray(v []any) *array { return &array{v: v} }

func newHash() *hash { return &hash{vals: map[any]any{}} }

// hkey makes a Ruby hash key a comparable Go value: scalars as they are, other values by their inspect text.
func hkey(k any) any {
	switch k.(type) {
	case nil, bool, int64, float64, string:
		return k
	}
	return "\x00" + inspect(k)
}

func (h *hash) get(k any) (any, bool) {
	v, ok := h.vals[hkey(k)]
	return v, ok
}

func (h *hash) set(k, v any) {
	hk := hkey(k)
	if _, ok := h.vals[hk]; !ok {
		h.keys = append(h.keys, k)
	}
	h.vals[hk] = v
}

// fromNative turns parsed config values (map[string]any, []any, strings, numbers) into evaluator values.
func fromNative(v any) any {
	switch t := v.(type) {
	case map[string]any:
		h := newHash()
		ks := make([]string, 0, len(t))
		for k := range t {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		for _, k := range ks {
			h.set(k, fromNative(t[k]))
		}
		return h
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = fromNative(e)
		}
		return newArray(out)
	case []string:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = e
		}
		return newArray(out)
	case int:
		return int64(t)
	case int32:
		return int64(t)
	case uint32:
		return int64(t)
	case float32:
		return float64(t)
	case fmt.Stringer:
		return t.String()
	}
	return v
}

// truthy is Ruby's truth: only nil and false are false.
func truthy(v any) bool {
	switch t := v.(type) {
	case nil:
		return false
	case bool:
		return t
	}
	return true
}

// toS is Ruby's to_s.
func toS(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case *array:
		return inspect(v)
	case *hash:
		return inspect(v)
	case *regex:
		return "(?-mix:" + t.src + ")"
	}
	return inspect(v)
}

// inspect is Ruby's inspect, which RSpec messages and InSpec's code_desc use.
func inspect(v any) string {
	var b strings.Builder
	writeInspect(&b, v, 0)
	return b.String()
}

// maxInspect bounds what one value contributes to a message.
const maxInspect = 4000

func writeInspect(b *strings.Builder, v any, depth int) {
	if depth > 16 || b.Len() > maxInspect {
		b.WriteString("...")
		return
	}
	switch t := v.(type) {
	case nil:
		b.WriteString("nil")
	case bool:
		b.WriteString(strconv.FormatBool(t))
	case int64:
		b.WriteString(strconv.FormatInt(t, 10))
	case float64:
		b.WriteString(formatFloat(t))
	case string:
		b.WriteString(strconv.Quote(t))
	case *array:
		b.WriteByte('[')
		for i, e := range t.v {
			if i > 0 {
				b.WriteString(", ")
			}
			writeInspect(b, e, depth+1)
		}
		b.WriteByte(']')
	case *hash:
		b.WriteByte('{')
		for i, k := range t.keys {
			if i > 0 {
				b.WriteString(", ")
			}
			writeInspect(b, k, depth+1)
			b.WriteString("=>")
			val, _ := t.get(k)
			writeInspect(b, val, depth+1)
		}
		b.WriteByte('}')
	case *rangeVal:
		writeInspect(b, t.lo, depth+1)
		if t.exclusive {
			b.WriteString("...")
		} else {
			b.WriteString("..")
		}
		writeInspect(b, t.hi, depth+1)
	case *regex:
		b.WriteString("/" + t.src + "/")
	case fmt.Stringer:
		b.WriteString(t.String())
	default:
		fmt.Fprintf(b, "%v", v)
	}
}

func formatFloat(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatFloat(f, 'f', 1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// equal is Ruby's ==: numbers across int and float, arrays and hashes element-wise.
func equal(a, b any) bool {
	budget := maxEqualNodes
	return equalDepth(a, b, 0, &budget)
}

// maxEqualDepth and maxEqualNodes bound the comparison of nested arrays and hashes: a << a makes an array
// that contains itself, and comparing two wide ones would otherwise take exponential time.
const (
	maxEqualDepth = 64
	maxEqualNodes = 100_000
)

func equalDepth(a, b any, depth int, budget *int) bool {
	*budget--
	if depth > maxEqualDepth || *budget < 0 {
		return false
	}
	switch x := a.(type) {
	case int64:
		switch y := b.(type) {
		case int64:
			return x == y
		case float64:
			return float64(x) == y
		}
		return false
	case float64:
		switch y := b.(type) {
		case int64:
			return x == float64(y)
		case float64:
			return x == y
		}
		return false
	case *array:
		y, ok := b.(*array)
		if ok && x == y {
			return true
		}
		if !ok || len(x.v) != len(y.v) {
			return false
		}
		for i := range x.v {
			if !equalDepth(x.v[i], y.v[i], depth+1, budget) {
				return false
			}
		}
		return true
	case *hash:
		y, ok := b.(*hash)
		if ok && x == y {
			return true
		}
		if !ok || len(x.keys) != len(y.keys) {
			return false
		}
		for _, k := range x.keys {
			xv, _ := x.get(k)
			yv, ok := y.get(k)
			if !ok || !equalDepth(xv, yv, depth+1, budget) {
				return false
			}
		}
		return true
	case *regex:
		y, ok := b.(*regex)
		return ok && x.src == y.src
	}
	switch b.(type) {
	case *array, *hash, int64, float64:
		return false
	}
	return a == b
}

// compare is Ruby's <=> for numbers and strings; ok is false when the values do not compare.
func compare(a, b any) (int, bool) {
	switch x := a.(type) {
	case int64:
		switch y := b.(type) {
		case int64:
			return cmpOrdered(x, y), true
		case float64:
			return cmpOrdered(float64(x), y), true
		}
	case float64:
		switch y := b.(type) {
		case int64:
			return cmpOrdered(x, float64(y)), true
		case float64:
			return cmpOrdered(x, y), true
		}
	case string:
		switch y := b.(type) {
		case string:
			return strings.Compare(x, y), true
		case version:
			return compareVersions(x, string(y)), true
		}
	case version:
		switch y := b.(type) {
		case string:
			return compareVersions(string(x), y), true
		case version:
			return compareVersions(string(x), string(y)), true
		}
	}
	return 0, false
}

func cmpOrdered[T int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// typeName is the Ruby class of a value, for error messages.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "NilClass"
	case bool:
		if v.(bool) {
			return "TrueClass"
		}
		return "FalseClass"
	case int64:
		return "Integer"
	case float64:
		return "Float"
	case string:
		return "String"
	case *array:
		return "Array"
	case *hash:
		return "Hash"
	case *rangeVal:
		return "Range"
	case *regex:
		return "Regexp"
	case *proc:
		return "Proc"
	case *matcher:
		return "Matcher"
	case resource:
		return "Resource"
	}
	return fmt.Sprintf("%T", v)
}

// compileRegex compiles Ruby regexp source for Go's RE2: Ruby's ^ and $ match at every line, its /m flag is
// RE2's s (dot matches newline), \A \z \h and \Z have RE2 spellings, /x drops unescaped blanks and comments.
func compileRegex(src, flags string) (*regex, error) {
	pat := src
	if strings.Contains(flags, "x") {
		pat = stripExtended(pat)
	}
	pat = strings.NewReplacer(`\h`, `[0-9a-fA-F]`, `\Z`, `(?:\n?\z)`).Replace(pat)
	pre := "(?m"
	if strings.Contains(flags, "i") {
		pre += "i"
	}
	if strings.Contains(flags, "m") {
		pre += "s"
	}
	re, err := regexp.Compile(pre + ")" + pat)
	if err != nil {
		return nil, &rubyError{class: "RegexpError", msg: err.Error()}
	}
	return &regex{re: re, src: src}, nil
}

func stripExtended(p string) string {
	var b strings.Builder
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			b.WriteByte(c)
			b.WriteByte(p[i+1])
			i++
			continue
		case c == '[':
			inClass = true
		case c == ']':
			inClass = false
		case !inClass && (c == ' ' || c == '\t' || c == '\n'):
			continue
		case !inClass && c == '#':
			for i < len(p) && p[i] != '\n' {
				i++
			}
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
