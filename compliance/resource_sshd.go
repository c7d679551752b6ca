package compliance

import (
	"fmt"
	"path"
	"strings"
)

// sshdListKeywords may appear many times and every occurrence counts (sshd listens on every Port and loads every
// HostKey): their value is the list of all occurrences, one item per line. Every other keyword keeps its first
// value, as sshd does ("the first obtained value will be used").
var sshdListKeywords = map[string]bool{
	"hostkey": true, "hostcertificate": true, "listenaddress": true, "port": true, "subsystem": true, "include": true,
}

// sshdWordKeywords accumulate too, one item per word: "AcceptEnv LANG LC_*" on two lines adds three patterns.
var sshdWordKeywords = map[string]bool{
	"acceptenv": true, "allowusers": true, "denyusers": true, "allowgroups": true, "denygroups": true,
}

// maxSSHDIncludeDepth is sshd's own bound on nested Include (READCONF_MAX_DEPTH); maxSSHDIncludes bounds the files
// read in all, so empty files including each other cannot multiply the work.
const (
	maxSSHDIncludeDepth = 16
	maxSSHDIncludes     = 1000
)

// sshdIncluder returns the contents of the files an Include pattern names, in the order sshd reads them; nil
// means Include directives are listed but not followed (ParseConfig on bytes alone).
type sshdIncluder func(pattern string) ([][]byte, error)

// sshdConfig is sshd_config as sshd reads it: global settings, then the Match blocks in order, each with its own
// settings. A control asks parse_config(p, "sshd").permitrootlogin for the global value and walks .match for the
// overrides that apply to some connections only.
type sshdConfig struct {
	global  map[string]any
	matches []any
	cur     map[string]any // the settings lines go to: global, or the open Match block's
}

func parseSSHD(data []byte, include sshdIncluder) (map[string]any, error) {
	c := &sshdConfig{global: map[string]any{}}
	c.cur = c.global
	if err := c.parse(data, include, 0); err != nil {
		return nil, err
	}
	if len(c.matches) > 0 {
		c.global["match"] = c.matches
	}
	return c.global, nil
}

func (c *sshdConfig) parse(data []byte, include sshdIncluder, depth int) error {
	for n, line := 1, ""; len(data) > 0; n++ {
		line, data = cutLine(data)
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, v := sshdKeyword(line)
		switch k {
		case "match":
			conds, err := sshdMatch(v)
			if err != nil {
				return fmt.Errorf("sshd: line %d: %w", n, err)
			}
			block := map[string]any{}
			c.matches = append(c.matches, map[string]any{"criteria": v, "conditions": conds, "settings": block})
			c.cur = block
			continue
		case "include":
			c.add(k, v)
			if include == nil {
				continue
			}
			if depth >= maxSSHDIncludeDepth {
				return fmt.Errorf("sshd: line %d: Include nested deeper than %d", n, maxSSHDIncludeDepth)
			}
			for _, pattern := range strings.Fields(v) {
				files, err := include(unquote(pattern))
				if err != nil {
					return fmt.Errorf("sshd: line %d: Include %s: %w", n, pattern, err)
				}
				for _, f := range files {
					// A Match opened in an included file ends with that file, as in sshd.
					saved := c.cur
					if err := c.parse(f, include, depth+1); err != nil {
						return err
					}
					c.cur = saved
				}
			}
			continue
		}
		c.add(k, v)
	}
	return nil
}

// add records one setting in the current section.
func (c *sshdConfig) add(k, v string) {
	switch {
	case sshdListKeywords[k]:
		l, _ := c.cur[k].([]any)
		c.cur[k] = append(l, v)
	case sshdWordKeywords[k]:
		l, _ := c.cur[k].([]any)
		for _, w := range strings.Fields(v) {
			l = append(l, unquote(w))
		}
		if l == nil {
			l = []any{}
		}
		c.cur[k] = l
	default:
		if _, seen := c.cur[k]; !seen {
			c.cur[k] = v
		}
	}
}

// sshdKeyword splits "Keyword value", "Keyword=value" or "Keyword = value"; the keyword is lower-cased (sshd
// keywords are case-insensitive), a value in quotes is unquoted, runs of blanks in others become one space.
func sshdKeyword(line string) (string, string) {
	i := strings.IndexAny(line, " \t=")
	if i < 0 {
		return strings.ToLower(line), ""
	}
	k, v := line[:i], strings.TrimLeft(line[i:], " \t")
	v = strings.TrimSpace(strings.TrimPrefix(v, "="))
	if q := unquote(v); q != v {
		return strings.ToLower(k), q
	}
	return strings.ToLower(k), strings.Join(strings.Fields(v), " ") // sshd splits arguments on any whitespace
}

// sshdMatch reads Match criteria ("User alice,bob Address 10.0.0.0/8", "all") into criterion -> pattern list,
// criteria lower-cased.
func sshdMatch(v string) (map[string]any, error) {
	f := strings.Fields(v)
	if len(f) == 0 {
		return nil, fmt.Errorf("Match without criteria")
	}
	out := map[string]any{}
	for i := 0; i < len(f); i++ {
		k := strings.ToLower(f[i])
		if k == "all" {
			out[k] = ""
			continue
		}
		if i+1 >= len(f) {
			return nil, fmt.Errorf("Match %s needs a value", f[i])
		}
		out[k] = unquote(f[i+1])
		i++
	}
	return out, nil
}

// sshdInclude resolves Include patterns in the view as sshd does: relative to /etc/ssh, globbed, in name order,
// only regular files, each bounded; past maxBytes in total the config is refused rather than read partly.
func (s *session) sshdInclude() sshdIncluder {
	total, files := int64(0), 0
	return func(pattern string) ([][]byte, error) {
		if !strings.HasPrefix(pattern, "/") {
			pattern = path.Join("/etc/ssh", pattern)
		}
		names, err := s.glob(pattern)
		if err != nil {
			return nil, err
		}
		var out [][]byte
		for _, name := range names {
			fd := s.statFile(name)
			if fd.failure() != nil {
				return nil, fd.failure()
			}
			if fd.st() == nil || !fd.st().Mode().IsRegular() {
				continue // a dangling link or a directory matches nothing, as in sshd's glob
			}
			if files++; files > maxSSHDIncludes {
				return nil, fmt.Errorf("more than %d included files", maxSSHDIncludes)
			}
			b, err := s.view.readFile(fd.resolved(), s.lim.MaxConfigBytes)
			if err != nil {
				return nil, err
			}
			if total += int64(len(b)); total > s.lim.MaxConfigBytes {
				return nil, fmt.Errorf("included files larger than %d bytes in total", s.lim.MaxConfigBytes)
			}
			out = append(out, b)
		}
		return out, nil
	}
}
