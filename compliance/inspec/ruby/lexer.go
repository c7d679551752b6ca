package ruby

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// lexer turns source into tokens. It never backs up more than a few bytes, so lexing is linear in the input;
// interpolations lex recursively, bounded by the parser's depth limit.
type lexer struct {
	src   []byte
	pos   int
	toks  int
	lim   Limits
	depth int
	// prev is the last token emitted at this nesting level: it decides between operator and literal.
	prev Token
	// heredocEnd is where the line after the current one resumes once heredoc bodies were read (0: none).
	heredocEnd int
	err        *posError
}

// posError is an error at a byte offset; the parser turns it into file:line.
type posError struct {
	off int
	msg string
}

func (l *lexer) fail(off int, format string, args ...any) {
	if l.err == nil {
		l.err = &posError{off: off, msg: fmt.Sprintf(format, args...)}
	}
	l.pos = len(l.src)
}

func (l *lexer) peekAt(i int) byte {
	if i < len(l.src) && i >= 0 {
		return l.src[i]
	}
	return 0
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

func isIdentChar(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v' }

// all lexes the whole input.
func (l *lexer) all() ([]Token, *posError) {
	var out []Token
	for {
		t := l.next()
		if l.err != nil {
			return nil, l.err
		}
		out = append(out, t)
		if t.Kind == EOF {
			return out, nil
		}
	}
}

// literalStart reports whether the character at l.pos starts a literal rather than an operator, given the
// previous token: after an operand it is an operator, except after a method name followed by a space and then
// no space (`match /re/`, `be_in %w[a]`, `eq -1`).
func (l *lexer) literalStart(space bool) bool {
	if !l.prev.valueEnd() {
		return true
	}
	if l.prev.Kind == IDENT && space {
		n := l.peekAt(l.pos + 1)
		return n != ' ' && n != '\t' && n != '\n' && n != '=' && n != 0
	}
	return false
}

func (l *lexer) emit(t Token) Token {
	l.toks++
	if l.lim.MaxTokens > 0 && l.toks > l.lim.MaxTokens {
		l.fail(t.Off, "more than %d tokens", l.lim.MaxTokens)
		return Token{Kind: EOF, Off: len(l.src), End: len(l.src)}
	}
	l.prev = t
	return t
}

// next returns the next token.
func (l *lexer) next() Token {
	space := false
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case isSpace(c):
			l.pos++
			space = true
		case c == '\\' && l.peekAt(l.pos+1) == '\n':
			l.pos += 2
			space = true
		case c == '\\' && l.peekAt(l.pos+1) == '\r' && l.peekAt(l.pos+2) == '\n':
			l.pos += 3
			space = true
		case c == '#':
			for l.pos < len(l.src) && l.src[l.pos] != '\n' {
				l.pos++
			}
		case c == '=' && l.atLineStart() && bytes.HasPrefix(l.src[l.pos:], []byte("=begin")):
			l.skipEmbeddedDoc()
		case c == '_' && l.atLineStart() && bytes.HasPrefix(l.src[l.pos:], []byte("__END__")) && l.lineRestBlank(l.pos+7):
			l.pos = len(l.src)
		case c == ';':
			l.pos++
			if l.prev.Kind == NL || l.toks == 0 {
				continue
			}
			return l.emit(Token{Kind: NL, Val: ";", Off: l.pos - 1, End: l.pos, Space: space})
		case c == '\n':
			start := l.pos
			l.pos++
			if l.heredocEnd > 0 {
				l.pos, l.heredocEnd = l.heredocEnd, 0
			}
			if l.prev.Kind == NL || l.prev.Kind == EOF && l.toks == 0 || l.continuesWithDot() {
				space = true
				continue
			}
			return l.emit(Token{Kind: NL, Val: "\n", Off: start, End: start + 1, Space: space})
		default:
			return l.token(space)
		}
	}
	return Token{Kind: EOF, Off: len(l.src), End: len(l.src), Space: space}
}

