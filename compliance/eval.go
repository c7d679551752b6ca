package compliance

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"

	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// Engine evaluates a set of profiles, with their scopes and waivers, on targets. It is safe for concurrent use:
// all per-target state lives in the evaluation.
type Engine struct {
	Profiles []*Profile
	// Scope picks the profiles of a target; nil means every profile everywhere.
	Scope *Scope
	// Waivers are accepted exceptions by control id.
	Waivers Waivers
	Limits  Limits
	// Now is the clock waivers expire by (time.Now when nil).
	Now func() time.Time
	Log *slog.Logger
	// Runners are profiles in other languages (InSpec), evaluated after the CEL profiles on the same view.
	Runners []ProfileRunner

	types *celTypes
}

// NewEngine makes an engine for profiles loaded by l.
func NewEngine(l *Loader, profiles []*Profile) *Engine {
	return &Engine{Profiles: profiles, Limits: l.lim, types: l.types}
}

// Evaluate runs every control of the target's profiles on fsys (the container's root) with its volumes, and
// returns one result per control. res gives the inventory for packages(); it is read, not changed.
func (e *Engine) Evaluate(ctx context.Context, fsys scan.FS, t report.Target, vols []Volume, res *report.Result) []report.ControlResult {
	return e.evaluate(ctx, fsys, t, vols, res, nil, nil)
}

// evaluate is Evaluate with the entries of the root already collected by the shared walk (nil: files() walks).
// deep are the directories that walk left out for depth.
func (e *Engine) evaluate(ctx context.Context, fsys scan.FS, t report.Target, vols []Volume, res *report.Result, tree []*fileData, deep []string) []report.ControlResult {
	s, act, err := e.newSession(ctx, fsys, t, vols, res, tree, deep)
	var out []report.ControlResult
	for _, p := range e.Scope.Select(e.Profiles, t) {
		for _, c := range p.Controls {
			r := e.evalOne(s, act, err, p, c)
			e.applyWaiver(c.ID, &r)
			out = append(out, r)
		}
	}
	return e.runRunners(s, out)
}

