package ruby

import (
	"strconv"
	"strings"
)

var opAssign = map[string]bool{
	"=": true, "+=": true, "-=": true, "*=": true, "/=": true, "%=": true, "**=": true, "||=": true, "&&=": true,
	"|=": true, "&=": true, "^=": true, "<<=": true, ">>=": true,
}

// expr reads an assignment or a ternary.
func (p *parser) expr() Node {
	p.enter()
	defer p.leave()
	left := p.ternary()
	t := p.tok()
	if t.Kind != OP || !opAssign[t.Val] {
		return left
	}
	switch l := left.(type) {
	case *Ident:
		p.declare(l.Name)
		l.Local = true
	case *Var, *Const, *Index:
	case *Call:
		if l.Recv == nil || len(l.Args) > 0 || l.Block != nil {
			p.fail("cannot assign to a method call with arguments")
		}
	default:
		p.fail("cannot assign to this expression")
	}
	p.advance()
	p.skipNL()
	rhs := p.expr()
	if p.tok().kw("rescue") && t.Val == "=" {
		r := p.advance()
		rhs = &Begin{Pos: rhs.Position(), Body: []Node{rhs}, Rescues: []Rescue{{Line: p.f.Line(r.Off), Body: []Node{p.ternary()}}}}
	}
	return &Assign{Pos: left.Position(), Op: t.Val, Lhs: left, Rhs: rhs}
}

// ternary reads c ? a : b.
func (p *parser) ternary() Node {
	cond := p.rangeExpr()
	t := p.tok()
	if !t.op("?") {
		return cond
	}
	p.enter()
	defer p.leave()
	p.advance()
	p.skipNL()
	var then Node
	if lt := p.tok(); lt.Kind == LABEL {
		// `c ? a: b` lexes a: as a label.
		p.advance()
		then = &Ident{Pos: p.pos(lt), Name: lt.Val, Local: p.isLocal(lt.Val)}
	} else {
		then = p.ternary()
		p.skipNL()
		p.expectOp(":")
	}
	p.skipNL()
	els := p.ternary()
	return &If{Pos: cond.Position(), Cond: cond, Then: []Node{then}, Else: []Node{els}}
}

func (p *parser) rangeExpr() Node {
	left := p.binary(1)
	t := p.tok()
	if !t.op("..") && !t.op("...") {
		return left
	}
	p.advance()
	r := &Range{Pos: left.Position(), Lo: left, Exclusive: t.Val == "..."}
	if p.startsOperand(p.tok()) {
		r.Hi = p.binary(1)
	}
	return r
}

// binaryPrec is Ruby's precedence of binary operators, loosest first (** is handled by power).
var binaryPrec = map[string]int{
	"||": 1, "&&": 2,
	"<=>": 3, "==": 3, "===": 3, "!=": 3, "=~": 3, "!~": 3,
	"<": 4, "<=": 4, ">": 4, ">=": 4,
	"|": 5, "^": 5, "&": 6, "<<": 7, ">>": 7, "+": 8, "-": 8, "*": 9, "/": 9, "%": 9,
}

// binary reads operators of at least minPrec by precedence climbing.
func (p *parser) binary(minPrec int) Node {
	p.enter()
	defer p.leave()
	left := p.unary()
	for {
		t := p.tok()
		op, signed := t.Val, false
		if (t.Kind == INT || t.Kind == FLOAT) && (strings.HasPrefix(t.Val, "-") || strings.HasPrefix(t.Val, "+")) {
			// `x -1` where x is a variable: the lexer took -1 for a literal, but here it can only be a subtraction.
			op, signed = t.Val[:1], true
		} else if t.Kind != OP {
			return left
		}
		prec := binaryPrec[op]
		if prec == 0 || prec < minPrec {
			return left
		}
		if signed {
			p.toks[p.i].Val = t.Val[1:]
		} else {
			p.advance()
		}
		p.skipNL()
		right := p.binary(prec + 1)
		left = &Binary{Pos: left.Position(), Op: op, X: left, Y: right}
	}
}

