package compliance

import (
	"fmt"
	"sort"
	"time"

	"github.com/rootscan/rootscan/report"
)

// HDF is a Heimdall Data Format document (InSpec's "exec JSON"): what MITRE SAF, Heimdall and CINC Auditor users
// load. One document describes one target.
type HDF struct {
	Platform   HDFPlatform   `json:"platform"`
	Profiles   []HDFProfile  `json:"profiles"`
	Statistics HDFStatistics `json:"statistics"`
	Version    string        `json:"version"`
}

// HDFPlatform names the target: the OS found in the root and rootscan's own name for the target.
type HDFPlatform struct {
	Name     string `json:"name"`
	Release  string `json:"release"`
	TargetID string `json:"target_id,omitempty"`
}

// HDFStatistics counts controls by status, as Heimdall's overview does.
type HDFStatistics struct {
	Duration float64                 `json:"duration"`
	Controls map[string]HDFStatCount `json:"controls"`
}

// HDFStatCount is one status's count.
type HDFStatCount struct {
	Total int `json:"total"`
}

// HDFProfile is one profile with its controls' results.
type HDFProfile struct {
	Name       string `json:"name"`
	Title      string `json:"title,omitempty"`
	Version    string `json:"version,omitempty"`
	Maintainer string `json:"maintainer,omitempty"`
	Summary    string `json:"summary,omitempty"`
	License    string `json:"license,omitempty"`
	Copyright  string `json:"copyright,omitempty"`
	SHA256     string `json:"sha256"`
	// ParentProfile names the profile that includes this one's controls (an InSpec overlay's dependency).
	ParentProfile string           `json:"parent_profile,omitempty"`
	Status        string           `json:"status"`
	Supports      []map[string]any `json:"supports"`
	Attributes    []map[string]any `json:"attributes"`
	Groups        []HDFGroup       `json:"groups"`
	Controls      []HDFControl     `json:"controls"`
}

// HDFGroup groups a profile's controls by the file they came from.
type HDFGroup struct {
	ID       string   `json:"id"`
	Title    string   `json:"title,omitempty"`
	Controls []string `json:"controls"`
}

// HDFControl is one control and its results.
type HDFControl struct {
	ID             string              `json:"id"`
	Title          *string             `json:"title"`
	Desc           *string             `json:"desc"`
	Descriptions   []Description       `json:"descriptions"`
	Impact         float64             `json:"impact"`
	Refs           []map[string]string `json:"refs"`
	Tags           map[string]any      `json:"tags"`
	Code           string              `json:"code"`
	SourceLocation HDFSourceLocation   `json:"source_location"`
	Results        []HDFResult         `json:"results"`
	WaiverData     *HDFWaiverData      `json:"waiver_data,omitempty"`
}

// HDFSourceLocation is where the control is written.
type HDFSourceLocation struct {
	Ref  string `json:"ref"`
	Line int    `json:"line"`
}

// HDFResult is one check's outcome.
type HDFResult struct {
	Status      string  `json:"status"`
	CodeDesc    string  `json:"code_desc"`
	Message     string  `json:"message,omitempty"`
	SkipMessage string  `json:"skip_message,omitempty"`
	Exception   string  `json:"exception,omitempty"`
	StartTime   string  `json:"start_time"`
	RunTime     float64 `json:"run_time"`
}

// HDFWaiverData records a waiver the way InSpec does (its fields are strings in the HDF schema).
type HDFWaiverData struct {
	Justification      string `json:"justification"`
	ExpirationDate     string `json:"expiration_date,omitempty"`
	Run                bool   `json:"run"`
	SkippedDueToWaiver string `json:"skipped_due_to_waiver"`
	Message            string `json:"message,omitempty"`
}

// HDFVersion is the exec-JSON version the documents claim (InSpec 5's shape, which Heimdall reads).
const HDFVersion = "5.22.3"

