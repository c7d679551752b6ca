package compliance

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"

	"cel.dev/cel-go/cel"

	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// ImageEval is an image's controls, evaluated once on the image's own filesystem (its layers, without a container's
// upper dir) with what each control read. A container of the image keeps the result of each control that its own
// layer, its volumes and its facts cannot have changed, and only the others are evaluated again on its merged root:
// the baseline's file and account controls then cost once per image, not once per container. Controls evaluated
// on a container's root are kept too, for the image's other containers with the same upper dir (Delta.Fingerprint)
// and facts: those of one pod template, whose upper dirs hold the same runtime mount points until they write.
//
// The image itself is evaluated only when a container needs it: the first container of an image, or of an upper
// dir, is evaluated on its own root and shares that. It is safe for concurrent use.
type ImageEval struct {
	engine *Engine

	mu        sync.Mutex // held while the image is evaluated
	imageDone bool
	target    report.Target // the facts the image was evaluated with
	// ownInventory: the image was evaluated with a container's inventory, not its own (see imageResults).
	ownInventory bool
	controls     map[*Control]imageControl
	// tree is the image's files() listing, from which a container's is made with its delta (see deltaTree).
	tree *imageTree
	// listing is the image's files() listing from the image's analysis walk (ListingCollector), until a container
	// takes it (takeListing).
	listing *imageTree
	// shared are the controls evaluated on containers' merged roots, by sharedFor's key.
	shared map[string]map[*Control]sharedEval
	// runs and sharedRuns are the same for the engine's ProfileRunners (InSpec profiles), by index in
	// Engine.Runners. They are not stored on disk: after a restart a runner is evaluated again, then shared.
	runs       map[int]imageRun
	sharedRuns map[string]map[int]sharedRun
	// firsts serialize the first evaluations of each key (see first).
	firsts map[string]*sync.Mutex
	gen    uint64 // bumped by every change to the results (see Generation)
}

type imageControl struct {
	result report.ControlResult // waivers not applied: they expire, and are applied per container
	reads  readSet
}

// imageRun is one ProfileRunner's results (waivers not applied) and what the whole run read. A runner's controls
// share file-level code, inputs and libraries, so its reads are recorded, and its results reused, together.
type imageRun struct {
	results []report.ControlResult
	reads   readSet
}

// NewImageEval makes an image's evaluation, empty until a container's asks for it.
func (e *Engine) NewImageEval() *ImageEval { return &ImageEval{engine: e} }

// Engine is the engine the evaluation was made with; a container evaluated with another (profiles reloaded) is
// evaluated in full.
func (ie *ImageEval) Engine() *Engine { return ie.engine }

// Reads is how many reads the evaluation recorded over all controls: a measure of what it keeps in memory.
func (ie *ImageEval) Reads() int {
	ie.mu.Lock()
	defer ie.mu.Unlock()
	n := 0
	for _, c := range ie.controls {
		n += len(c.reads.reads)
	}
	for _, m := range ie.shared {
		for _, c := range m {
			n += len(c.reads.reads)
		}
	}
	for _, r := range ie.runs {
		n += len(r.reads.reads)
	}
	for _, m := range ie.sharedRuns {
		for _, r := range m {
			n += len(r.reads.reads)
		}
	}
	return n
}

// TreeBytes is about how many bytes the image's files() listing kept for its containers takes (0: none kept).
func (ie *ImageEval) TreeBytes() int {
	ie.mu.Lock()
	defer ie.mu.Unlock()
	if ie.tree == nil {
		return 0
	}
	return ie.tree.bytes
}

// EvaluateImage evaluates every control of every profile (scopes pick per container) on fsys, the image's own
// filesystem, with t's facts and res's inventory. A result made under a cancelled context must not be kept.
func (e *Engine) EvaluateImage(ctx context.Context, fsys scan.FS, t report.Target, res *report.Result) *ImageEval {
	ie := e.NewImageEval()
	ie.evaluateImage(ctx, fsys, t, res, false)
	return ie
}

