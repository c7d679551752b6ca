package inspec

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rootscan/rootscan/compliance/inspec/ruby"
	"github.com/rootscan/rootscan/report"
)

// ctlRun is the state of one control's evaluation.
type ctlRun struct {
	ctl    *Control
	id     string
	title  string
	impact float64
	checks []report.CheckResult
	// skip is set when an only_if was false: the message InSpec reports.
	skip  string
	stack []*descCtx
}

// descCtx is an open describe block: its subject, the text results start with, and the its() in effect.
type descCtx struct {
	subject any
	name    string
	its     any
	itsName string
	hasIts  bool
}

// expectation is expect(x) waiting for .to / .not_to.
type expectation struct {
	value any
	name  string
}

// errOnlyIf stops a control's body once an only_if decided to skip it.
var errOnlyIf = errors.New("only_if")

// dsl evaluates the InSpec DSL calls; handled is false for other names.
func (ev *evaluator) dsl(c *ruby.Call, sc *scope) (any, bool, error) {
	switch c.Name {
	case "control", "rule":
		if c.Block != nil && len(c.Args) > 0 {
			return nil, true, ev.runControl(c, sc)
		}
		if ev.inc != nil && len(c.Args) > 0 { // control 'id' without a block requires it (require_controls)
			return nil, true, ev.includeStatement(c, sc)
		}
	case "describe":
		if c.Block != nil {
			return nil, true, ev.describe(c, sc)
		}
	case "it", "specify", "example":
		if c.Block != nil {
			_, err := ev.body(c.Block.Body, newScope(sc))
			return nil, true, err
		}
	case "its":
		if c.Block != nil && len(c.Args) > 0 {
			return nil, true, ev.its(c, sc)
		}
	case "should", "should_not":
		return nil, true, ev.should(c, sc)
	case "is_expected":
		if d := ev.currentDescribe(); d != nil {
			return &expectation{value: ev.subjectValueLazy(d), name: d.name}, true, nil
		}
	case "expect":
		if len(c.Args) > 0 {
			v, err := ev.eval(c.Args[0], sc)
			if err != nil {
				return nil, true, err
			}
			return &expectation{value: v, name: subjectName(v)}, true, nil
		}
	case "subject":
		if d := ev.currentDescribe(); d != nil && c.Block != nil {
			v, err := ev.body(c.Block.Body, newScope(sc))
			if err == nil {
				d.subject = v
			}
			return v, true, err
		}
	case "only_if":
		return nil, true, ev.onlyIf(c, sc)
	case "skip":
		return nil, true, ev.skipCall(c, sc)
	case "title", "desc", "impact", "tag", "ref":
		if ev.ctl != nil {
			return nil, true, ev.metadata(c, sc)
		}
		if c.Name == "title" {
			return nil, true, nil // a file's title names its group
		}
	case "let", "let!":
		if ev.ctl != nil && c.Block != nil && len(c.Args) > 0 {
			name, _ := ruby.StringValue(c.Args[0])
			sc.vars[name] = &lazyVal{p: &proc{params: c.Block.Params, body: c.Block.Body, sc: sc}}
			return nil, true, nil
		}
	case "input_object":
		v, err := ev.input(c, sc)
		name := ""
		if len(c.Args) > 0 {
			name, _ = ruby.StringValue(c.Args[0])
		}
		return &inputObject{name: name, value: v}, true, err
	case "input", "attribute":
		v, err := ev.input(c, sc)
		return v, true, err
	case "include_controls", "require_controls":
		return nil, true, ev.includeControls(c, sc)
	case "skip_control", "require_control":
		return nil, true, ev.includeStatement(c, sc)
	case "supports", "waiver":
		return nil, true, nil
	}
	return nil, false, nil
}

func (ev *evaluator) currentDescribe() *descCtx {
	if ev.ctl == nil || len(ev.ctl.stack) == 0 {
		return nil
	}
	return ev.ctl.stack[len(ev.ctl.stack)-1]
}