func (l *lexer) atLineStart() bool { return l.pos == 0 || l.src[l.pos-1] == '\n' }

func (l *lexer) lineRestBlank(i int) bool {
	for ; i < len(l.src) && l.src[i] != '\n'; i++ {
		if !isSpace(l.src[i]) {
			return false
		}
	}
	return true
}

// skipEmbeddedDoc skips a =begin ... =end comment.
func (l *lexer) skipEmbeddedDoc() {
	start := l.pos
	for {
		nl := bytes.IndexByte(l.src[l.pos:], '\n')
		if nl < 0 {
			l.fail(start, "=begin without =end")
			return
		}
		l.pos += nl + 1
		if bytes.HasPrefix(l.src[l.pos:], []byte("=end")) {
			nl = bytes.IndexByte(l.src[l.pos:], '\n')
			if nl < 0 {
				l.pos = len(l.src)
			} else {
				l.pos += nl
			}
			return
		}
	}
}

// continuesWithDot reports whether the next code line starts with .meth or &.meth, which continues the
// expression of the previous line (the leading-dot chains filter tables use).
func (l *lexer) continuesWithDot() bool {
	i := l.pos
	for i < len(l.src) {
		c := l.src[i]
		switch {
		case isSpace(c) || c == '\n':
			i++
		case c == '#':
			for i < len(l.src) && l.src[i] != '\n' {
				i++
			}
		case c == '.':
			return l.peekAt(i+1) != '.'
		case c == '&':
			return l.peekAt(i+1) == '.'
		default:
			return false
		}
	}
	return false
}

// token lexes the token at l.pos (not whitespace, comment or newline).
func (l *lexer) token(space bool) Token {
	start := l.pos
	c := l.src[l.pos]
	switch {
	case isDigit(c):
		return l.emit(l.number(space))
	case c == '@' || c == '$':
		return l.emit(l.variable(space))
	case isIdentStart(c):
		return l.emit(l.identifier(space))
	case c == '"' || c == '`':
		kind := STRING
		if c == '`' {
			kind = XSTRING
		}
		l.pos++
		parts := l.quoted(c, 0, true, false)
		return l.emit(l.maybeLabel(Token{Kind: kind, Parts: parts, Off: start, End: l.pos, Space: space}))
	case c == '\'':
		l.pos++
		parts := l.quoted('\'', 0, false, false)
		return l.emit(l.maybeLabel(Token{Kind: STRING, Parts: parts, Off: start, End: l.pos, Space: space}))
	case c == ':':
		if t, ok := l.symbol(space); ok {
			return l.emit(t)
		}
	case c == '/' && l.literalStart(space):
		l.pos++
		parts := l.quoted('/', 0, true, true)
		return l.emit(Token{Kind: REGEX, Parts: parts, Val: l.regexFlags(), Off: start, End: l.pos, Space: space})
	case c == '%' && l.literalStart(space):
		if t, ok := l.percent(space); ok {
			return l.emit(t)
		}
	case c == '<' && l.peekAt(l.pos+1) == '<' && l.literalStart(space):
		if t, ok := l.heredoc(space); ok {
			return l.emit(t)
		}
	case c == '?' && l.literalStart(space):
		if t, ok := l.charLiteral(space); ok {
			return l.emit(t)
		}
	case (c == '-' || c == '+') && isDigit(l.peekAt(l.pos+1)) && l.literalStart(space):
		l.pos++
		t := l.number(space)
		t.Off = start
		if c == '-' {
			t.Val = "-" + t.Val
		}
		return l.emit(t)
	}
	return l.emit(l.operator(space))
}

var operators = []string{
	"**=", "<=>", "===", "...", "<<=", ">>=", "&&=", "||=", "&.",
	"**", "==", "!=", ">=", "<=", "&&", "||", "<<", ">>", "=~", "!~", "..", "::", "->", "=>",
	"+=", "-=", "*=", "/=", "%=", "|=", "&=", "^=",
	"+", "-", "*", "/", "%", "=", "<", ">", "!", "&", "|", "^", "~", "?", ":", ",", ".", "(", ")", "[", "]",
	"{", "}",
}

