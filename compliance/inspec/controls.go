package inspec

import (
	"regexp"
	"strings"

	"github.com/rootscan/rootscan/compliance/inspec/ruby"
)

// ControlFile is one controls/*.rb file.
type ControlFile struct {
	Name string
	// AST is the parsed file; nil when it did not parse (Err says why).
	AST *ruby.File
	Err error
	// Guards are file-level only_if blocks: they apply to every control of the file.
	Guards   []*Guard
	Controls []*Control
	Includes []*Include
}

// Control is one control as InSpec records it in HDF, with its checks as AST for the evaluator.
type Control struct {
	ID    string
	Title string
	// Desc is the unlabelled description; Descriptions all of them in source order ("default" for Desc).
	Desc         string
	Descriptions []Description
	// Impact is nil when the control does not set one (InSpec then reports 0.5).
	Impact *float64
	// ImpactExpr is set when impact is computed (impact input('x')): the evaluator decides it.
	ImpactExpr ruby.Node
	Tags       []Tag
	Refs       []map[string]any
	// Code is the control's source text as InSpec records it: its whole lines, from the control's first line
	// to the line of its closing end, with the final newline.
	Code string
	File string
	Line int
	// Guards are the control's only_if blocks.
	Guards []*Guard
	// Describes are the describe blocks (and expect checks) of the control, outermost first.
	Describes []*Describe
	// Block is the control's body.
	Block *ruby.Block
	// Overlay is set for a control written inside include_controls: it changes a dependency's control.
	Overlay bool
	// Include names the dependency of the include_controls an Overlay control is written in.
	Include string
	// src is the source of the dependency profile a control comes from ("" for the runner's own profile).
	src string
	// Err is set when the file did not parse: the control was found by its control line only.
	Err error
}

// Description is a labelled text of a control.
type Description struct {
	Label string
	Data  string
}

// Tag is one tag. Value keeps InSpec's type: nil (tag 'host'), string (symbols become strings), float64 or
// int64, bool, []any or map[string]any. Expr is set instead when the value is computed.
type Tag struct {
	Key   string
	Value any
	Expr  ruby.Node
}

// Guard is an only_if: the block that decides whether the control runs, its message and the impact it sets
// when it skips.
type Guard struct {
	Line    int
	Message string
	Impact  *float64
	Block   *ruby.Block
}

// Describe is a describe block: its subject (a resource call or a value), whether it is describe.one, and the
// checks inside.
type Describe struct {
	Line    int
	Subject ruby.Node
	One     bool
	Block   *ruby.Block
	Checks  []*Check
	Nested  []*Describe
}

// Check is one should / should_not / expect(...).to: Its is the its() argument ("a.b" or an array), Matcher
// the matcher expression.
type Check struct {
	Line    int
	Its     ruby.Node
	Matcher ruby.Node
	Negated bool
	// Subject is set for expect(x) checks.
	Subject ruby.Node
}

// Include is an include_controls or require_controls of a dependency, with the controls it skips.
type Include struct {
	File    string
	Line    int
	Profile string
	Require bool
	Skip    []string
	// Required lists require_control ids (require_controls keeps only those).
	Required []string
}

// controlLine finds controls in text that does not parse, as InSpec's own waiver filter does.
var controlLine = regexp.MustCompile(`(?m)^\s*control\s+['"]([^'"]+)['"]`)

func parseControlFile(name string, src []byte, lim ruby.Limits) *ControlFile {
	cf := &ControlFile{Name: name}
	f, err := ruby.Parse(name, src, lim)
	if err != nil {
		cf.Err = err
		for _, m := range controlLine.FindAllSubmatchIndex(src, -1) {
			line := f.Line(m[2])
			cf.Controls = append(cf.Controls, &Control{
				ID: string(src[m[2]:m[3]]), File: name, Line: line, Err: err,
				Code: f.Text(f.LineStart(line), f.LineEnd(line)),
			})
		}
		return cf
	}
	cf.AST = f
	x := &extractor{f: f, cf: cf}
	x.stmts(f.Body, nil)
	return cf
}

type extractor struct {
	f  *ruby.File
	cf *ControlFile
}

// stmts looks for controls, file-level guards and includes in statements outside controls, following loops
// and conditionals (controls are often generated from an input list).
func (x *extractor) stmts(body []ruby.Node, inc *Include) {
	for _, n := range body {
		ruby.Walk(n, func(n ruby.Node) bool {
			c, ok := n.(*ruby.Call)
			if !ok || c.Recv != nil {
				return true
			}
			switch c.Name {
			case "control", "rule":
				if c.Block != nil && len(c.Args) > 0 {
					x.control(c, inc)
					return false
				}
				if inc != nil && len(c.Args) > 0 { // control 'id' in require_controls requires it
					if id, ok := ruby.StringValue(c.Args[0]); ok {
						inc.Required = append(inc.Required, id)
					}
				}
			case "only_if":
				if inc == nil {
					x.cf.Guards = append(x.cf.Guards, x.guard(c))
					return false
				}
			case "include_controls", "require_controls":
				in := &Include{File: x.cf.Name, Line: c.Line, Require: c.Name == "require_controls"}
				if len(c.Args) > 0 {
					in.Profile, _ = ruby.StringValue(c.Args[0])
				}
				x.cf.Includes = append(x.cf.Includes, in)
				if c.Block != nil {
					x.stmts(c.Block.Body, in)
				}
				return false
			case "skip_control", "require_control":
				if inc != nil && len(c.Args) > 0 {
					if id, ok := ruby.StringValue(c.Args[0]); ok {
						if c.Name == "skip_control" {
							inc.Skip = append(inc.Skip, id)
						} else {
							inc.Required = append(inc.Required, id)
						}
					}
				}
			}
			return true
		})
	}
}

