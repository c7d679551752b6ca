package inspec

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/rootscan/rootscan/compliance"
)

// find answers GNU find's forms the public baselines use (SUID/SGID, world-writable, unowned files) from the
// container's tree: the walk files() shares, with its bounds (MaxEntries, MaxDepth), links not followed, and
// /proc, /sys, /dev and volumes not walked, which is what -xdev asks on the container's root; without -xdev find
// would also enter those. Tests: -type -perm (octal and symbolic, exact, -all, /any) -user -group -uid -gid -nouser
// -nogroup -name -iname -path -ipath -wholename -true -false; -prune, -print and -print0; ! -not ( ) -a -and -o -or
// and the implicit and; the options -L -H -P -xdev -mount -maxdepth -mindepth -depth -noleaf. Any other primary
// (-exec, -newer, -size, -mtime, -printf, ...) or a relative starting point is not answered.

// maxFindOutput bounds what a find prints, as the content limit bounds a file read.
const maxFindOutput = 16 << 20

// findNode is one node of a find expression.
type findNode struct {
	op   string // "and", "or", "not", or the primary's name
	kids []*findNode
	arg  string
	// perm: the mode and how it compares ('=' exact, '-' all bits, '/' any bit)
	mode    int64
	permCmp byte
	re      *regexp.Regexp
}

// findCmd is a parsed find command line.
type findCmd struct {
	follow, followArgs bool // -L, -H
	roots              []string
	expr               *findNode
	hasAction          bool // -print or -print0 in the expression: only they print
	print0             bool
	maxDepth, minDepth int
	depthFirst         bool
}

var findOptions = map[string]bool{"-xdev": true, "-mount": true, "-depth": true, "-d": true, "-noleaf": true,
	"-ignore_readdir_race": true, "-noignore_readdir_race": true, "-daystart": true, "-follow": true}

// parseFind reads find's arguments; the error says what is not answered.
func parseFind(args []string) (*findCmd, error) {
	fc := &findCmd{maxDepth: -1}
	i := 0
	for ; i < len(args); i++ {
		switch args[i] {
		case "-L":
			fc.follow = true
			continue
		case "-H":
			fc.followArgs = true
			continue
		case "-P":
			fc.follow, fc.followArgs = false, false
			continue
		}
		break
	}
	for ; i < len(args) && !strings.HasPrefix(args[i], "-") && args[i] != "(" && args[i] != "!"; i++ {
		if !strings.HasPrefix(args[i], "/") {
			return nil, fmt.Errorf("starting point %q is relative to an unknown working directory", args[i])
		}
		fc.roots = append(fc.roots, args[i])
	}
	if len(fc.roots) == 0 {
		return nil, fmt.Errorf("no starting point (the working directory is unknown)")
	}
	p := &findParser{toks: args[i:], fc: fc}
	if len(p.toks) == 0 {
		fc.expr = &findNode{op: "-true"}
		return fc, nil
	}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.i < len(p.toks) {
		return nil, fmt.Errorf("unexpected %q", p.toks[p.i])
	}
	fc.expr = e
	return fc, nil
}

type findParser struct {
	toks []string
	i    int
	fc   *findCmd
}

func (p *findParser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return ""
}

func (p *findParser) or() (*findNode, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.peek() == "-o" || p.peek() == "-or" {
		p.i++
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = &findNode{op: "or", kids: []*findNode{l, r}}
	}
	return l, nil
}

func (p *findParser) and() (*findNode, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		switch t := p.peek(); t {
		case "", "-o", "-or", ")":
			return l, nil
		case "-a", "-and":
			p.i++
		}
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		l = &findNode{op: "and", kids: []*findNode{l, r}}
	}
}

func (p *findParser) unary() (*findNode, error) {
	switch t := p.peek(); t {
	case "":
		return nil, fmt.Errorf("expression ends early")
	case "!", "-not":
		p.i++
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &findNode{op: "not", kids: []*findNode{x}}, nil
	case "(":
		p.i++
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, fmt.Errorf("missing )")
		}
		p.i++
		return x, nil
	}
	return p.primary()
}

func (p *findParser) arg(name string) (string, error) {
	if p.i >= len(p.toks) {
		return "", fmt.Errorf("%s needs an argument", name)
	}
	p.i++
	return p.toks[p.i-1], nil
}

