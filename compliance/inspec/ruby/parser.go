// Package ruby reads the subset of Ruby that InSpec profiles are written in (controls, libraries with resource
// classes, the DSL's blocks and matchers) into an AST, in pure Go: rootscan evaluates profiles itself rather than
// running a Ruby interpreter in, or next to, the target.
//
// The reader is built for files from anywhere: input size, token count and nesting depth are bounded, every error
// is "file:line: message", and it never panics or loops on malformed input (see FuzzParse).
package ruby

import (
	"fmt"
	"sort"
)

// Limits bound the work one file may cause. Zero fields take the defaults.
type Limits struct {
	// MaxBytes is the largest source accepted (default 4 MiB; the largest MITRE STIG control file is ~40 KiB).
	MaxBytes int
	// MaxTokens bounds the tokens of a file, interpolations included (default 1,000,000).
	MaxTokens int
	// MaxDepth bounds nesting: expressions, blocks, interpolations (default 400 parser frames, about 100 levels
	// of source nesting).
	MaxDepth int
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = 4 << 20
	}
	if l.MaxTokens <= 0 {
		l.MaxTokens = 1_000_000
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = 400
	}
	return l
}

// Error is a parse error at a line of a file.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// File is a parsed source file.
type File struct {
	Name string
	Src  []byte
	Body []Node
	// lineStarts holds the offset of each line's first byte.
	lineStarts []int
}

// Line returns the 1-based line of a byte offset.
func (f *File) Line(off int) int {
	return sort.Search(len(f.lineStarts), func(i int) bool { return f.lineStarts[i] > off })
}

// Text returns the source between two offsets (clamped to the file).
func (f *File) Text(off, end int) string {
	off, end = max(0, min(off, len(f.Src))), max(0, min(end, len(f.Src)))
	if end < off {
		return ""
	}
	return string(f.Src[off:end])
}

// LineStart returns the offset of the first byte of a 1-based line.
func (f *File) LineStart(line int) int {
	if line < 1 || line > len(f.lineStarts) {
		return len(f.Src)
	}
	return f.lineStarts[line-1]
}

// LineEnd returns the offset just after the newline ending a 1-based line (or the end of the file).
func (f *File) LineEnd(line int) int {
	if line < 1 || line >= len(f.lineStarts) {
		return len(f.Src)
	}
	return f.lineStarts[line]
}

// NewFile indexes src's lines without parsing it, for readers that only need positions.
func NewFile(name string, src []byte) *File {
	f := &File{Name: name, Src: src, lineStarts: []int{0}}
	for i, c := range src {
		if c == '\n' {
			f.lineStarts = append(f.lineStarts, i+1)
		}
	}
	return f
}

// Parse reads one Ruby source file. On error the File is still returned with its line index, so callers can
// report what they find in the text.
func Parse(name string, src []byte, lim Limits) (*File, error) {
	lim = lim.withDefaults()
	f := NewFile(name, src)
	if len(src) > lim.MaxBytes {
		return f, &Error{File: name, Line: 1, Msg: fmt.Sprintf("file is %d bytes, more than the %d allowed", len(src), lim.MaxBytes)}
	}
	lx := &lexer{src: src, lim: lim}
	toks, lerr := lx.all()
	if lerr != nil {
		return f, &Error{File: name, Line: f.Line(lerr.off), Msg: lerr.msg}
	}
	p := &parser{f: f, toks: toks, lim: lim, scopes: []scope{{vars: map[string]bool{}, hard: true}}}
	body, err := p.run(func() []Node { return p.stmts() })
	if err != nil {
		return f, err
	}
	f.Body = body
	return f, nil
}

type scope struct {
	vars map[string]bool
	// hard scopes (file, def, class, module) hide the locals of enclosing ones; blocks see them.
	hard bool
}

type parser struct {
	f     *File
	toks  []Token
	i     int
	depth int
	lim   Limits
	// noDo is set while reading a command's arguments or a loop condition: a do block there belongs to the
	// command (describe file('x') do ... end), not to the last argument.
	noDo   bool
	scopes []scope
}

// bailout carries a parse error up the recursion to run, which turns it back into an error.
type bailout struct{ err *Error }

func (p *parser) run(fn func() []Node) (body []Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			b, ok := r.(bailout)
			if !ok {
				panic(r)
			}
			body, err = nil, b.err
		}
	}()
	return fn(), nil
}

func (p *parser) failAt(off int, format string, args ...any) {
	panic(bailout{&Error{File: p.f.Name, Line: p.f.Line(off), Msg: fmt.Sprintf(format, args...)}})
}

func (p *parser) fail(format string, args ...any) { p.failAt(p.tok().Off, format, args...) }

func (p *parser) enter() {
	p.depth++
	if p.depth > p.lim.MaxDepth {
		p.fail("nested more than %d levels deep", p.lim.MaxDepth)
	}
}

func (p *parser) leave() { p.depth-- }

func (p *parser) tok() Token { return p.toks[p.i] }

func (p *parser) peek(n int) Token {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return p.toks[len(p.toks)-1]
}

func (p *parser) advance() Token {
	t := p.toks[p.i]
	if p.i < len(p.toks)-1 {
		p.i++
	}
	return t
}

func (p *parser) pos(t Token) Pos { return Pos{Line: p.f.Line(t.Off), Off: t.Off, End: t.End} }

func (p *parser) skipNL() {
	for p.tok().Kind == NL {
		p.advance()
	}
}

func describe(t Token) string {
	switch t.Kind {
	case EOF, NL:
		return t.Kind.String()
	case OP, KEYWORD, IDENT, CONST, LABEL:
		return fmt.Sprintf("%s %q", t.Kind, t.Val)
	}
	return t.Kind.String()
}

