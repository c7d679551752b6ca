package inspec

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// pam is the pam resource MITRE's STIG baselines ship in libraries/pam.rb (InSpec itself has none), answered by
// rootscan so that profiles carrying that library run without the `ls` it shells out to for a directory. Its
// semantics are that library's, quirks included, because the published profiles' expectations were written
// against them: a rule is "[-]type control module [args]" (with the service first in /etc/pam.conf); include and
// substack lines are followed; a line with fewer than three fields ("@include common-auth") fails the resource;
// an expected rule matches an actual one field by field as anchored Ruby regexes (control with [ ] escaped), the
// arguments as a subset or each as a regex of some argument.

// maxPamNesting bounds include/substack chains (the library recurses without a check); maxPamRules the rules kept.
const (
	maxPamNesting = 16
	maxPamRules   = 10_000
)

// pamRule is one parsed line.
type pamRule struct {
	text, service, typ, control, module string
	silent                              bool
	args                                []string
}

// pamRuleRE is the library's rule grammar; the service group is only tried when no service is given.
var (
	pamRuleRE        = regexp.MustCompile(`^\s*(-)?()(.+?)\s+(\[.+\]|.+?)\s+(.+?(?:\.so)?)(?:\s+(.+?))?$`)
	pamRuleServiceRE = regexp.MustCompile(`^\s*(-)?(.+?)\s+(.+?)\s+(\[.+\]|.+?)\s+(.+?(?:\.so)?)(?:\s+(.+?))?$`)
	pamBlank         = regexp.MustCompile(`^(\s*#.*|\s*)$`)
)

// parsePamRule reads line as a rule of service (service "" with hasService false: the line names it).
func parsePamRule(line, service string, hasService bool) (pamRule, error) {
	re := pamRuleRE
	if !hasService {
		re = pamRuleServiceRE
	}
	m := re.FindStringSubmatch(line)
	if m == nil {
		return pamRule{}, rbErr("Pam::PamError", "Invalid PAM configuration rule: '%s'", line)
	}
	r := pamRule{text: strings.Join(strings.Fields(line), " "), service: service, silent: m[1] == "-",
		typ: m[3], control: m[4], module: m[5], args: strings.Fields(m[6])}
	if !hasService {
		r.service = m[2]
	}
	return r, nil
}

// pamLines is a file's rules as the library sees them: continuation lines joined, comments and blanks dropped.
func pamLines(content string) []string {
	var out []string
	for _, l := range strings.SplitAfter(strings.ReplaceAll(content, "\\\n", " "), "\n") {
		if l = strings.TrimSpace(l); !pamBlank.MatchString(l) {
			out = append(out, l)
		}
	}
	return out
}

// pamRes is pam(path): a file, or a directory whose files are each a service.
type pamRes struct {
	path  string
	rules *pamRules
}

// pamRules is the library's Pam::Rules: the rules of every file read, and the target they came from.
type pamRules struct {
	rules  []pamRule
	target string // the path given, whose basename is the service when none is named
	dir    bool
}

func newPam(ev *evaluator, args []any) (any, error) {
	p, ok := strArg(args, 0)
	if !ok {
		p = "/etc/pam.d"
	}
	st, err := ev.t.Stat(p)
	if err != nil {
		return nil, rbErr("Inspec::Exceptions::ResourceFailed", "pam(%q): %v", p, err)
	}
	l := &pamLoader{ev: ev, rules: &pamRules{target: p, dir: st.Exists && st.Type == "directory"}}
	top := strings.TrimSpace(p) == "/etc/pam.conf"
	if l.rules.dir {
		names, err := ev.t.ReadDir(p)
		if err != nil {
			return nil, rbErr("Inspec::Exceptions::ResourceFailed", "pam(%q): %v", p, err)
		}
		for _, n := range names { // `ls dir/*`: the glob leaves out dot files
			if !strings.HasPrefix(n, ".") {
				if err := l.file(path.Join(p, n), p, "", !top, 0); err != nil {
					return nil, err
				}
			}
		}
	} else if err := l.file(p, p, "", !top, 0); err != nil {
		return nil, err
	}
	return &pamRes{path: p, rules: l.rules}, nil
}

