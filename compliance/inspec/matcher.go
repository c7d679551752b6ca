package inspec

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/rootscan/rootscan/compliance/inspec/ruby"
)

// matcher is an RSpec/InSpec matcher built by the profile (eq 1, cmp >= '1.2', be_readable.by('owner')).
type matcher struct {
	name string
	args []any
	op   string // cmp and be with a comparison operator
	// by and byUser are the be_readable.by('owner') / .by_user('x') chains.
	by, byUser string
	hasBy      bool
	// chainName and chainArgs are the pam matchers' chains (.all_with_args('x'), .exactly).
	chainName string
	chainArgs []any
}

// matcherNames are the matchers with their own semantics; be_<x> and have_<x> are predicate matchers.
var matcherNames = map[string]bool{
	"eq": true, "eql": true, "equal": true, "cmp": true, "be": true, "be_in": true, "include": true, "match": true,
	"exist": true, "be_nil": true, "all": true, "start_with": true, "end_with": true, "contain_exactly": true,
	"match_array": true, "be_truthy": true, "be_falsey": true, "be_a": true, "be_an": true, "be_kind_of": true,
	"be_between": true, "be_within": true, "cover": true, "contain_duplicates": true,
	"match_pam_rule": true, "match_pam_rules": true,
}

func isMatcher(name string) bool {
	return matcherNames[name] || strings.HasPrefix(name, "be_") || strings.HasPrefix(name, "have_")
}

func newMatcher(name string, args []any, _ *ruby.Call) *matcher {
	if name == "be_an" {
		name = "be_a"
	}
	m := &matcher{name: name, args: args}
	if name == "cmp" && len(args) > 0 {
		m.op = "=="
	}
	return m
}

func (m *matcher) arg() any { return argOr(m.args, 0) }

// withOp is `cmp >= 5` and `be < 3`.
func (m *matcher) withOp(op string, v any) (any, error) {
	if m.name != "cmp" && m.name != "be" {
		return nil, rbErr("NoMethodError", "undefined method `%s' for matcher %s", op, m.name)
	}
	switch op {
	case "==", "!=", "<", ">", "<=", ">=", "=~", "===":
	default:
		return nil, rbErr("NoMethodError", "undefined method `%s' for matcher %s", op, m.name)
	}
	return &matcher{name: m.name, op: op, args: []any{v}}, nil
}

// chain is a method called on a matcher: .by('owner'), .by_user('x'), and RSpec's .or / .and are not supported.
func (m *matcher) chain(name string, args []any) (any, error) {
	switch name {
	case "by":
		c := *m
		c.by, c.hasBy = toS(argOr(args, 0)), true
		return &c, nil
	case "by_user":
		c := *m
		c.byUser, c.hasBy = toS(argOr(args, 0)), true
		return &c, nil
	case "any_with_args", "all_with_args", "all_without_args", "all_with_integer_arg", "any_with_integer_arg":
		if m.name == "match_pam_rule" {
			c := *m
			c.chainName, c.chainArgs = name, args
			return &c, nil
		}
	case "exactly":
		if m.name == "match_pam_rules" {
			c := *m
			c.chainName = name
			return &c, nil
		}
	}
	return nil, skipf("matcher chain %s.%s is not supported", m.name, name)
}

// description is what RSpec and InSpec write after "is expected to" in a result's code_desc.
func (m *matcher) description() string {
	switch m.name {
	case "cmp":
		return "cmp " + m.op + " " + inspect(m.arg())
	case "be":
		if m.op != "" {
			return "be " + m.op + " " + inspect(m.arg())
		}
		if len(m.args) > 0 {
			return "equal " + inspect(m.arg())
		}
		return "be"
	case "be_nil", "be_truthy", "be_falsey":
		return strings.ReplaceAll(m.name, "_", " ")
	case "all":
		if inner, ok := m.arg().(*matcher); ok {
			return "all " + inner.description()
		}
	case "exist":
		return "exist"
	case "match_pam_rule", "match_pam_rules":
		return pamDescription(m)
	}
	words := strings.ReplaceAll(m.name, "_", " ")
	parts := []string{words}
	for _, a := range m.args {
		parts = append(parts, inspect(a))
	}
	d := strings.Join(parts, " ")
	if m.hasBy {
		if m.byUser != "" {
			d += " by user " + m.byUser
		} else {
			d += " by " + m.by
		}
	}
	return d
}