// evaluateImage fills the image's results; the caller holds mu. ownInventory says res is a container's inventory,
// not the image's.
func (ie *ImageEval) evaluateImage(ctx context.Context, fsys scan.FS, t report.Target, res *report.Result, ownInventory bool) {
	e := ie.engine
	s, act, err := e.newSession(ctx, fsys, t, nil, res, nil, nil)
	s.view.rec = &readLog{}
	controls := map[*Control]imageControl{}
	for _, p := range e.Profiles {
		for _, c := range p.Controls {
			s.view.rec.reset()
			r := e.evalOne(s, act, err, p, c)
			controls[c] = imageControl{result: r, reads: s.view.rec.set()}
		}
	}
	runs := map[int]imageRun{}
	for i, r := range e.Runners {
		s.view.rec.reset()
		res := r.Evaluate(ctx, &Target{s: s})
		runs[i] = imageRun{results: res, reads: s.view.rec.set()}
	}
	if ctx.Err() == nil {
		ie.imageDone, ie.target, ie.controls, ie.ownInventory = true, t, controls, ownInventory
		ie.runs = runs
		ie.tree = keepTree(s)
		ie.listing = nil
		ie.gen++
	}
}

// imageResults returns the image's results, evaluating the image on the root image returns if no container did
// yet; ok is false when that failed (the container is then evaluated on its own root).
// ownInventory says the image was evaluated with a container's inventory (the image's own was not at hand): its
// packages() results then hold for no other container.
func (ie *ImageEval) imageResults(ctx context.Context, image func() (scan.FS, error), t report.Target, res *report.Result, d Delta) (_ map[*Control]imageControl, _ map[int]imageRun, _ report.Target, ownInventory, ok bool) {
	ie.mu.Lock()
	defer ie.mu.Unlock()
	if !ie.imageDone && image != nil {
		if root, err := image(); err == nil {
			ie.evaluateImage(ctx, root, t, res, d.InventoryChanged)
		}
	}
	return ie.controls, ie.runs, ie.target, ie.ownInventory, ie.imageDone
}

// wantsImage says whether a container with key should use the image's results: when the image was evaluated, and
// when the container is the image's second upper dir (or has none to share), since the image then pays for itself.
// The first container of an image is evaluated on its own root alone, which costs less than the image plus its
// delta.
func (ie *ImageEval) wantsImage(key string) bool {
	ie.mu.Lock()
	defer ie.mu.Unlock()
	return ie.imageDone || key == "" || len(ie.shared) > 0 && ie.shared[key] == nil
}

// DeltaStats counts a container's controls by where their result came from: the image's evaluation, another
// container's with the same upper dir (Shared), or a new evaluation on the container's root.
type DeltaStats struct {
	Kept, Shared, Evaluated int
	// Listed is 1 when the merged root's files() listing was made from the image's and the delta instead of a walk.
	Listed int
}

// maxShared bounds how many distinct container layers an image remembers evaluations for.
const maxShared = 16

// sharedEval is a control evaluated on one container's merged root, kept for the image's containers with the same
// upper dir and facts.
type sharedEval struct {
	imageControl
	sharedWith
}

// sharedRun is a ProfileRunner's run on one container's merged root, kept as a sharedEval is.
type sharedRun struct {
	imageRun
	sharedWith
}

// sharedWith is what a shared evaluation was made with.
type sharedWith struct {
	volumes []string      // the volumes it was evaluated with
	target  report.Target // the facts it was evaluated with
}

// usable says whether an evaluation with reads, shared from a container with sw, holds for a container with vols
// and t: its reads reach neither's volumes, and the facts it read are the same.
func (sw sharedWith) usable(reads readSet, vols []string, t report.Target) bool {
	return factsDiffer(sw.target, t, Delta{})&reads.facts == 0 && !volumesTouch(reads, sw.volumes, vols)
}

