package ruby

// keyword reads an expression that starts with a reserved word.
func (p *parser) keyword() Node {
	t := p.tok()
	pos := p.pos(t)
	switch t.Val {
	case "nil":
		p.advance()
		return &Nil{Pos: pos}
	case "true", "false":
		p.advance()
		return &Bool{Pos: pos, Val: t.Val == "true"}
	case "self":
		p.advance()
		return &Self{Pos: pos}
	case "__FILE__", "__LINE__", "__dir__", "__method__", "__ENCODING__":
		p.advance()
		return &Ident{Pos: pos, Name: t.Val}
	case "if", "unless":
		return p.ifExpr()
	case "while", "until":
		return p.whileExpr()
	case "for":
		return p.forExpr()
	case "case":
		return p.caseExpr()
	case "begin":
		p.advance()
		b := p.bodyStmt()
		b.Pos = pos
		b.End = p.expectKw("end", t).End
		return b
	case "def":
		return p.defExpr()
	case "class":
		return p.classExpr()
	case "module":
		return p.moduleExpr()
	case "return", "break", "next":
		return p.jump()
	case "yield", "super":
		return p.yieldSuper()
	case "retry", "redo":
		p.advance()
		return &Retry{Pos: pos}
	case "alias":
		return p.alias()
	case "not", "defined?":
		return p.unary()
	}
	p.fail("unexpected %s", describe(t))
	return nil
}

// thenSep skips the `then` or newline after a condition.
func (p *parser) thenSep() {
	if p.tok().Kind == NL {
		p.skipNL()
	}
	if p.tok().kw("then") {
		p.advance()
	}
}

func (p *parser) ifExpr() Node {
	t := p.advance()
	n := &If{Pos: p.pos(t), Unless: t.Val == "unless", Cond: p.exprStmt()}
	p.thenSep()
	n.Then = p.stmts()
	switch e := p.tok(); {
	case e.kw("elsif") && t.Val == "if":
		p.toks[p.i].Val = "if" // read the elsif chain as a nested if that shares this one's end
		n.Else = []Node{p.ifExpr()}
		n.End = n.Else[0].Position().End
		return n
	case e.kw("else"):
		p.advance()
		n.Else = p.stmts()
	}
	n.End = p.expectKw("end", t).End
	return n
}

func (p *parser) whileExpr() Node {
	t := p.advance()
	saved := p.noDo
	p.noDo = true
	cond := p.exprStmt()
	p.noDo = saved
	if p.tok().kw("do") {
		p.advance()
	}
	body := p.stmts()
	end := p.expectKw("end", t)
	return &While{Pos: Pos{Line: p.f.Line(t.Off), Off: t.Off, End: end.End}, Cond: cond, Body: body, Until: t.Val == "until"}
}

func (p *parser) forExpr() Node {
	t := p.advance()
	f := &For{Pos: p.pos(t)}
	for {
		v := p.tok()
		if v.Kind != IDENT {
			p.fail("expected a variable after for, found %s", describe(v))
		}
		p.advance()
		p.declare(v.Val)
		f.Vars = append(f.Vars, &Ident{Pos: p.pos(v), Name: v.Val, Local: true})
		if !p.tok().op(",") {
			break
		}
		p.advance()
	}
	p.expectKw("in", t)
	saved := p.noDo
	p.noDo = true
	f.Iter = p.exprStmt()
	p.noDo = saved
	if p.tok().kw("do") {
		p.advance()
	}
	f.Body = p.stmts()
	f.End = p.expectKw("end", t).End
	return f
}

func (p *parser) caseExpr() Node {
	t := p.advance()
	c := &Case{Pos: p.pos(t)}
	if p.tok().Kind != NL {
		c.Subject = p.exprStmt()
	}
	p.skipNL()
	for p.tok().kw("when") {
		w := p.advance()
		clause := When{Line: p.f.Line(w.Off)}
		for {
			clause.Conds = append(clause.Conds, p.arg())
			if !p.tok().op(",") {
				break
			}
			p.advance()
			p.skipNL()
		}
		p.thenSep()
		clause.Body = p.stmts()
		c.Whens = append(c.Whens, clause)
	}
	if p.tok().kw("in") {
		p.fail("case/in pattern matching is not supported")
	}
	if p.tok().kw("else") {
		p.advance()
		c.Else = p.stmts()
	}
	c.End = p.expectKw("end", t).End
	return c
}