// verdict is one check's outcome.
type verdict struct {
	pass bool
	msg  string
}

// match applies the matcher to actual (subject is the describe's subject, for resource predicates).
func (ev *evaluator) match(m *matcher, actual any, negated bool) (verdict, error) {
	if err := poisoned(append([]any{actual}, m.args...)...); err != nil {
		return verdict{}, err
	}
	pass, err := ev.matches(m, actual)
	if err != nil {
		return verdict{}, err
	}
	if pass != negated {
		return verdict{pass: true}, nil
	}
	return verdict{msg: failureMessage(m, actual, negated)}, nil
}

func (ev *evaluator) matches(m *matcher, actual any) (bool, error) {
	x := m.arg()
	switch m.name {
	case "eq", "eql":
		return equal(actual, x), nil
	case "equal":
		return equal(actual, x) && sameIdentity(actual, x), nil
	case "be":
		if m.op == "" {
			if len(m.args) == 0 {
				return truthy(actual), nil
			}
			return equal(actual, x) && sameIdentity(actual, x), nil
		}
		v, err := compareOp(m.op, actual, x)
		if err != nil {
			return false, nil
		}
		return truthy(v), nil
	case "cmp":
		return cmpMatch(actual, m.op, x), nil
	case "be_in":
		return beIn(actual, x), nil
	case "include", "cover":
		return includes(actual, m.args), nil
	case "match":
		return matchRegex(actual, x)
	case "be_nil":
		return actual == nil, nil
	case "be_truthy":
		return truthy(actual), nil
	case "be_falsey":
		return !truthy(actual), nil
	case "start_with", "end_with":
		v, _, err := ev.stringMethod(toS(actual), m.name+"?", m.args, nil)
		return truthy(v), err
	case "contain_exactly", "match_array":
		return sameElements(actual, m.args), nil
	case "be_a", "be_kind_of", "be_an_instance_of":
		return caseEq(x, actual), nil
	case "be_between":
		lo, ok1 := compare(actual, argOr(m.args, 0))
		hi, ok2 := compare(actual, argOr(m.args, 1))
		return ok1 && ok2 && lo >= 0 && hi <= 0, nil
	case "all":
		return ev.matchAll(m, actual)
	case "match_pam_rule", "match_pam_rules":
		return ev.pamMatch(m, actual)
	case "contain_duplicates":
		a, ok := actual.(*array)
		return ok && len(uniq(a.v)) != len(a.v), nil
	}
	return ev.predicate(m, actual)
}

func sameIdentity(a, b any) bool {
	switch a.(type) {
	case *array, *hash:
		return a == b
	}
	return true
}