func subjectName(v any) string {
	switch t := v.(type) {
	case resource:
		return t.String()
	case string:
		return t
	}
	return inspect(v)
}

// describe runs a describe (or describe.one) block. A describe outside a control is one of its own, as InSpec
// makes it.
func (ev *evaluator) describe(c *ruby.Call, sc *scope) error {
	if ev.ctl == nil {
		id := fmt.Sprintf("(generated from %s:%d)", ev.fileName(), c.Line)
		anon := &Control{ID: id, File: ev.fileName(), Line: c.Line, Code: ev.textOf(c), Block: &ruby.Block{Body: []ruby.Node{c}}}
		return ev.runControlBody(anon, id, sc)
	}
	d := &descCtx{}
	if len(c.Args) > 0 {
		v, err := ev.eval(c.Args[0], sc)
		if err != nil {
			return ev.checkError(ev.textOf(c.Args[0]), err)
		}
		d.subject, d.name = v, subjectName(v)
		if len(c.Args) > 1 {
			if s, ok := c.Args[1].(*ruby.Str); ok {
				if extra, err := ev.parts(s.Parts, sc); err == nil {
					d.name += " " + extra
				}
			}
		}
	}
	if outer := ev.currentDescribe(); outer != nil && outer.name != "" {
		d.name = strings.TrimSpace(outer.name + " " + d.name)
	}
	ev.ctl.stack = append(ev.ctl.stack, d)
	defer func() { ev.ctl.stack = ev.ctl.stack[:len(ev.ctl.stack)-1] }()
	_, err := ev.body(c.Block.Body, newScope(sc))
	if err != nil {
		return ev.checkError(d.name, err)
	}
	return nil
}

// describeOne is describe.one: it passes when every check of one of its describe blocks passes.
func (ev *evaluator) describeOne(c *ruby.Call, sc *scope) error {
	start := len(ev.ctl.checks)
	var groups [][2]int
	for _, n := range c.Block.Body {
		from := len(ev.ctl.checks)
		if _, err := ev.eval(n, newScope(sc)); err != nil {
			if err := ev.checkError("describe.one", err); err != nil {
				return err
			}
		}
		if len(ev.ctl.checks) > from {
			groups = append(groups, [2]int{from, len(ev.ctl.checks)})
		}
	}
	for _, g := range groups {
		ok := true
		for _, ck := range ev.ctl.checks[g[0]:g[1]] {
			ok = ok && ck.Status == report.ControlPassed
		}
		if ok {
			kept := append([]report.CheckResult{}, ev.ctl.checks[g[0]:g[1]]...)
			ev.ctl.checks = append(ev.ctl.checks[:start], kept...)
			return nil
		}
	}
	return nil
}

// checkError turns an error of a describe's code into a result: a skip reason or an exception. Bounds and a
// cancelled evaluation go on up.
func (ev *evaluator) checkError(desc string, err error) error {
	var sk *skipError
	var re *rubyError
	switch {
	case errors.As(err, &sk):
		ev.record(desc, report.ControlSkipped, sk.reason, time.Now())
		return nil
	case errors.As(err, &re):
		ev.record(desc, report.ControlError, re.Error(), time.Now())
		return nil
	case isFlow(err):
		ev.record(desc, report.ControlError, err.Error(), time.Now())
		return nil
	}
	return err
}

func isFlow(err error) bool {
	var br *breakSignal
	var nx *nextSignal
	var rt *returnSignal
	return errors.As(err, &br) || errors.As(err, &nx) || errors.As(err, &rt)
}

func (ev *evaluator) record(desc, status, msg string, start time.Time) {
	ev.ctl.checks = append(ev.ctl.checks, report.CheckResult{
		Desc: desc, Status: status, Message: msg, StartTime: start.UTC(), RunTime: time.Since(start),
	})
}

