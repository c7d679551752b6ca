package ruby

// Walk calls fn for n and, while fn returns true, for each node below it in source order.
func Walk(n Node, fn func(Node) bool) {
	if n == nil || !fn(n) {
		return
	}
	for _, c := range Children(n) {
		Walk(c, fn)
	}
}

// Children returns the nodes directly below n, in source order.
func Children(n Node) []Node {
	var out []Node
	add := func(ns ...Node) {
		for _, c := range ns {
			if c != nil {
				out = append(out, c)
			}
		}
	}
	parts := func(ps []StrPart) {
		for _, p := range ps {
			add(p.Expr)
		}
	}
	params := func(ps []Param) {
		for _, p := range ps {
			add(p.Default)
		}
	}
	switch v := n.(type) {
	case *Str:
		parts(v.Parts)
	case *Sym:
		parts(v.Parts)
	case *Regex:
		parts(v.Parts)
	case *Array:
		add(v.Elems...)
	case *Hash:
		for _, p := range v.Pairs {
			add(p.Key, p.Value)
		}
	case *Range:
		add(v.Lo, v.Hi)
	case *Const:
		add(v.Scope)
	case *Call:
		add(v.Recv)
		add(v.Args...)
		if v.Block != nil {
			add(v.Block)
		}
	case *Block:
		params(v.Params)
		add(v.Body...)
	case *BlockPass:
		add(v.X)
	case *Splat:
		add(v.X)
	case *Index:
		add(v.X)
		add(v.Args...)
	case *Lambda:
		params(v.Params)
		add(v.Body...)
	case *Yield:
		add(v.Args...)
	case *Super:
		add(v.Args...)
	case *Defined:
		add(v.X)
	case *Unary:
		add(v.X)
	case *Binary:
		add(v.X, v.Y)
	case *Assign:
		add(v.Lhs, v.Rhs)
	case *MultiAssign:
		add(v.Lhs...)
		add(v.Rhs)
	case *If:
		add(v.Cond)
		add(v.Then...)
		add(v.Else...)
	case *While:
		add(v.Cond)
		add(v.Body...)
	case *For:
		add(v.Vars...)
		add(v.Iter)
		add(v.Body...)
	case *Case:
		add(v.Subject)
		for _, w := range v.Whens {
			add(w.Conds...)
			add(w.Body...)
		}
		add(v.Else...)
	case *Return:
		add(v.Vals...)
	case *Break:
		add(v.Vals...)
	case *Next:
		add(v.Vals...)
	case *Paren:
		add(v.Body...)
	default:
		out = statementChildren(n)
	}
	return out
}

// statementChildren is Children for definitions and begin blocks.
func statementChildren(n Node) []Node {
	var out []Node
	params := func(ps []Param) {
		for _, p := range ps {
			if p.Default != nil {
				out = append(out, p.Default)
			}
		}
	}
	add := func(ns ...Node) {
		for _, c := range ns {
			if c != nil {
				out = append(out, c)
			}
		}
	}
	switch v := n.(type) {
	case *Begin:
		add(v.Body...)
		for _, r := range v.Rescues {
			add(r.Classes...)
			add(r.Var)
			add(r.Body...)
		}
		add(v.Else...)
		add(v.Ensure...)
	case *Def:
		add(v.Recv)
		params(v.Params)
		if v.Body != nil {
			add(v.Body)
		}
	case *Class:
		if v.Name != nil {
			add(v.Name)
		}
		add(v.Super, v.SingletonOf)
		add(v.Body...)
	case *Module:
		if v.Name != nil {
			add(v.Name)
		}
		add(v.Body...)
	}
	return out
}
