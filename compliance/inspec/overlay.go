package inspec

import (
	"fmt"

	"github.com/rootscan/rootscan/compliance/inspec/ruby"
	"github.com/rootscan/rootscan/report"
)

// maxIncludes bounds the dependency evaluations of one Evaluate: dependencies that share a vendored
// dependency each run it, so a wide tree could multiply work depth times over.
const maxIncludes = 256

// incRun is what an include_controls / require_controls block says about its dependency's controls: the ids
// it skips (skip_control), the ids it keeps (require_control; nil keeps all) and its overrides (a control
// block with a dependency control's id, which InSpec merges into that control).
type incRun struct {
	skip      map[string]bool
	require   map[string]bool
	overrides map[string]*Control
	order     []string
	matched   map[string]bool
	// src is the dependency's source, for the merged controls' HDF source location.
	src string
	// deferred are merged controls whose checks come from the overlay: they run in the overlay's evaluator,
	// where their code was written (its inputs, variables and helpers).
	deferred []deferredControl
}

type deferredControl struct {
	ctl *Control
	id  string
}

// includeControls runs a loaded dependency's controls as the block changes them, as InSpec does where the
// overlay calls include_controls. A dependency that is not loaded leaves the block's controls to evalFile,
// which reports them skipped with the dependency's reason.
func (ev *evaluator) includeControls(c *ruby.Call, sc *scope) error {
	if ev.inc != nil {
		return rbErr("RuntimeError", "%s inside include_controls", c.Name)
	}
	if len(c.Args) == 0 {
		return rbErr("ArgumentError", "%s needs a profile name", c.Name)
	}
	v, err := ev.eval(c.Args[0], sc)
	if err != nil {
		return err
	}
	dep := ev.prof.Dep(toS(v))
	if dep == nil || dep.Status != DepLoaded || ev.included[dep] {
		return nil
	}
	if ev.included == nil {
		ev.included = map[*Dep]bool{}
	}
	ev.included[dep] = true
	if ev.includes == nil {
		ev.includes = new(int)
	}
	if *ev.includes++; *ev.includes > maxIncludes {
		return &limitError{fmt.Sprintf("more than %d include_controls in one evaluation", maxIncludes)}
	}
	ir := &incRun{skip: map[string]bool{}, overrides: map[string]*Control{}, matched: map[string]bool{}, src: dep.Profile.Source}
	if c.Name == "require_controls" {
		ir.require = map[string]bool{}
	}
	if c.Block != nil {
		ev.inc = ir
		_, err := ev.body(c.Block.Body, newScope(sc))
		ev.inc = nil
		if err != nil {
			return err
		}
	}
	sub := ev.run.newEvaluatorFor(ev.ctx, ev.t, dep.Profile, ev.depInputs(dep))
	sub.filter, sub.includes = ir, ev.includes
	for _, f := range dep.Profile.Files {
		if ev.ctx.Err() != nil {
			return ev.ctx.Err()
		}
		for _, res := range ev.run.evalFile(sub, f) {
			ev.onControl(nil, res)
		}
	}
	for _, d := range ir.deferred {
		if err := ev.runControlBody(d.ctl, d.id, sc); err != nil {
			return err
		}
	}
	for _, id := range ir.order {
		if !ir.matched[id] { // a control the dependency does not have: a new control of the overlay
			if err := ev.runControlBody(ir.overrides[id], id, sc); err != nil {
				return err
			}
		}
	}
	return nil
}

// depInputs are a dependency's inputs: its own defaults, then the overlay's inputs (those of inspec.yml meant
// for it with profile:, and the values the overlay itself was given), then --input-file.
func (ev *evaluator) depInputs(dep *Dep) map[string]any {
	in := map[string]any{}
	for _, i := range dep.Profile.Inputs {
		if i.Value != nil {
			in[i.Name] = fromNative(i.Value)
		}
	}
	for _, i := range ev.prof.Inputs {
		if i.Value != nil && (i.Profile == dep.Name || i.Profile == dep.Profile.Name) {
			in[i.Name] = fromNative(i.Value)
		}
	}
	for k, v := range ev.run.Inputs {
		in[k] = fromNative(v)
	}
	return in
}

