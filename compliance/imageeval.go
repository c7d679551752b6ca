package compliance

import (
	"context"
	"reflect"
	"slices"

	"cel.dev/cel-go/cel"

	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// ImageEval is every control evaluated once on an image's own filesystem (its layers, without a container's upper
// dir), with what each control read. A container of the image keeps the result of each control that its own layer,
// its volumes and its facts cannot have changed, and only the others are evaluated again on its merged root: the
// baseline's file and account controls then cost once per image, not once per container. It is read-only once made
// and may be shared by concurrent container evaluations.
type ImageEval struct {
	engine   *Engine
	target   report.Target // the facts the image was evaluated with
	controls map[*Control]imageControl
}

type imageControl struct {
	result report.ControlResult // waivers not applied: they expire, and are applied per container
	reads  readSet
}

// Engine is the engine the evaluation was made with; a container evaluated with another (profiles reloaded) is
// evaluated in full.
func (ie *ImageEval) Engine() *Engine { return ie.engine }

// Reads is how many reads the evaluation recorded over all controls: a measure of what it keeps in memory.
func (ie *ImageEval) Reads() int {
	n := 0
	for _, c := range ie.controls {
		n += len(c.reads.reads)
	}
	return n
}

// EvaluateImage evaluates every control of every profile (scopes pick per container) on fsys, the image's own
// filesystem, with t's facts and res's inventory. A result made under a cancelled context must not be kept.
func (e *Engine) EvaluateImage(ctx context.Context, fsys scan.FS, t report.Target, res *report.Result) *ImageEval {
	s, act, err := e.newSession(ctx, fsys, t, nil, res, nil, nil)
	s.view.rec = &readLog{}
	ie := &ImageEval{engine: e, target: t, controls: map[*Control]imageControl{}}
	for _, p := range e.Profiles {
		for _, c := range p.Controls {
			s.view.rec.reset()
			r := e.evalOne(s, act, err, p, c)
			ie.controls[c] = imageControl{result: r, reads: s.view.rec.set()}
		}
	}
	return ie
}

// DeltaStats counts a container's controls by where their result came from.
type DeltaStats struct {
	Kept, Evaluated int
}

// Evaluate returns the container's results, the same as Engine.Evaluate on merged (the container's root: the
// image with its upper dir) with vols would: the image's result for each control d and the container's facts do
// not touch, a new evaluation on merged for the others. A control that errored on the image is evaluated again
// (the error may have been transient). d's volumes are taken from vols.
func (ie *ImageEval) Evaluate(ctx context.Context, merged scan.FS, t report.Target, vols []Volume, res *report.Result, d Delta) ([]report.ControlResult, DeltaStats) {
	e := ie.engine
	for _, v := range vols {
		if v.FS != nil && cleanPath(v.ContainerPath) != "/" {
			d.Volumes = append(d.Volumes, v.ContainerPath)
		}
	}
	idx := newDeltaIndex(d)
	differ := ie.factsDiffer(t, d)
	var (
		s       *session
		act     cel.Activation
		bindErr error
		st      DeltaStats
		out     []report.ControlResult
	)
	for _, p := range e.Scope.Select(e.Profiles, t) {
		for _, c := range p.Controls {
			ic, ok := ie.controls[c]
			var r report.ControlResult
			if ok && ic.result.Status != report.ControlError && !idx.touches(ic.reads, differ) {
				r = ic.result
				r.Checks = slices.Clone(r.Checks)
				st.Kept++
			} else {
				if s == nil {
					s, act, bindErr = e.newSession(ctx, merged, t, vols, res, nil, nil)
				}
				r = e.evalOne(s, act, bindErr, p, c)
				st.Evaluated++
			}
			e.applyWaiver(c.ID, &r)
			out = append(out, r)
		}
	}
	return out, st
}

// factsDiffer are the facts of t that are not those the image was evaluated with.
func (ie *ImageEval) factsDiffer(t report.Target, d Delta) fact {
	var f fact
	if !reflect.DeepEqual(t.Config, ie.target.Config) {
		f |= factConfig
	}
	if !reflect.DeepEqual(t.Security, ie.target.Security) {
		f |= factSecurity
	}
	if !reflect.DeepEqual(t.Mounts, ie.target.Mounts) {
		f |= factMounts
	}
	if d.InventoryChanged {
		f |= factInventory
	}
	return f
}