func (x *extractor) control(c *ruby.Call, inc *Include) {
	ctl := &Control{File: x.cf.Name, Line: c.Line, Block: c.Block, Overlay: inc != nil}
	if inc != nil {
		ctl.Include = inc.Profile
	}
	if id, ok := ruby.StringValue(c.Args[0]); ok {
		ctl.ID = id
	} else {
		// An interpolated id ("user-#{u}"): its source without the quotes, until an evaluator computes it.
		ctl.ID = strings.Trim(x.f.Text(c.Args[0].Position().Off, c.Args[0].Position().End), `"`)
	}
	ctl.Code = x.f.Text(x.f.LineStart(c.Line), x.f.LineEnd(x.f.Line(max(c.End-1, c.Off))))
	for _, n := range c.Block.Body {
		x.metadata(ctl, n)
	}
	ctl.Describes = x.describes(c.Block.Body)
	x.cf.Controls = append(x.cf.Controls, ctl)
}

// metadata records a title, desc, impact, tag, ref or only_if statement of a control body.
func (x *extractor) metadata(ctl *Control, n ruby.Node) {
	c, ok := n.(*ruby.Call)
	if !ok || c.Recv != nil {
		return
	}
	switch c.Name {
	case "title":
		if len(c.Args) > 0 {
			ctl.Title = x.text(c.Args[0])
		}
	case "desc":
		switch len(c.Args) {
		case 1:
			ctl.Desc = x.text(c.Args[0])
			ctl.Descriptions = setDescription(ctl.Descriptions, "default", ctl.Desc)
		case 2:
			ctl.Descriptions = setDescription(ctl.Descriptions, x.text(c.Args[0]), x.text(c.Args[1]))
		}
	case "impact":
		if len(c.Args) == 1 {
			if v, ok := impactValue(c.Args[0]); ok {
				ctl.Impact = &v
			} else {
				ctl.ImpactExpr = c.Args[0]
			}
		}
	case "tag":
		ctl.Tags = append(ctl.Tags, tags(c.Args)...)
	case "ref":
		ref := map[string]any{}
		for _, a := range c.Args {
			if h, ok := a.(*ruby.Hash); ok {
				for k, v := range literalHash(h) {
					ref[k] = v
				}
			} else if v, ok := literal(a); ok {
				ref["ref"] = v
			}
		}
		ctl.Refs = append(ctl.Refs, ref)
	case "only_if":
		ctl.Guards = append(ctl.Guards, x.guard(c))
	}
}

func setDescription(ds []Description, label, data string) []Description {
	for i := range ds {
		if ds[i].Label == label {
			ds[i].Data = data
			return ds
		}
	}
	return append(ds, Description{Label: label, Data: data})
}

// text is a string argument's value, or its source text when it is computed.
func (x *extractor) text(n ruby.Node) string {
	if s, ok := ruby.StringValue(n); ok {
		return s
	}
	return x.f.Text(n.Position().Off, n.Position().End)
}

func (x *extractor) guard(c *ruby.Call) *Guard {
	g := &Guard{Line: c.Line, Block: c.Block}
	for _, a := range c.Args {
		switch v := a.(type) {
		case *ruby.Hash:
			for _, p := range v.Pairs {
				if k, _ := ruby.StringValue(p.Key); k == "impact" {
					if f, ok := impactValue(p.Value); ok {
						g.Impact = &f
					}
				}
			}
		default:
			g.Message = x.text(a)
		}
	}
	return g
}

// impactNames are InSpec's impact names and the scores it gives them.
var impactNames = map[string]float64{"none": 0.0, "low": 0.1, "medium": 0.4, "high": 0.7, "critical": 0.9}

func impactValue(n ruby.Node) (float64, bool) {
	switch v := n.(type) {
	case *ruby.Float:
		return v.Val, v.Val >= 0 && v.Val <= 1
	case *ruby.Int:
		return float64(v.Val), v.OK && v.Val >= 0 && v.Val <= 1
	}
	if s, ok := ruby.StringValue(n); ok {
		f, ok := impactNames[strings.ToLower(s)]
		return f, ok
	}
	return 0, false
}