func (ev *evaluator) matchAll(m *matcher, actual any) (bool, error) {
	inner, ok := m.arg().(*matcher)
	if !ok {
		return false, rbErr("ArgumentError", "all needs a matcher")
	}
	items, err := ev.iterItems(actual)
	if err != nil {
		return false, err
	}
	for _, it := range items {
		ok, err := ev.matches(inner, it)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// predicate is be_<x> / have_<x>: the subject's x? / has_x? method, with the matcher's arguments.
func (ev *evaluator) predicate(m *matcher, actual any) (bool, error) {
	method := ""
	switch {
	case m.name == "exist":
		method = "exist?"
	case strings.HasPrefix(m.name, "be_"):
		method = strings.TrimPrefix(m.name, "be_") + "?"
	case strings.HasPrefix(m.name, "have_"):
		method = "has_" + strings.TrimPrefix(m.name, "have_") + "?"
	default:
		return false, skipf("matcher %s is not supported", m.name)
	}
	args := m.args
	if m.hasBy {
		if m.byUser != "" {
			return false, skipf("%s.by_user(%q) needs exec in the target (InSpec asks the user's shell)", m.name, m.byUser)
		}
		args = []any{m.by}
	}
	if actual == nil && m.name == "exist" {
		return false, nil
	}
	v, err := ev.method(actual, method, args, nil)
	if err != nil {
		return false, err
	}
	return truthy(v), nil
}

func beIn(actual, list any) bool {
	l, ok := list.(*array)
	if !ok {
		if h, isHash := list.(*hash); isHash {
			l = newArray(h.keys)
		} else {
			return false
		}
	}
	if a, ok := actual.(*array); ok { // every element in the list
		for _, e := range a.v {
			if !contains(l.v, e) {
				return false
			}
		}
		return true
	}
	return contains(l.v, actual)
}

func includes(actual any, want []any) bool {
	for _, w := range want {
		switch a := actual.(type) {
		case string:
			if !strings.Contains(a, toS(w)) {
				return false
			}
		case *array:
			if !contains(a.v, w) {
				return false
			}
		case *hash:
			if wh, ok := w.(*hash); ok {
				for _, k := range wh.keys {
					av, ok := a.get(k)
					wv, _ := wh.get(k)
					if !ok || !equal(av, wv) {
						return false
					}
				}
			} else if _, ok := a.get(w); !ok {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func matchRegex(actual, x any) (bool, error) {
	s, ok := actual.(string)
	if !ok {
		if actual == nil {
			return false, nil
		}
		s = toS(actual)
	}
	switch p := x.(type) {
	case *regex:
		return p.re.MatchString(s), nil
	case string:
		re, err := compileRegex(p, "")
		if err != nil {
			return false, err
		}
		return re.re.MatchString(s), nil
	}
	return false, rbErr("ArgumentError", "match needs a regexp or a string")
}

func sameElements(actual any, want []any) bool {
	a, ok := actual.(*array)
	if !ok {
		return false
	}
	if len(want) == 1 {
		if w, ok := want[0].(*array); ok {
			want = w.v
		}
	}
	if len(a.v) != len(want) {
		return false
	}
	used := make([]bool, len(want))
	for _, e := range a.v {
		found := false
		for i, w := range want {
			if !used[i] && equal(e, w) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

var (
	cmpInteger = regexp.MustCompile(`\A[0-9]+\z`)
	cmpOctal   = regexp.MustCompile(`\A0+[0-7]+\z`)
	cmpBool    = regexp.MustCompile(`(?i)\A(true|false)\z`)
	cmpVersion = regexp.MustCompile(`\A[0-9]+(\.[0-9a-zA-Z]+)*(-[0-9A-Za-z.-]+)?\z`)
)

// cmpMatch is InSpec's cmp: a one-element array is its element, strings compare case-insensitively for ==
// and as versions for < >, strings holding numbers, booleans or octal modes compare as such, regexps match.
func cmpMatch(actual any, op string, expected any) bool {
	if a, ok := actual.(*array); ok && len(a.v) == 1 {
		if _, expArr := expected.(*array); !expArr {
			actual = a.v[0]
		}
	}
	if op == "=~" {
		ok, _ := matchRegex(actual, expected)
		return ok
	}
	if op == "!=" {
		return !cmpMatch(actual, "==", expected)
	}
	as, aStr := actual.(string)
	es, eStr := expected.(string)
	ai, aInt := actual.(int64)
	switch {
	case aStr && eStr:
		if op == "==" {
			return strings.EqualFold(as, es)
		}
		if cmpVersion.MatchString(as) && cmpVersion.MatchString(es) {
			return opResult(op, compareVersions(as, es))
		}
	case isRegex(expected):
		if aStr || aInt {
			return expected.(*regex).re.MatchString(toS(actual))
		}
	case eStr && cmpOctal.MatchString(es) && aInt:
		n, _ := strconv.ParseInt(es, 8, 64)
		return opResult(op, cmpOrdered(ai, n))
	case eStr && cmpInteger.MatchString(es) && aInt:
		n, _ := strconv.ParseInt(es, 10, 64)
		return opResult(op, cmpOrdered(ai, n))
	case eStr && cmpBool.MatchString(es):
		if b, ok := actual.(bool); ok {
			return op == "==" && b == strings.EqualFold(es, "true")
		}
	case aStr && cmpInteger.MatchString(as):
		if e, ok := expected.(int64); ok {
			n, _ := strconv.ParseInt(as, 10, 64)
			return opResult(op, cmpOrdered(n, e))
		}
	}
	if ef, ok := expected.(float64); ok {
		var af float64
		switch t := actual.(type) {
		case string:
			f, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
			if err != nil {
				return false
			}
			af = f
		case int64:
			af = float64(t)
		case float64:
			af = t
		default:
			return false
		}
		return opResult(op, cmpOrdered(af, ef))
	}
	if op == "==" {
		return equal(actual, expected)
	}
	c, ok := compare(actual, expected)
	return ok && opResult(op, c)
}

func isRegex(v any) bool {
	_, ok := v.(*regex)
	return ok
}

func opResult(op string, c int) bool {
	switch op {
	case "==":
		return c == 0
	case "<":
		return c < 0
	case ">":
		return c > 0
	case "<=":
		return c <= 0
	case ">=":
		return c >= 0
	}
	return false
}

// failureMessage is RSpec's (or InSpec's for its own matchers) message for a failed expectation.
func failureMessage(m *matcher, actual any, negated bool) string {
	not := ""
	if negated {
		not = "not "
	}
	switch m.name {
	case "eq", "eql", "equal":
		if negated {
			return fmt.Sprintf("\nexpected: value != %s\n     got: %s\n\n(compared using ==)\n", inspect(m.arg()), inspect(actual))
		}
		return fmt.Sprintf("\nexpected: %s\n     got: %s\n\n(compared using ==)\n", inspect(m.arg()), inspect(actual))
	case "cmp":
		got := inspect(actual)
		if s, ok := m.arg().(string); ok && cmpOctal.MatchString(s) {
			if n, ok := actual.(int64); ok {
				got = strconv.Quote("0" + strconv.FormatInt(n, 8))
			}
		}
		if negated {
			return fmt.Sprintf("\nexpected: it not to be %s %s\n     got: %s\n\n(compared using `cmp` matcher)\n", m.op, inspect(m.arg()), got)
		}
		if m.op == "==" {
			return fmt.Sprintf("\nexpected: %s\n     got: %s\n\n(compared using `cmp` matcher)\n", inspect(m.arg()), got)
		}
		return fmt.Sprintf("\nexpected: it to be %s %s\n     got: %s\n\n(compared using `cmp` matcher)\n", m.op, inspect(m.arg()), got)
	case "be":
		if m.op != "" {
			return fmt.Sprintf("expected: %s%s %s\n     got: %s %s", not, m.op, inspect(m.arg()), strings.Repeat(" ", len(m.op)), inspect(actual))
		}
	case "be_nil":
		if !negated {
			return fmt.Sprintf("expected: nil\n     got: %s", inspect(actual))
		}
		return "expected: not nil\n     got: nil"
	case "be_in":
		return fmt.Sprintf("expected `%s` %sto be in %s", toS(actual), not, inspect(m.arg()))
	case "match_pam_rule", "match_pam_rules":
		return fmt.Sprintf("expected %s %sto %s", inspect(toS(actual)), not, m.description())
	}
	if strings.HasPrefix(m.name, "be_") && m.name != "be_in" && !m.hasBy && len(m.args) == 0 {
		pred := strings.TrimPrefix(m.name, "be_") + "?"
		want := "truthy"
		got := "false"
		if negated {
			want, got = "falsey", "true"
		}
		return fmt.Sprintf("expected `%s.%s` to be %s, got %s", subjectText(actual), pred, want, got)
	}
	return fmt.Sprintf("expected %s %sto %s", subjectText(actual), not, m.description())
}

func subjectText(v any) string {
	if r, ok := v.(resource); ok {
		return r.String()
	}
	return inspect(v)
}
