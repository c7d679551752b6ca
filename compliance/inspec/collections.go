package inspec

import (
	"errors"
	"fmt"
)

// iterate calls blk for each item, stopping when fn says so; the items of a hash are [key, value] pairs.
func (ev *evaluator) iterate(items []any, blk *proc, fn func(item, res any) (stop bool)) error {
	for _, it := range items {
		res, err := ev.callProc(blk, it)
		if err != nil {
			return err
		}
		if fn(it, res) {
			return nil
		}
	}
	return nil
}

func (ev *evaluator) arrayMethod(a *array, name string, args []any, blk *proc) (any, bool, error) {
	if err := ev.charge(len(a.v) / pairsPerStep); err != nil {
		return nil, true, err
	}
	if blk != nil {
		if v, ok, err := ev.arrayBlockMethod(a.v, name, args, blk); ok {
			return v, true, err
		}
	}
	switch name {
	case "length", "size":
		return int64(len(a.v)), true, nil
	case "count":
		if len(args) == 1 {
			n := 0
			for _, e := range a.v {
				if equal(e, args[0]) {
					n++
				}
			}
			return int64(n), true, nil
		}
		return int64(len(a.v)), true, nil
	case "empty?":
		return len(a.v) == 0, true, nil
	case "any?", "all?", "none?":
		return predicateNoBlock(a.v, name, args), true, nil
	case "include?", "member?":
		return contains(a.v, argOr(args, 0)), true, nil
	case "first", "last":
		return firstLast(a.v, name, args), true, nil
	case "[]", "dig", "fetch", "at":
		return arrayIndex(a, args)
	case "[]=":
		if i, ok := argOr(args, 0).(int64); ok && len(args) == 2 && i >= 0 && i < int64(ev.lim.MaxElems) {
			for int64(len(a.v)) <= i {
				a.v = append(a.v, nil)
			}
			a.v[i] = args[1]
			return args[1], true, nil
		}
		return nil, true, rbErr("IndexError", "bad index")
	case "<<", "push", "append", "add":
		for _, x := range args {
			if _, err := ev.arrayOp("<<", a, x); err != nil {
				return nil, true, err
			}
		}
		return a, true, nil
	case "+", "-", "&", "|", "*":
		v, err := ev.arrayOp(name, a, argOr(args, 0))
		return v, true, err
	case "join":
		s, err := ev.join(a, toS(argOr(args, 0)))
		return s, true, err
	case "uniq":
		return newArray(uniq(a.v)), true, nil
	case "compact":
		return newArray(filterArray(a.v, func(e any) bool { return e != nil })), true, nil
	case "flatten":
		out, err := ev.flatten(a.v)
		return newArray(out), true, err
	case "sort":
		out := append([]any{}, a.v...)
		return newArray(out), true, sortValues(out)
	case "reverse":
		out := make([]any, len(a.v))
		for i, e := range a.v {
			out[len(a.v)-1-i] = e
		}
		return newArray(out), true, nil
	case "min", "max":
		out := append([]any{}, a.v...)
		if err := sortValues(out); err != nil || len(out) == 0 {
			return nil, true, err
		}
		if name == "min" {
			return out[0], true, nil
		}
		return out[len(out)-1], true, nil
	case "sum":
		var sum any = int64(0)
		for _, e := range a.v {
			var err error
			if sum, err = ev.arith("+", sum, e); err != nil {
				return nil, true, err
			}
		}
		return sum, true, nil
	case "to_a", "entries", "to_ary":
		return a, true, nil
	case "to_h":
		h := newHash()
		for _, e := range a.v {
			if p, ok := e.(*array); ok && len(p.v) == 2 {
				h.set(p.v[0], p.v[1])
			}
		}
		return h, true, nil
	case "each", "map", "each_with_index", "select", "filter", "reject", "find", "detect", "collect":
		return newArray(append([]any{}, a.v...)), true, nil // without a block: an enumerator, used as an array
	}
	return nil, false, nil
}

