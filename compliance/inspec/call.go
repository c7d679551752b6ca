package inspec

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rootscan/rootscan/compliance/inspec/ruby"
)

// args evaluates call arguments, expanding *splats.
func (ev *evaluator) args(ns []ruby.Node, sc *scope) ([]any, error) {
	out := make([]any, 0, len(ns))
	for _, n := range ns {
		if s, ok := n.(*ruby.Splat); ok && !s.Double {
			v, err := ev.eval(s.X, sc)
			if err != nil {
				return nil, err
			}
			if a, ok := v.(*array); ok {
				out = append(out, a.v...)
			} else if v != nil {
				out = append(out, v)
			}
			continue
		}
		if _, ok := n.(*ruby.BlockPass); ok {
			continue
		}
		v, err := ev.eval(n, sc)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// blockOf is the call's block: a do/{} block, or &:name / &proc among the arguments.
func (ev *evaluator) blockOf(c *ruby.Call, sc *scope) (*proc, error) {
	if c.Block != nil {
		return &proc{params: c.Block.Params, body: c.Block.Body, sc: sc}, nil
	}
	for _, a := range c.Args {
		bp, ok := a.(*ruby.BlockPass)
		if !ok {
			continue
		}
		v, err := ev.eval(bp.X, sc)
		if err != nil {
			return nil, err
		}
		switch p := v.(type) {
		case string:
			return &proc{method: p}, nil
		case *proc:
			return p, nil
		}
		return nil, rbErr("TypeError", "wrong argument type %s (expected Proc)", typeName(v))
	}
	return nil, nil
}

func (ev *evaluator) call(c *ruby.Call, sc *scope) (any, error) {
	if c.Recv == nil {
		return ev.callSelf(c, sc)
	}
	if c.Name == "one" && isIdent(c.Recv, "describe") && c.Block != nil && ev.ctl != nil {
		return nil, ev.describeOne(c, sc)
	}
	if c.Op == "::" {
		if k, ok := c.Recv.(*ruby.Const); ok && len(c.Args) == 0 && c.Block == nil && startsUpper(c.Name) {
			return constant(constName(k) + "::" + c.Name), nil
		}
	}
	recv, err := ev.eval(c.Recv, sc)
	if err != nil {
		return nil, err
	}
	if recv == nil && c.Op == "&." {
		return nil, nil
	}
	if e, ok := recv.(*expectation); ok && (c.Name == "to" || c.Name == "not_to" || c.Name == "to_not") {
		return nil, ev.expectCheck(e, c, sc)
	}
	args, err := ev.args(c.Args, sc)
	if err != nil {
		return nil, err
	}
	blk, err := ev.blockOf(c, sc)
	if err != nil {
		return nil, err
	}
	return ev.method(recv, c.Name, args, blk)
}

func startsUpper(s string) bool { return s != "" && s[0] >= 'A' && s[0] <= 'Z' }

// callSelf is a call without receiver: the InSpec DSL, a def of the profile, a matcher, a resource, or Kernel.
func (ev *evaluator) callSelf(c *ruby.Call, sc *scope) (any, error) {
	if v, handled, err := ev.selfMethod(c, sc); handled {
		return v, err
	}
	if v, handled, err := ev.dsl(c, sc); handled {
		return v, err
	}
	if d, ok := ev.funcs[c.Name]; ok {
		args, err := ev.args(c.Args, sc)
		if err != nil {
			return nil, err
		}
		return ev.callDef(d, args)
	}
	args, err := ev.args(c.Args, sc)
	if err != nil {
		return nil, err
	}
	if isMatcher(c.Name) {
		return newMatcher(c.Name, args, c), nil
	}
	if v, handled, err := ev.resource(c.Name, args); handled {
		return v, err
	}
	blk, err := ev.blockOf(c, sc)
	if err != nil {
		return nil, err
	}
	return ev.kernel(c.Name, args, blk)
}

// callDef runs a method the profile defined with def, in a scope of its own.
func (ev *evaluator) callDef(d *ruby.Def, args []any) (any, error) { return ev.callOn(nil, d, args) }

// bindParams binds arguments to parameters; a block's single array argument spreads over several parameters.
func (ev *evaluator) bindParams(ps []ruby.Param, args []any, sc *scope, isBlock bool) error {
	positional := 0
	for _, p := range ps {
		if p.Kind == ruby.ParamRequired || p.Kind == ruby.ParamOptional || p.Kind == ruby.ParamNested {
			positional++
		}
	}
	if isBlock && len(args) == 1 && positional > 1 {
		if a, ok := args[0].(*array); ok {
			args = a.v
		}
	}
	i := 0
	for _, p := range ps {
		switch p.Kind {
		case ruby.ParamRequired, ruby.ParamOptional:
			var v any
			switch {
			case i < len(args):
				v = args[i]
				i++
			case p.Default != nil:
				var err error
				if v, err = ev.eval(p.Default, sc); err != nil {
					return err
				}
			}
			sc.vars[p.Name] = v
		case ruby.ParamNested:
			var v any
			if i < len(args) {
				v = args[i]
				i++
			}
			if err := ev.bindParams(p.Nested, []any{v}, sc, true); err != nil {
				return err
			}
		case ruby.ParamRest:
			rest := []any{}
			if i < len(args) {
				rest = append(rest, args[i:]...)
				i = len(args)
			}
			sc.vars[p.Name] = newArray(rest)
		case ruby.ParamKey, ruby.ParamKeyRest, ruby.ParamBlock:
			sc.vars[p.Name] = nil
		}
	}
	return nil
}

// callProc calls a block with arguments; next returns its value, break unwinds to the method that took it.
func (ev *evaluator) callProc(p *proc, args ...any) (any, error) {
	if p.method != "" {
		if len(args) == 0 {
			return nil, rbErr("ArgumentError", "no receiver given")
		}
		return ev.method(args[0], p.method, args[1:], nil)
	}
	if err := ev.step(); err != nil { // an empty block in a loop still costs its call
		return nil, err
	}
	if err := ev.enter(); err != nil {
		return nil, err
	}
	defer ev.leave()
	sc := newScope(p.sc)
	if err := ev.bindParams(p.params, args, sc, true); err != nil {
		return nil, err
	}
	v, err := ev.body(p.body, sc)
	var nx *nextSignal
	if errors.As(err, &nx) {
		return nx.val, nil
	}
	return v, err
}

// method calls name on a value.
func (ev *evaluator) method(recv any, name string, args []any, blk *proc) (any, error) {
	if err := ev.step(); err != nil {
		return nil, err
	}
	if err := poisoned(recv); err != nil {
		return nil, err
	}
	if v, ok, err := ev.commonMethod(recv, name, args); ok {
		return v, err
	}
	var v any
	var ok bool
	var err error
	switch r := recv.(type) {
	case string:
		v, ok, err = ev.stringMethod(r, name, args, blk)
	case int64, float64:
		v, ok, err = ev.numberMethod(r, name, args, blk)
	case *array:
		v, ok, err = ev.arrayMethod(r, name, args, blk)
	case *hash:
		v, ok, err = ev.hashMethod(r, name, args, blk)
	case *rangeVal:
		v, ok, err = ev.rangeMethod(r, name, args, blk)
	case *regex:
		v, ok, err = ev.regexMethod(r, name, args)
	case *proc:
		if name == "call" || name == "()" || name == "[]" {
			return ev.callProc(r, args...)
		}
	case *matcher:
		return r.chain(name, args)
	case constant:
		return ev.constMethod(r, name, args)
	case resource:
		v, ok, err = r.method(ev, name, args, blk)
	case nil:
		v, ok, err = nilMethod(name)
	}
	if ok || err != nil {
		var br *breakSignal
		if errors.As(err, &br) && blk != nil {
			return br.val, nil
		}
		return v, err
	}
	return nil, rbErr("NoMethodError", "undefined method `%s' for %s", name, describeRecv(recv))
}

func describeRecv(v any) string {
	if r, ok := v.(resource); ok {
		return r.String()
	}
	if v == nil {
		return "nil:NilClass"
	}
	return fmt.Sprintf("%s:%s", strings.TrimSpace(truncate(inspect(v), 80)), typeName(v))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// commonMethod answers what every Ruby object answers.
func (ev *evaluator) commonMethod(recv any, name string, args []any) (any, bool, error) {
	switch name {
	case "nil?":
		return recv == nil, true, nil
	case "==", "eql?", "equal?":
		if len(args) == 1 {
			return equal(recv, args[0]), true, nil
		}
	case "!=":
		if len(args) == 1 {
			return !equal(recv, args[0]), true, nil
		}
	case "!":
		return !truthy(recv), true, nil
	case "is_a?", "kind_of?", "instance_of?":
		if len(args) == 1 {
			return caseEq(args[0], recv), true, nil
		}
	case "class":
		return constant(typeName(recv)), true, nil
	case "inspect":
		return inspect(recv), true, nil
	case "respond_to?":
		if len(args) >= 1 {
			_, err := ev.method(recv, toS(args[0]), nil, nil)
			var re *rubyError
			return !(errors.As(err, &re) && re.class == "NoMethodError"), true, nil
		}
	case "frozen?":
		return true, true, nil
	case "freeze", "dup", "clone", "itself", "then":
		if name != "dup" && name != "clone" {
			return recv, true, nil
		}
	case "to_s":
		if _, ok := recv.(resource); !ok {
			return toS(recv), true, nil
		}
	}
	return nil, false, nil
}

func nilMethod(name string) (any, bool, error) {
	switch name {
	case "to_s":
		return "", true, nil
	case "to_a":
		return newArray([]any{}), true, nil
	case "to_i":
		return int64(0), true, nil
	case "to_f":
		return 0.0, true, nil
	case "to_h":
		return newHash(), true, nil
	}
	return nil, false, nil
}

// kernel answers Kernel's methods that profiles call.
func (ev *evaluator) kernel(name string, args []any, blk *proc) (any, error) {
	switch name {
	case "puts", "p", "print", "pp", "warn", "require", "require_relative", "load", "attr_reader", "attr_accessor":
		return nil, nil
	case "raise", "fail":
		msg := "unhandled exception"
		class := "RuntimeError"
		switch len(args) {
		case 1:
			msg = toS(args[0])
		case 2:
			class, msg = toS(args[0]), toS(args[1])
		}
		return nil, &rubyError{class: class, msg: msg}
	case "Integer":
		if len(args) > 0 {
			return toInteger(args[0], true)
		}
	case "Float":
		if len(args) > 0 {
			return toFloat(args[0])
		}
	case "String":
		if len(args) > 0 {
			return toS(args[0]), nil
		}
	case "Array":
		if len(args) > 0 {
			return toArray(args[0]), nil
		}
	case "format", "sprintf":
		if len(args) > 0 {
			return sprintf(toS(args[0]), args[1:]), nil
		}
	case "lambda", "proc":
		if blk != nil {
			return blk, nil
		}
	case "loop":
		if blk != nil {
			for {
				if _, err := ev.callProc(blk); err != nil {
					var br *breakSignal
					if errors.As(err, &br) {
						return br.val, nil
					}
					return nil, err
				}
			}
		}
	case "block_given?":
		return false, nil
	}
	return nil, rbErr("NameError", "undefined local variable or method `%s'", name)
}

func toArray(v any) *array {
	switch t := v.(type) {
	case nil:
		return newArray([]any{})
	case *array:
		return t
	case *hash:
		return hashPairs(t)
	}
	return newArray([]any{v})
}

func hashPairs(h *hash) *array {
	out := make([]any, len(h.keys))
	for i, k := range h.keys {
		v, _ := h.get(k)
		out[i] = newArray([]any{k, v})
	}
	return newArray(out)
}

// constMethod answers the class methods profiles use: File.join and friends, Gem::Version.new.
func (ev *evaluator) constMethod(c constant, name string, args []any) (any, error) {
	strs := make([]string, len(args))
	for i, a := range args {
		strs[i] = toS(a)
	}
	switch string(c) + "." + name {
	case "File.join":
		return strings.Join(strs, "/"), nil
	case "File.basename":
		if len(strs) > 0 {
			b := strs[0][strings.LastIndex(strs[0], "/")+1:]
			if len(strs) > 1 {
				b = strings.TrimSuffix(b, strs[1])
			}
			return b, nil
		}
	case "File.dirname":
		if len(strs) > 0 {
			i := strings.LastIndex(strs[0], "/")
			if i <= 0 {
				return map[bool]string{true: "/", false: "."}[i == 0], nil
			}
			return strs[0][:i], nil
		}
	case "File.extname":
		if len(strs) > 0 {
			b := strs[0][strings.LastIndex(strs[0], "/")+1:]
			if i := strings.LastIndex(b, "."); i > 0 {
				return b[i:], nil
			}
			return "", nil
		}
	case "Set.[]", "Set.new":
		var items []any
		if name == "[]" {
			items = args
		} else if len(args) > 0 {
			a, ok := args[0].(*array)
			if !ok {
				return nil, rbErr("ArgumentError", "value must be enumerable")
			}
			items = a.v
		}
		s := &array{set: true}
		for _, x := range items {
			if !s.setHas(x) {
				s.v = append(s.v, x)
			}
		}
		return s, nil
	case "Gem::Version.new":
		if len(strs) > 0 {
			return version(strs[0]), nil
		}
	case "Regexp.new":
		if len(strs) > 0 {
			return compileRegex(strs[0], "")
		}
	case "Regexp.escape", "Regexp.quote":
		if len(strs) > 0 {
			return regexpQuote(strs[0]), nil
		}
	case "FilterTable.create":
		return nil, skipf("a library's FilterTable is not evaluated")
	case "Time.now":
		return skipValue("Time.now")
	case "File.exist?", "File.exists?", "File.readable?", "File.file?", "File.directory?", "File.read", "File.executable?", "Dir.glob", "Dir.exist?":
		return nil, skipf("%s.%s reads the machine running the profile, not the target", string(c), name)
	}
	return nil, rbErr("NoMethodError", "undefined method `%s' for %s", name, string(c))
}

func skipValue(what string) (any, error) { return nil, skipf("%s is not evaluated", what) }