func (l *lexer) operator(space bool) Token {
	start := l.pos
	for _, op := range operators {
		if bytes.HasPrefix(l.src[l.pos:], []byte(op)) {
			l.pos += len(op)
			return Token{Kind: OP, Val: op, Off: start, End: l.pos, Space: space}
		}
	}
	r, n := utf8.DecodeRune(l.src[l.pos:])
	l.fail(start, "unexpected character %q", r)
	l.pos += n
	return Token{Kind: EOF, Off: start, End: l.pos}
}

func (l *lexer) number(space bool) Token {
	start := l.pos
	isFloat := false
	if l.src[l.pos] == '0' && strings.IndexByte("xXbBoOdD", l.peekAt(l.pos+1)) >= 0 {
		l.pos += 2
		for l.pos < len(l.src) && (isIdentChar(l.src[l.pos])) {
			l.pos++
		}
	} else {
		l.digits()
		if l.peekAt(l.pos) == '.' && isDigit(l.peekAt(l.pos+1)) {
			isFloat = true
			l.pos++
			l.digits()
		}
		if c := l.peekAt(l.pos); (c == 'e' || c == 'E') && (isDigit(l.peekAt(l.pos+1)) ||
			(strings.IndexByte("+-", l.peekAt(l.pos+1)) >= 0 && isDigit(l.peekAt(l.pos+2)))) {
			isFloat = true
			l.pos += 2
			l.digits()
		}
	}
	kind := INT
	if isFloat {
		kind = FLOAT
	}
	return Token{Kind: kind, Val: string(l.src[start:l.pos]), Off: start, End: l.pos, Space: space}
}

func (l *lexer) digits() {
	for l.pos < len(l.src) && (isDigit(l.src[l.pos]) || l.src[l.pos] == '_' && isDigit(l.peekAt(l.pos+1))) {
		l.pos++
	}
}

func (l *lexer) variable(space bool) Token {
	start := l.pos
	kind := IVAR
	if l.src[l.pos] == '$' {
		kind = GVAR
		l.pos++
		if l.pos < len(l.src) && !isIdentStart(l.src[l.pos]) {
			l.pos++ // $0, $!, $~ ...
			return Token{Kind: kind, Val: string(l.src[start:l.pos]), Off: start, End: l.pos, Space: space}
		}
	} else {
		l.pos++
		if l.peekAt(l.pos) == '@' {
			kind = CVAR
			l.pos++
		}
	}
	if !isIdentStart(l.peekAt(l.pos)) {
		l.fail(start, "%q is not a variable name", l.src[start:l.pos])
		return Token{}
	}
	for l.pos < len(l.src) && isIdentChar(l.src[l.pos]) {
		l.pos++
	}
	return Token{Kind: kind, Val: string(l.src[start:l.pos]), Off: start, End: l.pos, Space: space}
}

func (l *lexer) identifier(space bool) Token {
	start := l.pos
	for l.pos < len(l.src) && isIdentChar(l.src[l.pos]) {
		l.pos++
	}
	if c := l.peekAt(l.pos); c == '?' || c == '!' {
		n := l.peekAt(l.pos + 1)
		if n != '=' || l.peekAt(l.pos+2) == '=' || l.peekAt(l.pos+2) == '~' {
			l.pos++
		}
	}
	name := string(l.src[start:l.pos])
	afterDot := l.prev.op(".") || l.prev.op("&.") || l.prev.kw("def")
	if l.peekAt(l.pos) == ':' && l.peekAt(l.pos+1) != ':' && !afterDot && !strings.HasSuffix(name, "?") {
		l.pos++
		return Token{Kind: LABEL, Val: name, Off: start, End: l.pos, Space: space}
	}
	kind := IDENT
	switch {
	case afterDot:
	case keywords[name]:
		kind = KEYWORD
	case name == "defined" && l.peekAt(l.pos) == '?':
		l.pos++
		name, kind = "defined?", KEYWORD
	case name[0] >= 'A' && name[0] <= 'Z':
		kind = CONST
	}
	return Token{Kind: kind, Val: name, Off: start, End: l.pos, Space: space}
}