func (p *parser) unary() Node {
	p.enter()
	defer p.leave()
	t := p.tok()
	switch {
	case t.op("!") || t.op("~") || t.op("+"):
		p.advance()
		return &Unary{Pos: p.pos(t), Op: t.Val, X: p.unary()}
	case t.op("-"):
		p.advance()
		return &Unary{Pos: p.pos(t), Op: "-", X: p.unary()}
	case t.op("&") || t.op("*") || t.op("**"):
		p.fail("%q outside an argument list", t.Val)
	case t.kw("not"):
		p.advance()
		return &Unary{Pos: p.pos(t), Op: "not", X: p.unary()}
	case t.kw("defined?"):
		p.advance()
		if p.tok().op("(") {
			p.advance()
			p.skipNL()
			x := p.exprStmt()
			p.skipNL()
			p.expectOp(")")
			return &Defined{Pos: p.pos(t), X: x}
		}
		return &Defined{Pos: p.pos(t), X: p.unary()}
	}
	return p.power()
}

func (p *parser) power() Node {
	x := p.postfix(p.primary())
	if t := p.tok(); t.op("**") {
		p.advance()
		p.skipNL()
		return &Binary{Pos: x.Position(), Op: "**", X: x, Y: p.unary()}
	}
	return x
}

// startsOperand reports whether t can begin an expression.
func (p *parser) startsOperand(t Token) bool {
	switch t.Kind {
	case EOF, NL, LABEL:
		return false
	case KEYWORD:
		switch t.Val {
		case "end", "else", "elsif", "when", "in", "rescue", "ensure", "then", "do", "and", "or", "if", "unless", "while", "until":
			return false
		}
		return true
	case OP:
		switch t.Val {
		case "(", "[", "{", "->", "::", "!", "-", "+", "~", "..", "...", "*", "**", "&":
			return true
		}
		return false
	}
	return true
}

// commandArgStart reports whether t, after a method name, begins arguments given without parentheses
// (`describe file('x')`, `should eq 1`, `tag nist: [...]`). Like Ruby, it looks at spacing: `foo [1]` and
// `foo -1` pass arguments, `foo[1]` and `foo - 1` do not.
func (p *parser) commandArgStart(t Token) bool {
	if !t.Space {
		return false
	}
	switch t.Kind {
	case IDENT, CONST, IVAR, CVAR, GVAR, LABEL, INT, FLOAT, STRING, XSTRING, SYMBOL, REGEX, WORDS, SYMWORDS:
		return true
	case KEYWORD:
		switch t.Val {
		case "nil", "true", "false", "self", "not", "defined?", "__FILE__", "__LINE__", "__dir__", "__method__",
			"case", "begin", "yield", "super", "if", "unless":
			return t.Val != "if" && t.Val != "unless"
		}
		return false
	case OP:
		switch t.Val {
		case "[", "(", "->":
			return true
		case "::", "!", "-", "*", "&", "**", ":", "~":
			return !p.peek(1).Space && p.peek(1).Kind != NL
		}
	}
	return false
}

// callArgs reads a call's arguments: in parentheses, or a command's arguments up to the end of the line.
func (p *parser) callArgs(c *Call) {
	t := p.tok()
	switch {
	case t.op("(") && !t.Space:
		c.Paren = true
		c.Args = p.parenArgs()
	case p.commandArgStart(t):
		c.Args = p.commandArgs()
	}
	if len(c.Args) > 0 {
		c.End = max(c.End, p.toks[max(p.i-1, 0)].End)
	}
}

// parenArgs reads (a, b, k: v, &blk).
func (p *parser) parenArgs() []Node {
	saved := p.noDo
	p.noDo = false
	defer func() { p.noDo = saved }()
	open := p.advance()
	var args []Node
	p.skipNL()
	for !p.tok().op(")") {
		args = p.appendArg(args, p.arg())
		p.skipNL()
		if p.tok().op(",") {
			p.advance()
			p.skipNL()
			continue
		}
		if !p.tok().op(")") {
			p.fail("expected \",\" or \")\" in the arguments opened at line %d, found %s", p.f.Line(open.Off), describe(p.tok()))
		}
	}
	p.advance()
	return args
}

// commandArgs reads arguments without parentheses.
func (p *parser) commandArgs() []Node {
	saved := p.noDo
	p.noDo = true
	defer func() { p.noDo = saved }()
	var args []Node
	for {
		args = p.appendArg(args, p.arg())
		if !p.tok().op(",") {
			return args
		}
		p.advance()
		p.skipNL()
	}
}

// appendArg adds an argument; key-value pairs gather into one trailing hash, as Ruby passes them.
func (p *parser) appendArg(args []Node, a Node) []Node {
	pair, ok := a.(*pairArg)
	if !ok {
		return append(args, a)
	}
	if len(args) > 0 {
		if h, ok := args[len(args)-1].(*Hash); ok && !h.Braces {
			h.Pairs = append(h.Pairs, pair.Pair)
			return args
		}
	}
	return append(args, &Hash{Pos: pair.Pos, Pairs: []Pair{pair.Pair}})
}

