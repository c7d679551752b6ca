package ruby

// Node is an AST node. Every node knows where it starts; calls also know where they end (with their block),
// which is what a control's recorded source needs.
type Node interface {
	Position() Pos
}

// Pos is a node's place in its file: the 1-based line of its first token and the byte offsets it spans. End is
// exact for calls, blocks and definitions; for other nodes it is the end of their first token or later.
type Pos struct {
	Line int
	Off  int
	End  int
}

// Position returns p; embedding Pos makes a node.
func (p Pos) Position() Pos { return p }

// Literal kinds that carry no value.
type (
	// Nil is nil.
	Nil struct{ Pos }
	// Bool is true or false.
	Bool struct {
		Pos
		Val bool
	}
	// Self is self.
	Self struct{ Pos }
	// Int is an integer literal; Text is as written (0755, 0x1f, 1_000), Val its value when it fits.
	Int struct {
		Pos
		Text string
		Val  int64
		OK   bool
	}
	// Float is a float literal.
	Float struct {
		Pos
		Text string
		Val  float64
	}
	// Str is a string (also heredoc, %q, ?c and `command`): literal parts and interpolated expressions.
	Str struct {
		Pos
		Parts []StrPart
		// Command marks a `backtick` string, which Ruby runs as a shell command.
		Command bool
	}
	// Sym is a symbol; dynamic symbols (:"a#{b}") have Parts instead of Name.
	Sym struct {
		Pos
		Name  string
		Parts []StrPart
	}
	// Regex is a regexp literal with its flags (i, m, x). Its text is Ruby's regexp syntax.
	Regex struct {
		Pos
		Parts []StrPart
		Flags string
	}
	// Array is [a, b] or %w[] / %i[] (Words set, elements Str or Sym).
	Array struct {
		Pos
		Elems []Node
		Words bool
	}
	// Hash is {k => v, k: v}; a key written k: is a Sym.
	Hash struct {
		Pos
		Pairs []Pair
		// Braces is false for the trailing hash of a call's arguments (tag severity: 'high').
		Braces bool
	}
	// Range is a..b or a...b; either end may be nil.
	Range struct {
		Pos
		Lo, Hi    Node
		Exclusive bool
	}
)

// StrPart is literal text or an interpolated expression (Expr nil for a literal).
type StrPart struct {
	Lit  string
	Expr Node
}

// Pair is a hash entry; Key is nil for **splat (Value is the splatted hash).
type Pair struct {
	Key, Value Node
}

// Names and calls.
type (
	// Ident is a bare name: a local variable, or a method called without receiver and arguments.
	Ident struct {
		Pos
		Name string
		// Local is set when an assignment or parameter made the name a local variable.
		Local bool
	}
	// Var is an instance (@x), class (@@x) or global ($x) variable.
	Var struct {
		Pos
		Name string
	}
	// Const is a constant, maybe scoped (Inspec::Resource, ::File). Scope nil and Top false: plain name.
	Const struct {
		Pos
		Scope Node
		Top   bool
		Name  string
	}
	// Call is a method call: Recv nil for a call on self (describe, control), Op "." "&." or "::".
	Call struct {
		Pos
		Recv  Node
		Op    string
		Name  string
		Args  []Node
		Block *Block
		// Paren is set when the arguments were written in parentheses.
		Paren bool
	}
	// Block is a do...end or {...} block with its parameters; BlockPass is &blk as an argument.
	Block struct {
		Pos
		Params []Param
		Body   []Node
		Brace  bool
	}
	// BlockPass is &expr in an argument list.
	BlockPass struct {
		Pos
		X Node
	}
	// Splat is *x or **x (Double).
	Splat struct {
		Pos
		X      Node
		Double bool
	}
	// Index is x[i, j].
	Index struct {
		Pos
		X    Node
		Args []Node
	}
	// Lambda is ->(x) { } .
	Lambda struct {
		Pos
		Params []Param
		Body   []Node
	}
	// Yield is yield(args); Super is super / super(args) (Paren tells which).
	Yield struct {
		Pos
		Args []Node
	}
	// Super calls the parent's method.
	Super struct {
		Pos
		Args  []Node
		Paren bool
	}
	// Defined is defined?(x).
	Defined struct {
		Pos
		X Node
	}
)