// bodyStmt reads statements with optional rescue/else/ensure clauses, up to (not including) the closing end.
func (p *parser) bodyStmt() *Begin {
	b := &Begin{Pos: p.pos(p.tok())}
	b.Body = p.stmts()
	for p.tok().kw("rescue") {
		r := p.advance()
		clause := Rescue{Line: p.f.Line(r.Off)}
		for n := p.tok(); n.Kind != NL && !n.kw("then") && !n.op("=>"); n = p.tok() {
			clause.Classes = append(clause.Classes, p.ternary())
			if !p.tok().op(",") {
				break
			}
			p.advance()
			p.skipNL()
		}
		if p.tok().op("=>") {
			p.advance()
			v := p.advance()
			switch v.Kind {
			case IDENT:
				p.declare(v.Val)
				clause.Var = &Ident{Pos: p.pos(v), Name: v.Val, Local: true}
			case IVAR, GVAR, CVAR:
				clause.Var = &Var{Pos: p.pos(v), Name: v.Val}
			default:
				p.failAt(v.Off, "expected a variable after \"=>\" in rescue, found %s", describe(v))
			}
		}
		p.thenSep()
		clause.Body = p.stmts()
		b.Rescues = append(b.Rescues, clause)
	}
	if p.tok().kw("else") {
		p.advance()
		b.Else = p.stmts()
	}
	if p.tok().kw("ensure") {
		p.advance()
		b.Ensure = p.stmts()
	}
	return b
}

func (p *parser) defExpr() Node {
	t := p.advance()
	d := &Def{Pos: p.pos(t)}
	name := p.advance()
	if (name.Val == "self" || name.Kind == CONST) && p.tok().op(".") {
		if name.Val == "self" {
			d.Recv = &Self{Pos: p.pos(name)}
		} else {
			d.Recv = &Const{Pos: p.pos(name), Name: name.Val}
		}
		p.advance()
		name = p.advance()
	}
	switch name.Kind {
	case IDENT, CONST, KEYWORD, OP:
		d.Name = name.Val
	case LABEL:
		p.failAt(name.Off, "unexpected label in def")
	default:
		p.failAt(name.Off, "expected a method name after def, found %s", describe(name))
	}
	if d.Name == "[" && p.tok().op("]") {
		p.advance()
		d.Name = "[]"
	}
	if n := p.tok(); n.op("=") && !n.Space && p.peek(1).op("(") {
		p.advance()
		d.Name += "="
	}
	p.pushScope(true)
	defer p.popScope()
	switch n := p.tok(); {
	case n.op("("):
		p.advance()
		d.Params = p.params(")")
		p.expectOp(")")
	case n.Kind == IDENT || n.op("*") || n.op("&") || n.op("**") || n.Kind == LABEL:
		d.Params = p.params("\n")
	}
	if n := p.tok(); n.op("=") {
		// def name = expr
		p.advance()
		p.skipNL()
		body := p.stmt()
		d.Body = &Begin{Pos: body.Position(), Body: []Node{body}}
		d.End = p.toks[max(p.i-1, 0)].End
		return d
	}
	d.Body = p.bodyStmt()
	d.End = p.expectKw("end", t).End
	return d
}

// params reads method or block parameters up to a closing token (")", "|", "{" or "\n"), which it leaves.
func (p *parser) params(closer string) []Param {
	var out []Param
	closed := func(t Token) bool {
		return t.Kind == EOF || (closer == "\n" && (t.Kind == NL || t.op("="))) || t.op(closer) || (closer == "{" && t.kw("do"))
	}
	for {
		if closer != "\n" {
			p.skipNL()
		}
		t := p.tok()
		if closed(t) {
			return out
		}
		out = append(out, p.param(closer))
		if closer != "\n" {
			p.skipNL()
		}
		if p.tok().op(",") {
			p.advance()
			continue
		}
		if closed(p.tok()) {
			return out
		}
		p.fail("expected \",\" in parameters, found %s", describe(p.tok()))
	}
}

func (p *parser) param(closer string) Param {
	t := p.advance()
	switch {
	case t.Kind == IDENT:
		p.declare(t.Val)
		if p.tok().op("=") {
			p.advance()
			return Param{Name: t.Val, Kind: ParamOptional, Default: p.paramDefault(closer)}
		}
		return Param{Name: t.Val}
	case t.Kind == LABEL:
		p.declare(t.Val)
		if n := p.tok(); n.op(",") || n.op(closer) || n.Kind == NL {
			return Param{Name: t.Val, Kind: ParamKey}
		}
		return Param{Name: t.Val, Kind: ParamKey, Default: p.paramDefault(closer)}
	case t.op("*") || t.op("**") || t.op("&"):
		kind := map[string]ParamKind{"*": ParamRest, "**": ParamKeyRest, "&": ParamBlock}[t.Val]
		if n := p.tok(); n.Kind == IDENT {
			p.advance()
			p.declare(n.Val)
			return Param{Name: n.Val, Kind: kind}
		}
		return Param{Kind: kind}
	case t.op("..."):
		return Param{Name: "...", Kind: ParamRest}
	case t.op("(") && closer == "|":
		nested := p.params(")")
		p.expectOp(")")
		return Param{Kind: ParamNested, Nested: nested}
	}
	p.failAt(t.Off, "unexpected %s in parameters", describe(t))
	return Param{}
}