// maybeLabel turns "str": into a label.
func (l *lexer) maybeLabel(t Token) Token {
	if t.Kind == STRING && l.peekAt(l.pos) == ':' && l.peekAt(l.pos+1) != ':' && (l.peekAt(l.pos+1) == ' ' || l.peekAt(l.pos+1) == '\n') &&
		len(t.Parts) <= 1 && (len(t.Parts) == 0 || !t.Parts[0].Interpolated) {
		l.pos++
		t.Kind, t.End = LABEL, l.pos
		if len(t.Parts) == 1 {
			t.Val = t.Parts[0].Lit
		}
		t.Parts = nil
	}
	return t
}

func (l *lexer) symbol(space bool) (Token, bool) {
	start := l.pos
	n := l.peekAt(l.pos + 1)
	switch {
	case n == ':':
		return Token{}, false
	case n == '"' || n == '\'':
		if l.prev.valueEnd() && !space {
			return Token{}, false
		}
		l.pos += 2
		parts := l.quoted(n, 0, n == '"', false)
		return Token{Kind: SYMBOL, Parts: parts, Off: start, End: l.pos, Space: space}, true
	case isIdentStart(n) || n == '@' || n == '$':
		if l.prev.valueEnd() && !space {
			return Token{}, false
		}
		l.pos++
		for l.pos < len(l.src) && (isIdentChar(l.src[l.pos]) || l.src[l.pos] == '@' || l.src[l.pos] == '$') {
			l.pos++
		}
		if c := l.peekAt(l.pos); (c == '?' || c == '!' || c == '=') && l.peekAt(l.pos+1) != '=' && l.peekAt(l.pos+1) != '>' {
			l.pos++
		}
		return Token{Kind: SYMBOL, Val: string(l.src[start+1 : l.pos]), Off: start, End: l.pos, Space: space}, true
	}
	if !l.literalStart(space) || n == ' ' {
		return Token{}, false
	}
	for _, op := range []string{"[]=", "[]", "<=>", "===", "==", "=~", "!=", "!~", "**", "+@", "-@", "<<", ">>", "<=", ">=", "+", "-", "*", "/", "%", "<", ">", "!", "&", "|", "^", "~"} {
		if bytes.HasPrefix(l.src[l.pos+1:], []byte(op)) {
			l.pos += 1 + len(op)
			return Token{Kind: SYMBOL, Val: op, Off: start, End: l.pos, Space: space}, true
		}
	}
	return Token{}, false
}

func (l *lexer) charLiteral(space bool) (Token, bool) {
	start := l.pos
	c := l.peekAt(l.pos + 1)
	if c == 0 || isSpace(c) || c == '\n' {
		return Token{}, false
	}
	if c == '\\' {
		l.pos += 2
		s := l.escape()
		return Token{Kind: STRING, Parts: []Part{{Lit: s}}, Off: start, End: l.pos, Space: space}, true
	}
	_, n := utf8.DecodeRune(l.src[l.pos+1:])
	if isIdentChar(l.peekAt(l.pos + 1 + n)) {
		return Token{}, false
	}
	l.pos += 1 + n
	return Token{Kind: STRING, Parts: []Part{{Lit: string(l.src[start+1 : l.pos])}}, Off: start, End: l.pos, Space: space}, true
}

func (l *lexer) regexFlags() string {
	start := l.pos
	for l.pos < len(l.src) && strings.IndexByte("imxounse", l.src[l.pos]) >= 0 {
		l.pos++
	}
	return string(l.src[start:l.pos])
}

func closing(open byte) byte {
	switch open {
	case '(':
		return ')'
	case '[':
		return ']'
	case '{':
		return '}'
	case '<':
		return '>'
	}
	return open
}