// pairArg is a k: v or k => v argument on its way into the trailing hash.
type pairArg struct {
	Pos
	Pair
}

// arg reads one argument or array element: *x, **x, &x, k: v, k => v, or an expression.
func (p *parser) arg() Node {
	p.enter()
	defer p.leave()
	t := p.tok()
	switch {
	case t.op("*"):
		p.advance()
		if !p.startsOperand(p.tok()) {
			return &Splat{Pos: p.pos(t)}
		}
		return &Splat{Pos: p.pos(t), X: p.ternary()}
	case t.op("**"):
		p.advance()
		return &pairArg{Pos: p.pos(t), Pair: Pair{Value: p.ternary()}}
	case t.op("&"):
		p.advance()
		if !p.startsOperand(p.tok()) {
			return &BlockPass{Pos: p.pos(t)}
		}
		return &BlockPass{Pos: p.pos(t), X: p.ternary()}
	case t.Kind == LABEL:
		p.advance()
		p.skipNL()
		key := &Sym{Pos: p.pos(t), Name: t.Val}
		if n := p.tok(); n.op(",") || n.op(")") || n.op("]") || n.op("}") || n.Kind == EOF {
			return &pairArg{Pos: key.Pos, Pair: Pair{Key: key, Value: &Ident{Pos: key.Pos, Name: t.Val, Local: p.isLocal(t.Val)}}}
		}
		return &pairArg{Pos: key.Pos, Pair: Pair{Key: key, Value: p.argValue()}}
	}
	v := p.argValue()
	if p.tok().op("=>") {
		p.advance()
		p.skipNL()
		return &pairArg{Pos: v.Position(), Pair: Pair{Key: v, Value: p.argValue()}}
	}
	return v
}

// argValue is an argument expression: anything but `and`/`or` and modifiers.
func (p *parser) argValue() Node {
	if p.tok().kw("not") {
		return p.notExpr()
	}
	return p.expr()
}

// postfix reads what follows an operand: .calls, ::names, [index], and blocks.
func (p *parser) postfix(x Node) Node {
	for {
		t := p.tok()
		switch {
		case t.op(".") || t.op("&."):
			x = p.methodCall(x)
		case t.op("::"):
			p.advance()
			n := p.tok()
			if n.Kind == CONST && !p.peek(1).op("(") {
				p.advance()
				x = &Const{Pos: x.Position(), Scope: x, Name: n.Val}
				continue
			}
			p.i--
			x = p.methodCall(x)
		case t.op("[") && (!t.Space || !isCommand(x)):
			p.advance()
			saved := p.noDo
			p.noDo = false
			var args []Node
			p.skipNL()
			for !p.tok().op("]") {
				args = p.appendArg(args, p.arg())
				p.skipNL()
				if p.tok().op(",") {
					p.advance()
					p.skipNL()
				} else if !p.tok().op("]") {
					p.fail("expected \",\" or \"]\" in an index, found %s", describe(p.tok()))
				}
			}
			p.noDo = saved
			end := p.advance()
			x = &Index{Pos: Pos{Line: x.Position().Line, Off: x.Position().Off, End: end.End}, X: x, Args: args}
		case t.op("{") && isCommand(x):
			c := asCall(x)
			c.Block = p.block()
			c.End = c.Block.End
			x = c
		case t.kw("do") && !p.noDo && isCommand(x):
			c := asCall(x)
			c.Block = p.block()
			c.End = c.Block.End
			x = c
		default:
			return x
		}
	}
}

// isCommand reports whether x is a method call that can still take a block.
func isCommand(x Node) bool {
	switch c := x.(type) {
	case *Ident:
		return !c.Local
	case *Call:
		return c.Block == nil
	}
	return false
}

func asCall(x Node) *Call {
	if id, ok := x.(*Ident); ok {
		return &Call{Pos: id.Pos, Name: id.Name}
	}
	return x.(*Call)
}

