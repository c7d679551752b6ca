package inspec

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// cmdResult is what a command printed and its exit status.
type cmdResult struct {
	stdout, stderr string
	exit           int64
}

// fsCommands answer the command lines that only read files, from the container's filesystem: which, cat,
// test, readlink, realpath, stat -c, ls, grep and head, in their common forms. A form they do not know is
// reported as needing exec, never guessed.
var fsCommands = map[string]func(ev *evaluator, args []string) (cmdResult, bool){
	"which": cmdWhich, "cat": cmdCat, "test": cmdTest, "[": cmdTest, "readlink": cmdReadlink,
	"realpath": cmdRealpath, "stat": cmdStat, "ls": cmdLs, "grep": cmdGrep, "egrep": cmdEgrep, "head": cmdHead,
}

// answer runs a command line from the filesystem (runLine); ok is false when the line is not one of the forms
// known, err a failure to answer one that is.
func (c *commandRes) answer(ev *evaluator) (cmdResult, bool, error) {
	if c.done {
		return c.res, c.ok, c.err
	}
	c.done = true
	c.res, c.ok, c.err = ev.runLine(c.cmd)
	return c.res, c.ok, c.err
}

// operands are the file operands, already expanded by the shell (runLine): a relative path has no meaning
// without the command's working directory.
func operands(_ *evaluator, args []string) ([]string, bool) {
	for _, a := range args {
		if !strings.HasPrefix(a, "/") {
			return nil, false
		}
	}
	return args, true
}

func cmdWhich(ev *evaluator, args []string) (cmdResult, bool) {
	var r cmdResult
	for _, n := range args {
		if strings.HasPrefix(n, "-") {
			return r, false
		}
		if p := ev.t.Which(n); len(p) > 0 {
			r.stdout += p[0] + "\n"
		} else {
			r.exit = 1
		}
	}
	return r, len(args) > 0
}

func cmdCat(ev *evaluator, args []string) (cmdResult, bool) {
	files, ok := operands(ev, args)
	if !ok || len(files) == 0 {
		return cmdResult{}, false
	}
	var r cmdResult
	for _, f := range files {
		s, err := ev.readConfig(f)
		switch {
		case err != nil:
			return cmdResult{}, false
		case s == nil:
			r.stderr += "cat: " + f + ": No such file or directory\n"
			r.exit = 1
		default:
			r.stdout += s.(string)
		}
	}
	return r, true
}

func cmdHead(ev *evaluator, args []string) (cmdResult, bool) {
	n, args, ok := headCount(args)
	if !ok || len(args) != 1 {
		return cmdResult{}, false
	}
	r, ok := cmdCat(ev, args)
	if !ok {
		return cmdResult{}, false
	}
	r.stdout = firstLines(r.stdout, n)
	return r, true
}

// headCount reads head's -n N / -N (10 without), returning the operands after it.
func headCount(args []string) (int, []string, bool) {
	switch {
	case len(args) >= 2 && args[0] == "-n":
		v, err := strconv.Atoi(args[1])
		return v, args[2:], err == nil && v >= 0
	case len(args) >= 1 && strings.HasPrefix(args[0], "-") && len(args[0]) > 1:
		v, err := strconv.Atoi(args[0][1:])
		return v, args[1:], err == nil && v >= 0
	}
	return 10, args, true
}

func firstLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "")
}

func itoa(n int) string { return strconv.Itoa(n) }

func sortStrings(ss []string) { sort.Strings(ss) }

// cmdTest is test / [ with one file operator: -e -f -d -L -h -x -r -w -s, and ! before it.
func cmdTest(ev *evaluator, args []string) (cmdResult, bool) {
	if len(args) > 0 && args[len(args)-1] == "]" {
		args = args[:len(args)-1]
	}
	neg := len(args) > 0 && args[0] == "!"
	if neg {
		args = args[1:]
	}
	if len(args) != 2 || !strings.HasPrefix(args[1], "/") {
		return cmdResult{}, false
	}
	st, err := ev.t.Stat(args[1])
	if err != nil {
		return cmdResult{}, false
	}
	var hit bool
	switch args[0] {
	case "-e":
		hit = st.Exists
	case "-f":
		hit = st.Exists && st.Type == "file"
	case "-d":
		hit = st.Exists && st.Type == "directory"
	case "-L", "-h":
		hit = st.Symlink
	case "-s":
		hit = st.Exists && st.Size > 0
	case "-x", "-r", "-w":
		// As root, which the scanner's question is about: r and w need the file, x any execute bit.
		hit = st.Exists && (args[0] != "-x" || st.Mode&0o111 != 0 || st.Type == "directory")
	default:
		return cmdResult{}, false
	}
	if hit == neg {
		return cmdResult{exit: 1}, true
	}
	return cmdResult{}, true
}