func (ev *evaluator) its(c *ruby.Call, sc *scope) error {
	d := ev.currentDescribe()
	if d == nil {
		return rbErr("NoMethodError", "its outside a describe block")
	}
	v, err := ev.eval(c.Args[0], sc)
	if err != nil {
		return ev.checkError(d.name, err)
	}
	saved := *d
	d.its, d.hasIts = v, true
	d.itsName = toS(v)
	if _, ok := v.(*array); ok {
		d.itsName = inspect(v)
	}
	defer func() { *d = saved }()
	_, err = ev.body(c.Block.Body, newScope(sc))
	if err != nil {
		return ev.checkError(d.name+" "+d.itsName, err)
	}
	return nil
}

// subjectValue is the describe's subject with its() applied: 'a.b' calls a then b, ['k', 'j'] indexes.
func (ev *evaluator) subjectValue(d *descCtx) (any, error) {
	if !d.hasIts {
		return d.subject, nil
	}
	if a, ok := d.its.(*array); ok {
		return ev.method(d.subject, "[]", a.v, nil)
	}
	cur := d.subject
	for _, part := range strings.Split(toS(d.its), ".") {
		v, err := ev.method(cur, part, nil, nil)
		if err != nil {
			return nil, err
		}
		cur = v
	}
	return cur, nil
}

func (ev *evaluator) subjectValueLazy(d *descCtx) any {
	v, err := ev.subjectValue(d)
	if err != nil {
		return nil
	}
	return v
}

func (ev *evaluator) should(c *ruby.Call, sc *scope) error {
	d := ev.currentDescribe()
	if d == nil {
		return rbErr("NoMethodError", "should outside a describe block")
	}
	desc := d.name
	if d.hasIts {
		desc += " " + d.itsName
	}
	start := time.Now()
	negated := c.Name == "should_not"
	if len(c.Args) == 0 {
		return ev.checkError(desc, rbErr("ArgumentError", "should without a matcher"))
	}
	mv, err := ev.eval(c.Args[0], sc)
	if err != nil {
		return ev.checkError(desc, err)
	}
	m, ok := mv.(*matcher)
	if !ok {
		return ev.checkError(desc, rbErr("ArgumentError", "should needs a matcher, got %s", typeName(mv)))
	}
	desc += expectText(negated) + m.description()
	actual, err := ev.subjectValue(d)
	if err != nil {
		return ev.checkError(desc, err)
	}
	return ev.verdict(desc, m, actual, negated, start)
}

func expectText(negated bool) string {
	if negated {
		return " is expected not to "
	}
	return " is expected to "
}

func (ev *evaluator) verdict(desc string, m *matcher, actual any, negated bool, start time.Time) error {
	v, err := ev.match(m, actual, negated)
	if err != nil {
		return ev.checkError(desc, err)
	}
	if v.pass {
		ev.record(desc, report.ControlPassed, "", start)
	} else {
		ev.record(desc, report.ControlFailed, v.msg, start)
	}
	return nil
}

func (ev *evaluator) expectCheck(e *expectation, c *ruby.Call, sc *scope) error {
	if ev.ctl == nil {
		return rbErr("NoMethodError", "expect outside a control")
	}
	start := time.Now()
	negated := c.Name != "to"
	desc := e.name
	if d := ev.currentDescribe(); d != nil && d.name != "" && d.name != e.name {
		desc = d.name + " " + e.name
	}
	if len(c.Args) == 0 {
		return ev.checkError(desc, rbErr("ArgumentError", "expectation without a matcher"))
	}
	mv, err := ev.eval(c.Args[0], sc)
	if err != nil {
		return ev.checkError(desc, err)
	}
	m, ok := mv.(*matcher)
	if !ok {
		return ev.checkError(desc, rbErr("ArgumentError", "expectation needs a matcher, got %s", typeName(mv)))
	}
	return ev.verdict(desc+expectText(negated)+m.description(), m, e.value, negated, start)
}