type pamLoader struct {
	ev    *evaluator
	rules *pamRules
}

// file adds the rules of the file f; base is the target includes are relative to (the directory given, or the
// including file's directory); service "" takes f's basename, unless the rules name theirs (pam.conf).
func (l *pamLoader) file(f, base, service string, named bool, depth int) error {
	if depth > maxPamNesting {
		return rbErr("Pam::PamError", "PAM include/substack nested deeper than %d at %s", maxPamNesting, f)
	}
	c, err := l.ev.readConfig(f)
	if err != nil {
		return rbErr("Inspec::Exceptions::ResourceFailed", "pam: %v", err)
	}
	if c == nil {
		return nil // a missing file or a directory has no content: no rules
	}
	if service == "" && named {
		service = path.Base(f)
	}
	for _, line := range pamLines(c.(string)) {
		r, err := parsePamRule(line, service, service != "")
		if err != nil {
			return err
		}
		if r.control == "include" || r.control == "substack" {
			sub := r.module
			if !strings.HasPrefix(sub, "/") {
				if l.rules.dir && depth == 0 {
					sub = path.Join(base, sub)
				} else {
					sub = path.Join(path.Dir(base), sub)
				}
			}
			if err := l.file(sub, sub, service, named, depth+1); err != nil {
				return err
			}
			continue
		}
		if len(l.rules.rules) == maxPamRules {
			return rbErr("Inspec::Exceptions::ResourceFailed", "pam(%q): more than %d rules", l.rules.target, maxPamRules)
		}
		l.rules.rules = append(l.rules.rules, r)
	}
	return nil
}

func (p *pamRes) String() string { return "PAM Config[" + p.path + "]" }

func (p *pamRes) method(ev *evaluator, name string, args []any, blk *proc) (any, bool, error) {
	switch name {
	case "rules", "lines":
		return p.rules, true, nil
	case "services", "types", "modules":
		h := newHash()
		for _, r := range p.rules.rules {
			k := map[string]string{"services": r.service, "types": r.typ, "modules": r.module}[name]
			v, ok := h.get(k)
			if !ok {
				v = newArray(nil)
				h.set(k, v)
			}
			a := v.(*array)
			a.v = append(a.v, r.text)
		}
		return h, true, nil
	case "service", "type", "module":
		v, _, err := p.method(ev, name+"s", nil, nil)
		if err != nil || len(args) != 1 {
			return nil, true, err
		}
		got, _ := v.(*hash).get(toS(args[0]))
		return got, true, nil
	case "to_s":
		return p.String(), true, nil
	}
	return nil, false, nil
}

func (r *pamRules) String() string { return strings.Join(r.sortedTexts(), "\n") }

// sortedTexts is Rules#to_a: the rules by type.
func (r *pamRules) sortedTexts() []string {
	rs := append([]pamRule(nil), r.rules...)
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].typ < rs[j].typ })
	out := make([]string, len(rs))
	for i, x := range rs {
		out[i] = x.text
	}
	return out
}

func (r *pamRules) services() []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range r.rules {
		if !seen[x.service] {
			seen[x.service] = true
			out = append(out, x.service)
		}
	}
	sort.Strings(out)
	return out
}

func (r *pamRules) method(ev *evaluator, name string, args []any, blk *proc) (any, bool, error) {
	switch name {
	case "services":
		return newArray(strsToAny(r.services(), false)), true, nil
	case "service":
		s, err := r.service()
		if s == "" {
			return nil, true, err
		}
		return s, true, err
	case "include?", "match":
		ok, err := r.include(args, false)
		return ok, true, err
	case "include_exactly?", "match_exactly":
		ok, err := r.include(args, true)
		return ok, true, err
	case "to_a":
		return newArray(strsToAny(r.sortedTexts(), false)), true, nil
	case "to_s":
		return r.String(), true, nil
	}
	texts := make([]any, len(r.rules))
	for i, x := range r.rules {
		texts[i] = x.text
	}
	return ev.arrayMethod(newArray(texts), name, args, blk)
}