// ParamKind tells what a parameter is.
type ParamKind uint8

// Parameter kinds.
const (
	ParamRequired ParamKind = iota
	ParamOptional           // a = 1
	ParamRest               // *a
	ParamKey                // k: or k: 1
	ParamKeyRest            // **opts
	ParamBlock              // &blk
	ParamNested             // (a, b) in block parameters
)

// Param is a method or block parameter.
type Param struct {
	Name    string
	Kind    ParamKind
	Default Node
	Nested  []Param
}

// Operators, assignments and control flow.
type (
	// Unary is !x, not x, -x, +x, ~x.
	Unary struct {
		Pos
		Op string
		X  Node
	}
	// Binary is x op y, including && || and or (Op as written).
	Binary struct {
		Pos
		Op   string
		X, Y Node
	}
	// Assign is lhs = rhs or lhs op= rhs (Op "=", "+=", "||=", ...).
	Assign struct {
		Pos
		Op       string
		Lhs, Rhs Node
	}
	// MultiAssign is a, b = rhs.
	MultiAssign struct {
		Pos
		Lhs []Node
		Rhs Node
	}
	// If is if/unless/elsif, a modifier (x if c) or a ternary; Unless negates Cond.
	If struct {
		Pos
		Cond   Node
		Then   []Node
		Else   []Node
		Unless bool
	}
	// While is while/until (Until negates Cond) and their modifier forms.
	While struct {
		Pos
		Cond  Node
		Body  []Node
		Until bool
	}
	// For is for x in y.
	For struct {
		Pos
		Vars []Node
		Iter Node
		Body []Node
	}
	// Case is case/when.
	Case struct {
		Pos
		Subject Node
		Whens   []When
		Else    []Node
	}
	// Begin is begin/rescue/else/ensure, and the body of a def or a do block with rescue.
	Begin struct {
		Pos
		Body    []Node
		Rescues []Rescue
		Else    []Node
		Ensure  []Node
	}
	// Return, Break and Next leave with optional values; Retry and Redo restart.
	Return struct {
		Pos
		Vals []Node
	}
	// Break leaves a loop or block.
	Break struct {
		Pos
		Vals []Node
	}
	// Next ends an iteration.
	Next struct {
		Pos
		Vals []Node
	}
	// Retry reruns a begin block from rescue.
	Retry struct{ Pos }
	// Paren is a parenthesised sequence of statements.
	Paren struct {
		Pos
		Body []Node
	}
)

// When is one when clause.
type When struct {
	Line  int
	Conds []Node
	Body  []Node
}

// Rescue is one rescue clause: the exception classes, the variable (=> e) and the body.
type Rescue struct {
	Line    int
	Classes []Node
	Var     Node
	Body    []Node
}

// Definitions.
type (
	// Def is def name(params) ... end; Recv is set for def self.name.
	Def struct {
		Pos
		Recv   Node
		Name   string
		Params []Param
		Body   *Begin
	}
	// Class is class Name < Super ... end; SingletonOf is set for class << self.
	Class struct {
		Pos
		Name        *Const
		Super       Node
		SingletonOf Node
		Body        []Node
	}
	// Module is module Name ... end.
	Module struct {
		Pos
		Name *Const
		Body []Node
	}
	// Alias is alias new old.
	Alias struct {
		Pos
		New, Old string
	}
)

// StringValue returns a string or symbol literal's text when it has no interpolation.
func StringValue(n Node) (string, bool) {
	switch v := n.(type) {
	case *Str:
		return literalParts(v.Parts)
	case *Sym:
		if v.Parts != nil {
			return literalParts(v.Parts)
		}
		return v.Name, true
	}
	return "", false
}

func literalParts(ps []StrPart) (string, bool) {
	if len(ps) == 1 && ps[0].Expr == nil {
		return ps[0].Lit, true
	}
	s := ""
	for _, p := range ps {
		if p.Expr != nil {
			return "", false
		}
		s += p.Lit
	}
	return s, true
}
