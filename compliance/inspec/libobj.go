package inspec

import (
	"errors"

	"github.com/rootscan/rootscan/compliance/inspec/ruby"
)

// libObject is an instance of a custom resource from libraries/*.rb: its methods run in the evaluator with
// self bound, its instance variables live with it, and what it asks of the target goes through the same
// resources (inspec.file, inspec.command) as the controls, so a method that runs a command is skipped with
// that command as the reason while its other methods answer.
type libObject struct {
	lr    *LibResource
	defs  map[string]*ruby.Def
	attrs map[string]bool
	ivars map[string]any
	name  string
}

func (ev *evaluator) newLibObject(lr *LibResource, args []any) (any, error) {
	o := &libObject{lr: lr, defs: map[string]*ruby.Def{}, attrs: map[string]bool{}, ivars: map[string]any{}, name: lr.Name}
	for _, n := range lr.Decl.Body {
		switch v := n.(type) {
		case *ruby.Def:
			if v.Recv == nil {
				o.defs[v.Name] = v
			}
		case *ruby.Call:
			if v.Recv == nil && (v.Name == "attr_reader" || v.Name == "attr_accessor") {
				for _, a := range v.Args {
					if s, ok := ruby.StringValue(a); ok {
						o.attrs[s] = true
					}
				}
			}
		}
	}
	if d, ok := o.defs["initialize"]; ok {
		if _, err := ev.callOn(o, d, args); err != nil {
			return nil, err
		}
	}
	if d, ok := o.defs["to_s"]; ok {
		if v, err := ev.callOn(o, d, nil); err == nil {
			o.name = toS(v)
		}
	}
	return o, nil
}

func (o *libObject) String() string { return o.name }

func (o *libObject) method(ev *evaluator, name string, args []any, _ *proc) (any, bool, error) {
	if d, ok := o.defs[name]; ok {
		v, err := ev.callOn(o, d, args)
		return v, true, err
	}
	if o.attrs[name] && len(args) == 0 {
		return o.ivars["@"+name], true, nil
	}
	return nil, false, nil
}

// callOn runs a method of a library object with self bound to it (o nil: a def of the profile).
func (ev *evaluator) callOn(o *libObject, d *ruby.Def, args []any) (any, error) {
	if err := ev.enter(); err != nil {
		return nil, err
	}
	defer ev.leave()
	saved := ev.self
	ev.self = o
	defer func() { ev.self = saved }()
	sc := newScope(nil)
	if err := ev.bindParams(d.Params, args, sc, false); err != nil {
		return nil, err
	}
	v, err := ev.begin(d.Body, sc)
	var ret *returnSignal
	if errors.As(err, &ret) {
		return ret.val, nil
	}
	return v, err
}

// selfMethod calls a method of the library object being run, for a call without receiver in its code.
func (ev *evaluator) selfMethod(c *ruby.Call, sc *scope) (any, bool, error) {
	if ev.self == nil {
		return nil, false, nil
	}
	d, isDef := ev.self.defs[c.Name]
	if !isDef && !(ev.self.attrs[c.Name] && len(c.Args) == 0) {
		return nil, false, nil
	}
	args, err := ev.args(c.Args, sc)
	if err != nil {
		return nil, true, err
	}
	if !isDef {
		return ev.self.ivars["@"+c.Name], true, nil
	}
	v, err := ev.callOn(ev.self, d, args)
	return v, true, err
}
