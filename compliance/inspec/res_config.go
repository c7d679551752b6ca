package inspec

import (
	"regexp"
	"strings"

	"github.com/rootscan/rootscan/compliance"
)

// configOpts are InSpec's SimpleConfig options: the assignment regexp, the comment character, whether a key
// collects every value of its lines, and how many values a line gives.
type configOpts struct {
	assignment     *regexp.Regexp
	comment        string
	multipleValues bool
	keyValues      int
}

var (
	defaultAssignment = regexp.MustCompile(`^\s*([^=]*?)\s*=\s*(.*?)\s*$`)
	sshAssignment     = regexp.MustCompile(`^\s*(\S+?)\s+(.*?)\s*$`)
	loginAssignment   = regexp.MustCompile(`^\s*(\S+)\s+(\S*)\s*$`)
	groupLine         = regexp.MustCompile(`^\s*\[([^\]]+)\]\s*$`)
)

// simpleConfig parses content as InSpec's SimpleConfig: comments cut, [group] sections, key/value lines by the
// assignment regexp; a key's last value wins unless multipleValues collects them in an array.
func simpleConfig(content string, o configOpts) *hash {
	params := newHash()
	cur := params
	for _, line := range strings.Split(content, "\n") {
		if o.comment != "" {
			if i := strings.Index(line, o.comment); i >= 0 {
				line = line[:i]
			}
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if m := groupLine.FindStringSubmatch(line); m != nil {
			cur = newHash()
			params.set(m[1], cur)
			continue
		}
		m := o.assignment.FindStringSubmatch(line)
		if m == nil || len(m) < 2 {
			continue
		}
		key := m[1]
		var val any = ""
		if len(m) > 2 {
			val = m[2]
		}
		if o.keyValues > 1 && len(m) > 2 {
			val = newArray(strsToAny(m[2:], false))
		}
		if o.multipleValues {
			prev, ok := cur.get(key)
			arr, isArr := prev.(*array)
			if !ok || !isArr {
				arr = newArray(nil)
			}
			arr.v = append(arr.v, val)
			cur.set(key, arr)
			continue
		}
		cur.set(key, val)
	}
	return params
}

// configRes is parse_config, parse_config_file, login_defs, json, yaml and ini: parsed params answered as
// methods (its('KEY')) and by index (its(['section', 'key'])).
type configRes struct {
	name    string
	content any // string, or nil when the file is missing
	params  *hash
	// lower makes keys case-insensitive, first spelling winning, and one-value arrays their value (ssh configs).
	lower bool
}

func (c *configRes) String() string { return c.name }

func (c *configRes) lookup(key string) any {
	if !c.lower {
		v, _ := c.params.get(key)
		return v
	}
	v, _ := c.params.get(strings.ToLower(key))
	if a, ok := v.(*array); ok && len(a.v) == 1 {
		return a.v[0]
	}
	return v
}

func (c *configRes) method(ev *evaluator, name string, args []any, blk *proc) (any, bool, error) {
	switch name {
	case "params", "read_params":
		if len(args) == 0 {
			return c.params, true, nil
		}
		v, _, err := hashDig(c.params, "dig", args)
		return v, true, err
	case "content":
		return c.content, true, nil
	case "[]":
		if len(args) == 1 {
			return c.lookup(toS(args[0])), true, nil
		}
		v, _, err := hashDig(c.params, "dig", args)
		return v, true, err
	case "exist?", "exists?":
		return c.content != nil, true, nil
	case "to_s":
		return c.name, true, nil
	case "key?", "has_key?", "keys", "values", "each", "include?", "empty?":
		return ev.hashMethod(c.params, name, args, blk)
	}
	if len(args) > 0 {
		return nil, false, nil
	}
	return c.lookup(name), true, nil
}

// readConfig reads a config file for a resource; a missing file is nil content (InSpec reports the resource
// skipped with "Can't find file"; a describe on it then fails), other failures are errors.
func (ev *evaluator) readConfig(p string) (any, error) {
	v, err := ev.cached("file:"+p, func() (any, error) {
		st, err := ev.t.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.Exists || st.Type != "file" {
			return missing{}, nil
		}
		return ev.t.ReadFile(p)
	})
	if _, ok := v.(missing); ok || err != nil {
		return nil, err
	}
	return v, nil
}

type missing struct{}

func configOptions(args []any) configOpts {
	o := configOpts{assignment: defaultAssignment, comment: "#", keyValues: 1}
	if v, ok := optArg(args, "assignment_regex"); ok {
		if r, ok := v.(*regex); ok {
			o.assignment = r.re
		}
	}
	if v, ok := optArg(args, "comment_char"); ok {
		o.comment = toS(v)
	}
	if v, ok := optArg(args, "multiple_values"); ok {
		o.multipleValues = truthy(v)
	}
	if v, ok := optArg(args, "key_values"); ok {
		if n, ok := v.(int64); ok && n > 0 {
			o.keyValues = int(n)
		}
	}
	return o
}

func newParseConfig(_ *evaluator, args []any) (any, error) {
	s, _ := strArg(args, 0)
	return &configRes{name: "Parse Config", content: s, params: simpleConfig(s, configOptions(args))}, nil
}

func newParseConfigFile(ev *evaluator, args []any) (any, error) {
	p, ok := strArg(args, 0)
	if !ok {
		return nil, rbErr("ArgumentError", "parse_config_file needs a path")
	}
	return fileConfig(ev, "Parse Config File "+p, p, configOptions(args), false)
}

func fileConfig(ev *evaluator, name, p string, o configOpts, lower bool) (any, error) {
	content, err := ev.readConfig(p)
	if err != nil {
		return nil, rbErr("Inspec::Exceptions::ResourceFailed", "%v", err)
	}
	s, ok := content.(string)
	if !ok {
		return nil, skipf("Can't find file: %s", p) // InSpec's FileReader skips the resource
	}
	c := &configRes{name: name, content: content, lower: lower, params: simpleConfig(s, o)}
	if lower {
		c.params = lowerKeys(c.params)
	}
	return c, nil
}

// lowerKeys makes the keys lower-case, the first spelling of a key winning, as InSpec's ssh resources do.
func lowerKeys(h *hash) *hash {
	out := newHash()
	for _, k := range h.keys {
		lk := strings.ToLower(toS(k))
		if _, ok := out.get(lk); ok {
			continue
		}
		v, _ := h.get(k)
		out.set(lk, v)
	}
	return out
}

func newLoginDefs(ev *evaluator, args []any) (any, error) {
	p, ok := strArg(args, 0)
	if !ok {
		p = "/etc/login.defs"
	}
	return fileConfig(ev, "login.defs", p, configOpts{assignment: loginAssignment, comment: "#", keyValues: 1}, false)
}

func newSSHDConfig(ev *evaluator, args []any) (any, error) {
	p, ok := strArg(args, 0)
	if !ok {
		p = "/etc/ssh/sshd_config"
	}
	return fileConfig(ev, "SSHD Configuration", p, configOpts{assignment: sshAssignment, comment: "#", multipleValues: true, keyValues: 1}, true)
}

func newSSHConfig(ev *evaluator, args []any) (any, error) {
	p, ok := strArg(args, 0)
	if !ok {
		p = "/etc/ssh/ssh_config"
	}
	return fileConfig(ev, "SSH Configuration", p, configOpts{assignment: sshAssignment, comment: "#", multipleValues: true, keyValues: 1}, true)
}

func newJSONResource(ev *evaluator, args []any) (any, error) {
	return documentResource(ev, "Json", compliance.FormatJSON, args)
}

func newYAMLResource(ev *evaluator, args []any) (any, error) {
	return documentResource(ev, "YAML", compliance.FormatYAML, args)
}

func newINIResource(ev *evaluator, args []any) (any, error) {
	return documentResource(ev, "INI", compliance.FormatINI, args)
}

// documentResource is json, yaml and ini: a path, or content: / command: options.
func documentResource(ev *evaluator, kind, format string, args []any) (any, error) {
	name, content, err := documentContent(ev, kind, args)
	if err != nil {
		return nil, err
	}
	v, err := compliance.ParseConfig([]byte(content), format)
	if err != nil {
		return nil, rbErr("Inspec::Exceptions::ResourceFailed", "%v", err)
	}
	h, ok := fromNative(v).(*hash)
	if !ok {
		h = newHash()
		h.set("", fromNative(v))
	}
	return &configRes{name: name, content: content, params: h}, nil
}

// documentContent is what InSpec's JsonConfig and the resources built on it (yaml, ini, xml) read: the file at
// the path (bounded by the target's content limit), or the content: option; command: needs exec.
func documentContent(ev *evaluator, kind string, args []any) (name, content string, err error) {
	if _, ok := optArg(args, "command"); ok {
		return "", "", skipf("%s(command: ...) needs exec in the target", strings.ToLower(kind))
	}
	if v, ok := optArg(args, "content"); ok {
		return kind + " content", toS(v), nil
	}
	p, ok := strArg(args, 0)
	if !ok {
		if v, ok := optArg(args, "path"); ok {
			p = toS(v)
		}
	}
	c, err := ev.readConfig(p)
	if err != nil {
		return "", "", rbErr("Inspec::Exceptions::ResourceFailed", "%v", err)
	}
	if c == nil {
		return "", "", skipf("Can't find file: %s", p)
	}
	return kind + " " + p, c.(string), nil
}