func firstLast(v []any, name string, args []any) any {
	if n, ok := argOr(args, 0).(int64); ok {
		n = min(max(n, 0), int64(len(v)))
		if name == "first" {
			return newArray(append([]any{}, v[:n]...))
		}
		return newArray(append([]any{}, v[int64(len(v))-n:]...))
	}
	if len(v) == 0 {
		return nil
	}
	if name == "first" {
		return v[0]
	}
	return v[len(v)-1]
}

func arrayIndex(a *array, args []any) (any, bool, error) {
	if len(args) == 0 {
		return nil, true, rbErr("ArgumentError", "wrong number of arguments (given 0)")
	}
	var cur any = a
	for _, k := range args {
		arr, ok := cur.(*array)
		if !ok {
			if h, ok := cur.(*hash); ok {
				cur, _ = h.get(k)
				continue
			}
			return nil, true, nil
		}
		i, ok := k.(int64)
		if !ok {
			if r, ok := k.(*rangeVal); ok {
				lo, _ := r.lo.(int64)
				hi, _ := r.hi.(int64)
				if hi < 0 {
					hi += int64(len(arr.v))
				}
				if r.exclusive {
					hi--
				}
				if lo < 0 || lo > int64(len(arr.v)) {
					return nil, true, nil
				}
				hi = min(hi, int64(len(arr.v))-1)
				return newArray(append([]any{}, arr.v[lo:max(lo, hi+1)]...)), true, nil
			}
			return nil, true, rbErr("TypeError", "no implicit conversion of %s into Integer", typeName(k))
		}
		if i < 0 {
			i += int64(len(arr.v))
		}
		if i < 0 || i >= int64(len(arr.v)) {
			return nil, true, nil
		}
		cur = arr.v[i]
	}
	return cur, true, nil
}

// flatten is Array#flatten, bounded by MaxElems (a << a nests an array in itself).
func (ev *evaluator) flatten(v []any) ([]any, error) {
	out := []any{}
	var walk func(v []any, depth int) error
	walk = func(v []any, depth int) error {
		for _, e := range v {
			if a, ok := e.(*array); ok && depth < maxEqualDepth {
				if err := walk(a.v, depth+1); err != nil {
					return err
				}
				continue
			}
			if len(out) >= ev.lim.MaxElems {
				return &limitError{fmt.Sprintf("an array grew past %d elements", ev.lim.MaxElems)}
			}
			out = append(out, e)
		}
		return nil
	}
	err := walk(v, 0)
	if err == nil {
		err = ev.charge(len(out) / pairsPerStep)
	}
	return out, err
}

func predicateNoBlock(v []any, name string, args []any) bool {
	test := truthy
	if len(args) == 1 {
		test = func(e any) bool { return caseEq(args[0], e) }
	}
	for _, e := range v {
		t := test(e)
		switch {
		case name == "any?" && t:
			return true
		case name == "all?" && !t:
			return false
		case name == "none?" && t:
			return false
		}
	}
	return name != "any?"
}

// arrayBlockMethod runs the Enumerable methods that take a block.
func (ev *evaluator) arrayBlockMethod(items []any, name string, args []any, blk *proc) (any, bool, error) {
	var out []any
	var found any
	result := false
	var err error
	switch name {
	case "each", "each_entry":
		err = ev.iterate(items, blk, func(any, any) bool { return false })
		return newArray(items), true, err
	case "each_with_index", "each.with_index":
		for i, it := range items {
			if _, err := ev.callProc(blk, it, int64(i)); err != nil {
				return nil, true, err
			}
		}
		return newArray(items), true, nil
	case "map", "collect", "flat_map", "collect_concat":
		out = []any{}
		err = ev.iterate(items, blk, func(_, r any) bool { out = append(out, r); return false })
		if name == "flat_map" || name == "collect_concat" {
			var ferr error
			if out, ferr = ev.flatten(out); ferr != nil {
				return nil, true, ferr
			}
		}
		return newArray(out), true, err
	case "select", "filter", "reject", "find_all":
		out = []any{}
		want := name != "reject"
		err = ev.iterate(items, blk, func(it, r any) bool {
			if truthy(r) == want {
				out = append(out, it)
			}
			return false
		})
		return newArray(out), true, err
	case "find", "detect":
		err = ev.iterate(items, blk, func(it, r any) bool {
			if truthy(r) {
				found = it
				return true
			}
			return false
		})
		return found, true, err
	case "any?", "none?":
		err = ev.iterate(items, blk, func(_, r any) bool { result = truthy(r); return result })
		return result == (name == "any?"), true, err
	case "all?":
		result = true
		err = ev.iterate(items, blk, func(_, r any) bool { result = truthy(r); return !result })
		return result, true, err
	case "count":
		n := int64(0)
		err = ev.iterate(items, blk, func(_, r any) bool {
			if truthy(r) {
				n++
			}
			return false
		})
		return n, true, err
	case "each_with_object", "inject", "reduce":
		return ev.fold(items, name, args, blk)
	case "sort_by", "group_by", "partition", "uniq", "min_by", "max_by", "sum":
		return ev.keyed(items, name, blk)
	}
	return nil, false, nil
}