// HDF builds the document of one target's report from the engine's profiles and the results in the report.
// Controls without a result (the profile was out of the target's scope) are left out, and so are such profiles.
func (e *Engine) HDF(rep report.Report) HDF {
	doc := HDF{Version: HDFVersion, Profiles: []HDFProfile{}, Statistics: HDFStatistics{
		Duration: rep.Duration.Seconds(),
		Controls: map[string]HDFStatCount{},
	}}
	doc.Platform = HDFPlatform{Name: "unknown", Release: "unknown", TargetID: rep.Target.Name()}
	if rep.Result != nil && rep.Result.OS != nil {
		doc.Platform.Name, doc.Platform.Release = rep.Result.OS.ID, rep.Result.OS.VersionID
	}
	results := map[[2]string]report.ControlResult{}
	if rep.Result != nil {
		for _, r := range rep.Result.Compliance {
			results[[2]string{r.Profile, r.ID}] = r
		}
	}
	counts := map[string]int{report.ControlPassed: 0, report.ControlFailed: 0, report.ControlSkipped: 0}
	for _, p := range e.Profiles {
		hp := HDFProfile{
			Name: p.Name, Title: p.Title, Version: p.Version, Maintainer: p.Maintainer, Summary: p.Summary,
			License: p.License, Copyright: p.Copyright, SHA256: p.SHA256, Status: "loaded",
			Supports: []map[string]any{}, Attributes: []map[string]any{}, Controls: []HDFControl{},
		}
		group := HDFGroup{ID: p.Source, Title: p.Title, Controls: []string{}}
		for _, c := range p.Controls {
			r, ok := results[[2]string{p.Name, c.ID}]
			if !ok {
				continue
			}
			counts[r.Status]++
			group.Controls = append(group.Controls, c.ID)
			hp.Controls = append(hp.Controls, e.hdfControl(p, c, r, rep.StartedAt))
		}
		if len(hp.Controls) == 0 {
			continue
		}
		hp.Groups = []HDFGroup{group}
		doc.Profiles = append(doc.Profiles, hp)
	}
	e.hdfRunners(rep, &doc, counts)
	for s, n := range counts {
		doc.Statistics.Controls[s] = HDFStatCount{Total: n}
	}
	return doc
}

func (e *Engine) hdfControl(p *Profile, c *Control, r report.ControlResult, started time.Time) HDFControl {
	title, desc := c.Title, c.Desc
	hc := HDFControl{
		ID: c.ID, Title: &title, Desc: &desc, Descriptions: c.Descriptions, Impact: c.Impact, Refs: c.Refs,
		Tags: map[string]any{}, Code: c.Code, SourceLocation: HDFSourceLocation{Ref: p.Source, Line: c.Line},
		Results: []HDFResult{},
	}
	if hc.Descriptions == nil {
		hc.Descriptions = []Description{}
	}
	if hc.Refs == nil {
		hc.Refs = []map[string]string{}
	}
	keys := make([]string, 0, len(c.Tags))
	for k := range c.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		hc.Tags[k] = hdfTag(c.Tags[k])
	}
	hc.Results, hc.WaiverData = e.hdfOutcome(c.ID, r, started)
	return hc
}

// hdfOutcome is a control's HDF results and waiver data from its result, for CEL controls and those of a
// ProfileRunner alike.
func (e *Engine) hdfOutcome(id string, r report.ControlResult, started time.Time) (results []HDFResult, waiver *HDFWaiverData) {
	results = []HDFResult{}
	for _, ck := range r.Checks {
		hr := HDFResult{Status: ck.Status, CodeDesc: ck.Desc, StartTime: ck.StartTime.Format(time.RFC3339Nano), RunTime: ck.RunTime.Seconds()}
		switch ck.Status {
		case report.ControlError:
			hr.Exception = ck.Message
		case report.ControlSkipped:
			hr.SkipMessage = ck.Message
		default:
			hr.Message = ck.Message
		}
		results = append(results, hr)
	}
	if len(r.Checks) == 0 {
		// Skipped by only_if or by a waiver that does not run the control: one result says why, as InSpec does.
		results = append(results, HDFResult{
			Status: r.Status, CodeDesc: "No-op", SkipMessage: r.Message, StartTime: started.UTC().Format(time.RFC3339Nano),
		})
		if r.Status == report.ControlError {
			results[0].SkipMessage, results[0].Exception = "", r.Message
		}
	}
	if w, ok := e.Waivers[id]; ok {
		wd := &HDFWaiverData{Justification: w.Justification, Run: w.Run, SkippedDueToWaiver: fmt.Sprint(r.Waiver != nil && !w.Run)}
		if !w.Expires.IsZero() {
			wd.ExpirationDate = w.Expires.Format("2006-01-02")
		}
		if r.Waiver == nil {
			wd.Message = "waiver expired on " + wd.ExpirationDate + "; the control was evaluated normally"
		}
		waiver = wd
	}
	return results, waiver
}

// hdfTag writes a tag's values as InSpec does for `tag k: v`: one value is a string, several an array, none null.
// Heimdall reads some tags as strings (severity is lower-cased), so an array of one value breaks every control there.
func hdfTag(vs []string) any {
	switch len(vs) {
	case 0:
		return nil
	case 1:
		return vs[0]
	default:
		return vs
	}
}
