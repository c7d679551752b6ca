package inspec

import (
	"io/fs"
	"path"
	"strings"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// A command line is read with mvdan.cc/sh's parser and expanded with its expand package, as a shell would: quote
// removal and backslash escapes (find's `\( ... \)`, MITRE's `\-user`), brace expansion, and globs against the
// container's filesystem; a parameter, command or arithmetic substitution, a tilde, an assignment, a control
// structure or a redirection other than to /dev/null or between stdout and stderr is not answered. A line is a
// pipeline: its first command reads the filesystem (fsCommands, find), the others filter what it printed.

// shellStage is one command of a pipeline: its words and its redirections.
type shellStage struct {
	call   *syntax.CallExpr
	redirs []*syntax.Redirect
}

// parseLine reads line as one pipeline of plain commands; ok is false for anything else.
func parseLine(line string) ([]shellStage, bool) {
	f, err := syntax.NewParser().Parse(strings.NewReader(line), "")
	if err != nil || len(f.Stmts) != 1 {
		return nil, false
	}
	return pipeline(f.Stmts[0])
}

func pipeline(st *syntax.Stmt) ([]shellStage, bool) {
	if st.Negated || st.Background || st.Coprocess {
		return nil, false
	}
	switch c := st.Cmd.(type) {
	case *syntax.CallExpr:
		if len(c.Assigns) > 0 || len(c.Args) == 0 || !literalWords(c.Args) || !plainRedirs(st.Redirs) {
			return nil, false
		}
		return []shellStage{{call: c, redirs: st.Redirs}}, true
	case *syntax.BinaryCmd:
		if c.Op != syntax.Pipe || len(st.Redirs) > 0 {
			return nil, false
		}
		l, ok := pipeline(c.X)
		if !ok {
			return nil, false
		}
		r, ok := pipeline(c.Y)
		return append(l, r...), ok
	}
	return nil, false
}

// literalWords says the words have no expansion but quoting, escapes, braces and globs.
func literalWords(ws []*syntax.Word) bool {
	for _, w := range ws {
		for i, p := range w.Parts {
			switch v := p.(type) {
			case *syntax.Lit:
				if i == 0 && strings.HasPrefix(v.Value, "~") {
					return false
				}
			case *syntax.SglQuoted:
				if v.Dollar {
					return false
				}
			case *syntax.DblQuoted:
				if v.Dollar {
					return false
				}
				for _, in := range v.Parts {
					if _, ok := in.(*syntax.Lit); !ok {
						return false
					}
				}
			default:
				return false
			}
		}
	}
	return true
}

// plainRedirs allows N>/dev/null, N>>/dev/null, &>/dev/null and N>&M for stdout and stderr.
func plainRedirs(rs []*syntax.Redirect) bool {
	for _, r := range rs {
		if r.Hdoc != nil || r.Word == nil || (r.N != nil && r.N.Value != "1" && r.N.Value != "2") {
			return false
		}
		switch r.Op {
		case syntax.RdrOut, syntax.AppOut, syntax.RdrAll, syntax.AppAll, syntax.RdrClob:
			if r.Word.Lit() != "/dev/null" {
				return false
			}
		case syntax.DplOut:
			if t := r.Word.Lit(); t != "1" && t != "2" {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// route applies a stage's redirections to what it printed: what reaches the pipe (or the result's stdout) and
// what reaches stderr.
func route(rs []*syntax.Redirect, r cmdResult) (out, errOut string) {
	fds := map[string]string{"1": "out", "2": "err"}
	for _, rd := range rs {
		n := "1"
		if rd.N != nil {
			n = rd.N.Value
		}
		switch rd.Op {
		case syntax.RdrAll, syntax.AppAll:
			fds["1"], fds["2"] = "null", "null"
		case syntax.DplOut:
			fds[n] = fds[rd.Word.Lit()]
		default:
			fds[n] = "null"
		}
	}
	dest := map[string]*strings.Builder{"out": {}, "err": {}, "null": {}}
	dest[fds["1"]].WriteString(r.stdout)
	dest[fds["2"]].WriteString(r.stderr)
	return dest["out"].String(), dest["err"].String()
}

// words expands a stage's words; globs match in the container (absolute patterns only: a relative one has no
// working directory to match in and stays as written).
func (ev *evaluator) words(ws []*syntax.Word) ([]string, error) {
	cfg := &expand.Config{ReadDir2: func(dir string) ([]fs.DirEntry, error) {
		if !strings.HasPrefix(dir, "/") {
			return nil, fs.ErrNotExist
		}
		names, err := ev.t.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		out := make([]fs.DirEntry, len(names))
		for i, n := range names {
			out[i] = &containerEntry{ev: ev, dir: dir, name: n}
		}
		return out, nil
	}}
	return expand.Fields(cfg, ws...)
}

// staticWords expands without a filesystem, for the static check: globs stay as written.
func staticWords(ws []*syntax.Word) ([]string, bool) {
	out, err := expand.Fields(nil, ws...)
	return out, err == nil && len(out) > 0
}

// containerEntry is a directory entry of the container for the glob, its type read when the glob asks.
type containerEntry struct {
	ev        *evaluator
	dir, name string
}

func (e *containerEntry) Name() string { return e.name }

func (e *containerEntry) IsDir() bool { return e.Type().IsDir() }

func (e *containerEntry) Type() fs.FileMode {
	st, err := e.ev.t.Lstat(path.Join(e.dir, e.name))
	if err != nil {
		return fs.ModeIrregular
	}
	switch st.Type {
	case "directory":
		return fs.ModeDir
	case "symlink":
		return fs.ModeSymlink
	case "file":
		return 0
	}
	return fs.ModeIrregular
}

func (e *containerEntry) Info() (fs.FileInfo, error) { return nil, fs.ErrInvalid }

// runLine answers a command line from the filesystem: ok is false when it is not a form rootscan answers; err is
// a failure to answer one that is (a bound reached).
func (ev *evaluator) runLine(line string) (cmdResult, bool, error) {
	stages, ok := parseLine(line)
	if !ok {
		return cmdResult{}, false, nil
	}
	var res cmdResult
	var stdin *string
	for i, st := range stages {
		args, err := ev.words(st.call.Args)
		if err != nil || len(args) == 0 {
			return cmdResult{}, false, nil
		}
		r, ok, err := ev.runStage(args, stdin)
		if err != nil || !ok {
			return cmdResult{}, ok, err
		}
		out, errOut := route(st.redirs, r)
		res.stderr += errOut
		res.exit = r.exit
		if i == len(stages)-1 {
			res.stdout = out
		}
		stdin = &out
	}
	return res, true, nil
}

func (ev *evaluator) runStage(args []string, stdin *string) (cmdResult, bool, error) {
	prog := path.Base(args[0])
	if stdin != nil {
		f, ok := filterCommands[prog]
		if !ok {
			return cmdResult{}, false, nil
		}
		r, ok := f(args[1:], *stdin)
		return r, ok, nil
	}
	if prog == "find" {
		return ev.cmdFind(args[1:])
	}
	fn, ok := fsCommands[prog]
	if !ok {
		return cmdResult{}, false, nil
	}
	r, ok := fn(ev, args[1:])
	return r, ok, nil
}

// filterCommands read what the command before them in a pipeline printed: grep, wc -l, head, cat, sort.
var filterCommands = map[string]func(args []string, in string) (cmdResult, bool){
	"grep": filterGrep, "egrep": func(args []string, in string) (cmdResult, bool) {
		return filterGrep(append([]string{"-E"}, args...), in)
	},
	"wc": filterWc, "head": filterHead, "cat": filterCat, "sort": filterSort,
}

func filterGrep(args []string, in string) (cmdResult, bool) {
	g, rest, quiet, ok := parseGrep(args)
	if !ok || len(rest) != 0 {
		return cmdResult{}, false
	}
	g.prefix = false
	out, hit := g.file("(standard input)", in)
	r := cmdResult{stdout: out}
	if !hit {
		r.exit = 1
	}
	if quiet {
		r.stdout = ""
	}
	return r, true
}

func filterWc(args []string, in string) (cmdResult, bool) {
	if len(args) != 1 || args[0] != "-l" {
		return cmdResult{}, false
	}
	return cmdResult{stdout: itoa(strings.Count(in, "\n")) + "\n"}, true
}

func filterHead(args []string, in string) (cmdResult, bool) {
	n, rest, ok := headCount(args)
	if !ok || len(rest) != 0 {
		return cmdResult{}, false
	}
	return cmdResult{stdout: firstLines(in, n)}, true
}

func filterCat(args []string, in string) (cmdResult, bool) {
	if len(args) != 0 && !(len(args) == 1 && args[0] == "-") {
		return cmdResult{}, false
	}
	return cmdResult{stdout: in}, true
}

func filterSort(args []string, in string) (cmdResult, bool) {
	uniq := false
	for _, a := range args {
		if a != "-u" {
			return cmdResult{}, false
		}
		uniq = true
	}
	lines := strings.SplitAfter(in, "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\n")
	}
	sortStrings(lines)
	if uniq {
		lines = uniqSorted(lines)
	}
	if len(lines) == 0 {
		return cmdResult{}, true
	}
	return cmdResult{stdout: strings.Join(lines, "\n") + "\n"}, true
}

func uniqSorted(ss []string) []string {
	out := ss[:0]
	for i, s := range ss {
		if i == 0 || s != ss[i-1] {
			out = append(out, s)
		}
	}
	return out
}