func (ev *evaluator) fold(items []any, name string, args []any, blk *proc) (any, bool, error) {
	if name == "each_with_object" {
		memo := argOr(args, 0)
		for _, it := range items {
			if _, err := ev.callProc(blk, it, memo); err != nil {
				return nil, true, err
			}
		}
		return memo, true, nil
	}
	acc, rest := argOr(args, 0), items
	if len(args) == 0 {
		if len(items) == 0 {
			return nil, true, nil
		}
		acc, rest = items[0], items[1:]
	}
	for _, it := range rest {
		var err error
		if acc, err = ev.callProc(blk, acc, it); err != nil {
			return nil, true, err
		}
	}
	return acc, true, nil
}

// keyed runs the methods that compute a key per element with the block.
func (ev *evaluator) keyed(items []any, name string, blk *proc) (any, bool, error) {
	keys := make([]any, len(items))
	for i, it := range items {
		k, err := ev.callProc(blk, it)
		if err != nil {
			return nil, true, err
		}
		keys[i] = k
	}
	switch name {
	case "group_by":
		h := newHash()
		for i, k := range keys {
			g, ok := h.get(k)
			if !ok {
				g = newArray(nil)
				h.set(k, g)
			}
			g.(*array).v = append(g.(*array).v, items[i])
		}
		return h, true, nil
	case "partition":
		yes, no := []any{}, []any{}
		for i, k := range keys {
			if truthy(k) {
				yes = append(yes, items[i])
			} else {
				no = append(no, items[i])
			}
		}
		return newArray([]any{newArray(yes), newArray(no)}), true, nil
	case "uniq":
		seen := map[any]bool{}
		out := []any{}
		for i, k := range keys {
			if !seen[hkey(k)] {
				seen[hkey(k)] = true
				out = append(out, items[i])
			}
		}
		return newArray(out), true, nil
	case "sum":
		var sum any = int64(0)
		for _, k := range keys {
			var err error
			if sum, err = ev.arith("+", sum, k); err != nil {
				return nil, true, err
			}
		}
		return sum, true, nil
	}
	if err := ev.charge(len(items) * len(items) / pairsPerStep); err != nil {
		return nil, true, err
	}
	idx := make([]any, len(items))
	for i := range items {
		idx[i] = newArray([]any{keys[i], int64(i)})
	}
	var err error
	sortPairs(idx, &err)
	out := make([]any, len(idx))
	for i, p := range idx {
		out[i] = items[p.(*array).v[1].(int64)]
	}
	switch name {
	case "min_by":
		return firstLast(out, "first", nil), true, err
	case "max_by":
		return firstLast(out, "last", nil), true, err
	}
	return newArray(out), true, err
}

func sortPairs(v []any, errp *error) {
	keys := make([]any, len(v))
	for i, p := range v {
		keys[i] = p.(*array).v[0]
	}
	if err := sortValues(keys); err != nil {
		*errp = err
		return
	}
	sorted := make([]any, 0, len(v))
	used := make([]bool, len(v))
	for _, k := range keys {
		for i, p := range v {
			if !used[i] && equal(p.(*array).v[0], k) {
				used[i] = true
				sorted = append(sorted, p)
				break
			}
		}
	}
	copy(v, sorted)
}