// tags reads the arguments of a tag call: names without values and hashes of name => value.
func tags(args []ruby.Node) []Tag {
	var out []Tag
	for _, a := range args {
		if h, ok := a.(*ruby.Hash); ok {
			for _, p := range h.Pairs {
				k, ok := ruby.StringValue(p.Key)
				if !ok {
					continue
				}
				if v, ok := literal(p.Value); ok {
					out = append(out, Tag{Key: k, Value: v})
				} else {
					out = append(out, Tag{Key: k, Expr: p.Value})
				}
			}
			continue
		}
		if k, ok := ruby.StringValue(a); ok {
			out = append(out, Tag{Key: k})
		}
	}
	return out
}

// literal is the Go value of a literal expression, with InSpec's JSON types (symbols become strings).
func literal(n ruby.Node) (any, bool) {
	switch v := n.(type) {
	case *ruby.Nil:
		return nil, true
	case *ruby.Bool:
		return v.Val, true
	case *ruby.Int:
		return v.Val, v.OK
	case *ruby.Float:
		return v.Val, true
	case *ruby.Str, *ruby.Sym:
		return ruby.StringValue(n)
	case *ruby.Array:
		out := make([]any, 0, len(v.Elems))
		for _, e := range v.Elems {
			ev, ok := literal(e)
			if !ok {
				return nil, false
			}
			out = append(out, ev)
		}
		return out, true
	case *ruby.Hash:
		m := map[string]any{}
		for _, p := range v.Pairs {
			k, ok := ruby.StringValue(p.Key)
			val, vok := literal(p.Value)
			if !ok || !vok {
				return nil, false
			}
			m[k] = val
		}
		return m, true
	case *ruby.Unary:
		if v.Op == "-" {
			if f, ok := literal(v.X); ok {
				switch f := f.(type) {
				case int64:
					return -f, true
				case float64:
					return -f, true
				}
			}
		}
	}
	return nil, false
}

func literalHash(h *ruby.Hash) map[string]any {
	m := map[string]any{}
	for _, p := range h.Pairs {
		if k, ok := ruby.StringValue(p.Key); ok {
			if v, ok := literal(p.Value); ok {
				m[k] = v
			}
		}
	}
	return m
}

// describes finds the describe blocks and expect checks of a body, outside nested describes.
func (x *extractor) describes(body []ruby.Node) []*Describe {
	var out []*Describe
	for _, n := range body {
		ruby.Walk(n, func(n ruby.Node) bool {
			c, ok := n.(*ruby.Call)
			if !ok {
				return true
			}
			switch {
			case c.Name == "describe" && c.Recv == nil && c.Block != nil:
				d := &Describe{Line: c.Line, Block: c.Block}
				if len(c.Args) > 0 {
					d.Subject = c.Args[0]
				}
				d.Checks = checks(c.Block.Body)
				d.Nested = x.describes(c.Block.Body)
				out = append(out, d)
				return false
			case c.Name == "one" && isIdent(c.Recv, "describe") && c.Block != nil:
				d := &Describe{Line: c.Line, One: true, Block: c.Block, Nested: x.describes(c.Block.Body)}
				out = append(out, d)
				return false
			case (c.Name == "to" || c.Name == "not_to" || c.Name == "to_not") && isCall(c.Recv, "expect"):
				out = append(out, &Describe{Line: c.Line, Subject: c.Recv.(*ruby.Call).Args[0], Checks: []*Check{check(c)}})
				return false
			}
			return true
		})
	}
	return out
}

func isIdent(n ruby.Node, name string) bool {
	id, ok := n.(*ruby.Ident)
	return ok && id.Name == name
}

func isCall(n ruby.Node, name string) bool {
	c, ok := n.(*ruby.Call)
	return ok && c.Name == name && c.Recv == nil && len(c.Args) > 0
}

// checks finds the should/should_not/expect checks of a describe body (in it and its blocks).
func checks(body []ruby.Node) []*Check {
	var out []*Check
	var its ruby.Node
	var walk func(n ruby.Node) bool
	walk = func(n ruby.Node) bool {
		c, ok := n.(*ruby.Call)
		if !ok {
			return true
		}
		switch {
		case c.Name == "describe" && c.Recv == nil:
			return false
		case c.Name == "its" && c.Recv == nil && c.Block != nil && len(c.Args) > 0:
			saved := its
			its = c.Args[0]
			for _, b := range c.Block.Body {
				ruby.Walk(b, walk)
			}
			its = saved
			return false
		case (c.Name == "should" || c.Name == "should_not") && c.Recv == nil:
			ck := &Check{Line: c.Line, Its: its, Negated: c.Name == "should_not"}
			if len(c.Args) > 0 {
				ck.Matcher = c.Args[0]
			}
			out = append(out, ck)
			return false
		case c.Name == "to" || c.Name == "not_to" || c.Name == "to_not":
			ck := check(c)
			ck.Its = its
			out = append(out, ck)
			return false
		}
		return true
	}
	for _, n := range body {
		ruby.Walk(n, walk)
	}
	return out
}

func check(c *ruby.Call) *Check {
	ck := &Check{Line: c.Line, Negated: c.Name != "to"}
	if len(c.Args) > 0 {
		ck.Matcher = c.Args[0]
	}
	if e, ok := c.Recv.(*ruby.Call); ok && e.Name == "expect" && len(e.Args) > 0 {
		ck.Subject = e.Args[0]
	}
	return ck
}
