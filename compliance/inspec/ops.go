package inspec

import (
	"fmt"
	"math"
	"strings"

	"github.com/rootscan/rootscan/compliance/inspec/ruby"
)

func (ev *evaluator) unary(u *ruby.Unary, sc *scope) (any, error) {
	x, err := ev.eval(u.X, sc)
	if err != nil {
		return nil, err
	}
	switch u.Op {
	case "!", "not":
		return !truthy(x), nil
	case "-":
		switch n := x.(type) {
		case int64:
			return -n, nil
		case float64:
			return -n, nil
		}
	case "+":
		switch x.(type) {
		case int64, float64:
			return x, nil
		}
	case "~":
		if n, ok := x.(int64); ok {
			return ^n, nil
		}
	}
	return nil, rbErr("NoMethodError", "undefined method `%s' for %s", u.Op, typeName(x))
}

func (ev *evaluator) binary(b *ruby.Binary, sc *scope) (any, error) {
	x, err := ev.eval(b.X, sc)
	if err != nil {
		return nil, err
	}
	switch b.Op {
	case "&&", "and":
		if !truthy(x) {
			return x, nil
		}
		return ev.eval(b.Y, sc)
	case "||", "or":
		if truthy(x) {
			return x, nil
		}
		return ev.eval(b.Y, sc)
	}
	y, err := ev.eval(b.Y, sc)
	if err != nil {
		return nil, err
	}
	return ev.operator(b.Op, x, y)
}

// operator applies a binary operator as a method of x.
func (ev *evaluator) operator(op string, x, y any) (any, error) {
	if err := poisoned(x, y); err != nil {
		return nil, err
	}
	if m, ok := x.(*matcher); ok {
		return m.withOp(op, y)
	}
	switch op {
	case "==":
		return equal(x, y), nil
	case "!=":
		return !equal(x, y), nil
	case "===":
		return caseEq(x, y), nil
	case "=~", "!~":
		r, s := x, y
		if _, ok := x.(*regex); !ok {
			r, s = y, x
		}
		re, ok := r.(*regex)
		if !ok {
			return nil, rbErr("TypeError", "wrong argument type %s (expected Regexp)", typeName(r))
		}
		str, ok := s.(string)
		hit := ok && re.re.MatchString(str)
		if op == "!~" {
			return !hit, nil
		}
		if !hit {
			return nil, nil
		}
		return int64(re.re.FindStringIndex(str)[0]), nil
	case "<", ">", "<=", ">=", "<=>":
		return compareOp(op, x, y)
	}
	return ev.arith(op, x, y)
}

func compareOp(op string, x, y any) (any, error) {
	c, ok := compare(x, y)
	if !ok {
		if op == "<=>" {
			return nil, nil
		}
		return nil, rbErr("ArgumentError", "comparison of %s with %s failed", typeName(x), inspect(y))
	}
	switch op {
	case "<":
		return c < 0, nil
	case ">":
		return c > 0, nil
	case "<=":
		return c <= 0, nil
	case ">=":
		return c >= 0, nil
	}
	return int64(c), nil
}

// arith is + - * / % ** & | ^ << >> on numbers, strings, arrays and hashes.
func (ev *evaluator) arith(op string, x, y any) (any, error) {
	switch a := x.(type) {
	case int64:
		if b, ok := y.(int64); ok {
			return intOp(op, a, b)
		}
		if b, ok := y.(float64); ok {
			return floatOp(op, float64(a), b)
		}
	case float64:
		switch b := y.(type) {
		case int64:
			return floatOp(op, a, float64(b))
		case float64:
			return floatOp(op, a, b)
		}
	case string:
		return ev.stringOp(op, a, y)
	case *array:
		return ev.arrayOp(op, a, y)
	case *hash:
		if b, ok := y.(*hash); ok && op == "|" {
			out := newHash()
			for _, h := range []*hash{a, b} {
				for _, k := range h.keys {
					v, _ := h.get(k)
					out.set(k, v)
				}
			}
			return out, nil
		}
	}
	return nil, rbErr("NoMethodError", "undefined method `%s' for %s", op, typeName(x))
}

func intOp(op string, a, b int64) (any, error) {
	switch op {
	case "+":
		return a + b, nil
	case "-":
		return a - b, nil
	case "*":
		return a * b, nil
	case "/", "%":
		if b == 0 {
			return nil, rbErr("ZeroDivisionError", "divided by 0")
		}
		q, r := a/b, a%b
		if r != 0 && (r < 0) != (b < 0) { // Ruby floors
			q--
			r += b
		}
		if op == "/" {
			return q, nil
		}
		return r, nil
	case "**":
		if b < 0 || b > 64 {
			return math.Pow(float64(a), float64(b)), nil
		}
		out := int64(1)
		for range b {
			out *= a
		}
		return out, nil
	case "&":
		return a & b, nil
	case "|":
		return a | b, nil
	case "^":
		return a ^ b, nil
	case "<<":
		return a << (uint64(b) & 63), nil
	case ">>":
		return a >> (uint64(b) & 63), nil
	}
	return nil, rbErr("NoMethodError", "undefined method `%s' for Integer", op)
}