func (p *findParser) primary() (*findNode, error) {
	name := p.toks[p.i]
	p.i++
	n := &findNode{op: name}
	switch {
	case findOptions[name]:
		if name == "-follow" {
			p.fc.follow = true
		}
		p.fc.depthFirst = p.fc.depthFirst || name == "-depth" || name == "-d"
		n.op = "-true"
	case name == "-maxdepth" || name == "-mindepth":
		v, err := p.arg(name)
		if err != nil {
			return nil, err
		}
		d, err := strconv.Atoi(v)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("%s %q", name, v)
		}
		if name == "-maxdepth" {
			p.fc.maxDepth = d
		} else {
			p.fc.minDepth = d
		}
		n.op = "-true"
	case name == "-true" || name == "-false" || name == "-nouser" || name == "-nogroup" || name == "-prune":
	case name == "-print" || name == "-print0":
		p.fc.hasAction = true
		p.fc.print0 = p.fc.print0 || name == "-print0"
	default:
		return p.withArg(n)
	}
	return n, nil
}

func (p *findParser) withArg(n *findNode) (*findNode, error) {
	switch n.op {
	case "-type", "-xtype", "-user", "-group", "-uid", "-gid", "-name", "-iname", "-path", "-ipath", "-wholename",
		"-iwholename", "-perm":
	default:
		return nil, fmt.Errorf("find %s is not answered from the filesystem", n.op)
	}
	v, err := p.arg(n.op)
	if err != nil {
		return nil, err
	}
	n.arg = v
	switch n.op {
	case "-perm":
		n.mode, n.permCmp, err = findPerm(v)
	case "-type", "-xtype":
		for _, t := range strings.Split(v, ",") {
			if len(t) != 1 || !strings.Contains("fdlpscb", t) {
				return nil, fmt.Errorf("find -type %q", v)
			}
		}
	case "-uid", "-gid":
		if _, perr := strconv.ParseInt(v, 10, 64); perr != nil {
			err = fmt.Errorf("find %s %q: only an exact id is answered", n.op, v)
		}
	case "-name", "-iname", "-path", "-ipath", "-wholename", "-iwholename":
		n.re, err = fnmatchRegexp(v, strings.HasPrefix(n.op, "-i"))
	}
	return n, err
}

// findPerm reads -perm's mode: octal or symbolic (u+s, o+w, g=rx,o-w ...), prefixed by - (all bits) or / (any).
func findPerm(v string) (int64, byte, error) {
	cmp := byte('=')
	if strings.HasPrefix(v, "-") || strings.HasPrefix(v, "/") {
		cmp, v = v[0], v[1:]
	}
	if m, err := strconv.ParseInt(v, 8, 64); err == nil && m >= 0 && m <= 0o7777 {
		return m, cmp, nil
	}
	m, ok := symbolicMode(v)
	if !ok {
		return 0, 0, fmt.Errorf("find -perm %q", v)
	}
	return m, cmp, nil
}

// symbolicMode applies chmod-style clauses to a zero mode, as find does for -perm.
func symbolicMode(v string) (int64, bool) {
	var mode int64
	for _, clause := range strings.Split(v, ",") {
		i := 0
		var who int64
		for ; i < len(clause) && strings.IndexByte("ugoa", clause[i]) >= 0; i++ {
			who |= map[byte]int64{'u': 0o4700, 'g': 0o2070, 'o': 0o1007, 'a': 0o7777}[clause[i]]
		}
		if who == 0 {
			who = 0o7777
		}
		if i >= len(clause) || strings.IndexByte("+-=", clause[i]) < 0 {
			return 0, false
		}
		op := clause[i]
		var bits int64
		for _, c := range clause[i+1:] {
			switch c {
			case 'r':
				bits |= 0o444
			case 'w':
				bits |= 0o222
			case 'x', 'X':
				bits |= 0o111
			case 's':
				bits |= 0o6000
			case 't':
				bits |= 0o1000
			default:
				return 0, false
			}
		}
		bits &= who
		switch op {
		case '+':
			mode |= bits
		case '-':
			mode &^= bits
		case '=':
			mode = mode&^who | bits
		}
	}
	return mode, true
}