// onlyIf decides a guard: in a control it stops the body when false; at file level it skips the file's
// following controls.
func (ev *evaluator) onlyIf(c *ruby.Call, sc *scope) error {
	msg := ""
	var impact *float64
	for _, a := range c.Args {
		if h, ok := a.(*ruby.Hash); ok {
			for _, p := range h.Pairs {
				if k, _ := ruby.StringValue(p.Key); k == "impact" {
					v, err := ev.eval(p.Value, sc)
					if err != nil {
						return err
					}
					if f, ok := impactOf(v); ok {
						impact = &f
					}
				}
			}
			continue
		}
		v, err := ev.eval(a, sc)
		if err != nil {
			return err
		}
		msg = toS(v)
	}
	ok := true
	if c.Block != nil {
		v, err := ev.callProc(&proc{params: c.Block.Params, body: c.Block.Body, sc: sc})
		if err != nil {
			return err
		}
		ok = truthy(v)
	}
	if ok {
		return nil
	}
	text := "Skipped control due to only_if condition."
	if msg != "" {
		text = "Skipped control due to only_if condition: " + msg
	}
	if ev.ctl == nil {
		ev.fileGuard = &guardResult{msg: text, impact: impact}
		return nil
	}
	ev.ctl.skip = text
	if impact != nil {
		ev.ctl.impact = *impact
	}
	return errOnlyIf
}

// guardResult is a file-level only_if that was false.
type guardResult struct {
	msg    string
	impact *float64
}

func (ev *evaluator) skipCall(c *ruby.Call, sc *scope) error {
	msg := "skipped"
	if len(c.Args) > 0 {
		v, err := ev.eval(c.Args[0], sc)
		if err != nil {
			return err
		}
		msg = toS(v)
	}
	if ev.ctl == nil {
		return nil
	}
	desc := msg
	if d := ev.currentDescribe(); d != nil {
		desc = d.name
	}
	ev.record(desc, report.ControlSkipped, msg, time.Now())
	return nil
}

// metadata evaluates title, desc and impact inside a control (a loop's controls interpolate them); tags and
// refs come from the static reading.
func (ev *evaluator) metadata(c *ruby.Call, sc *scope) error {
	if len(c.Args) == 0 || (c.Name != "title" && c.Name != "impact") {
		return nil
	}
	v, err := ev.eval(c.Args[0], sc)
	if err != nil {
		return err
	}
	switch c.Name {
	case "title":
		ev.ctl.title = toS(v)
	case "impact":
		if f, ok := impactOf(v); ok {
			ev.ctl.impact = f
		}
	}
	return nil
}

func impactOf(v any) (float64, bool) {
	switch t := v.(type) {
	case int64:
		return float64(t), t >= 0 && t <= 1
	case float64:
		return t, t >= 0 && t <= 1
	case string:
		f, ok := impactNames[strings.ToLower(t)]
		return f, ok
	}
	return 0, false
}

// input is input('name') / attribute('name', value: default): --input-file first, then inspec.yml, then the
// call's value:.
func (ev *evaluator) input(c *ruby.Call, sc *scope) (any, error) {
	if len(c.Args) == 0 {
		return nil, rbErr("ArgumentError", "input needs a name")
	}
	first, err := ev.eval(c.Args[0], sc)
	if err != nil {
		return nil, err
	}
	name := toS(first)
	if v, ok := ev.inputs[name]; ok {
		return v, nil // a given input wins before its default is computed
	}
	args, err := ev.args(c.Args, sc)
	if err != nil {
		return nil, err
	}
	for _, a := range args[1:] {
		if h, ok := a.(*hash); ok {
			for _, k := range []string{"value", "default"} {
				if v, ok := h.get(k); ok {
					return v, nil
				}
			}
		}
	}
	return nil, nil
}