// percent lexes %w[] %i[] %r{} %q() %Q() %() literals.
func (l *lexer) percent(space bool) (Token, bool) {
	start := l.pos
	typ := l.peekAt(l.pos + 1)
	open := typ
	if isIdentChar(typ) {
		open = l.peekAt(l.pos + 2)
	} else {
		typ = 'Q'
	}
	if open == 0 || isIdentChar(open) || isSpace(open) || open == '\n' || open == '=' && typ == 'Q' {
		return Token{}, false
	}
	if strings.IndexByte("wWiIrqQsx", typ) < 0 {
		return Token{}, false
	}
	if typ == 'Q' && !isIdentChar(l.peekAt(l.pos+1)) {
		l.pos += 2
	} else {
		l.pos += 3
	}
	closeC := closing(open)
	nest := byte(0)
	if closeC != open {
		nest = open
	}
	switch typ {
	case 'w', 'W', 'i', 'I':
		parts := l.quoted(closeC, nest, false, true)
		var words []string
		for _, p := range parts {
			words = append(words, strings.Fields(p.Lit)...)
		}
		kind := WORDS
		if typ == 'i' || typ == 'I' {
			kind = SYMWORDS
		}
		return Token{Kind: kind, Words: words, Off: start, End: l.pos, Space: space}, true
	case 'r':
		parts := l.quoted(closeC, nest, true, true)
		return Token{Kind: REGEX, Parts: parts, Val: l.regexFlags(), Off: start, End: l.pos, Space: space}, true
	case 's':
		parts := l.quoted(closeC, nest, false, false)
		return Token{Kind: SYMBOL, Parts: parts, Off: start, End: l.pos, Space: space}, true
	case 'x':
		parts := l.quoted(closeC, nest, true, false)
		return Token{Kind: XSTRING, Parts: parts, Off: start, End: l.pos, Space: space}, true
	}
	parts := l.quoted(closeC, nest, typ == 'Q', false)
	return Token{Kind: STRING, Parts: parts, Off: start, End: l.pos, Space: space}, true
}

// quoted reads a quoted literal's body up to the closing delimiter (l.pos is just after the opening one).
// interp allows #{} and double-quote escapes; raw keeps backslashes as written (regexps, word lists), except
// before the delimiter. nest is the opening bracket for delimiters that nest.
func (l *lexer) quoted(closeC, nest byte, interp, raw bool) []Part {
	start := l.pos
	var parts []Part
	var b strings.Builder
	level := 0
	for {
		if l.pos >= len(l.src) {
			l.fail(start, "unterminated literal (missing %q)", closeC)
			return nil
		}
		c := l.src[l.pos]
		switch {
		case c == '\\':
			n := l.peekAt(l.pos + 1)
			switch {
			case raw:
				// Regexps and word lists keep escapes for their own reader, except an escaped slash delimiter.
				if n != '/' || closeC != '/' {
					b.WriteByte('\\')
				}
				if n != 0 {
					b.WriteByte(n)
				}
				l.pos += 2
			case n == closeC || (nest != 0 && n == nest) || (!interp && n == '\\'):
				b.WriteByte(n)
				l.pos += 2
			case !interp:
				b.WriteByte('\\')
				l.pos++
			default:
				l.pos++
				b.WriteString(l.escape())
			}
		case nest != 0 && c == nest:
			level++
			b.WriteByte(c)
			l.pos++
		case c == closeC && level > 0:
			level--
			b.WriteByte(c)
			l.pos++
		case c == closeC:
			l.pos++
			if b.Len() > 0 || len(parts) == 0 {
				parts = append(parts, Part{Lit: b.String()})
			}
			return parts
		case interp && c == '#' && l.peekAt(l.pos+1) == '{':
			if b.Len() > 0 {
				parts = append(parts, Part{Lit: b.String()})
				b.Reset()
			}
			l.pos += 2
			toks := l.interpolation()
			if l.err != nil {
				return nil
			}
			parts = append(parts, Part{Interp: toks, Interpolated: true})
		default:
			b.WriteByte(c)
			l.pos++
		}
	}
}

