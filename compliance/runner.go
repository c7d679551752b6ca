package compliance

import (
	"context"
	"time"

	"github.com/rootscan/rootscan/report"
)

// ProfileRunner is a profile written in another rule language (an InSpec profile) that an Engine evaluates next to
// its CEL profiles, on the same view of the target: the same reads, bounds, waivers and HDF document. It is defined
// here so that compliance does not depend on the languages it runs.
type ProfileRunner interface {
	// Name is the profile's name, which its results carry in ControlResult.Profile.
	Name() string
	// Evaluate runs the profile's controls on t; it must return when ctx ends.
	Evaluate(ctx context.Context, t *Target) []report.ControlResult
	// HDFProfile is the profile's HDF metadata (name, version, sha256, supports, inputs), without controls.
	HDFProfile() HDFProfile
	// HDFControl is the HDF description of the control a result id came from (title, descs, tags, code,
	// source location) without results, and the group (file) it belongs to; false when the id is unknown.
	HDFControl(id string) (HDFControl, string, bool)
}

// runRunners evaluates the engine's ProfileRunners in the session of the CEL profiles, those the scope gives
// the target, and applies the waivers.
func (e *Engine) runRunners(s *session, out []report.ControlResult) []report.ControlResult {
	t := &Target{s: s}
	for i, r := range e.Runners {
		if s.ctx.Err() != nil {
			break
		}
		if !e.runnerInScope(i, s.tgt) {
			continue
		}
		for _, res := range r.Evaluate(s.ctx, t) {
			e.applyWaiver(res.ID, &res)
			out = append(out, res)
		}
	}
	return out
}

// runnerInScope says whether the scope gives t the profile of runner i.
func (e *Engine) runnerInScope(i int, t report.Target) bool {
	return len(e.Scope.Select([]*Profile{{Name: e.Runners[i].Name()}}, t)) > 0
}

// hdfDependencies is a ProfileRunner whose profile includes other profiles' controls (an InSpec overlay): as
// InSpec writes it, each dependency is a profile of its own naming its parent_profile, with its controls as the
// dependency defines them; the overlay's profile carries the merged metadata. HDFDependencies returns them
// without results.
type hdfDependencies interface {
	HDFDependencies() []HDFProfile
}

// hdfDependencyProfiles gives the dependency profiles' controls the results the overlay's controls of the same
// id have; a control the overlay did not run (skip_control, require_controls) is left out, as HDF wants every
// control to have a result.
func (e *Engine) hdfDependencyProfiles(rep report.Report, overlay string, deps []HDFProfile) []HDFProfile {
	byID := map[string]report.ControlResult{}
	for _, res := range rep.Result.Compliance {
		if res.Profile == overlay {
			byID[res.ID] = res
		}
	}
	var out []HDFProfile
	for _, hp := range deps {
		kept := hp.Controls[:0]
		for _, hc := range hp.Controls {
			res, ok := byID[hc.ID]
			if !ok {
				continue
			}
			hc.Results, hc.WaiverData = e.hdfOutcome(res.ID, res, startedAt(rep))
			kept = append(kept, hc)
		}
		hp.Controls = kept
		for i := range hp.Groups {
			ids := hp.Groups[i].Controls[:0]
			for _, id := range hp.Groups[i].Controls {
				if _, ok := byID[id]; ok {
					ids = append(ids, id)
				}
			}
			hp.Groups[i].Controls = ids
		}
		if len(hp.Controls) > 0 {
			out = append(out, hp)
		}
	}
	return out
}

// hdfRunners adds the profiles of the ProfileRunners that have results in rep to doc, and counts their statuses.
func (e *Engine) hdfRunners(rep report.Report, doc *HDF, counts map[string]int) {
	if rep.Result == nil {
		return
	}
	for _, r := range e.Runners {
		hp := r.HDFProfile()
		hp.Controls, hp.Groups = []HDFControl{}, []HDFGroup{}
		groups := map[string]int{}
		for _, res := range rep.Result.Compliance {
			if res.Profile != r.Name() {
				continue
			}
			hc, group, ok := r.HDFControl(res.ID)
			if !ok {
				continue
			}
			counts[res.Status]++
			if res.Title != "" { // a control made in a loop interpolates its title
				title := res.Title
				hc.Title = &title
			}
			hc.Impact = res.Impact // an only_if may have set it
			hc.Results, hc.WaiverData = e.hdfOutcome(res.ID, res, startedAt(rep))
			hp.Controls = append(hp.Controls, hc)
			gi, ok := groups[group]
			if !ok {
				gi = len(hp.Groups)
				groups[group] = gi
				hp.Groups = append(hp.Groups, HDFGroup{ID: group, Controls: []string{}})
			}
			hp.Groups[gi].Controls = append(hp.Groups[gi].Controls, res.ID)
		}
		if len(hp.Controls) > 0 {
			doc.Profiles = append(doc.Profiles, hp)
			if d, ok := r.(hdfDependencies); ok {
				doc.Profiles = append(doc.Profiles, e.hdfDependencyProfiles(rep, r.Name(), d.HDFDependencies())...)
			}
		}
	}
}

func startedAt(rep report.Report) time.Time { return rep.StartedAt }