func cmdReadlink(ev *evaluator, args []string) (cmdResult, bool) {
	if len(args) == 2 && (args[0] == "-f" || args[0] == "-e" || args[0] == "-m") {
		return cmdRealpath(ev, args[1:])
	}
	if len(args) != 1 || !strings.HasPrefix(args[0], "/") {
		return cmdResult{}, false
	}
	st, err := ev.t.Lstat(args[0])
	if err != nil {
		return cmdResult{}, false
	}
	if !st.Symlink {
		return cmdResult{exit: 1}, true
	}
	return cmdResult{stdout: st.LinkTarget + "\n"}, true
}

func cmdRealpath(ev *evaluator, args []string) (cmdResult, bool) {
	if len(args) != 1 || !strings.HasPrefix(args[0], "/") {
		return cmdResult{}, false
	}
	st, err := ev.t.Stat(args[0])
	if err != nil {
		return cmdResult{}, false
	}
	if !st.Exists {
		return cmdResult{stderr: "realpath: " + args[0] + ": No such file or directory\n", exit: 1}, true
	}
	return cmdResult{stdout: st.Resolved + "\n"}, true
}

// cmdStat is stat -c FORMAT (or --format=FORMAT, -L to follow links) with %a %A %U %G %u %g %s %n %F.
func cmdStat(ev *evaluator, args []string) (cmdResult, bool) {
	follow, format := false, ""
	var files []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-L" || a == "--dereference":
			follow = true
		case a == "-c" && i+1 < len(args):
			format, i = args[i+1], i+1
		case strings.HasPrefix(a, "--format="):
			format = strings.TrimPrefix(a, "--format=")
		case strings.HasPrefix(a, "/"):
			files = append(files, a)
		default:
			return cmdResult{}, false
		}
	}
	if format == "" || len(files) == 0 {
		return cmdResult{}, false
	}
	var r cmdResult
	for _, f := range files {
		stat := ev.t.Lstat
		if follow {
			stat = ev.t.Stat
		}
		st, err := stat(f)
		if err != nil {
			return cmdResult{}, false
		}
		if !st.Exists && !st.Symlink {
			r.stderr += fmt.Sprintf("stat: cannot statx '%s': No such file or directory\n", f)
			r.exit = 1
			continue
		}
		out, ok := statFormat(format, st.Path, st.Type, st.Mode, st.UID, st.GID, st.Owner, st.Group, st.Size)
		if !ok {
			return cmdResult{}, false
		}
		r.stdout += out + "\n"
	}
	return r, true
}

func statFormat(format, name, typ string, mode, uid, gid int64, owner, group string, size int64) (string, bool) {
	orUnknown := func(s string) string {
		if s == "" {
			return "UNKNOWN"
		}
		return s
	}
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		if format[i] != '%' || i+1 == len(format) {
			b.WriteByte(format[i])
			continue
		}
		i++
		switch format[i] {
		case 'a':
			b.WriteString(strconv.FormatInt(mode, 8))
		case 'A':
			b.WriteString(permString(typ, mode))
		case 'U':
			b.WriteString(orUnknown(owner))
		case 'G':
			b.WriteString(orUnknown(group))
		case 'u':
			b.WriteString(strconv.FormatInt(uid, 10))
		case 'g':
			b.WriteString(strconv.FormatInt(gid, 10))
		case 's':
			b.WriteString(strconv.FormatInt(size, 10))
		case 'n':
			b.WriteString(name)
		case 'F':
			b.WriteString(map[string]string{"file": "regular file", "directory": "directory", "symlink": "symbolic link",
				"pipe": "fifo", "socket": "socket", "character_device": "character special file", "block_device": "block special file"}[typ])
		case '%':
			b.WriteByte('%')
		default:
			return "", false
		}
	}
	return b.String(), true
}

func permString(typ string, mode int64) string {
	b := []byte("-rwxrwxrwx")
	switch typ {
	case "directory":
		b[0] = 'd'
	case "symlink":
		b[0] = 'l'
	}
	for i := 0; i < 9; i++ {
		if mode&(1<<(8-i)) == 0 {
			b[i+1] = '-'
		}
	}
	return string(b)
}

// cmdLs is ls [-1] [-a] [-d] of absolute paths: a directory lists its names, sorted, one per line.
func cmdLs(ev *evaluator, args []string) (cmdResult, bool) {
	all, dirSelf := false, false
	var paths []string
	for _, a := range args {
		switch {
		case a == "-1":
		case a == "-a" || a == "-A":
			all = true
		case a == "-d":
			dirSelf = true
		case strings.HasPrefix(a, "-"):
			return cmdResult{}, false
		default:
			paths = append(paths, a)
		}
	}
	paths, ok := operands(ev, paths)
	if !ok || len(paths) != 1 {
		return cmdResult{}, false
	}
	st, err := ev.t.Stat(paths[0])
	if err != nil {
		return cmdResult{}, false
	}
	if !st.Exists {
		return cmdResult{stderr: fmt.Sprintf("ls: cannot access '%s': No such file or directory\n", paths[0]), exit: 2}, true
	}
	if st.Type != "directory" || dirSelf {
		return cmdResult{stdout: paths[0] + "\n"}, true
	}
	names, err := ev.t.ReadDir(paths[0])
	if err != nil {
		return cmdResult{}, false
	}
	var out []string
	for _, n := range names {
		if all || !strings.HasPrefix(n, ".") {
			out = append(out, n+"\n")
		}
	}
	sort.Strings(out)
	return cmdResult{stdout: strings.Join(out, "")}, true
}

