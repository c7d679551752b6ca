package compliance

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/rootscan/rootscan/report"
	yaml "go.yaml.in/yaml/v3"
)

// Scope chooses which profiles apply to which targets. A profile that no rule names applies everywhere; a profile
// named by rules applies only where one of them matches. So adding a scoped profile never changes where the
// others run.
type Scope struct {
	Rules []ScopeRule `yaml:"scopes"`
}

// ScopeRule applies Profiles (profile names, as in their name: field) to targets in one of Namespaces (any when
// empty) whose pod labels include all of Labels.
type ScopeRule struct {
	Profiles   []string          `yaml:"profiles"`
	Namespaces []string          `yaml:"namespaces"`
	Labels     map[string]string `yaml:"labels"`
}

// ParseScope reads a scope file:
//
//	scopes:
//	  - profiles: [nginx-hardening]
//	    namespaces: [web]
//	    labels: {app: nginx}
func ParseScope(source string, data []byte) (*Scope, error) {
	var s Scope
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, yamlError(source, err)
	}
	for i, r := range s.Rules {
		if len(r.Profiles) == 0 {
			return nil, fmt.Errorf("%s: scope %d names no profiles", source, i+1)
		}
	}
	return &s, nil
}

// Select returns the profiles that apply to t, in their order.
func (s *Scope) Select(profiles []*Profile, t report.Target) []*Profile {
	if s == nil || len(s.Rules) == 0 {
		return profiles
	}
	var out []*Profile
	for _, p := range profiles {
		named, matched := false, false
		for _, r := range s.Rules {
			if !slices.Contains(r.Profiles, p.Name) {
				continue
			}
			named = true
			if r.matches(t) {
				matched = true
				break
			}
		}
		if !named || matched {
			out = append(out, p)
		}
	}
	return out
}

func (r ScopeRule) matches(t report.Target) bool {
	if len(r.Namespaces) > 0 && !slices.Contains(r.Namespaces, t.Namespace) {
		return false
	}
	for k, v := range r.Labels {
		if got, ok := t.PodLabels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
