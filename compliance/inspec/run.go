package inspec

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rootscan/rootscan/compliance"
	"github.com/rootscan/rootscan/compliance/inspec/ruby"
	"github.com/rootscan/rootscan/report"
)

// Runner evaluates one InSpec profile on targets. It is safe for concurrent use: each Evaluate has its own
// evaluator; the runner only remembers which control each result id came from, for HDF.
type Runner struct {
	Profile *Profile
	// Inputs override the profile's inputs (--input-file), by name.
	Inputs map[string]any
	Limits EvalLimits

	mu sync.Mutex
	// ids maps a result's control id to its control: ids of controls made in a loop are computed.
	ids map[string]*Control
}

// NewRunner makes a runner for p with the inputs of an --input-file (nil for none).
func NewRunner(p *Profile, inputs map[string]any, lim EvalLimits) *Runner {
	return &Runner{Profile: p, Inputs: inputs, Limits: lim.withDefaults(), ids: map[string]*Control{}}
}

// Evaluate runs every control of the profile on the target and returns one result per control. It stops
// early only when ctx ends; everything else a control does wrong costs that control.
func (r *Runner) Evaluate(ctx context.Context, t *compliance.Target) []report.ControlResult {
	ev := r.newEvaluator(ctx, t)
	var out []report.ControlResult
	for _, f := range r.Profile.Files {
		if ctx.Err() != nil {
			break
		}
		out = append(out, r.evalFile(ev, f)...)
	}
	return out
}

func (r *Runner) newEvaluator(ctx context.Context, t *compliance.Target) *evaluator {
	inputs := map[string]any{}
	for _, in := range r.Profile.Inputs {
		if in.Value != nil && (in.Profile == "" || in.Profile == r.Profile.Name) {
			inputs[in.Name] = fromNative(in.Value)
		}
	}
	for k, v := range r.Inputs {
		inputs[k] = fromNative(v)
	}
	return r.newEvaluatorFor(ctx, t, r.Profile, inputs)
}

// newEvaluatorFor makes an evaluator of prof's code (the runner's profile or one of its dependencies) with
// the given input values.
func (r *Runner) newEvaluatorFor(ctx context.Context, t *compliance.Target, prof *Profile, inputs map[string]any) *evaluator {
	ev := &evaluator{
		ctx: ctx, t: t, prof: prof, run: r, lim: r.Limits,
		inputs: inputs, funcs: map[string]*ruby.Def{}, libs: map[string]*LibResource{}, cache: map[string]any{},
	}
	for _, l := range prof.Libraries {
		for _, lr := range l.Resources {
			ev.libs[lr.Name] = lr
		}
	}
	return ev
}

// fileRun collects one controls file's results.
type fileRun struct {
	results []report.ControlResult
	reached map[*Control]bool
}

// evalFile evaluates a controls file top to bottom, as InSpec loads it: file-level code, guards and loops run,
// and each control runs where it is defined.
func (r *Runner) evalFile(ev *evaluator, f *ControlFile) []report.ControlResult {
	fr := &fileRun{reached: map[*Control]bool{}}
	if f.Err != nil {
		for _, c := range f.Controls {
			if res, ok := r.unreachedDep(ev, c, "the file does not parse: "+f.Err.Error()); ok {
				fr.results = append(fr.results, res)
			}
		}
		return fr.results
	}
	byBlock := map[*ruby.Block]*Control{}
	for _, c := range f.Controls {
		byBlock[c.Block] = c
	}
	ev.file, ev.fileGuard, ev.steps, ev.funcs = f.AST, nil, 0, map[string]*ruby.Def{}
	ev.onControl = func(c *Control, res report.ControlResult) {
		fr.reached[c] = true
		fr.results = append(fr.results, res)
	}
	ev.byBlock = byBlock
	ev.mark = func(c *Control) { fr.reached[c] = true }
	sc := newScope(nil)
	var err error
	for _, n := range f.AST.Body {
		if err = ev.fileStatement(n, sc); err != nil {
			break
		}
	}
	reason := ""
	if err != nil && ev.ctx.Err() == nil {
		reason = fileErrorReason(err)
	}
	for _, c := range f.Controls {
		switch {
		case fr.reached[c]:
		case c.Overlay:
			why := ev.prof.depReason(c.Include)
			if why == "" {
				why = reason
			}
			fr.results = append(fr.results, r.skipped(c, c.ID, why))
		case reason != "":
			if res, ok := r.unreachedDep(ev, c, reason); ok {
				fr.results = append(fr.results, res)
			}
		}
	}
	return fr.results
}

// fileErrorReason says why file-level code stopped before a control was reached.
func fileErrorReason(err error) string {
	var sk *skipError
	if errors.As(err, &sk) {
		return sk.reason
	}
	return "the file's code failed before this control: " + err.Error()
}

// skipped is the result of a control that was not evaluated.
func (r *Runner) skipped(c *Control, id, reason string) report.ControlResult {
	res := r.base(c, id, "", nil)
	res.Status, res.Message = report.ControlSkipped, reason
	return res
}