func (p *parser) expectOp(v string) Token {
	if !p.tok().op(v) {
		p.fail("expected %q, found %s", v, describe(p.tok()))
	}
	return p.advance()
}

func (p *parser) expectKw(v string, opened Token) Token {
	if !p.tok().kw(v) {
		p.fail("expected %q (to close %s at line %d), found %s", v, describe(opened), p.f.Line(opened.Off), describe(p.tok()))
	}
	return p.advance()
}

func (p *parser) pushScope(hard bool) {
	p.scopes = append(p.scopes, scope{vars: map[string]bool{}, hard: hard})
}
func (p *parser) popScope() { p.scopes = p.scopes[:len(p.scopes)-1] }

func (p *parser) declare(name string) {
	if name != "" {
		p.scopes[len(p.scopes)-1].vars[name] = true
	}
}

func (p *parser) isLocal(name string) bool {
	for i := len(p.scopes) - 1; i >= 0; i-- {
		if p.scopes[i].vars[name] {
			return true
		}
		if p.scopes[i].hard {
			return false
		}
	}
	return false
}

// terminates reports whether t ends a statement list: one of the closing keywords or brackets.
func terminates(t Token) bool {
	switch t.Kind {
	case EOF:
		return true
	case KEYWORD:
		switch t.Val {
		case "end", "else", "elsif", "when", "in", "rescue", "ensure", "then":
			return true
		}
	case OP:
		return t.Val == "}" || t.Val == ")" || t.Val == "]"
	}
	return false
}

// stmts reads statements up to a terminating token, which it leaves for the caller.
func (p *parser) stmts() []Node {
	var out []Node
	for {
		p.skipNL()
		if terminates(p.tok()) {
			return out
		}
		start := p.i
		out = append(out, p.stmt())
		t := p.tok()
		switch {
		case t.Kind == NL:
			p.advance()
		case terminates(t):
		case p.i == start:
			p.fail("unexpected %s", describe(t))
		default:
			p.fail("unexpected %s after a statement", describe(t))
		}
	}
}

// stmt reads a statement: an expression with its modifiers (x if c, x unless c, x while c, x rescue y).
func (p *parser) stmt() Node {
	p.enter()
	defer p.leave()
	var n Node
	if p.multiAssignAhead() {
		n = p.multiAssign()
	} else {
		n = p.exprStmt()
	}
	for {
		t := p.tok()
		if t.Kind != KEYWORD {
			return n
		}
		switch t.Val {
		case "if", "unless":
			p.advance()
			n = &If{Pos: p.pos(t), Cond: p.exprStmt(), Then: []Node{n}, Unless: t.Val == "unless"}
		case "while", "until":
			p.advance()
			n = &While{Pos: p.pos(t), Cond: p.exprStmt(), Body: []Node{n}, Until: t.Val == "until"}
		case "rescue":
			p.advance()
			n = &Begin{Pos: n.Position(), Body: []Node{n}, Rescues: []Rescue{{Line: p.f.Line(t.Off), Body: []Node{p.exprStmt()}}}}
		default:
			return n
		}
	}
}

// exprStmt reads `not`, `and` and `or`, which bind looser than everything but the modifiers.
func (p *parser) exprStmt() Node {
	p.enter()
	defer p.leave()
	left := p.notExpr()
	for t := p.tok(); t.kw("and") || t.kw("or"); t = p.tok() {
		p.advance()
		p.skipNL()
		left = &Binary{Pos: left.Position(), Op: t.Val, X: left, Y: p.notExpr()}
	}
	return left
}

func (p *parser) notExpr() Node {
	if t := p.tok(); t.kw("not") {
		p.advance()
		p.enter()
		defer p.leave()
		return &Unary{Pos: p.pos(t), Op: "not", X: p.notExpr()}
	}
	return p.expr()
}

// multiAssignAhead reports whether the statement starts with `a, b =`.
func (p *parser) multiAssignAhead() bool {
	j := p.i
	names := 0
	for j < len(p.toks) {
		t := p.toks[j]
		if t.op("*") {
			j++
			t = p.toks[min(j, len(p.toks)-1)]
		}
		switch t.Kind {
		case IDENT, IVAR, CVAR, GVAR:
		default:
			return false
		}
		names++
		j++
		if j >= len(p.toks) {
			return false
		}
		switch n := p.toks[j]; {
		case n.op(","):
			j++
		case n.op("="):
			return names > 1
		default:
			return false
		}
	}
	return false
}

func (p *parser) multiAssign() Node {
	first := p.tok()
	ma := &MultiAssign{Pos: p.pos(first)}
	for !p.tok().op("=") {
		t := p.advance()
		splat := t.op("*")
		if splat {
			t = p.advance()
		}
		var n Node = &Var{Pos: p.pos(t), Name: t.Val}
		if t.Kind == IDENT {
			p.declare(t.Val)
			n = &Ident{Pos: p.pos(t), Name: t.Val, Local: true}
		}
		if splat {
			n = &Splat{Pos: n.Position(), X: n}
		}
		ma.Lhs = append(ma.Lhs, n)
		if p.tok().op(",") {
			p.advance()
		}
	}
	p.advance()
	p.skipNL()
	rhs := p.expr()
	if p.tok().op(",") {
		arr := &Array{Pos: rhs.Position(), Elems: []Node{rhs}}
		for p.tok().op(",") {
			p.advance()
			p.skipNL()
			arr.Elems = append(arr.Elems, p.arg())
		}
		rhs = arr
	}
	ma.Rhs = rhs
	return ma
}
