package compliance

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/rootscan/rootscan/report"
	yaml "go.yaml.in/yaml/v3"
)

// Waiver is an accepted exception to one control, in the shape of an InSpec waiver file entry: why, until when,
// and whether the control still runs (its results are then reported, but it does not count).
type Waiver struct {
	Justification string
	// Expires is the last day the waiver applies (InSpec's expiration_date); zero means it never expires.
	Expires time.Time
	// Run keeps evaluating the control while waived, so its results stay visible (InSpec's default).
	Run bool
}

// Waivers map control ids to their waiver.
type Waivers map[string]Waiver

type rawWaiver struct {
	Justification  string `yaml:"justification"`
	ExpirationDate string `yaml:"expiration_date"`
	Run            *bool  `yaml:"run"`
}

// ParseWaivers reads an InSpec waiver file:
//
//	control-id:
//	  justification: "why this is accepted"
//	  expiration_date: 2026-12-31
//	  run: false
func ParseWaivers(source string, data []byte) (Waivers, error) {
	if len(data) > MaxProfileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", source, MaxProfileBytes)
	}
	var raw map[string]rawWaiver
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		return nil, yamlError(source, err)
	}
	out := Waivers{}
	ids := make([]string, 0, len(raw))
	for id := range raw {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		r := raw[id]
		if strings.TrimSpace(r.Justification) == "" {
			return nil, fmt.Errorf("%s: waiver for %s has no justification", source, id)
		}
		w := Waiver{Justification: r.Justification, Run: r.Run == nil || *r.Run}
		if r.ExpirationDate != "" {
			t, err := parseDate(r.ExpirationDate)
			if err != nil {
				return nil, fmt.Errorf("%s: waiver for %s: expiration_date %q: want YYYY-MM-DD", source, id, r.ExpirationDate)
			}
			w.Expires = t
		}
		out[id] = w
	}
	return out, nil
}

func parseDate(s string) (time.Time, error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Parse(time.RFC3339, s)
}

// Active says whether the waiver applies at now: through its whole expiration day, like InSpec.
func (w Waiver) Active(now time.Time) bool {
	return w.Expires.IsZero() || now.Before(w.Expires.AddDate(0, 0, 1))
}

// applyWaiver turns a waived control into a skipped one (its checks still listed when the waiver runs it); an
// expired waiver changes nothing but the message, so the finding is back.
func (e *Engine) applyWaiver(id string, r *report.ControlResult) {
	w, ok := e.Waivers[id]
	if !ok {
		return
	}
	now := time.Now()
	if e.Now != nil {
		now = e.Now()
	}
	if !w.Active(now) {
		note := fmt.Sprintf("waiver expired on %s", w.Expires.Format("2006-01-02"))
		if r.Message == "" {
			r.Message = note
		} else {
			r.Message = note + "; " + r.Message
		}
		return
	}
	msg := "waived: " + w.Justification
	if !w.Expires.IsZero() {
		msg += " (until " + w.Expires.Format("2006-01-02") + ")"
	}
	if w.Run && r.Status != report.ControlSkipped {
		msg += "; control " + r.Status
		if r.Message != "" {
			msg += ": " + r.Message
		}
	} else if !w.Run {
		r.Checks = nil
	}
	r.Status, r.Message = report.ControlSkipped, msg
	r.Waiver = &report.Waiver{Justification: w.Justification, Expires: w.Expires}
}