func cmdEgrep(ev *evaluator, args []string) (cmdResult, bool) {
	return cmdGrep(ev, append([]string{"-E"}, args...))
}

// cmdGrep is grep [-E -F -i -v -c -q -h -s] PATTERN FILE...: basic expressions are translated to RE2.
func cmdGrep(ev *evaluator, args []string) (cmdResult, bool) {
	g, rest, quiet, ok := parseGrep(args)
	if !ok || len(rest) == 0 {
		return cmdResult{}, false
	}
	files, ok := operands(ev, rest)
	if !ok {
		return cmdResult{}, false
	}
	g.prefix = g.prefix && len(files) > 1
	r := cmdResult{exit: 1}
	for _, f := range files {
		s, err := ev.readConfig(f)
		if err != nil {
			return cmdResult{}, false
		}
		if s == nil {
			r.stderr += "grep: " + f + ": No such file or directory\n"
			continue
		}
		out, hit := g.file(f, s.(string))
		if hit {
			r.exit = 0
		}
		r.stdout += out
	}
	if r.stderr != "" && r.exit == 1 {
		r.exit = 2
	}
	if quiet {
		r.stdout = ""
	}
	return r, true
}

// parseGrep reads grep's options and pattern; rest are the file operands. prefix is set unless -h.
func parseGrep(args []string) (g grepRun, rest []string, quiet, ok bool) {
	var ext, fixed, icase, invert, count, noName bool
	i := 0
	for ; i < len(args) && strings.HasPrefix(args[i], "-") && len(args[i]) > 1; i++ {
		for _, f := range args[i][1:] {
			switch f {
			case 'E':
				ext = true
			case 'F':
				fixed = true
			case 'i':
				icase = true
			case 'v':
				invert = true
			case 'c':
				count = true
			case 'q':
				quiet = true
			case 'h':
				noName = true
			case 's':
			default:
				return grepRun{}, nil, false, false
			}
		}
	}
	if len(args)-i < 1 {
		return grepRun{}, nil, false, false
	}
	re, ok := grepRegexp(args[i], ext, fixed, icase)
	if !ok {
		return grepRun{}, nil, false, false
	}
	return grepRun{re: re, invert: invert, count: count, prefix: !noName}, args[i+1:], quiet, true
}

type grepRun struct {
	re                    *regexp.Regexp
	invert, count, prefix bool
}

func (g grepRun) file(name, content string) (string, bool) {
	var b strings.Builder
	n := 0
	for _, line := range strings.SplitAfter(content, "\n") {
		if line == "" {
			continue
		}
		text := strings.TrimSuffix(line, "\n")
		if g.re.MatchString(text) == g.invert {
			continue
		}
		n++
		if !g.count {
			if g.prefix {
				b.WriteString(name + ":")
			}
			b.WriteString(text + "\n")
		}
	}
	if g.count {
		if g.prefix {
			b.WriteString(name + ":")
		}
		b.WriteString(strconv.Itoa(n) + "\n")
	}
	return b.String(), n > 0
}

// grepRegexp compiles a grep pattern: -F literal, -E as RE2 (ERE's syntax is RE2's for what profiles use),
// basic (BRE) with \( \) \{ \} \| \+ \? as operators and the bare characters literal.
func grepRegexp(p string, ext, fixed, icase bool) (*regexp.Regexp, bool) {
	switch {
	case fixed:
		p = regexp.QuoteMeta(p)
	case !ext:
		var b strings.Builder
		for i := 0; i < len(p); i++ {
			c := p[i]
			switch {
			case c == '\\' && i+1 < len(p) && strings.IndexByte("(){}|+?", p[i+1]) >= 0:
				b.WriteByte(p[i+1])
				i++
			case c == '\\' && i+1 < len(p):
				b.WriteByte(c)
				b.WriteByte(p[i+1])
				i++
			case strings.IndexByte("(){}|+?", c) >= 0:
				b.WriteByte('\\')
				b.WriteByte(c)
			default:
				b.WriteByte(c)
			}
		}
		p = b.String()
	}
	if icase {
		p = "(?i)" + p
	}
	re, err := regexp.Compile(p)
	return re, err == nil
}