// Evaluate returns the container's results, the same as Engine.Evaluate on its merged root (the image with its
// upper dir) with vols would: the image's result for each control d and the container's facts do not touch, a
// container's with the same Fingerprint for the controls evaluated for it, and a new evaluation for the others,
// on the root merged returns (called at most once, and only when a control needs it). The image is evaluated, on
// the root image returns, when the image's second upper dir needs it (see wantsImage). An error is kept like any result: it came from the same
// reads (a wall-clock timeout is the exception, and as likely on any evaluation). d's volumes are taken from vols.
func (ie *ImageEval) Evaluate(ctx context.Context, image, merged func() (scan.FS, error), t report.Target, vols []Volume, res *report.Result, d Delta) ([]report.ControlResult, DeltaStats, error) {
	e := ie.engine
	var volPaths []string
	for _, v := range vols {
		if v.FS != nil && cleanPath(v.ContainerPath) != "/" {
			volPaths = append(volPaths, v.ContainerPath)
		}
	}
	d.Volumes = append(d.Volumes, volPaths...)
	key, shared, sharedRuns := ie.sharedFor(d)
	if key != "" && shared == nil && sharedRuns == nil {
		// The first container of this layer: others with it (a pod's replicas, checked at once) wait for its
		// results instead of evaluating the same controls beside it.
		defer ie.first(key)()
		key, shared, sharedRuns = ie.sharedFor(d)
	}
	sel := e.Scope.Select(e.Profiles, t)
	var (
		controls map[*Control]imageControl
		runs     map[int]imageRun
		idx      *deltaIndex
		differ   fact
		tree     *imageTree
	)
	all := e.allShared(sel, shared, sharedRuns, volPaths, t)
	if !all && ie.wantsImage(key) {
		var target report.Target
		var own, ok bool
		if controls, runs, target, own, ok = ie.imageResults(ctx, image, t, res, d); ok {
			inv := d
			inv.InventoryChanged = inv.InventoryChanged || own
			idx, differ = newDeltaIndex(d), factsDiffer(target, t, inv)
			tree = ie.keptTree()
		}
	}
	if tree == nil && !all {
		// The image's listing from its analysis, if any: the container's files() is made from it and d all the same.
		tree = ie.takeListing()
	}
	ev := containerEval{e: e, ctx: ctx, merged: merged, t: t, vols: vols, res: res, tree: tree, delta: &d}
	var (
		st    DeltaStats
		out   []report.ControlResult
		fresh map[*Control]sharedEval
	)
	for _, p := range sel {
		for _, c := range p.Controls {
			var r report.ControlResult
			if ic, ok := controls[c]; ok && !idx.touches(ic.reads, differ) {
				r = ic.result
				st.Kept++
			} else if se, ok := shared[c]; ok && se.usable(se.reads, volPaths, t) {
				r = se.result
				st.Shared++
			} else {
				var rs readSet
				var err error
				if r, rs, err = ev.eval(p, c); err != nil {
					return nil, st, err
				}
				st.Evaluated++
				if key != "" {
					if fresh == nil {
						fresh = map[*Control]sharedEval{}
					}
					fresh[c] = sharedEval{imageControl{r, rs}, sharedWith{volPaths, t}}
				}
			}
			r.Checks = slices.Clone(r.Checks)
			e.applyWaiver(c.ID, &r)
			out = append(out, r)
		}
	}
	out, freshRuns, err := ev.runners(out, runs, idx, differ, sharedRuns, volPaths, &st, key != "")
	if err != nil {
		return nil, st, err
	}
	if ev.s != nil && ev.s.treeMerged {
		st.Listed = 1
	}
	if ctx.Err() == nil {
		ie.share(key, fresh, freshRuns)
	}
	return out, st, nil
}

func (ie *ImageEval) keptTree() *imageTree {
	ie.mu.Lock()
	defer ie.mu.Unlock()
	return ie.tree
}

// takeListing returns the image's listing from its analysis and forgets it: it serves the first container evaluated
// on its own root (a later one of another upper dir has the image evaluated, which keeps its own listing), and is not
// held at rest, where it would cost memory per image.
func (ie *ImageEval) takeListing() *imageTree {
	ie.mu.Lock()
	defer ie.mu.Unlock()
	if ie.tree != nil {
		return ie.tree
	}
	l := ie.listing
	ie.listing = nil
	return l
}

