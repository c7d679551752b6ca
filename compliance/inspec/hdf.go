package inspec

import (
	"fmt"
	"path/filepath"
	"sort"

	"github.com/rootscan/rootscan/compliance"
)

var _ compliance.ProfileRunner = (*Runner)(nil)

// Name implements compliance.ProfileRunner.
func (r *Runner) Name() string { return r.Profile.Name }

// HDFProfile implements compliance.ProfileRunner: the profile as InSpec describes it in exec JSON.
func (r *Runner) HDFProfile() compliance.HDFProfile {
	p := r.Profile
	hp := compliance.HDFProfile{
		Name: p.Name, Title: p.Title, Version: p.Version, Maintainer: p.Maintainer, Summary: p.Summary,
		License: p.License, Copyright: p.Copyright, SHA256: p.SHA256, Status: "loaded",
		Supports: []map[string]any{}, Attributes: []map[string]any{},
	}
	for _, s := range p.Supports {
		hp.Supports = append(hp.Supports, s)
	}
	for _, in := range p.Inputs {
		opts := map[string]any{"required": in.Required}
		if in.Value != nil {
			opts["value"] = in.Value
		}
		if v, ok := r.Inputs[in.Name]; ok {
			opts["value"] = v
		}
		if in.Sensitive {
			opts["value"] = "***"
			opts["sensitive"] = true
		}
		if in.Description != "" {
			opts["description"] = in.Description
		}
		if in.Type != "" {
			opts["type"] = in.Type
		}
		hp.Attributes = append(hp.Attributes, map[string]any{"name": in.Name, "options": opts})
	}
	return hp
}

// HDFControl implements compliance.ProfileRunner: the control's metadata as InSpec records it.
func (r *Runner) HDFControl(id string) (compliance.HDFControl, string, bool) {
	c := r.ControlOf(id)
	if c == nil {
		return compliance.HDFControl{}, "", false
	}
	return r.staticHDF(c, id), c.File, true
}

// staticHDF is a control's HDF as its source defines it, without results.
func (r *Runner) staticHDF(c *Control, id string) compliance.HDFControl {
	hc := compliance.HDFControl{
		ID: id, Descriptions: []compliance.Description{}, Refs: []map[string]string{}, Tags: map[string]any{},
		Code: c.Code, SourceLocation: compliance.HDFSourceLocation{Ref: filepath.Join(r.sourceOf(c), c.File), Line: c.Line},
		Results: []compliance.HDFResult{},
	}
	if c.Impact != nil {
		hc.Impact = *c.Impact
	} else {
		hc.Impact = 0.5
	}
	if c.Title != "" {
		t := c.Title
		hc.Title = &t
	}
	if c.Desc != "" {
		d := c.Desc
		hc.Desc = &d
	}
	for _, d := range c.Descriptions {
		hc.Descriptions = append(hc.Descriptions, compliance.Description{Label: d.Label, Data: d.Data})
	}
	for _, ref := range c.Refs {
		m := map[string]string{}
		keys := make([]string, 0, len(ref))
		for k := range ref {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			m[k] = fmt.Sprint(ref[k])
		}
		hc.Refs = append(hc.Refs, m)
	}
	for _, t := range c.Tags {
		hc.Tags[t.Key] = t.Value // InSpec keeps the tag's Ruby value: a string, a list, nil for a bare tag
	}
	return hc
}

// sourceOf is where a control's file is: the runner's profile, or the dependency the control came from.
func (r *Runner) sourceOf(c *Control) string {
	if c.src != "" {
		return c.src
	}
	return r.Profile.Source
}

// HDFDependencies implements the compliance package's dependency profiles: every loaded dependency, nested
// ones too, as InSpec lists them after the overlay (parent_profile, controls as the dependency defines them),
// without results: the compliance package gives them the overlay's.
func (r *Runner) HDFDependencies() []compliance.HDFProfile {
	var out []compliance.HDFProfile
	r.hdfDeps(r.Profile, &out, 0)
	return out
}

func (r *Runner) hdfDeps(p *Profile, out *[]compliance.HDFProfile, depth int) {
	if depth >= maxDepDepth {
		return
	}
	for _, d := range p.Deps {
		if d.Profile == nil {
			continue
		}
		dr := &Runner{Profile: d.Profile, Inputs: r.Inputs}
		hp := dr.HDFProfile()
		hp.ParentProfile = p.Name
		hp.Controls, hp.Groups = []compliance.HDFControl{}, []compliance.HDFGroup{}
		groups := map[string]int{}
		for _, c := range d.Profile.Controls {
			hc := dr.staticHDF(c, c.ID)
			hp.Controls = append(hp.Controls, hc)
			gi, ok := groups[c.File]
			if !ok {
				gi = len(hp.Groups)
				groups[c.File] = gi
				hp.Groups = append(hp.Groups, compliance.HDFGroup{ID: c.File, Controls: []string{}})
			}
			hp.Groups[gi].Controls = append(hp.Groups[gi].Controls, c.ID)
		}
		*out = append(*out, hp)
		r.hdfDeps(d.Profile, out, depth+1)
	}
}
