package ruby

// Kind is a token's class.
type Kind uint8

// Token kinds. Ruby's lexer decides between operators and literals by what came before (`x / 2` against
// `match /re/`), so the lexer carries that state and the parser sees already-decided literals.
const (
	EOF      Kind = iota
	NL            // newline or ';': ends a statement
	IDENT         // local variable or method name, maybe ending in ? or !
	CONST         // capitalised name
	IVAR          // @name
	CVAR          // @@name
	GVAR          // $name
	LABEL         // name: or "str": (hash key, keyword argument)
	KEYWORD       // reserved word
	INT           // integer literal
	FLOAT         // float literal
	STRING        // string, heredoc or ?c, with interpolated parts
	XSTRING       // `command`
	SYMBOL        // :name or :"name"
	REGEX         // /re/flags or %r{re}flags
	WORDS         // %w[] or %W[]
	SYMWORDS      // %i[] or %I[]
	OP            // punctuation and operators
)

var kindNames = [...]string{"end of file", "newline", "identifier", "constant", "instance variable", "class variable",
	"global variable", "label", "keyword", "integer", "float", "string", "command string", "symbol", "regexp",
	"word list", "symbol list", "operator"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "token"
}

// Part is a piece of a string-like literal: literal text, or the tokens of an interpolated #{...}.
type Part struct {
	Lit    string
	Interp []Token
	// Interpolated is set for a #{} part, even an empty one.
	Interpolated bool
}

// Token is one lexeme. Off and End are byte offsets into the source.
type Token struct {
	Kind Kind
	// Val is the name, operator, keyword, number text, or a regexp's flags.
	Val   string
	Parts []Part
	Words []string
	Off   int
	End   int
	// Space is set when whitespace precedes the token: `foo [1]` passes an array, `foo[1]` indexes.
	Space bool
}

var keywords = map[string]bool{
	"alias": true, "and": true, "begin": true, "BEGIN": true, "break": true, "case": true, "class": true, "def": true,
	"defined?": true, "do": true, "else": true, "elsif": true, "end": true, "END": true, "ensure": true,
	"false": true, "for": true, "if": true, "in": true, "module": true, "next": true, "nil": true, "not": true,
	"or": true, "redo": true, "rescue": true, "retry": true, "return": true, "self": true, "super": true,
	"then": true, "true": true, "undef": true, "unless": true, "until": true, "when": true, "while": true,
	"yield": true, "__FILE__": true, "__LINE__": true, "__dir__": true, "__method__": true, "__ENCODING__": true,
}

// valueEnd reports whether t can end an operand, so that what follows is an operator (`a / b`) rather than the
// start of a literal (`(/re/)`).
func (t Token) valueEnd() bool {
	switch t.Kind {
	case IDENT, CONST, IVAR, CVAR, GVAR, INT, FLOAT, STRING, XSTRING, SYMBOL, REGEX, WORDS, SYMWORDS:
		return true
	case KEYWORD:
		switch t.Val {
		case "end", "self", "nil", "true", "false", "__FILE__", "__LINE__", "__dir__", "__method__":
			return true
		}
	case OP:
		return t.Val == ")" || t.Val == "]" || t.Val == "}"
	}
	return false
}

func (t Token) op(v string) bool { return t.Kind == OP && t.Val == v }
func (t Token) kw(v string) bool { return t.Kind == KEYWORD && t.Val == v }