// allShared says whether every control of profiles, and every runner in t's scope, has a shared result usable with
// vols and t.
func (e *Engine) allShared(profiles []*Profile, shared map[*Control]sharedEval, runs map[int]sharedRun, vols []string, t report.Target) bool {
	for _, p := range profiles {
		for _, c := range p.Controls {
			if se, ok := shared[c]; !ok || !se.usable(se.reads, vols, t) {
				return false
			}
		}
	}
	for i := range e.Runners {
		if sr, ok := runs[i]; e.runnerInScope(i, t) && (!ok || !sr.usable(sr.reads, vols, t)) {
			return false
		}
	}
	return true
}

// volumesTouch says whether reads reach the volumes a shared evaluation was made with or the container's.
func volumesTouch(reads readSet, shared, vols []string) bool {
	if len(shared) == 0 && len(vols) == 0 {
		return false
	}
	idx := newDeltaIndex(Delta{Volumes: append(slices.Clone(shared), vols...)})
	return idx.touches(reads, 0)
}

// containerEval evaluates controls on one container's merged root, opened and bound on first use, recording what
// each control read.
type containerEval struct {
	e      *Engine
	ctx    context.Context
	merged func() (scan.FS, error)
	t      report.Target
	vols   []Volume
	res    *report.Result
	// tree and delta make the merged root's files() listing from the image's (nil tree: it is walked).
	tree  *imageTree
	delta *Delta

	s       *session
	act     cel.Activation
	bindErr error
}

func (c *containerEval) eval(p *Profile, ctl *Control) (report.ControlResult, readSet, error) {
	if err := c.open(); err != nil {
		return report.ControlResult{}, readSet{}, err
	}
	c.s.view.rec.reset()
	r := c.e.evalOne(c.s, c.act, c.bindErr, p, ctl)
	return r, c.s.view.rec.set(), nil
}

// open opens the merged root and binds the session on first use.
func (c *containerEval) open() error {
	if c.s != nil {
		return nil
	}
	root, err := c.merged()
	if err != nil {
		return err
	}
	c.s, c.act, c.bindErr = c.e.newSession(c.ctx, root, c.t, c.vols, c.res, nil, nil)
	c.s.view.rec = &readLog{}
	if c.tree != nil {
		c.s.treeBase, c.s.treeDelta = c.tree, c.delta
	}
	return nil
}

// runners adds the results of the engine's ProfileRunners (InSpec profiles) in the target's scope, as Evaluate does
// a control's: a run's results are the image's where the delta and the facts do not touch what the whole run read,
// another container's with the same layer, or a new run on the merged root. The new runs are returned, to share
// when record is set.
func (c *containerEval) runners(out []report.ControlResult, img map[int]imageRun, idx *deltaIndex, differ fact, shared map[int]sharedRun, vols []string, st *DeltaStats, record bool) ([]report.ControlResult, map[int]sharedRun, error) {
	var fresh map[int]sharedRun
	for i, r := range c.e.Runners {
		if c.ctx.Err() != nil {
			break
		}
		if !c.e.runnerInScope(i, c.t) {
			continue
		}
		var res []report.ControlResult
		if ir, ok := img[i]; ok && !idx.touches(ir.reads, differ) {
			res = ir.results
			st.Kept += len(res)
		} else if sr, ok := shared[i]; ok && sr.usable(sr.reads, vols, c.t) {
			res = sr.results
			st.Shared += len(res)
		} else {
			if err := c.open(); err != nil {
				return nil, nil, err
			}
			c.s.view.rec.reset()
			res = r.Evaluate(c.ctx, &Target{s: c.s})
			st.Evaluated += len(res)
			if record {
				if fresh == nil {
					fresh = map[int]sharedRun{}
				}
				fresh[i] = sharedRun{imageRun{res, c.s.view.rec.set()}, sharedWith{vols, c.t}}
			}
		}
		for _, cr := range res {
			cr.Checks = slices.Clone(cr.Checks)
			c.e.applyWaiver(cr.ID, &cr)
			out = append(out, cr)
		}
	}
	return out, fresh, nil
}