// fnmatchRegexp is fnmatch without FNM_PATHNAME: * and ? match a slash too, as find's -name and -path do.
func fnmatchRegexp(p string, icase bool) (*regexp.Regexp, error) {
	var b strings.Builder
	if icase {
		b.WriteString("(?i)")
	}
	b.WriteString(`^(?s:`)
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '\\':
			if i+1 < len(p) {
				i++
			}
			b.WriteString(regexp.QuoteMeta(p[i : i+1]))
		case '[':
			j := i + 1
			if j < len(p) && (p[j] == '!' || p[j] == '^') {
				j++
			}
			if j < len(p) && p[j] == ']' {
				j++
			}
			for j < len(p) && p[j] != ']' {
				j++
			}
			if j >= len(p) {
				b.WriteString(`\[`)
				continue
			}
			class := p[i+1 : j]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			b.WriteString("[" + strings.ReplaceAll(class, `\`, `\\`) + "]")
			i = j
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(`)$`)
	return regexp.Compile(b.String())
}

// findEntry is what the tests of one entry read.
type findEntry struct {
	printed string
	st      compliance.TreeEntry
	depth   int
}

// findRun is one evaluation of a find command.
type findRun struct {
	ev     *evaluator
	fc     *findCmd
	out    strings.Builder
	prune  bool
	users  map[string]int64
	groups map[string]int64
}

// cmdFind runs find from the container's tree; ok is false for a form it does not answer.
func (ev *evaluator) cmdFind(args []string) (cmdResult, bool, error) {
	fc, err := parseFind(args)
	if err != nil {
		return cmdResult{}, false, nil
	}
	fr := &findRun{ev: ev, fc: fc}
	var res cmdResult
	for _, root := range fc.roots {
		ok, err := fr.root(root, &res)
		var msg findMessage
		if errors.As(err, &msg) {
			return cmdResult{stdout: fr.out.String(), stderr: res.stderr + string(msg) + "\n", exit: 1}, true, nil
		}
		if err != nil || !ok {
			return cmdResult{}, ok, err
		}
	}
	res.stdout = fr.out.String()
	return res, true, nil
}

// root walks one starting point: the entry itself (links followed with -H or -L), then, for a directory, the
// tree's entries under it in walk order, minus what -prune and -maxdepth leave out.
func (fr *findRun) root(root string, res *cmdResult) (bool, error) {
	stat := fr.ev.t.Lstat
	if fr.fc.follow || fr.fc.followArgs {
		stat = fr.ev.t.Stat
	}
	st, err := stat(root)
	if err != nil {
		return false, err
	}
	if !st.Exists && !st.Symlink {
		res.stderr += fmt.Sprintf("find: '%s': No such file or directory\n", root)
		res.exit = 1
		return true, nil
	}
	top := compliance.TreeEntry{Path: st.Path, Type: st.Type, Mode: st.Mode, UID: st.UID, GID: st.GID,
		Owner: st.Owner, Group: st.Group, Size: st.Size}
	if !st.Exists {
		top.Type = "symlink"
	}
	descend, err := fr.visit(findEntry{printed: root, st: top})
	if err != nil || !descend || top.Type != "directory" || fr.fc.maxDepth == 0 {
		return err == nil, err
	}
	dir := st.Path
	if fr.fc.follow || fr.fc.followArgs {
		dir = st.Resolved
	}
	entries, deep, err := fr.ev.t.Tree(dir)
	if err != nil {
		return false, err
	}
	if err := fr.deepErr(dir, deep); err != nil {
		return false, err
	}
	return fr.walk(root, dir, entries)
}

// deepErr fails the command when the walk left out directories it would have printed from.
func (fr *findRun) deepErr(dir string, deep []string) error {
	for _, d := range deep {
		if fr.fc.maxDepth < 0 || relDepth(dir, d) <= fr.fc.maxDepth {
			return fmt.Errorf("find: %s was left out by the walk's depth or path-length bound and not examined", d)
		}
	}
	return nil
}

func relDepth(dir, p string) int {
	rel := strings.TrimPrefix(strings.TrimPrefix(p, dir), "/")
	if rel == "" {
		return 0
	}
	return strings.Count(rel, "/") + 1
}

func (fr *findRun) walk(root, dir string, entries []compliance.TreeEntry) (bool, error) {
	pruned := map[string]bool{}
	for _, e := range entries {
		if e.Path == dir {
			continue
		}
		depth := relDepth(dir, e.Path)
		if fr.fc.maxDepth >= 0 && depth > fr.fc.maxDepth || underPruned(pruned, dir, e.Path) {
			continue
		}
		if e.Type == "symlink" && fr.fc.follow {
			st, err := fr.ev.t.Stat(e.Path)
			if err != nil {
				return false, err
			}
			if st.Exists && st.Type == "directory" && (fr.fc.maxDepth < 0 || depth < fr.fc.maxDepth) {
				return false, nil // -L would descend through the link: the tree does not
			}
			if st.Exists {
				e = compliance.TreeEntry{Path: e.Path, Type: st.Type, Mode: st.Mode, UID: st.UID, GID: st.GID,
					Owner: st.Owner, Group: st.Group, Size: st.Size}
			}
		}
		printed := strings.TrimSuffix(root, "/") + strings.TrimPrefix(e.Path, strings.TrimSuffix(dir, "/"))
		descend, err := fr.visit(findEntry{printed: printed, st: e, depth: depth})
		if err != nil {
			return false, err
		}
		if !descend && e.Type == "directory" {
			pruned[e.Path] = true
		}
	}
	return true, nil
}

func underPruned(pruned map[string]bool, dir, p string) bool {
	for q := path.Dir(p); len(q) > len(dir) && q != "/"; q = path.Dir(q) {
		if pruned[q] {
			return true
		}
	}
	return false
}

// visit evaluates the expression on e, printing it as find would; descend is false when -prune fired.
func (fr *findRun) visit(e findEntry) (descend bool, err error) {
	if e.depth < fr.fc.minDepth {
		return true, nil
	}
	fr.prune = false
	ok, err := fr.eval(fr.fc.expr, e)
	if err != nil {
		return false, err
	}
	if ok && !fr.fc.hasAction {
		fr.print(e.printed, false)
	}
	if fr.out.Len() > maxFindOutput {
		return false, fmt.Errorf("find: printed more than %d bytes", maxFindOutput)
	}
	return !fr.prune || fr.fc.depthFirst, nil
}

func (fr *findRun) print(p string, nul bool) {
	fr.out.WriteString(p)
	if nul || fr.fc.print0 && !fr.fc.hasAction {
		fr.out.WriteByte(0)
	} else {
		fr.out.WriteByte('\n')
	}
}

func (fr *findRun) eval(n *findNode, e findEntry) (bool, error) {
	switch n.op {
	case "and", "or":
		l, err := fr.eval(n.kids[0], e)
		if err != nil || l == (n.op == "or") {
			return l, err
		}
		return fr.eval(n.kids[1], e)
	case "not":
		v, err := fr.eval(n.kids[0], e)
		return !v, err
	case "-true":
		return true, nil
	case "-false":
		return false, nil
	case "-prune":
		fr.prune = true
		return true, nil
	case "-print", "-print0":
		fr.print(e.printed, n.op == "-print0")
		return true, nil
	case "-nouser":
		return e.st.UID >= 0 && e.st.Owner == "", nil
	case "-nogroup":
		return e.st.GID >= 0 && e.st.Group == "", nil
	case "-user", "-group", "-uid", "-gid":
		return fr.owner(n, e)
	case "-perm":
		return permMatch(e.st.Mode, n.mode, n.permCmp), nil
	case "-type", "-xtype":
		return strings.Contains(n.arg, findType(e.st.Type)), nil
	case "-name", "-iname":
		return n.re.MatchString(path.Base(e.printed)), nil
	default: // -path, -ipath, -wholename, -iwholename
		return n.re.MatchString(e.printed), nil
	}
}

func permMatch(mode, want int64, cmp byte) bool {
	switch cmp {
	case '-':
		return mode&want == want
	case '/':
		return want == 0 || mode&want != 0
	}
	return mode&0o7777 == want
}

func findType(t string) string {
	return map[string]string{"file": "f", "directory": "d", "symlink": "l", "pipe": "p", "socket": "s",
		"character_device": "c", "block_device": "b"}[t]
}

// owner is -user/-group by name (the container's passwd and group; a number that names no one is an id) and
// -uid/-gid; a name that is neither is find's error.
func (fr *findRun) owner(n *findNode, e findEntry) (bool, error) {
	id, have := e.st.UID, e.st.UID >= 0
	if n.op == "-group" || n.op == "-gid" {
		id, have = e.st.GID, e.st.GID >= 0
	}
	if !have {
		return false, fmt.Errorf("find %s: the filesystem gives no owners", n.op)
	}
	want, err := fr.ownerID(n)
	return err == nil && id == want, err
}

func (fr *findRun) ownerID(n *findNode) (int64, error) {
	if n.op == "-uid" || n.op == "-gid" {
		return strconv.ParseInt(n.arg, 10, 64)
	}
	if fr.users == nil {
		fr.users, fr.groups = map[string]int64{}, map[string]int64{}
		us, err := fr.ev.t.Users()
		if err != nil {
			return 0, err
		}
		for _, u := range us {
			if _, ok := fr.users[u.Name]; !ok {
				fr.users[u.Name] = u.UID
			}
		}
		gs, err := fr.ev.t.Groups()
		if err != nil {
			return 0, err
		}
		for _, g := range gs {
			if _, ok := fr.groups[g.Name]; !ok {
				fr.groups[g.Name] = g.GID
			}
		}
	}
	names, kind := fr.users, "user"
	if n.op == "-group" {
		names, kind = fr.groups, "group"
	}
	if id, ok := names[n.arg]; ok {
		return id, nil
	}
	if id, err := strconv.ParseInt(n.arg, 10, 64); err == nil && id >= 0 {
		return id, nil
	}
	return 0, findMessage(fmt.Sprintf("find: '%s' is not the name of a known %s", n.arg, kind))
}

// findMessage is an error find reports itself (on stderr, exit status 1) rather than a failure to answer.
type findMessage string

func (m findMessage) Error() string { return string(m) }