// service is Rules#service: the one service of the rules, an error when there are more.
func (r *pamRules) service() (string, error) {
	s := r.services()
	if len(s) > 1 {
		return "", rbErr("Pam::PamError", "More than one service found: '[%s]'", strings.Join(s, "', '"))
	}
	if len(s) == 0 {
		return "", nil
	}
	return s[0], nil
}

// serviceName is the library's get_service_name: the one given, else the target file's basename.
func (r *pamRules) serviceName(given string) (string, error) {
	if given != "" {
		return given, nil
	}
	if r.dir {
		return "", rbErr("Pam::PamError", `You must pass ":service_name" as an option!`)
	}
	return path.Base(r.target), nil
}

// include is Rules#include?(rules, exact:, service_name:).
func (r *pamRules) include(args []any, exact bool) (bool, error) {
	if len(args) == 0 {
		return false, rbErr("ArgumentError", "include? needs rules")
	}
	given := ""
	if v, ok := optArg(args, "service_name"); ok && v != nil {
		given = toS(v)
	}
	if v, ok := optArg(args, "exact"); ok {
		exact = exact || truthy(v)
	}
	svc, err := r.serviceName(given)
	if err != nil {
		return false, err
	}
	var want []pamRule
	for _, s := range rubyArray(args[0]) {
		w, err := parsePamRule(toS(s), svc, true)
		if err != nil {
			return false, err
		}
		want = append(want, w)
	}
	return r.includeRules(want, exact)
}

func rubyArray(v any) []any {
	switch a := v.(type) {
	case *array:
		return a.v
	case nil:
		return nil
	}
	return []any{v}
}