// newSession makes the session of one evaluation and its function bindings (err: they could not be made).
func (e *Engine) newSession(ctx context.Context, fsys scan.FS, t report.Target, vols []Volume, res *report.Result, tree []*fileData, deep []string) (*session, cel.Activation, error) {
	s := &session{
		ctx: ctx, view: newView(fsys, vols), tgt: t, res: res, lim: e.Limits.withDefaults(),
		log: e.Log, types: e.types,
	}
	if tree != nil {
		for _, d := range tree {
			d.s = s
		}
		s.treeDone, s.treeData, s.treeDeep = true, tree, deep
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	act, err := cel.FunctionVars(map[string]any{}, s.bindings())
	return s, act, err
}

// evalOne evaluates one control, waivers not applied; bindErr is newSession's.
func (e *Engine) evalOne(s *session, act cel.Activation, bindErr error, p *Profile, c *Control) report.ControlResult {
	r := report.ControlResult{
		Profile: p.Name, ID: c.ID, Title: c.Title, Impact: c.Impact, Severity: ImpactSeverity(c.Impact), Tags: c.Tags,
	}
	if bindErr != nil {
		r.Status, r.Message = report.ControlError, bindErr.Error()
		return r
	}
	s.ctlFiles = s.ctlFiles[:0]
	e.evalControl(s, act, c, &r)
	s.noteDeep(&r)
	if len(s.ctlFiles) > 0 {
		s.view.rec.addFact(factWalk)
	}
	return r
}

// ImpactSeverity maps an InSpec impact onto the shared severity scale, as InSpec and Heimdall do.
func ImpactSeverity(impact float64) report.Severity {
	switch {
	case impact >= 0.9:
		return report.SeverityCritical
	case impact >= 0.7:
		return report.SeverityHigh
	case impact >= 0.4:
		return report.SeverityMedium
	case impact > 0:
		return report.SeverityLow
	}
	return report.SeverityNone
}

func (e *Engine) evalControl(s *session, act cel.Activation, c *Control, r *report.ControlResult) {
	if c.OnlyIf != nil {
		v, err := e.eval(s, act, &c.OnlyIf.prog)
		switch {
		case err != nil:
			r.Status, r.Message = report.ControlError, fmt.Sprintf("only_if: %v", err)
			return
		case v.Equal(types.False) == types.True:
			r.Status = report.ControlSkipped
			r.Message = c.SkipMessage
			if r.Message == "" {
				r.Message = "only_if is false: " + oneLine(c.OnlyIf.Src)
			}
			return
		case v.Type() != types.BoolType:
			r.Status, r.Message = report.ControlError, fmt.Sprintf("only_if gave %s, want bool", v.Type().TypeName())
			return
		}
	}
	var failed, errored []string
	for i, ck := range c.Checks {
		cr := report.CheckResult{Desc: ck.Desc, StartTime: time.Now().UTC()}
		v, err := e.eval(s, act, &ck.prog)
		cr.RunTime = time.Since(cr.StartTime)
		switch {
		case err != nil:
			cr.Status, cr.Message = report.ControlError, err.Error()
			errored = append(errored, fmt.Sprintf("check %d (%s): %v", i+1, ck.Desc, err))
		case v == types.True:
			cr.Status = report.ControlPassed
		case v == types.False:
			cr.Status = report.ControlFailed
			cr.Message = "expected true: " + oneLine(ck.Src)
			if ck.Observed != nil {
				if ov, err := e.eval(s, act, &ck.Observed.prog); err == nil {
					cr.Message = "observed " + formatVal(ov)
				}
			}
			failed = append(failed, fmt.Sprintf("check %d (%s): %s", i+1, ck.Desc, cr.Message))
		default:
			cr.Status, cr.Message = report.ControlError, fmt.Sprintf("expression gave %s, want bool", v.Type().TypeName())
			errored = append(errored, fmt.Sprintf("check %d (%s): %s", i+1, ck.Desc, cr.Message))
		}
		r.Checks = append(r.Checks, cr)
	}
	switch {
	case len(failed) > 0:
		r.Status, r.Message = report.ControlFailed, strings.Join(append(failed, errored...), "; ")
	case len(errored) > 0:
		r.Status, r.Message = report.ControlError, strings.Join(errored, "; ")
	default:
		r.Status = report.ControlPassed
	}
}

// eval runs one program under the check timeout; an error value is returned as an error.
func (e *Engine) eval(s *session, act cel.Activation, prog *cel.Program) (ref.Val, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.lim.CheckTimeout)
	defer cancel()
	v, _, err := (*prog).ContextEval(ctx, act)
	if err != nil {
		return nil, err
	}
	if types.IsError(v) {
		return nil, v.(*types.Err)
	}
	return v, nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// maxObserved bounds how much of an observed value goes into a message (a SIEM event, a table cell).
const (
	maxObservedItems = 20
	maxObservedBytes = 2000
)

// formatVal renders a CEL value for a failure message: strings quoted, lists and maps shortened.
func formatVal(v ref.Val) string {
	var b strings.Builder
	writeVal(&b, v, 0)
	s := b.String()
	if len(s) > maxObservedBytes {
		s = s[:maxObservedBytes] + "..."
	}
	return s
}

func writeVal(b *strings.Builder, v ref.Val, depth int) {
	if depth > 8 || b.Len() > maxObservedBytes {
		b.WriteString("...")
		return
	}
	switch t := v.(type) {
	case types.String:
		b.WriteString(strconv.Quote(string(t)))
	case *object:
		if fd, ok := t.v.(*fileData); ok {
			fmt.Fprintf(b, "file(%q)", fd.path)
			return
		}
		b.WriteString(t.t.name)
	case traits.Lister:
		n, _ := t.Size().(types.Int)
		b.WriteByte('[')
		for i := types.Int(0); i < n; i++ {
			if i == maxObservedItems {
				fmt.Fprintf(b, ", ... %d more", n-i)
				break
			}
			if i > 0 {
				b.WriteString(", ")
			}
			writeVal(b, t.Get(i), depth+1)
		}
		b.WriteByte(']')
	case traits.Mapper:
		// Keys in order: a map's iteration order is random, and a message must not change between two evaluations
		// of the same files (each change is a SIEM event, and the image cache compares results).
		type entry struct {
			key string
			k   ref.Val
		}
		var keys []entry
		for it := t.Iterator(); it.HasNext() == types.True; {
			k := it.Next()
			var kb strings.Builder
			writeVal(&kb, k, depth+1)
			keys = append(keys, entry{kb.String(), k})
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i].key < keys[j].key })
		b.WriteByte('{')
		for i, e := range keys {
			if i == maxObservedItems {
				b.WriteString(", ...")
				break
			}
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(e.key)
			b.WriteString(": ")
			writeVal(b, t.Get(e.k), depth+1)
		}
		b.WriteByte('}')
	default:
		fmt.Fprint(b, v.Value())
	}
}