// interpolation lexes the tokens of #{...} up to its closing brace.
func (l *lexer) interpolation() []Token {
	start := l.pos
	l.depth++
	defer func() { l.depth-- }()
	if l.lim.MaxDepth > 0 && l.depth > l.lim.MaxDepth {
		l.fail(start, "interpolation nested more than %d deep", l.lim.MaxDepth)
		return nil
	}
	saved := l.prev
	l.prev = Token{Kind: NL}
	defer func() { l.prev = saved }()
	var toks []Token
	braces := 0
	for {
		t := l.next()
		switch {
		case l.err != nil:
			return nil
		case t.Kind == EOF:
			l.fail(start, "unterminated #{")
			return nil
		case t.op("{"):
			braces++
		case t.op("}") && braces == 0:
			return append(toks, Token{Kind: EOF, Off: t.Off, End: t.Off})
		case t.op("}"):
			braces--
		}
		toks = append(toks, t)
	}
}

// escape decodes a backslash escape of a double-quoted string (l.pos is after the backslash).
func (l *lexer) escape() string {
	c := l.peekAt(l.pos)
	l.pos++
	switch c {
	case 'n':
		return "\n"
	case 't':
		return "\t"
	case 's':
		return " "
	case 'r':
		return "\r"
	case 'e':
		return "\x1b"
	case 'a':
		return "\a"
	case 'b':
		return "\b"
	case 'f':
		return "\f"
	case 'v':
		return "\v"
	case '\n':
		return ""
	case 'u':
		return l.unicodeEscape()
	case 'x':
		n := 0
		v := 0
		for n < 2 && isHex(l.peekAt(l.pos)) {
			v = v*16 + hexVal(l.peekAt(l.pos))
			l.pos++
			n++
		}
		return string([]byte{byte(v)})
	case 0:
		return ""
	}
	if c >= '0' && c <= '7' {
		v := int(c - '0')
		for n := 0; n < 2 && l.peekAt(l.pos) >= '0' && l.peekAt(l.pos) <= '7'; n++ {
			v = v*8 + int(l.peekAt(l.pos)-'0')
			l.pos++
		}
		return string([]byte{byte(v)})
	}
	_, size := utf8.DecodeRune(l.src[l.pos-1:])
	l.pos += size - 1
	return string(l.src[l.pos-size : l.pos])
}

func (l *lexer) unicodeEscape() string {
	var b strings.Builder
	if l.peekAt(l.pos) == '{' {
		l.pos++
		for l.pos < len(l.src) && l.src[l.pos] != '}' {
			start := l.pos
			for isHex(l.peekAt(l.pos)) {
				l.pos++
			}
			if v, err := strconv.ParseUint(string(l.src[start:l.pos]), 16, 32); err == nil && start < l.pos {
				b.WriteRune(rune(v))
			}
			for l.peekAt(l.pos) == ' ' {
				l.pos++
			}
			if start == l.pos {
				break
			}
		}
		if l.peekAt(l.pos) == '}' {
			l.pos++
		}
		return b.String()
	}
	start := l.pos
	for l.pos-start < 4 && isHex(l.peekAt(l.pos)) {
		l.pos++
	}
	if v, err := strconv.ParseUint(string(l.src[start:l.pos]), 16, 32); err == nil {
		b.WriteRune(rune(v))
	}
	return b.String()
}