// methodCall reads .name(args) / &.name args / ::name(args) after recv.
func (p *parser) methodCall(recv Node) Node {
	op := p.advance()
	p.skipNL()
	t := p.tok()
	c := &Call{Pos: Pos{Line: recv.Position().Line, Off: recv.Position().Off, End: t.End}, Recv: recv, Op: op.Val}
	switch t.Kind {
	case IDENT, CONST, KEYWORD:
		c.Name = t.Val
		p.advance()
	case LABEL:
		// recv.meth key: v — the lexer joined the name and the colon of a keyword argument; not in profiles.
		p.fail("unexpected label %q after %q", t.Val, op.Val)
	case OP:
		if t.Val == "(" { // recv.(args) is recv.call(args)
			c.Name = "call"
			break
		}
		c.Name = t.Val
		p.advance()
	default:
		p.fail("expected a method name after %q, found %s", op.Val, describe(t))
	}
	if n := p.tok(); n.op("=") && !n.Space && p.peek(1).Space {
		// recv.attr = value: leave = to the assignment.
		return c
	}
	p.callArgs(c)
	return c
}

// primary reads an operand.
func (p *parser) primary() Node {
	p.enter()
	defer p.leave()
	t := p.tok()
	switch t.Kind {
	case INT, FLOAT, STRING, XSTRING, SYMBOL, REGEX, WORDS, SYMWORDS:
		return p.literal()
	case IVAR, CVAR, GVAR:
		p.advance()
		return &Var{Pos: p.pos(t), Name: t.Val}
	case CONST:
		p.advance()
		if n := p.tok(); n.op("(") && !n.Space {
			c := &Call{Pos: p.pos(t), Name: t.Val}
			p.callArgs(c)
			return c
		}
		if n := p.tok(); n.Kind == STRING && n.Space {
			c := &Call{Pos: p.pos(t), Name: t.Val}
			p.callArgs(c)
			return c
		}
		return &Const{Pos: p.pos(t), Name: t.Val}
	case IDENT:
		return p.identifier()
	case KEYWORD:
		return p.keyword()
	case OP:
		return p.opPrimary()
	case LABEL:
		p.fail("unexpected label %q", t.Val)
	}
	p.fail("unexpected %s", describe(t))
	return nil
}

func (p *parser) identifier() Node {
	t := p.advance()
	n := p.tok()
	if p.isLocal(t.Val) && !(n.op("(") && !n.Space) {
		return &Ident{Pos: p.pos(t), Name: t.Val, Local: true}
	}
	if !(n.op("(") && !n.Space) && !p.commandArgStart(n) {
		return &Ident{Pos: p.pos(t), Name: t.Val}
	}
	c := &Call{Pos: p.pos(t), Name: t.Val}
	p.callArgs(c)
	return c
}

func (p *parser) opPrimary() Node {
	t := p.tok()
	switch t.Val {
	case "(":
		p.advance()
		saved := p.noDo
		p.noDo = false
		body := p.stmts()
		p.noDo = saved
		p.expectOp(")")
		if len(body) == 1 {
			return body[0]
		}
		return &Paren{Pos: p.pos(t), Body: body}
	case "[":
		return p.arrayLit()
	case "{":
		return p.hashLit()
	case "->":
		return p.lambda()
	case "::":
		p.advance()
		n := p.tok()
		if n.Kind != CONST {
			p.fail("expected a constant after \"::\", found %s", describe(n))
		}
		p.advance()
		return &Const{Pos: p.pos(t), Top: true, Name: n.Val}
	case "..", "...":
		p.advance()
		return &Range{Pos: p.pos(t), Hi: p.binary(1), Exclusive: t.Val == "..."}
	}
	p.fail("unexpected %s", describe(t))
	return nil
}

func (p *parser) arrayLit() Node {
	open := p.advance()
	saved := p.noDo
	p.noDo = false
	defer func() { p.noDo = saved }()
	a := &Array{Pos: p.pos(open)}
	p.skipNL()
	for !p.tok().op("]") {
		a.Elems = p.appendArg(a.Elems, p.arg())
		p.skipNL()
		if p.tok().op(",") {
			p.advance()
			p.skipNL()
		} else if !p.tok().op("]") {
			p.fail("expected \",\" or \"]\" in the array opened at line %d, found %s", p.f.Line(open.Off), describe(p.tok()))
		}
	}
	a.End = p.advance().End
	return a
}