// sharedFor is the key of the container's layer among the image's containers, and what was evaluated for earlier
// containers with that key; "" when the layer has no fingerprint. Facts and volumes are compared per control
// (sharedEval.usable): the containers of two pods have different host paths for their volumes, and controls that do
// not read them are still shared.
func (ie *ImageEval) sharedFor(d Delta) (string, map[*Control]sharedEval, map[int]sharedRun) {
	if d.Fingerprint == "" || d.Unknown {
		return "", nil, nil
	}
	key := fmt.Sprintf("%s inventory=%t", d.Fingerprint, d.InventoryChanged)
	ie.mu.Lock()
	defer ie.mu.Unlock()
	// Copies: another container of the layer may add to them (share) while this one reads them.
	return key, maps.Clone(ie.shared[key]), maps.Clone(ie.sharedRuns[key])
}

// first locks the evaluation of the first container with key and returns the unlock.
func (ie *ImageEval) first(key string) func() {
	ie.mu.Lock()
	if ie.firsts == nil {
		ie.firsts = map[string]*sync.Mutex{}
	}
	m, ok := ie.firsts[key]
	if !ok {
		if len(ie.firsts) >= maxShared {
			ie.mu.Unlock()
			return func() {}
		}
		m = &sync.Mutex{}
		ie.firsts[key] = m
	}
	ie.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// share remembers the controls and runs evaluated for a container with key.
func (ie *ImageEval) share(key string, fresh map[*Control]sharedEval, runs map[int]sharedRun) {
	if key == "" || len(fresh) == 0 && len(runs) == 0 {
		return
	}
	ie.mu.Lock()
	defer ie.mu.Unlock()
	if len(fresh) > 0 && addShared(&ie.shared, key, fresh) {
		ie.gen++ // stored on disk: a change to save
	}
	if len(runs) > 0 {
		addShared(&ie.sharedRuns, key, runs)
	}
}

// addShared adds fresh to (*m)[key], within maxShared keys; it says whether it did.
func addShared[K comparable, V any](m *map[string]map[K]V, key string, fresh map[K]V) bool {
	cur, ok := (*m)[key]
	if !ok {
		if len(*m) >= maxShared {
			return false
		}
		cur = map[K]V{}
		if *m == nil {
			*m = map[string]map[K]V{}
		}
		(*m)[key] = cur
	}
	maps.Copy(cur, fresh)
	return true
}

// factsDiffer are the facts of t that are not those of image, the target the image was evaluated with.
func factsDiffer(image, t report.Target, d Delta) fact {
	f := factProcess // each container has its own running process
	if !reflect.DeepEqual(t.Config, image.Config) {
		f |= factConfig
	}
	if !reflect.DeepEqual(t.Security, image.Security) {
		f |= factSecurity
	}
	if !reflect.DeepEqual(t.Mounts, image.Mounts) {
		f |= factMounts
	}
	if d.InventoryChanged {
		f |= factInventory
	}
	return f
}

// EncodedSize is how many bytes the evaluation takes as JSON (results and reads of the image and of the shared
// container layers): what keeping it with the node's image cache on disk would cost per image.
func (ie *ImageEval) EncodedSize() int {
	type enc struct {
		Result report.ControlResult `json:"result"`
		Reads  []string             `json:"reads"`
		Facts  uint8                `json:"facts"`
	}
	conv := func(ic imageControl) enc {
		e := enc{Result: ic.result, Facts: uint8(ic.reads.facts)}
		for _, r := range ic.reads.reads {
			e.Reads = append(e.Reads, fmt.Sprintf("%d%s", r.kind, r.path))
		}
		return e
	}
	ie.mu.Lock()
	var all []enc
	for _, ic := range ie.controls {
		all = append(all, conv(ic))
	}
	for _, m := range ie.shared {
		for _, se := range m {
			all = append(all, conv(se.imageControl))
		}
	}
	ie.mu.Unlock()
	b, _ := json.Marshal(all)
	return len(b)
}