func (r *pamRules) includeRules(want []pamRule, exact bool) (bool, error) {
	if exact {
		if len(want) == 0 {
			return false, nil
		}
		first, err := r.index(want[0])
		if err != nil || first < 0 {
			return false, err
		}
		last, err := r.index(want[len(want)-1])
		if err != nil || last < 0 || last-first+1 != len(want) {
			return false, err
		}
		for i, w := range want {
			if ok, err := r.rules[first+i].match(w); err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	}
	// rules.select { |l| super(l) } == rules: every expected rule is present, and (Array#== being Rule#==) each
	// matches itself as a pattern, which a control written as a regex alternation does not.
	for _, w := range want {
		i, err := r.index(w)
		if err != nil || i < 0 {
			return false, err
		}
		if ok, err := w.match(w); err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// index is Array#index by Rule#==: the first actual rule matching w, -1 when none does.
func (r *pamRules) index(w pamRule) (int, error) {
	for i, x := range r.rules {
		ok, err := x.match(w)
		if err != nil {
			return -1, err
		}
		if ok {
			return i, nil
		}
	}
	return -1, nil
}

// match is Rule#match?: each field of x against want's as an anchored Ruby regex.
func (x pamRule) match(want pamRule) (bool, error) {
	ctl := strings.NewReplacer("[", `\[`, "]", `\]`).Replace(want.control)
	for _, f := range [][2]string{{x.service, want.service}, {x.typ, want.typ}, {x.control, ctl}, {x.module, want.module}} {
		ok, err := rubyAnchored(f[1], f[0])
		if err != nil || !ok {
			return false, err
		}
	}
	if subset(want.args, x.args) {
		return true, nil
	}
	for _, a := range want.args {
		hit := false
		for _, have := range x.args {
			ok, err := rubyAnchored(a, have)
			if err != nil {
				return false, err
			}
			if ok {
				hit = true
				break
			}
		}
		if !hit {
			return false, nil
		}
	}
	return true, nil
}

func rubyAnchored(pattern, s string) (bool, error) {
	re, err := compileRegex("^"+pattern+"$", "")
	if err != nil {
		return false, err
	}
	return re.re.MatchString(s), nil
}

func subset(a, b []string) bool {
	have := map[string]bool{}
	for _, s := range b {
		have[s] = true
	}
	for _, s := range a {
		if !have[s] {
			return false
		}
	}
	return true
}

// pamMatcher is match_pam_rule / match_pam_rules with the library's chains.
func (ev *evaluator) pamMatch(m *matcher, actual any) (bool, error) {
	r, ok := actual.(*pamRules)
	if !ok {
		return false, rbErr("NoMethodError", "%s needs pam(...).rules, got %s", m.name, describeRecv(actual))
	}
	if m.name == "match_pam_rules" {
		return r.include([]any{m.arg()}, m.chainName == "exactly")
	}
	if m.chainName == "" {
		svc, err := r.service()
		if err != nil {
			return false, err
		}
		return r.include([]any{m.arg(), hashOf("service_name", nilIfEmpty(svc))}, false)
	}
	return r.withArgs(m, toS(m.arg()))
}

func hashOf(k string, v any) *hash {
	h := newHash()
	h.set(k, v)
	return h
}

// withArgs is match_pam_rule(expected).<chain>(args): per service, the rules matching expected are checked as the
// library's process_potentials does, the last service with any deciding.
func (r *pamRules) withArgs(m *matcher, expected string) (bool, error) {
	retval := strings.HasPrefix(m.chainName, "all_")
	integer := strings.HasSuffix(m.chainName, "_integer_arg")
	if integer && !numericOp(toS(argOr(m.chainArgs, 1))) {
		return false, rbErr("RuntimeError", "Error: Operator '%s' is an invalid numeric comparison operator.", toS(argOr(m.chainArgs, 1)))
	}
	for _, svc := range r.services() {
		w, err := parsePamRule(expected, svc, true)
		if err != nil {
			return false, err
		}
		var pot []pamRule
		for _, x := range r.rules {
			ok, err := x.match(w)
			if err != nil {
				return false, err
			}
			if ok {
				pot = append(pot, x)
			}
		}
		for _, p := range pot {
			switch {
			case integer:
				retval = integerArg(p.args, m.chainArgs)
			case m.chainName == "all_with_args" || m.chainName == "all_without_args":
				// the library's all_without_args tests the same as all_with_args; profiles are written against that
				ok, err := matchRegex(strings.Join(p.args, " "), argOr(m.chainArgs, 0))
				if err != nil {
					return false, err
				}
				retval = ok
			}
			if !retval {
				break
			}
		}
	}
	return retval, nil
}

func numericOp(op string) bool {
	switch op {
	case "<", "<=", ">", ">=", "==", "!=", "===":
		return true
	}
	return false
}

// pamDescription is the library's description: "include RULE" and what the chain asks.
func pamDescription(m *matcher) string {
	d := "include " + toS(m.arg())
	if a, ok := m.arg().(*array); ok {
		d = "include " + inspect(a)
	}
	switch m.chainName {
	case "exactly":
		d += " exactly"
	case "all_with_args", "any_with_args":
		d += ", " + strings.ReplaceAll(m.chainName, "_", " ") + " " + toS(argOr(m.chainArgs, 0))
	case "all_without_args":
		d += ", all without args " + toS(argOr(m.chainArgs, 0))
	case "all_with_integer_arg", "any_with_integer_arg":
		d += fmt.Sprintf(", %s %s %s %s", strings.ReplaceAll(m.chainName, "_", " "), toS(argOr(m.chainArgs, 0)),
			toS(argOr(m.chainArgs, 1)), toS(argOr(m.chainArgs, 2)))
	}
	return d
}

// integerArg is the library's matching_integer_arg?: some key=value argument with an integer value that compares.
func integerArg(args []string, chain []any) bool {
	key, op := toS(argOr(chain, 0)), toS(argOr(chain, 1))
	want, ok := argOr(chain, 2).(int64)
	if !ok {
		return false
	}
	for _, a := range args {
		parts := strings.Split(a, "=")
		if len(parts) < 2 || parts[0] != key {
			continue
		}
		v, err := strconv.ParseInt(parts[1], 10, 64)
		if err != nil || !integerValue.MatchString(parts[1]) {
			continue
		}
		c := 0
		if v < want {
			c = -1
		} else if v > want {
			c = 1
		}
		if op == "!=" && c != 0 || op == "===" && c == 0 || opResult(op, c) {
			return true
		}
	}
	return false
}