func floatOp(op string, a, b float64) (any, error) {
	switch op {
	case "+":
		return a + b, nil
	case "-":
		return a - b, nil
	case "*":
		return a * b, nil
	case "/":
		return a / b, nil
	case "%":
		return math.Mod(a, b), nil
	case "**":
		return math.Pow(a, b), nil
	}
	return nil, rbErr("NoMethodError", "undefined method `%s' for Float", op)
}

func (ev *evaluator) stringOp(op, a string, y any) (any, error) {
	switch op {
	case "+", "<<":
		b, ok := y.(string)
		if !ok {
			return nil, rbErr("TypeError", "no implicit conversion of %s into String", typeName(y))
		}
		if len(a)+len(b) > ev.lim.MaxStringBytes {
			return nil, &limitError{fmt.Sprintf("a string grew past %d bytes", ev.lim.MaxStringBytes)}
		}
		if err := ev.charge((len(a) + len(b)) / bytesPerStep); err != nil {
			return nil, err
		}
		return a + b, nil
	case "*":
		n, ok := y.(int64)
		if !ok || n < 0 {
			return nil, rbErr("ArgumentError", "negative or non-integer argument")
		}
		if n > 0 && int64(len(a)) > int64(ev.lim.MaxStringBytes)/n {
			return nil, &limitError{fmt.Sprintf("a string grew past %d bytes", ev.lim.MaxStringBytes)}
		}
		if err := ev.charge(len(a) * int(n) / bytesPerStep); err != nil {
			return nil, err
		}
		return strings.Repeat(a, int(n)), nil
	case "%":
		args := []any{y}
		if arr, ok := y.(*array); ok {
			args = arr.v
		}
		return sprintf(a, args), nil
	}
	return nil, rbErr("NoMethodError", "undefined method `%s' for String", op)
}

func (ev *evaluator) arrayOp(op string, a *array, y any) (any, error) {
	if op == "<<" {
		if a.set && a.setHas(y) {
			return a, nil
		}
		if len(a.v) >= ev.lim.MaxElems {
			return nil, &limitError{fmt.Sprintf("an array grew past %d elements", ev.lim.MaxElems)}
		}
		a.v = append(a.v, y)
		return a, nil
	}
	if op == "*" {
		if s, ok := y.(string); ok {
			return ev.join(a, s)
		}
	}
	b, ok := y.(*array)
	if !ok {
		return nil, rbErr("TypeError", "no implicit conversion of %s into Array", typeName(y))
	}
	if len(a.v)+len(b.v) > ev.lim.MaxElems {
		return nil, &limitError{fmt.Sprintf("an array grew past %d elements", ev.lim.MaxElems)}
	}
	if err := ev.charge(len(a.v) + len(b.v) + len(a.v)*len(b.v)/pairsPerStep); err != nil {
		return nil, err
	}
	switch op {
	case "+":
		return newArray(append(append([]any{}, a.v...), b.v...)), nil
	case "-":
		return newArray(filterArray(a.v, func(e any) bool { return !contains(b.v, e) })), nil
	case "&":
		return newArray(uniq(filterArray(a.v, func(e any) bool { return contains(b.v, e) }))), nil
	case "|":
		return newArray(uniq(append(append([]any{}, a.v...), b.v...))), nil
	}
	return nil, rbErr("NoMethodError", "undefined method `%s' for Array", op)
}

