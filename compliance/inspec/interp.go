package inspec

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/rootscan/rootscan/compliance"
	"github.com/rootscan/rootscan/compliance/inspec/ruby"
	"github.com/rootscan/rootscan/report"
)

// EvalLimits bound one control's evaluation: profiles come from the internet, and a loop in one must cost its
// control, never the scan. Zero fields take the defaults.
type EvalLimits struct {
	// MaxSteps bounds the AST nodes evaluated for one control, its file-level code included (default 2,000,000).
	MaxSteps int
	// MaxDepth bounds nested calls and blocks (default 200).
	MaxDepth int
	// MaxValueLen bounds a string's bytes and an array's or hash's entries made by profile code (default 16 MiB
	// and 1,000,000).
	MaxStringBytes int
	MaxElems       int
}

func (l EvalLimits) withDefaults() EvalLimits {
	if l.MaxSteps <= 0 {
		l.MaxSteps = 2_000_000
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = 200
	}
	if l.MaxStringBytes <= 0 {
		l.MaxStringBytes = 16 << 20
	}
	if l.MaxElems <= 0 {
		l.MaxElems = 1_000_000
	}
	return l
}

// skipError says a control needs what a filesystem cannot answer; the control is reported skipped with it.
type skipError struct{ reason string }

func (e *skipError) Error() string { return e.reason }

func skipf(format string, args ...any) error { return &skipError{reason: fmt.Sprintf(format, args...)} }

// rubyError is an exception the profile's code raised or caused (NoMethodError, ArgumentError); rescue catches it.
type rubyError struct{ class, msg string }

func (e *rubyError) Error() string { return e.msg + " (" + e.class + ")" }

func rbErr(class, format string, args ...any) error {
	return &rubyError{class: class, msg: fmt.Sprintf(format, args...)}
}

// limitError is a bound of EvalLimits reached; it is not rescued.
type limitError struct{ msg string }

func (e *limitError) Error() string { return e.msg }

// Control flow unwinds through Go errors.
type (
	breakSignal  struct{ val any }
	nextSignal   struct{ val any }
	returnSignal struct{ val any }
)

func (*breakSignal) Error() string  { return "break outside a block" }
func (*nextSignal) Error() string   { return "next outside a block" }
func (*returnSignal) Error() string { return "return outside a method" }

// scope holds local variables; blocks see their parents' and keep their own new ones.
type scope struct {
	vars   map[string]any
	parent *scope
}

func newScope(parent *scope) *scope { return &scope{vars: map[string]any{}, parent: parent} }

func (s *scope) lookup(name string) (any, bool) {
	for c := s; c != nil; c = c.parent {
		if v, ok := c.vars[name]; ok {
			return v, true
		}
	}
	return nil, false
}

func (s *scope) assign(name string, v any) {
	for c := s; c != nil; c = c.parent {
		if _, ok := c.vars[name]; ok {
			c.vars[name] = v
			return
		}
	}
	s.vars[name] = v
}

// proc is a block or lambda with the scope it closes over.
type proc struct {
	params []ruby.Param
	body   []ruby.Node
	sc     *scope
	// method, when set, makes the proc call that method on its argument (&:name).
	method string
}

// evaluator runs one profile's code on one target.
type evaluator struct {
	ctx    context.Context
	t      *compliance.Target
	prof   *Profile
	run    *Runner
	lim    EvalLimits
	inputs map[string]any
	funcs  map[string]*ruby.Def
	libs   map[string]*LibResource
	// cache holds what resources parsed once per target (the account tables, config files).
	cache map[string]any

	steps, depth int
	file         *ruby.File
	ctl          *ctlRun // the control being evaluated; nil at file level
	fileGuard    *guardResult
	// byBlock finds a control's static reading by its block; onControl receives each control's result.
	byBlock   map[*ruby.Block]*Control
	onControl func(*Control, report.ControlResult)
	// self is the library object whose method is running (nil in profile code).
	self *libObject
	// inc is set while an include_controls block runs: its control blocks are overrides, not controls.
	inc *incRun
	// filter is set on a dependency's evaluator: the overlay's skips, requires and overrides.
	filter *incRun
	// mark tells evalFile a control was handled although it has no result of its own.
	mark func(*Control)
	// included are the dependencies this evaluator's profile included already (once each, as InSpec registers
	// a control once); includes counts the include_controls of the whole Evaluate, shared with dependencies.
	included map[*Dep]bool
	includes *int
}

