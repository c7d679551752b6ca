package ruby

import (
	"fmt"
	"strings"
)

// sexp renders a node as a compact S-expression, so tests can state the tree they expect in one line.
func sexp(n Node) string {
	var b strings.Builder
	writeSexp(&b, n)
	return b.String()
}

func sexps(ns []Node) string {
	var b strings.Builder
	for i, n := range ns {
		if i > 0 {
			b.WriteByte(' ')
		}
		writeSexp(&b, n)
	}
	return b.String()
}

func writeParts(b *strings.Builder, ps []StrPart) {
	for _, p := range ps {
		if p.Expr != nil {
			b.WriteString("#{")
			writeSexp(b, p.Expr)
			b.WriteString("}")
		} else {
			b.WriteString(p.Lit)
		}
	}
}

func writeSexp(b *strings.Builder, n Node) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	list := func(ns []Node) {
		for _, c := range ns {
			b.WriteByte(' ')
			writeSexp(b, c)
		}
	}
	switch v := n.(type) {
	case nil:
		w("_")
	case *Nil:
		w("nil")
	case *Bool:
		w("%v", v.Val)
	case *Self:
		w("self")
	case *Int:
		w("%d", v.Val)
	case *Float:
		w("%g", v.Val)
	case *Str:
		b.WriteString(`"`)
		writeParts(b, v.Parts)
		b.WriteString(`"`)
	case *Sym:
		b.WriteString(":")
		if v.Parts != nil {
			writeParts(b, v.Parts)
		} else {
			b.WriteString(v.Name)
		}
	case *Regex:
		b.WriteString("/")
		writeParts(b, v.Parts)
		w("/%s", v.Flags)
	case *Array:
		w("[")
		b.WriteString(strings.TrimPrefix(sexps(v.Elems), ""))
		w("]")
	case *Hash:
		w("{")
		for i, p := range v.Pairs {
			if i > 0 {
				w(", ")
			}
			writeSexp(b, p.Key)
			w("=>")
			writeSexp(b, p.Value)
		}
		w("}")
	case *Range:
		writeSexp(b, v.Lo)
		w("..")
		writeSexp(b, v.Hi)
	case *Ident:
		if v.Local {
			w("$%s", v.Name)
		} else {
			w("%s", v.Name)
		}
	case *Var:
		w("%s", v.Name)
	case *Const:
		if v.Scope != nil {
			writeSexp(b, v.Scope)
			w("::")
		} else if v.Top {
			w("::")
		}
		w("%s", v.Name)
	case *Call:
		w("(")
		if v.Recv != nil {
			writeSexp(b, v.Recv)
			w("%s", v.Op)
		}
		w("%s", v.Name)
		list(v.Args)
		if v.Block != nil {
			b.WriteByte(' ')
			writeSexp(b, v.Block)
		}
		w(")")
	case *Block:
		w("{")
		if len(v.Params) > 0 {
			w("|")
			for i, p := range v.Params {
				if i > 0 {
					w(",")
				}
				w("%s", p.Name)
			}
			w("| ")
		}
		b.WriteString(sexps(v.Body))
		w("}")
	case *BlockPass:
		w("&")
		writeSexp(b, v.X)
	case *Splat:
		w("*")
		writeSexp(b, v.X)
	case *Index:
		w("(index ")
		writeSexp(b, v.X)
		list(v.Args)
		w(")")
	case *Unary:
		w("(%s ", v.Op)
		writeSexp(b, v.X)
		w(")")
	case *Binary:
		w("(%s ", v.Op)
		writeSexp(b, v.X)
		w(" ")
		writeSexp(b, v.Y)
		w(")")
	case *Assign:
		w("(%s ", v.Op)
		writeSexp(b, v.Lhs)
		w(" ")
		writeSexp(b, v.Rhs)
		w(")")
	case *MultiAssign:
		w("(masgn [%s] ", sexps(v.Lhs))
		writeSexp(b, v.Rhs)
		w(")")
	case *If:
		kw := "if"
		if v.Unless {
			kw = "unless"
		}
		w("(%s ", kw)
		writeSexp(b, v.Cond)
		w(" [%s] [%s])", sexps(v.Then), sexps(v.Else))
	case *While:
		w("(while ")
		writeSexp(b, v.Cond)
		w(" [%s])", sexps(v.Body))
	case *Case:
		w("(case ")
		writeSexp(b, v.Subject)
		for _, c := range v.Whens {
			w(" (when [%s] [%s])", sexps(c.Conds), sexps(c.Body))
		}
		w(" [%s])", sexps(v.Else))
	case *Begin:
		w("(begin [%s]", sexps(v.Body))
		for _, r := range v.Rescues {
			w(" (rescue [%s] ", sexps(r.Classes))
			writeSexp(b, r.Var)
			w(" [%s])", sexps(r.Body))
		}
		if v.Ensure != nil {
			w(" (ensure [%s])", sexps(v.Ensure))
		}
		w(")")
	case *Return:
		w("(return%s)", strings.TrimRight(" "+sexps(v.Vals), " "))
	case *Next:
		w("(next%s)", strings.TrimRight(" "+sexps(v.Vals), " "))
	case *Paren:
		w("(paren %s)", sexps(v.Body))
	case *Def:
		w("(def ")
		if v.Recv != nil {
			writeSexp(b, v.Recv)
			w(".")
		}
		var ps []string
		for _, p := range v.Params {
			ps = append(ps, p.Name)
		}
		w("%s(%s) [%s]", v.Name, strings.Join(ps, ","), sexps(v.Body.Body))
		for _, r := range v.Body.Rescues {
			w(" (rescue [%s])", sexps(r.Body))
		}
		w(")")
	case *Class:
		w("(class ")
		writeSexp(b, v.Name)
		w(" < ")
		writeSexp(b, v.Super)
		w(" [%s])", sexps(v.Body))
	case *Module:
		w("(module ")
		writeSexp(b, v.Name)
		w(" [%s])", sexps(v.Body))
	case *Lambda:
		w("(lambda [%s])", sexps(v.Body))
	case *Defined:
		w("(defined? ")
		writeSexp(b, v.X)
		w(")")
	default:
		w("<%T>", n)
	}
}