func isHex(c byte) bool { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') }

func hexVal(c byte) int {
	switch {
	case isDigit(c):
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return int(c-'A') + 10
}

// heredoc lexes <<~ID, <<-ID and <<ID: the body is read from the line after the current one (after earlier
// heredocs of this line), and lexing resumes after it when this line ends.
func (l *lexer) heredoc(space bool) (Token, bool) {
	start := l.pos
	i := l.pos + 2
	squiggly, dash := false, false
	switch l.peekAt(i) {
	case '~':
		squiggly = true
		i++
	case '-':
		dash = true
		i++
	}
	quote := l.peekAt(i)
	var id string
	if quote == '\'' || quote == '"' || quote == '`' {
		end := bytes.IndexByte(l.src[i+1:], quote)
		nl := bytes.IndexByte(l.src[i+1:], '\n')
		if end <= 0 || (nl >= 0 && nl < end) {
			return Token{}, false
		}
		id = string(l.src[i+1 : i+1+end])
		i += end + 2
	} else {
		if !isIdentStart(quote) || (!squiggly && !dash && !(quote >= 'A' && quote <= 'Z') && quote != '_') {
			return Token{}, false
		}
		j := i
		for j < len(l.src) && isIdentChar(l.src[j]) {
			j++
		}
		id = string(l.src[i:j])
		i = j
		quote = '"'
	}
	body := l.heredocEnd
	if body == 0 {
		nl := bytes.IndexByte(l.src[i:], '\n')
		if nl < 0 {
			l.fail(start, "heredoc <<%s without a body", id)
			return Token{}, false
		}
		body = i + nl + 1
	} else {
		body++ // after the newline ending the previous heredoc's terminator
	}
	lines, after, ok := heredocLines(l.src, body, id, squiggly || dash)
	if !ok {
		l.fail(start, "heredoc <<%s is not terminated", id)
		return Token{}, false
	}
	l.pos = i
	l.heredocEnd = after
	text := strings.Join(lines, "")
	if squiggly {
		text = dedent(lines)
	}
	parts := []Part{{Lit: text}}
	if quote == '"' || quote == '`' {
		sub := &lexer{src: []byte(text + "\x00"), lim: l.lim, depth: l.depth, toks: l.toks}
		parts = sub.quoted(0, 0, true, false)
		l.toks = sub.toks
		if sub.err != nil {
			l.fail(start, "in heredoc <<%s: %s", id, sub.err.msg)
			return Token{}, false
		}
		atToken(parts, start)
	}
	return Token{Kind: STRING, Parts: parts, Off: start, End: l.pos, Space: space}, true
}

// heredocLines returns the body lines from offset body up to the terminator line and the offset after it.
func heredocLines(src []byte, body int, id string, indented bool) ([]string, int, bool) {
	var lines []string
	for pos := body; pos < len(src); {
		nl := bytes.IndexByte(src[pos:], '\n')
		end := len(src)
		if nl >= 0 {
			end = pos + nl + 1
		}
		line := string(src[pos:end])
		t := strings.TrimRight(line, "\r\n")
		if indented {
			t = strings.TrimLeft(t, " \t")
		}
		if t == id {
			if nl < 0 {
				return lines, len(src), true
			}
			return lines, end - 1, true
		}
		lines = append(lines, line)
		pos = end
	}
	return nil, 0, false
}

// dedent removes the least indentation of the non-blank lines, as <<~ does.
func dedent(lines []string) string {
	least := -1
	for _, ln := range lines {
		if strings.TrimSpace(ln) == "" {
			continue
		}
		n := len(ln) - len(strings.TrimLeft(ln, " \t"))
		if least < 0 || n < least {
			least = n
		}
	}
	var b strings.Builder
	for _, ln := range lines {
		if len(ln) >= least && least > 0 && strings.TrimSpace(ln[:least]) == "" {
			ln = ln[least:]
		} else if strings.TrimSpace(ln) == "" {
			ln = strings.TrimLeft(ln, " \t")
		}
		b.WriteString(ln)
	}
	return b.String()
}

// atToken places the interpolated tokens of a heredoc, lexed from its dedented text, at the heredoc's start.
func atToken(parts []Part, off int) {
	for i := range parts {
		for j := range parts[i].Interp {
			parts[i].Interp[j].Off, parts[i].Interp[j].End = off, off
			atToken(parts[i].Interp[j].Parts, off)
		}
	}
}