func (r *Runner) base(c *Control, id, title string, impact *float64) report.ControlResult {
	r.mu.Lock()
	r.ids[id] = c
	r.mu.Unlock()
	if title == "" {
		title = c.Title
	}
	imp := 0.5
	if c.Impact != nil {
		imp = *c.Impact
	}
	if impact != nil {
		imp = *impact
	}
	return report.ControlResult{
		Profile: r.Profile.Name, ID: id, Title: title, Impact: imp, Severity: compliance.ImpactSeverity(imp), Tags: tagMap(c.Tags),
	}
}

// ControlOf returns the control a result id came from (nil when this runner did not produce it).
func (r *Runner) ControlOf(id string) *Control {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ids[id]
}

func tagMap(tags []Tag) map[string][]string {
	if len(tags) == 0 {
		return nil
	}
	m := map[string][]string{}
	for _, t := range tags {
		switch v := t.Value.(type) {
		case nil:
			m[t.Key] = []string{}
		case []any:
			vs := make([]string, len(v))
			for i, e := range v {
				vs[i] = fmt.Sprint(e)
			}
			m[t.Key] = vs
		default:
			m[t.Key] = []string{fmt.Sprint(v)}
		}
	}
	return m
}

// runControl evaluates a control where the file defines it.
func (ev *evaluator) runControl(c *ruby.Call, sc *scope) error {
	if ev.ctl != nil {
		return rbErr("RuntimeError", "control inside control %s", ev.ctl.id)
	}
	static := ev.byBlock[c.Block]
	if static == nil {
		static = &Control{File: ev.fileName(), Line: c.Line, Block: c.Block, Code: ev.textOf(c)}
	}
	id := static.ID
	if v, err := ev.eval(c.Args[0], sc); err == nil {
		id = toS(v)
	}
	if ev.inc != nil {
		ev.inc.override(static, id)
		ev.mark(static)
		return nil
	}
	if ev.filter != nil {
		ev.mark(static)
		m, ok := ev.filter.apply(static, id)
		if !ok {
			return nil
		}
		static = m
	}
	return ev.runControlBody(static, id, sc)
}

func (ev *evaluator) fileName() string {
	if ev.file == nil {
		return ""
	}
	return ev.file.Name
}

// runControlBody evaluates a control's body with its own step budget and reports its result.
func (ev *evaluator) runControlBody(static *Control, id string, sc *scope) error {
	imp := 0.5
	if static.Impact != nil {
		imp = *static.Impact
	}
	cr := &ctlRun{ctl: static, id: id, title: static.Title, impact: imp}
	savedSteps := ev.steps
	ev.ctl, ev.steps = cr, 0
	defer func() { ev.ctl, ev.steps = nil, savedSteps }()
	if g := ev.fileGuard; g != nil {
		cr.skip = g.msg
		if g.impact != nil {
			cr.impact = *g.impact
		}
	} else if _, err := ev.body(static.Block.Body, newScope(sc)); err != nil && !errors.Is(err, errOnlyIf) {
		if ev.ctx.Err() != nil {
			return err
		}
		var le *limitError
		switch {
		case errors.As(err, &le):
			ev.record("Control Source Code Error", report.ControlError, le.msg, time.Now())
		default:
			var sk *skipError
			desc := "Control Source Code Error"
			if errors.As(err, &sk) {
				desc = id
			}
			if err := ev.checkError(desc, err); err != nil {
				return err
			}
		}
	}
	if ev.onControl != nil {
		ev.onControl(static, ev.run.result(cr))
	}
	return nil
}

// result is a control's report: skipped by only_if, or its checks' verdict (failed over error over passed;
// skipped when every check was).
func (r *Runner) result(cr *ctlRun) report.ControlResult {
	imp := cr.impact
	res := r.base(cr.ctl, cr.id, cr.title, &imp)
	if cr.skip != "" {
		res.Status, res.Message = report.ControlSkipped, cr.skip
		return res
	}
	res.Checks = cr.checks
	if len(cr.checks) == 0 {
		res.Status, res.Message = report.ControlSkipped, "No tests defined for this control"
		return res
	}
	by := map[string][]string{}
	for _, ck := range cr.checks {
		m := ck.Desc
		if ck.Message != "" {
			m += ": " + strings.TrimSpace(ck.Message)
		}
		by[ck.Status] = append(by[ck.Status], m)
	}
	switch {
	case len(by[report.ControlFailed]) > 0:
		res.Status = report.ControlFailed
		res.Message = strings.Join(append(by[report.ControlFailed], by[report.ControlError]...), "; ")
	case len(by[report.ControlError]) > 0:
		res.Status, res.Message = report.ControlError, strings.Join(by[report.ControlError], "; ")
	case len(by[report.ControlPassed]) == 0:
		res.Status = report.ControlSkipped
		res.Message = strings.Join(uniqStrings(skipMessages(cr.checks)), "; ")
	default:
		res.Status = report.ControlPassed
	}
	return res
}

func skipMessages(cs []report.CheckResult) []string {
	var out []string
	for _, c := range cs {
		if c.Status == report.ControlSkipped {
			out = append(out, c.Message)
		}
	}
	return out
}

func uniqStrings(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}