func (ev *evaluator) hashMethod(h *hash, name string, args []any, blk *proc) (any, bool, error) {
	if err := ev.charge(len(h.keys) / pairsPerStep); err != nil {
		return nil, true, err
	}
	if blk != nil {
		switch name {
		case "each", "each_pair", "map", "collect", "select", "filter", "reject", "any?", "all?", "none?", "find", "detect", "count", "flat_map", "each_with_object", "sort_by", "group_by", "partition", "min_by", "max_by", "sum", "inject", "reduce":
			v, ok, err := ev.arrayBlockMethod(hashPairs(h).v, name, args, blk)
			if a, isArr := v.(*array); isArr && (name == "select" || name == "filter" || name == "reject") {
				out := newHash()
				for _, p := range a.v {
					out.set(p.(*array).v[0], p.(*array).v[1])
				}
				return out, ok, err
			}
			if name == "each" || name == "each_pair" {
				return h, ok, err
			}
			return v, ok, err
		case "each_key", "each_value":
			items := h.keys
			if name == "each_value" {
				items = hashValues(h)
			}
			return h, true, ev.iterate(items, blk, func(any, any) bool { return false })
		}
	}
	switch name {
	case "[]", "fetch", "dig":
		return hashDig(h, name, args)
	case "[]=", "store":
		if len(args) == 2 {
			if len(h.keys) >= ev.lim.MaxElems {
				return nil, true, &limitError{fmt.Sprintf("a hash grew past %d entries", ev.lim.MaxElems)}
			}
			h.set(args[0], args[1])
			return args[1], true, nil
		}
	case "key?", "has_key?", "include?", "member?":
		_, ok := h.get(argOr(args, 0))
		return ok, true, nil
	case "value?", "has_value?":
		return contains(hashValues(h), argOr(args, 0)), true, nil
	case "keys":
		return newArray(append([]any{}, h.keys...)), true, nil
	case "values":
		return newArray(hashValues(h)), true, nil
	case "length", "size", "count":
		return int64(len(h.keys)), true, nil
	case "empty?":
		return len(h.keys) == 0, true, nil
	case "to_h", "to_hash":
		return h, true, nil
	case "to_a", "entries":
		return hashPairs(h), true, nil
	case "merge", "update", "merge!":
		out := h
		if name == "merge" {
			out = newHash()
			for _, k := range h.keys {
				v, _ := h.get(k)
				out.set(k, v)
			}
		}
		if o, ok := argOr(args, 0).(*hash); ok {
			for _, k := range o.keys {
				v, _ := o.get(k)
				out.set(k, v)
			}
		}
		return out, true, nil
	}
	// A parsed document (json, yaml) answers its keys as methods, as InSpec's resources do.
	if v, ok := h.get(name); ok && len(args) == 0 {
		return v, true, nil
	}
	return nil, false, nil
}

func hashValues(h *hash) []any {
	out := make([]any, len(h.keys))
	for i, k := range h.keys {
		out[i], _ = h.get(k)
	}
	return out
}

func hashDig(h *hash, name string, args []any) (any, bool, error) {
	if len(args) == 0 {
		return nil, true, rbErr("ArgumentError", "wrong number of arguments (given 0)")
	}
	if name == "fetch" {
		v, ok := h.get(args[0])
		if !ok {
			if len(args) > 1 {
				return args[1], true, nil
			}
			return nil, true, &rubyError{class: "KeyError", msg: "key not found: " + inspect(args[0])}
		}
		return v, true, nil
	}
	var cur any = h
	for _, k := range args {
		switch c := cur.(type) {
		case *hash:
			cur, _ = c.get(k)
		case *array:
			v, _, _ := arrayIndex(c, []any{k})
			cur = v
		default:
			if name == "[]" && len(args) > 1 {
				return nil, true, errors.New("hash index takes one key")
			}
			return nil, true, nil
		}
	}
	return cur, true, nil
}