// paramDefault reads a default value; in block parameters a | ends it, so it cannot be a binary |.
func (p *parser) paramDefault(closer string) Node {
	if closer == "|" {
		return p.postfix(p.primary())
	}
	return p.ternary()
}

func (p *parser) constPath() *Const {
	t := p.tok()
	var c *Const
	if t.op("::") {
		p.advance()
		c = &Const{Pos: p.pos(t), Top: true}
		t = p.tok()
	}
	if t.Kind != CONST {
		p.fail("expected a constant name, found %s", describe(t))
	}
	p.advance()
	if c != nil {
		c.Name = t.Val
	} else {
		c = &Const{Pos: p.pos(t), Name: t.Val}
	}
	for p.tok().op("::") && p.peek(1).Kind == CONST {
		p.advance()
		n := p.advance()
		c = &Const{Pos: c.Pos, Scope: c, Name: n.Val}
	}
	return c
}

func (p *parser) classExpr() Node {
	t := p.advance()
	c := &Class{Pos: p.pos(t)}
	if p.tok().op("<<") {
		p.advance()
		c.SingletonOf = p.expr()
	} else {
		c.Name = p.constPath()
		if p.tok().op("<") {
			p.advance()
			c.Super = p.expr()
		}
	}
	p.pushScope(true)
	defer p.popScope()
	c.Body = p.stmts()
	c.End = p.expectKw("end", t).End
	return c
}

func (p *parser) moduleExpr() Node {
	t := p.advance()
	m := &Module{Pos: p.pos(t), Name: p.constPath()}
	p.pushScope(true)
	defer p.popScope()
	m.Body = p.stmts()
	m.End = p.expectKw("end", t).End
	return m
}

func (p *parser) jump() Node {
	t := p.advance()
	var vals []Node
	if n := p.tok(); p.startsOperand(n) && !n.op("{") {
		vals = p.commandArgs()
	}
	pos := p.pos(t)
	switch t.Val {
	case "return":
		return &Return{Pos: pos, Vals: vals}
	case "break":
		return &Break{Pos: pos, Vals: vals}
	}
	return &Next{Pos: pos, Vals: vals}
}

func (p *parser) yieldSuper() Node {
	t := p.advance()
	c := &Call{Pos: p.pos(t)}
	p.callArgs(c)
	if t.Val == "yield" {
		return &Yield{Pos: p.pos(t), Args: c.Args}
	}
	s := &Super{Pos: p.pos(t), Args: c.Args, Paren: c.Paren}
	return s
}

func (p *parser) alias() Node {
	t := p.advance()
	names := [2]string{}
	for i := range names {
		n := p.advance()
		switch n.Kind {
		case IDENT, CONST, KEYWORD, SYMBOL, GVAR, OP:
			names[i] = n.Val
		default:
			p.failAt(n.Off, "expected a method name after alias, found %s", describe(n))
		}
	}
	return &Alias{Pos: p.pos(t), New: names[0], Old: names[1]}
}

// block reads a do...end or {...} block with its |parameters|.
func (p *parser) block() *Block {
	open := p.advance()
	b := &Block{Pos: p.pos(open), Brace: open.op("{")}
	saved := p.noDo
	p.noDo = false
	defer func() { p.noDo = saved }()
	p.pushScope(false)
	defer p.popScope()
	p.skipNL()
	switch t := p.tok(); {
	case t.op("||"):
		p.advance()
	case t.op("|"):
		p.advance()
		b.Params = p.params("|")
		p.expectOp("|")
	}
	if b.Brace {
		b.Body = p.stmts()
		b.End = p.expectOp("}").End
		return b
	}
	body := p.bodyStmt()
	b.Body = body.Body
	if body.Rescues != nil || body.Ensure != nil || body.Else != nil {
		b.Body = []Node{body}
	}
	b.End = p.expectKw("end", open).End
	return b
}