func filterArray(v []any, keep func(any) bool) []any {
	out := []any{}
	for _, e := range v {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

func contains(v []any, x any) bool {
	for _, e := range v {
		if equal(e, x) {
			return true
		}
	}
	return false
}

func uniq(v []any) []any {
	seen := map[any]bool{}
	out := []any{}
	for _, e := range v {
		k := hkey(e)
		if !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	return out
}

// join is Array#join, nested arrays flattened, bounded by MaxStringBytes and charged by what it copies.
func (ev *evaluator) join(a *array, sep string) (string, error) {
	var b strings.Builder
	first := true
	var walk func(v []any, depth int) error
	walk = func(v []any, depth int) error {
		if depth > maxEqualDepth {
			return &limitError{"join: arrays nested too deep"}
		}
		for _, e := range v {
			if inner, ok := e.(*array); ok {
				if err := walk(inner.v, depth+1); err != nil {
					return err
				}
				continue
			}
			if !first {
				b.WriteString(sep)
			}
			first = false
			b.WriteString(toS(e))
			if b.Len() > ev.lim.MaxStringBytes {
				return &limitError{fmt.Sprintf("a string grew past %d bytes", ev.lim.MaxStringBytes)}
			}
		}
		return nil
	}
	err := walk(a.v, 0)
	if err == nil {
		err = ev.charge(b.Len() / bytesPerStep)
	}
	return b.String(), err
}

// sprintf is Ruby's format for the verbs profiles use (%s %d %o %x %f %i and widths).
func sprintf(f string, args []any) string {
	conv := make([]any, len(args))
	for i, a := range args {
		switch a.(type) {
		case int64, float64, string:
			conv[i] = a
		default:
			conv[i] = toS(a)
		}
	}
	return fmt.Sprintf(strings.ReplaceAll(f, "%i", "%d"), conv...)
}

func (ev *evaluator) assign(a *ruby.Assign, sc *scope) (any, error) {
	if a.Op == "=" {
		v, err := ev.eval(a.Rhs, sc)
		if err != nil {
			return nil, err
		}
		return v, ev.assignTo(a.Lhs, v, sc)
	}
	cur, err := ev.currentValue(a.Lhs, sc)
	if err != nil {
		return nil, err
	}
	op := strings.TrimSuffix(a.Op, "=")
	var v any
	switch op {
	case "||":
		if truthy(cur) {
			return cur, nil
		}
		v, err = ev.eval(a.Rhs, sc)
	case "&&":
		if !truthy(cur) {
			return cur, nil
		}
		v, err = ev.eval(a.Rhs, sc)
	default:
		var rhs any
		if rhs, err = ev.eval(a.Rhs, sc); err == nil {
			if arr, ok := cur.(*array); ok && op == "+" { // += makes a new array; << mutates
				v, err = ev.arrayOp("+", arr, rhs)
			} else {
				v, err = ev.operator(op, cur, rhs)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	return v, ev.assignTo(a.Lhs, v, sc)
}

// currentValue reads an assignment target for op-assignment (an unset variable is nil).
func (ev *evaluator) currentValue(lhs ruby.Node, sc *scope) (any, error) {
	switch l := lhs.(type) {
	case *ruby.Ident:
		v, _ := sc.lookup(l.Name)
		return v, nil
	case *ruby.Var:
		if ev.self != nil && isIvar(l.Name) {
			return ev.self.ivars[l.Name], nil
		}
		v, _ := sc.lookup(l.Name)
		return v, nil
	}
	return ev.eval(lhs, sc)
}

func (ev *evaluator) assignTo(lhs ruby.Node, v any, sc *scope) error {
	switch l := lhs.(type) {
	case *ruby.Ident:
		sc.assign(l.Name, v)
		return nil
	case *ruby.Var:
		if ev.self != nil && isIvar(l.Name) {
			ev.self.ivars[l.Name] = v
			return nil
		}
		sc.assign(l.Name, v)
		return nil
	case *ruby.Index:
		recv, err := ev.eval(l.X, sc)
		if err != nil {
			return err
		}
		args, err := ev.args(l.Args, sc)
		if err != nil {
			return err
		}
		_, err = ev.method(recv, "[]=", append(args, v), nil)
		return err
	case *ruby.Call:
		if l.Recv != nil {
			recv, err := ev.eval(l.Recv, sc)
			if err != nil {
				return err
			}
			_, err = ev.method(recv, l.Name+"=", []any{v}, nil)
			return err
		}
		sc.assign(l.Name, v)
		return nil
	case *ruby.Splat:
		return ev.assignTo(l.X, v, sc)
	}
	return rbErr("SyntaxError", "cannot assign to %T", lhs)
}

func (ev *evaluator) multiAssign(m *ruby.MultiAssign, sc *scope) (any, error) {
	v, err := ev.eval(m.Rhs, sc)
	if err != nil {
		return nil, err
	}
	return v, ev.destructure(m.Lhs, v, sc)
}

// destructure assigns an array's elements to several targets (a, b = x; |k, v| of a hash's pairs).
func (ev *evaluator) destructure(lhs []ruby.Node, v any, sc *scope) error {
	var elems []any
	if a, ok := v.(*array); ok {
		elems = a.v
	} else {
		elems = []any{v}
	}
	for i, l := range lhs {
		if s, ok := l.(*ruby.Splat); ok {
			rest := []any{}
			if i < len(elems) {
				rest = append(rest, elems[i:]...)
			}
			if err := ev.assignTo(s.X, newArray(rest), sc); err != nil {
				return err
			}
			continue
		}
		var e any
		if i < len(elems) {
			e = elems[i]
		}
		if err := ev.assignTo(l, e, sc); err != nil {
			return err
		}
	}
	return nil
}

func (ev *evaluator) index(ix *ruby.Index, sc *scope) (any, error) {
	recv, err := ev.eval(ix.X, sc)
	if err != nil {
		return nil, err
	}
	args, err := ev.args(ix.Args, sc)
	if err != nil {
		return nil, err
	}
	return ev.method(recv, "[]", args, nil)
}