// includeStatement records skip_control, require_control and override controls while an include block runs.
func (ev *evaluator) includeStatement(c *ruby.Call, sc *scope) error {
	if ev.inc == nil || len(c.Args) == 0 {
		return nil
	}
	v, err := ev.eval(c.Args[0], sc)
	if err != nil {
		return err
	}
	switch c.Name {
	case "skip_control":
		ev.inc.skip[toS(v)] = true
	case "require_control", "control", "rule":
		if ev.inc.require != nil {
			ev.inc.require[toS(v)] = true
		}
	}
	return nil
}

// override records a control block written inside include_controls.
func (ir *incRun) override(static *Control, id string) {
	if _, ok := ir.overrides[id]; !ok {
		ir.order = append(ir.order, id)
	}
	ir.overrides[id] = static
	if ir.require != nil {
		ir.require[id] = true // require_controls with a block: the controls it changes are required
	}
}

// apply decides what of a dependency's control runs: nothing (skipped or not required), the control, or the
// control merged with the overlay's override. ok is false when the dependency evaluator must not run it.
func (ir *incRun) apply(static *Control, id string) (*Control, bool) {
	if ir.skip[id] || ir.require != nil && !ir.require[id] {
		return nil, false
	}
	c := *static
	c.src = ir.src
	o := ir.overrides[id]
	if o == nil {
		return &c, true
	}
	ir.matched[id] = true
	m := mergeControl(&c, o)
	if len(o.Describes) > 0 {
		ir.deferred = append(ir.deferred, deferredControl{m, id})
		return nil, false
	}
	return m, true
}

// wants reports whether a dependency control not reached by evaluation is still reported (its file failed).
func (ir *incRun) wants(id string) bool {
	return !ir.skip[id] && (ir.require == nil || ir.require[id])
}

// mergeControl is InSpec's merge of an overlay's control into the dependency's: what the override sets
// (title, descriptions, impact, tags by key, refs, guards) replaces the dependency's, and its checks replace the
// dependency's checks when it has any. An override without checks keeps the dependency's, then runs its own
// statements (metadata) after them.
func mergeControl(dst, src *Control) *Control {
	m := *dst
	if src.Title != "" {
		m.Title = src.Title
	}
	if src.Desc != "" {
		m.Desc = src.Desc
	}
	m.Descriptions = append([]Description(nil), dst.Descriptions...)
	for _, d := range src.Descriptions {
		m.Descriptions = setDescription(m.Descriptions, d.Label, d.Data)
	}
	if src.Impact != nil || src.ImpactExpr != nil {
		m.Impact, m.ImpactExpr = src.Impact, src.ImpactExpr
	}
	m.Tags = append([]Tag(nil), dst.Tags...)
	for _, t := range src.Tags {
		m.Tags = setTag(m.Tags, t)
	}
	m.Refs = append(append([]map[string]any(nil), dst.Refs...), src.Refs...)
	m.Guards = append(append([]*Guard(nil), dst.Guards...), src.Guards...)
	if len(src.Describes) > 0 {
		m.Block, m.Describes, m.Code, m.File, m.Line, m.src = src.Block, src.Describes, src.Code, src.File, src.Line, ""
		return &m
	}
	body := append(append([]ruby.Node(nil), dst.Block.Body...), src.Block.Body...)
	m.Block = &ruby.Block{Params: dst.Block.Params, Body: body}
	return &m
}

func setTag(ts []Tag, t Tag) []Tag {
	for i := range ts {
		if ts[i].Key == t.Key {
			ts[i] = t
			return ts
		}
	}
	return append(ts, t)
}

// unreachedDep reports the result of a dependency control evalFile did not reach, or false when the overlay
// drops it.
func (r *Runner) unreachedDep(ev *evaluator, c *Control, reason string) (report.ControlResult, bool) {
	if ev.filter != nil && !ev.filter.wants(c.ID) {
		return report.ControlResult{}, false
	}
	cc := *c
	if ev.filter != nil {
		cc.src = ev.filter.src
	}
	return r.skipped(&cc, cc.ID, reason), true
}