func (ev *evaluator) step() error {
	ev.steps++
	if ev.steps > ev.lim.MaxSteps {
		return &limitError{fmt.Sprintf("evaluation stopped after %d steps", ev.lim.MaxSteps)}
	}
	if ev.steps&1023 == 0 {
		if err := ev.ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// charge counts work proportional to data (copying a string, comparing two lists) against MaxSteps, so a
// loop that doubles a string costs what it copies, not one step.
func (ev *evaluator) charge(units int) error {
	ev.steps += units
	if ev.steps > ev.lim.MaxSteps {
		return &limitError{fmt.Sprintf("evaluation stopped after %d steps", ev.lim.MaxSteps)}
	}
	return nil
}

// Bytes and element pairs that count as one step.
const (
	bytesPerStep = 1024
	pairsPerStep = 64
)

func (ev *evaluator) enter() error {
	ev.depth++
	if ev.depth > ev.lim.MaxDepth {
		return &limitError{fmt.Sprintf("evaluation nested deeper than %d", ev.lim.MaxDepth)}
	}
	return nil
}

func (ev *evaluator) leave() { ev.depth-- }

// body evaluates statements and returns the last value.
func (ev *evaluator) body(ns []ruby.Node, sc *scope) (any, error) {
	var v any
	for _, n := range ns {
		var err error
		if v, err = ev.eval(n, sc); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func (ev *evaluator) eval(n ruby.Node, sc *scope) (any, error) {
	if err := ev.step(); err != nil {
		return nil, err
	}
	if err := ev.enter(); err != nil {
		return nil, err
	}
	defer ev.leave()
	switch v := n.(type) {
	case nil, *ruby.Nil:
		return nil, nil
	case *ruby.Bool:
		return v.Val, nil
	case *ruby.Self:
		if ev.self != nil {
			return ev.self, nil
		}
		return nil, nil
	case *ruby.Int:
		if !v.OK {
			return nil, rbErr("RangeError", "integer %s is too large", v.Text)
		}
		return v.Val, nil
	case *ruby.Float:
		return v.Val, nil
	case *ruby.Str:
		if v.Command {
			return nil, skipf("`%s` needs exec in the target", ev.textOf(v))
		}
		return ev.parts(v.Parts, sc)
	case *ruby.Sym:
		if v.Parts != nil {
			return ev.parts(v.Parts, sc)
		}
		return v.Name, nil
	case *ruby.Regex:
		src, err := ev.parts(v.Parts, sc)
		if err != nil {
			return nil, err
		}
		return compileRegex(src, v.Flags)
	case *ruby.Array:
		return ev.arrayLit(v, sc)
	case *ruby.Hash:
		return ev.hashLit(v, sc)
	case *ruby.Range:
		return ev.rangeLit(v, sc)
	case *ruby.Ident:
		if val, ok := sc.lookup(v.Name); ok {
			if l, ok := val.(*lazyVal); ok {
				return ev.force(l)
			}
			return val, nil
		}
		if v.Name == "inspec" {
			return inspecHandle{}, nil
		}
		return ev.callSelf(&ruby.Call{Pos: v.Pos, Name: v.Name}, sc)
	case *ruby.Var:
		if ev.self != nil && isIvar(v.Name) {
			return ev.self.ivars[v.Name], nil
		}
		if val, ok := sc.lookup(v.Name); ok {
			return val, nil
		}
		return nil, nil
	case *ruby.Const:
		return constant(constName(v)), nil
	case *ruby.Call:
		return ev.call(v, sc)
	case *ruby.Index:
		return ev.index(v, sc)
	case *ruby.Lambda:
		return &proc{params: v.Params, body: v.Body, sc: sc}, nil
	}
	return ev.evalStmt(n, sc)
}

// evalStmt evaluates operators, assignments and control flow.
func (ev *evaluator) evalStmt(n ruby.Node, sc *scope) (any, error) {
	switch v := n.(type) {
	case *ruby.Unary:
		return ev.unary(v, sc)
	case *ruby.Binary:
		return ev.binary(v, sc)
	case *ruby.Assign:
		return ev.assign(v, sc)
	case *ruby.MultiAssign:
		return ev.multiAssign(v, sc)
	case *ruby.If:
		c, err := ev.eval(v.Cond, sc)
		if err == nil {
			err = poisoned(c)
		}
		if err != nil {
			return nil, err
		}
		if truthy(c) != v.Unless {
			return ev.body(v.Then, sc)
		}
		return ev.body(v.Else, sc)
	case *ruby.While:
		return ev.while(v, sc)
	case *ruby.For:
		return ev.forLoop(v, sc)
	case *ruby.Case:
		return ev.caseExpr(v, sc)
	case *ruby.Begin:
		return ev.begin(v, sc)
	case *ruby.Paren:
		return ev.body(v.Body, sc)
	case *ruby.Return:
		val, err := ev.vals(v.Vals, sc)
		if err != nil {
			return nil, err
		}
		return nil, &returnSignal{val: val}
	case *ruby.Break:
		val, err := ev.vals(v.Vals, sc)
		if err != nil {
			return nil, err
		}
		return nil, &breakSignal{val: val}
	case *ruby.Next:
		val, err := ev.vals(v.Vals, sc)
		if err != nil {
			return nil, err
		}
		return nil, &nextSignal{val: val}
	case *ruby.Def:
		if v.Recv == nil {
			ev.funcs[v.Name] = v
		}
		return v.Name, nil
	case *ruby.Class, *ruby.Module, *ruby.Alias:
		return nil, nil // library classes are read by the classifier; helper classes in controls are rare
	case *ruby.Defined:
		return ev.defined(v, sc)
	case *ruby.Splat:
		return ev.eval(v.X, sc)
	case *ruby.Super:
		if ev.self != nil {
			return nil, nil // Inspec.resource's own initialize does nothing a profile relies on
		}
		return nil, rbErr("NotImplementedError", "super outside a library method")
	case *ruby.Yield, *ruby.Retry:
		return nil, rbErr("NotImplementedError", "%T is not supported in profiles", n)
	}
	return nil, rbErr("NotImplementedError", "%T is not supported", n)
}

// vals is the value of return/break/next: nil, one value, or an array.
func (ev *evaluator) vals(ns []ruby.Node, sc *scope) (any, error) {
	switch len(ns) {
	case 0:
		return nil, nil
	case 1:
		return ev.eval(ns[0], sc)
	}
	out, err := ev.args(ns, sc)
	if err != nil {
		return nil, err
	}
	return newArray(out), nil
}

func (ev *evaluator) textOf(n ruby.Node) string {
	if ev.file == nil {
		return ""
	}
	p := n.Position()
	return ev.file.Text(p.Off, p.End)
}

func (ev *evaluator) parts(ps []ruby.StrPart, sc *scope) (string, error) {
	if len(ps) == 1 && ps[0].Expr == nil {
		return ps[0].Lit, nil
	}
	var b strings.Builder
	for _, p := range ps {
		if p.Expr == nil {
			b.WriteString(p.Lit)
			continue
		}
		v, err := ev.eval(p.Expr, sc)
		if err == nil {
			err = poisoned(v)
		}
		if err != nil {
			return "", err
		}
		s := toS(v)
		if err := ev.charge(len(s) / bytesPerStep); err != nil {
			return "", err
		}
		b.WriteString(s)
		if b.Len() > ev.lim.MaxStringBytes {
			return "", &limitError{fmt.Sprintf("a string grew past %d bytes", ev.lim.MaxStringBytes)}
		}
	}
	return b.String(), nil
}

func (ev *evaluator) arrayLit(a *ruby.Array, sc *scope) (any, error) {
	out, err := ev.args(a.Elems, sc)
	if err != nil {
		return nil, err
	}
	return newArray(out), nil
}

func (ev *evaluator) hashLit(h *ruby.Hash, sc *scope) (any, error) {
	out := newHash()
	for _, p := range h.Pairs {
		v, err := ev.eval(p.Value, sc)
		if err != nil {
			return nil, err
		}
		if p.Key == nil {
			if m, ok := v.(*hash); ok {
				for _, k := range m.keys {
					mv, _ := m.get(k)
					out.set(k, mv)
				}
			}
			continue
		}
		k, err := ev.eval(p.Key, sc)
		if err != nil {
			return nil, err
		}
		out.set(k, v)
	}
	return out, nil
}

func (ev *evaluator) rangeLit(r *ruby.Range, sc *scope) (any, error) {
	lo, err := ev.eval(r.Lo, sc)
	if err != nil {
		return nil, err
	}
	hi, err := ev.eval(r.Hi, sc)
	if err != nil {
		return nil, err
	}
	return &rangeVal{lo: lo, hi: hi, exclusive: r.Exclusive}, nil
}

func (ev *evaluator) while(w *ruby.While, sc *scope) (any, error) {
	for {
		c, err := ev.eval(w.Cond, sc)
		if err != nil {
			return nil, err
		}
		if truthy(c) == w.Until {
			return nil, nil
		}
		if v, stop, err := loopBody(ev.body(w.Body, sc)); stop {
			return v, err
		}
	}
}

// loopBody reads how an iteration of while or for ended: next goes on, break stops the loop with its value,
// any other error stops it with the error.
func loopBody(_ any, err error) (v any, stop bool, _ error) {
	var br *breakSignal
	var nx *nextSignal
	switch {
	case err == nil, errors.As(err, &nx):
		return nil, false, nil
	case errors.As(err, &br):
		return br.val, true, nil
	}
	return nil, true, err
}

func (ev *evaluator) forLoop(f *ruby.For, sc *scope) (any, error) {
	it, err := ev.eval(f.Iter, sc)
	if err != nil {
		return nil, err
	}
	items, err := ev.iterItems(it)
	if err != nil {
		return nil, err
	}
	for _, item := range items {
		if len(f.Vars) == 1 {
			if err := ev.assignTo(f.Vars[0], item, sc); err != nil {
				return nil, err
			}
		} else if err := ev.destructure(f.Vars, item, sc); err != nil {
			return nil, err
		}
		if v, stop, err := loopBody(ev.body(f.Body, sc)); stop {
			return v, err
		}
	}
	return it, nil
}

func (ev *evaluator) caseExpr(c *ruby.Case, sc *scope) (any, error) {
	var subj any
	if c.Subject != nil {
		var err error
		if subj, err = ev.eval(c.Subject, sc); err != nil {
			return nil, err
		}
	}
	for _, w := range c.Whens {
		for _, cond := range w.Conds {
			cv, err := ev.eval(cond, sc)
			if err != nil {
				return nil, err
			}
			hit := truthy(cv)
			if c.Subject != nil {
				hit = caseEq(cv, subj)
			}
			if hit {
				return ev.body(w.Body, sc)
			}
		}
	}
	return ev.body(c.Else, sc)
}

// caseEq is Ruby's ===: a regexp matches, a range covers, a class names the type, else ==.
func caseEq(pat, v any) bool {
	switch p := pat.(type) {
	case *regex:
		s, ok := v.(string)
		return ok && p.re.MatchString(s)
	case *rangeVal:
		lo, ok1 := compare(p.lo, v)
		hi, ok2 := compare(v, p.hi)
		return ok1 && ok2 && lo <= 0 && (hi < 0 || (!p.exclusive && hi == 0))
	case constant:
		return string(p) == typeName(v) || (p == "Numeric" && (typeName(v) == "Integer" || typeName(v) == "Float"))
	}
	return equal(pat, v)
}

// begin runs begin/rescue/else/ensure: rescue catches the profile's own exceptions, never a skip, a bound or
// a cancelled context.
func (ev *evaluator) begin(b *ruby.Begin, sc *scope) (any, error) {
	v, err := ev.body(b.Body, sc)
	var re *rubyError
	if err != nil && errors.As(err, &re) {
		handled := false
		for _, r := range b.Rescues {
			if !rescues(r, re) {
				continue
			}
			if r.Var != nil {
				if err := ev.assignTo(r.Var, re.msg, sc); err != nil {
					return nil, err
				}
			}
			v, err = ev.body(r.Body, sc)
			handled = true
			break
		}
		if !handled {
			v, err = nil, re
		}
	} else if err == nil && len(b.Else) > 0 {
		v, err = ev.body(b.Else, sc)
	}
	if len(b.Ensure) > 0 {
		if _, eerr := ev.body(b.Ensure, sc); eerr != nil && err == nil {
			err = eerr
		}
	}
	return v, err
}

// rescues says whether a rescue clause catches the exception: no classes (StandardError), or a class named
// like it, StandardError or Exception.
func rescues(r ruby.Rescue, re *rubyError) bool {
	if len(r.Classes) == 0 {
		return true
	}
	for _, c := range r.Classes {
		k, ok := c.(*ruby.Const)
		if !ok {
			continue
		}
		switch name := constName(k); name {
		case "StandardError", "Exception", "RuntimeError", re.class:
			return true
		default:
			if strings.HasSuffix(name, "::"+re.class) || strings.HasSuffix(name, "Error") && re.class == "RuntimeError" {
				return true
			}
		}
	}
	return false
}

func (ev *evaluator) defined(d *ruby.Defined, sc *scope) (any, error) {
	switch x := d.X.(type) {
	case *ruby.Ident:
		if _, ok := sc.lookup(x.Name); ok {
			return "local-variable", nil
		}
		if _, ok := ev.funcs[x.Name]; ok {
			return "method", nil
		}
	case *ruby.Var:
		if _, ok := sc.lookup(x.Name); ok {
			return "instance-variable", nil
		}
	}
	return nil, nil
}

// constant is a Ruby constant name (File, Gem::Version): only its class methods are evaluated.
type constant string

func (c constant) String() string { return string(c) }

func isIvar(name string) bool { return len(name) > 1 && name[0] == '@' && name[1] != '@' }

func constName(c *ruby.Const) string {
	if s, ok := c.Scope.(*ruby.Const); ok {
		return constName(s) + "::" + c.Name
	}
	return c.Name
}