func (p *parser) hashLit() Node {
	open := p.advance()
	saved := p.noDo
	p.noDo = false
	defer func() { p.noDo = saved }()
	h := &Hash{Pos: p.pos(open), Braces: true}
	p.skipNL()
	for !p.tok().op("}") {
		a := p.arg()
		pa, ok := a.(*pairArg)
		if !ok {
			p.failAt(a.Position().Off, "expected key => value in the hash opened at line %d", p.f.Line(open.Off))
		}
		h.Pairs = append(h.Pairs, pa.Pair)
		p.skipNL()
		if p.tok().op(",") {
			p.advance()
			p.skipNL()
		} else if !p.tok().op("}") {
			p.fail("expected \",\" or \"}\" in the hash opened at line %d, found %s", p.f.Line(open.Off), describe(p.tok()))
		}
	}
	h.End = p.advance().End
	return h
}

func (p *parser) lambda() Node {
	t := p.advance()
	l := &Lambda{Pos: p.pos(t)}
	p.pushScope(false)
	defer p.popScope()
	if p.tok().op("(") {
		p.advance()
		l.Params = p.params(")")
		p.expectOp(")")
	} else if p.tok().Kind == IDENT {
		l.Params = p.params("{")
	}
	b := p.tok()
	if !b.op("{") && !b.kw("do") {
		p.fail("expected a lambda body, found %s", describe(b))
	}
	blk := p.block()
	l.Body, l.End = blk.Body, blk.End
	return l
}

// literal reads a literal token (adjacent string literals concatenate).
func (p *parser) literal() Node {
	t := p.advance()
	pos := p.pos(t)
	switch t.Kind {
	case INT:
		v, err := strconv.ParseInt(strings.ReplaceAll(t.Val, "_", ""), 0, 64)
		if err != nil && len(t.Val) > 1 && t.Val[0] == '0' && isDigit(t.Val[1]) {
			v, err = strconv.ParseInt(strings.ReplaceAll(t.Val[1:], "_", ""), 8, 64)
		} else if strings.HasPrefix(t.Val, "-0") && len(t.Val) > 2 && isDigit(t.Val[2]) {
			v, err = strconv.ParseInt("-"+strings.ReplaceAll(t.Val[2:], "_", ""), 8, 64)
		}
		return &Int{Pos: pos, Text: t.Val, Val: v, OK: err == nil}
	case FLOAT:
		v, _ := strconv.ParseFloat(strings.ReplaceAll(t.Val, "_", ""), 64)
		return &Float{Pos: pos, Text: t.Val, Val: v}
	case STRING, XSTRING:
		s := &Str{Pos: pos, Parts: p.parts(t.Parts), Command: t.Kind == XSTRING}
		for n := p.tok(); n.Kind == STRING && t.Kind == STRING; n = p.tok() {
			p.advance()
			s.Parts = append(s.Parts, p.parts(n.Parts)...)
			s.End = n.End
		}
		return s
	case SYMBOL:
		if t.Parts != nil {
			return &Sym{Pos: pos, Parts: p.parts(t.Parts)}
		}
		return &Sym{Pos: pos, Name: t.Val}
	case REGEX:
		return &Regex{Pos: pos, Parts: p.parts(t.Parts), Flags: t.Val}
	}
	a := &Array{Pos: pos, Words: true}
	for _, w := range t.Words {
		if t.Kind == SYMWORDS {
			a.Elems = append(a.Elems, &Sym{Pos: pos, Name: w})
		} else {
			a.Elems = append(a.Elems, &Str{Pos: pos, Parts: []StrPart{{Lit: w}}})
		}
	}
	return a
}

// parts parses the interpolations of a string-like token.
func (p *parser) parts(ps []Part) []StrPart {
	out := make([]StrPart, 0, len(ps))
	for _, pt := range ps {
		if !pt.Interpolated {
			out = append(out, StrPart{Lit: pt.Lit})
			continue
		}
		sub := &parser{f: p.f, toks: pt.Interp, lim: p.lim, depth: p.depth + 1, scopes: p.scopes}
		if len(sub.toks) == 0 {
			sub.toks = []Token{{Kind: EOF}}
		}
		body := sub.stmts()
		if !sub.tok().Kind.isEOF() {
			sub.fail("unexpected %s in #{}", describe(sub.tok()))
		}
		var e Node
		switch len(body) {
		case 0:
			e = &Nil{Pos: Pos{Line: p.f.Line(pt.Interp[0].Off), Off: pt.Interp[0].Off}}
		case 1:
			e = body[0]
		default:
			e = &Paren{Pos: body[0].Position(), Body: body}
		}
		out = append(out, StrPart{Expr: e})
	}
	return out
}

func (k Kind) isEOF() bool { return k == EOF }
