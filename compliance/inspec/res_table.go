package inspec

import (
	"strings"
)

// tableRes is an InSpec filter table (passwd, shadow, etc_group, users, groups, packages): rows of fields,
// where(field: value) or where { block over the fields }, entries, and plural accessors for a column's values.
type tableRes struct {
	name string
	rows []*hash
	// cols maps accessor names (users, uids) to their field (user, uid).
	cols map[string]string
	// flat are the accessors whose list values are joined into one list (etc_group's users).
	flat map[string]bool
}

func (t *tableRes) String() string { return t.name }

func (t *tableRes) with(rows []*hash, cond string) *tableRes {
	return &tableRes{name: t.name + " with " + cond, rows: rows, cols: t.cols, flat: t.flat}
}

func (t *tableRes) method(ev *evaluator, name string, args []any, blk *proc) (any, bool, error) {
	switch name {
	case "where":
		v, err := t.where(ev, args, blk)
		return v, true, err
	case "entries":
		return t.entries(), true, nil
	case "raw_data":
		out := make([]any, len(t.rows))
		for i, r := range t.rows {
			out[i] = r
		}
		return newArray(out), true, nil
	case "count", "size", "length":
		return int64(len(t.rows)), true, nil
	case "exist?", "exists?", "any?":
		return len(t.rows) > 0, true, nil
	case "empty?":
		return len(t.rows) == 0, true, nil
	case "each", "map", "select", "reject", "find", "all?", "none?":
		if blk != nil {
			v, _, err := ev.arrayBlockMethod(t.entries().v, name, args, blk)
			return v, true, err
		}
	}
	if field, ok := t.cols[name]; ok && len(args) == 0 {
		return t.column(field, t.flat[name]), true, nil
	}
	return nil, false, nil
}

func (t *tableRes) entries() *array {
	out := make([]any, len(t.rows))
	for i, r := range t.rows {
		out[i] = &rowRes{table: t.name, h: r}
	}
	return newArray(out)
}

// column is a field's values over the rows, list values joined into one list when flat.
func (t *tableRes) column(field string, flat bool) *array {
	out := []any{}
	for _, r := range t.rows {
		v, _ := r.get(field)
		if a, ok := v.(*array); ok && flat {
			out = append(out, a.v...)
			continue
		}
		out = append(out, v)
	}
	return newArray(out)
}

func (t *tableRes) where(ev *evaluator, args []any, blk *proc) (any, error) {
	rows := t.rows
	var conds []string
	if h, ok := argOr(args, 0).(*hash); ok {
		for _, k := range h.keys {
			want, _ := h.get(k)
			field := toS(k)
			if f, ok := t.cols[field]; ok {
				field = f
			}
			rows = filterRows(rows, func(r *hash) bool {
				v, _ := r.get(field)
				return whereMatch(v, want)
			})
			conds = append(conds, field+" == "+inspect(want))
		}
	}
	if blk != nil && blk.method == "" {
		var kept []*hash
		for _, r := range rows {
			sc := newScope(blk.sc)
			for _, k := range r.keys {
				sc.vars[toS(k)], _ = r.get(k)
			}
			v, err := ev.callProc(&proc{params: blk.params, body: blk.body, sc: sc})
			if err != nil {
				return nil, err
			}
			if truthy(v) {
				kept = append(kept, r)
			}
		}
		rows = kept
		conds = append(conds, "{ ... }")
	}
	return t.with(rows, strings.Join(conds, ", ")), nil
}

func filterRows(rows []*hash, keep func(*hash) bool) []*hash {
	var out []*hash
	for _, r := range rows {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

// whereMatch is FilterTable's criterion: a regexp matches the value's text, else the values are equal (a
// number and its text count as equal, as criteria are often written as strings).
func whereMatch(v, want any) bool {
	switch w := want.(type) {
	case *regex:
		return v != nil && w.re.MatchString(toS(v))
	case *array:
		return contains(w.v, v)
	}
	if equal(v, want) {
		return true
	}
	_, vs := v.(string)
	_, ws := want.(string)
	return v != nil && want != nil && vs != ws && toS(v) == toS(want)
}

func row(kv ...any) *hash {
	h := newHash()
	for i := 0; i+1 < len(kv); i += 2 {
		h.set(kv[i], kv[i+1])
	}
	return h
}

func cols(pairs ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(pairs); i += 2 {
		m[pairs[i]] = pairs[i+1]
	}
	return m
}
