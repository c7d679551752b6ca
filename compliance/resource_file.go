package compliance

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/scan"
)

// fileData is what file(), directory(), files() and the entries of glob() describe: one path of the container's
// view. Stat data is taken when the value is made; content, sha256 and entries are read only when an expression asks.
//
// A files() entry describes itself (links are not followed) and holds its own stat facts: res is nil and the
// FileInfo is the entry itself (treeInfo). The tree of a 70,000-file image stays in memory for the whole
// evaluation, so an entry is kept to the facts controls read, without the resolution file() needs.
type fileData struct {
	s    *session
	path string   // the path the profile named, clean and absolute
	res  *fileRes // how path resolved, for file() and directory(); nil for files() entries

	// The Lstat facts of a files() entry.
	size     int64
	mode     fs.FileMode
	uid, gid uint32
	hasIDs   bool // the FS gave owners (fsaccess roots and os.DirFS do)
}

// fileRes is how a path named by file() or directory() resolved.
type fileRes struct {
	// lpath is path with every link in its directories resolved; resolved follows the final link too.
	lpath, resolved string
	lst, st         fs.FileInfo // lst: lpath itself; st: after the final link (nil when missing or dangling)
	err             error       // a resolution failure other than "does not exist" (a link loop, EACCES)
}

// noFollow says the value describes the entry itself (from files()): links are not followed.
func (d *fileData) noFollow() bool { return d.res == nil }

// lpath is the path with the links in its directories resolved.
func (d *fileData) lpath() string {
	if d.res == nil {
		return d.path
	}
	return d.res.lpath
}

// resolved is the path with every link resolved, the final one too ("" when it does not resolve).
func (d *fileData) resolved() string {
	if d.res == nil {
		return d.path
	}
	return d.res.resolved
}

// lst is the FileInfo of lpath itself; nil when it does not exist.
func (d *fileData) lst() fs.FileInfo {
	if d.res == nil {
		return (*treeInfo)(d)
	}
	return d.res.lst
}

// st is the FileInfo after the final link; nil when missing or dangling.
func (d *fileData) st() fs.FileInfo {
	if d.res == nil {
		return (*treeInfo)(d)
	}
	return d.res.st
}

// failure is a resolution failure other than "does not exist".
func (d *fileData) failure() error {
	if d.res == nil {
		return nil
	}
	return d.res.err
}

// statFile describes p, following links inside the view (the final one only for the attributes that describe the
// target: mode, owner, size, content; type says "symlink").
func (s *session) statFile(p string) *fileData {
	p = cleanPath(p)
	r := &fileRes{}
	d := &fileData{s: s, path: p, res: r}
	dir, err := s.view.resolve(path.Dir(p), true)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.err = err
		return d
	}
	if err != nil {
		return d
	}
	r.lpath = path.Join(dir, path.Base(p))
	if p == "/" {
		r.lpath = "/"
	}
	r.lst, err = s.view.lstat(r.lpath)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			r.err = fmt.Errorf("stat %s: %w", p, unwrapPathError(err))
		}
		r.lst = nil
		return d
	}
	if r.lst.Mode()&fs.ModeSymlink == 0 {
		r.resolved, r.st = r.lpath, r.lst
		return d
	}
	res, err := s.view.resolve(r.lpath, true)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			r.err = fmt.Errorf("resolve %s: %w", p, unwrapPathError(err))
		}
		return d
	}
	r.resolved = res
	if r.st, err = s.view.lstat(res); err != nil {
		r.st = nil
		if !errors.Is(err, fs.ErrNotExist) {
			r.err = fmt.Errorf("stat %s: %w", res, unwrapPathError(err))
		}
	}
	return d
}

// info is the FileInfo the attributes describe, or an error naming why there is none.
func (d *fileData) info() (fs.FileInfo, error) {
	if d.failure() != nil {
		return nil, d.failure()
	}
	if d.noFollow() {
		return d.lst(), nil
	}
	if d.st() == nil {
		return nil, fmt.Errorf("%s: %w", d.path, fs.ErrNotExist)
	}
	return d.st(), nil
}

func typeName(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "file"
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeNamedPipe != 0:
		return "pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character_device"
	case m&fs.ModeDevice != 0:
		return "block_device"
	}
	return "other"
}

// unixMode is the permission bits as chmod and stat print them, with setuid (04000), setgid (02000) and sticky
// (01000), as CEL's int.
func unixMode(m fs.FileMode) int64 { return int64(scan.UnixPerm(m)) }

// ids are the owner ids from the stat data; -1 when the FS does not say (only fsaccess roots and os.DirFS do).
func ids(fi fs.FileInfo) (uid, gid int64) {
	if t, ok := fi.(*treeInfo); ok {
		if !t.hasIDs {
			return -1, -1
		}
		return int64(t.uid), int64(t.gid)
	}
	if st, ok := fsaccess.StatOf(fi); ok {
		return int64(st.Uid), int64(st.Gid)
	}
	return -1, -1
}

// modeBits are the permission facts a control asks about; links carry none (their mode is always 0777 and means
// nothing on Linux).
func (d *fileData) modeBits() (int64, error) {
	fi, err := d.info()
	if err != nil {
		return 0, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return 0, nil
	}
	return unixMode(fi.Mode()), nil
}

func (d *fileData) content() (string, error) {
	if d.failure() != nil {
		return "", d.failure()
	}
	target := d.resolved()
	if d.noFollow() && d.lst().Mode()&fs.ModeSymlink != 0 {
		res, err := d.s.view.resolve(d.path, true)
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", d.path, unwrapPathError(err))
		}
		target = res
	}
	if target == "" {
		return "", fmt.Errorf("%s: %w", d.path, fs.ErrNotExist)
	}
	b, err := d.s.view.readFile(target, d.s.lim.MaxContentBytes)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func (d *fileData) sha256() (string, error) {
	if _, err := d.info(); err != nil {
		return "", err
	}
	target := d.resolved()
	if d.noFollow() {
		target = d.path
	}
	d.s.view.rec.add(readEntry, target)
	fsys, name, _ := d.s.view.locate(target)
	f, fi, err := scan.OpenRegular(fsys, name, d.s.lim.MaxHashBytes)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", d.path, unwrapPathError(err))
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(&ctxReader{ctx: d.s.ctx, r: f}, fi.Size()+1)); err != nil {
		return "", fmt.Errorf("hash %s: %w", d.path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (d *fileData) entries() (ref.Val, error) {
	fi, err := d.info()
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("entries of %s: not a directory", d.path)
	}
	names, err := d.s.readDirNames(d.resolved())
	if err != nil {
		return nil, err
	}
	return types.NewStringList(types.DefaultTypeAdapter, names), nil
}

// readDirNames lists a resolved directory of the view, sorted, bounded by MaxDirEntries.
func (s *session) readDirNames(dir string) ([]string, error) {
	s.view.rec.add(readList, dir)
	fsys, name, _ := s.view.locate(dir)
	ents, err := fsys.ReadDir(name)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, unwrapPathError(err))
	}
	if len(ents) > s.lim.MaxDirEntries {
		return nil, fmt.Errorf("list %s: %d entries, more than the bound of %d", dir, len(ents), s.lim.MaxDirEntries)
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	sort.Strings(names)
	return names, nil
}

// fileType is the CEL type rootscan.File: the fields a control may ask about a path.
func fileType() *objectType {
	t := newObjectType("rootscan.File")
	addFileKindFields(t)
	addFileModeFields(t)
	addFileContentFields(t)
	return t
}

// asFile is the fileData behind a rootscan.File value.
func asFile(v any) *fileData { return v.(*fileData) }

// infoField is a field computed from the file's FileInfo (the link's own with no_follow, the target's otherwise).
func infoField(f func(d *fileData, fi fs.FileInfo) ref.Val) func(v any) (ref.Val, error) {
	return func(v any) (ref.Val, error) {
		fi, err := asFile(v).info()
		if err != nil {
			return nil, err
		}
		return f(asFile(v), fi), nil
	}
}

// modeField is a boolean field computed from the file's permission bits.
func modeField(f func(m int64) bool) func(v any) (ref.Val, error) {
	return func(v any) (ref.Val, error) {
		m, err := asFile(v).modeBits()
		if err != nil {
			return nil, err
		}
		return types.Bool(f(m)), nil
	}
}

// addFileKindFields adds what the path is: whether it exists, its type, where a link leads.
func addFileKindFields(t *objectType) {
	t.field("path", types.StringType, func(v any) (ref.Val, error) { return types.String(asFile(v).path), nil })
	t.field("exists", types.BoolType, func(v any) (ref.Val, error) {
		d := asFile(v)
		if d.failure() != nil {
			return nil, d.failure()
		}
		if d.noFollow() {
			return types.True, nil
		}
		return types.Bool(d.st() != nil), nil
	})
	// The type names as CEL values, made once: a check like f.type == "file" over files("/") asks for every entry.
	typeVals := map[string]ref.Val{}
	for _, n := range []string{"", "file", "directory", "symlink", "pipe", "socket", "character_device", "block_device", "other"} {
		typeVals[n] = types.String(n)
	}
	t.field("type", types.StringType, func(v any) (ref.Val, error) {
		d := asFile(v)
		if d.failure() != nil {
			return nil, d.failure()
		}
		if d.lst() == nil {
			return typeVals[""], nil
		}
		return typeVals[typeName(d.lst().Mode())], nil
	})
	isType := func(want string) func(v any) (ref.Val, error) {
		return func(v any) (ref.Val, error) {
			d := asFile(v)
			if d.failure() != nil {
				return nil, d.failure()
			}
			fi := d.st()
			if d.noFollow() {
				fi = d.lst()
			}
			return types.Bool(fi != nil && typeName(fi.Mode()) == want), nil
		}
	}
	t.field("is_file", types.BoolType, isType("file"))
	t.field("is_directory", types.BoolType, isType("directory"))
	t.field("is_symlink", types.BoolType, func(v any) (ref.Val, error) {
		d := asFile(v)
		return types.Bool(d.lst() != nil && d.lst().Mode()&fs.ModeSymlink != 0), d.failure()
	})
	t.field("link_target", types.StringType, func(v any) (ref.Val, error) {
		d := asFile(v)
		if d.lst() == nil || d.lst().Mode()&fs.ModeSymlink == 0 {
			return types.String(""), d.failure()
		}
		target, err := d.s.view.readLink(d.lpath())
		if err != nil {
			return nil, fmt.Errorf("readlink %s: %w", d.path, unwrapPathError(err))
		}
		return types.String(target), nil
	})
	t.field("resolved_path", types.StringType, func(v any) (ref.Val, error) {
		d := asFile(v)
		if d.noFollow() {
			res, err := d.s.view.resolve(d.path, true)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
			return types.String(res), nil
		}
		return types.String(d.resolved()), d.failure()
	})
}

// addFileModeFields adds the permission bits, owner and size.
func addFileModeFields(t *objectType) {
	t.field("mode", types.IntType, func(v any) (ref.Val, error) {
		m, err := asFile(v).modeBits()
		return types.Int(m), err
	})
	t.field("mode_octal", types.StringType, func(v any) (ref.Val, error) {
		m, err := asFile(v).modeBits()
		return types.String(fmt.Sprintf("%04o", m)), err
	})
	t.field("uid", types.IntType, infoField(func(_ *fileData, fi fs.FileInfo) ref.Val { u, _ := ids(fi); return types.Int(u) }))
	t.field("gid", types.IntType, infoField(func(_ *fileData, fi fs.FileInfo) ref.Val { _, g := ids(fi); return types.Int(g) }))
	t.field("owner", types.StringType, func(v any) (ref.Val, error) {
		fi, err := asFile(v).info()
		if err != nil {
			return nil, err
		}
		u, _ := ids(fi)
		return types.String(asFile(v).s.userName(u)), nil
	})
	t.field("group", types.StringType, func(v any) (ref.Val, error) {
		fi, err := asFile(v).info()
		if err != nil {
			return nil, err
		}
		_, g := ids(fi)
		return types.String(asFile(v).s.groupName(g)), nil
	})
	t.field("size", types.IntType, infoField(func(_ *fileData, fi fs.FileInfo) ref.Val { return types.Int(fi.Size()) }))
	t.field("setuid", types.BoolType, modeField(func(m int64) bool { return m&0o4000 != 0 }))
	t.field("setgid", types.BoolType, modeField(func(m int64) bool { return m&0o2000 != 0 }))
	t.field("sticky", types.BoolType, modeField(func(m int64) bool { return m&0o1000 != 0 }))
	t.field("world_writable", types.BoolType, modeField(func(m int64) bool { return m&0o002 != 0 }))
	t.field("world_readable", types.BoolType, modeField(func(m int64) bool { return m&0o004 != 0 }))
	t.field("group_writable", types.BoolType, modeField(func(m int64) bool { return m&0o020 != 0 }))
	t.field("executable", types.BoolType, modeField(func(m int64) bool { return m&0o111 != 0 }))
}

// addFileContentFields adds what reading the file or directory gives.
func addFileContentFields(t *objectType) {
	t.field("content", types.StringType, func(v any) (ref.Val, error) {
		c, err := asFile(v).content()
		return types.String(c), err
	})
	t.field("sha256", types.StringType, func(v any) (ref.Val, error) {
		h, err := asFile(v).sha256()
		return types.String(h), err
	})
	t.field("entries", types.NewListType(types.StringType), func(v any) (ref.Val, error) { return asFile(v).entries() })
}

// glob expands an absolute pattern whose elements are path.Match patterns or "**" (any number of directories,
// links not followed), in the container's view. It fails rather than truncates past MaxGlobResults, and "**"
// descends at most MaxGlobDepth levels.
func (s *session) glob(pattern string) ([]string, error) {
	pattern = cleanPath(pattern)
	elems := strings.Split(strings.TrimPrefix(pattern, "/"), "/")
	for _, e := range elems {
		if _, err := path.Match(e, ""); err != nil {
			return nil, fmt.Errorf("glob %q: %w", pattern, err)
		}
	}
	if pattern == "/" {
		return []string{"/"}, nil
	}
	seen := map[string]bool{}
	var out []string
	tooDeep := fmt.Errorf("glob %q: deeper than %d directories", pattern, s.lim.MaxGlobDepth)
	var visit func(dir string, rest []string, depth int) error
	visit = func(dir string, rest []string, depth int) error {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		if len(rest) == 0 {
			if !seen[dir] {
				seen[dir] = true
				out = append(out, dir)
				if len(out) > s.lim.MaxGlobResults {
					return fmt.Errorf("glob %q: more than %d matches", pattern, s.lim.MaxGlobResults)
				}
			}
			return nil
		}
		elem := rest[0]
		if elem == "**" {
			if depth > s.lim.MaxGlobDepth {
				return tooDeep
			}
			if done, err := s.globTree(dir, rest[1:], depth, visit, tooDeep); done {
				return err
			}
			if err := visit(dir, rest[1:], depth); err != nil {
				return err
			}
			names, ok := s.globList(dir)
			for _, n := range names {
				child := path.Join(dir, n)
				if fi, err := s.view.lstat(child); ok && err == nil && fi.IsDir() {
					if err := visit(child, rest, depth+1); err != nil {
						return err
					}
				}
			}
			return nil
		}
		if !hasMeta(elem) {
			child := path.Join(dir, elem)
			if _, err := s.view.lstat(child); err != nil {
				return nil
			}
			return s.globDescend(child, rest[1:], depth, visit)
		}
		names, _ := s.globList(dir)
		for _, n := range names {
			if ok, _ := path.Match(elem, n); ok {
				if err := s.globDescend(path.Join(dir, n), rest[1:], depth, visit); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := visit("/", elems, 0); err != nil {
		return nil, err
	}
	sort.Strings(out)
	return out, nil
}

// globTree expands "**" at dir with the root's walk (fsaccess.WalkFS) when it can: dir resolves into the root (not a
// volume) and no volume is mounted at or below it. On a Root the walk opens each directory once and takes the
// directories from the listing's types (links are not followed, as "**" requires), where the recursion in glob
// resolves and lstats every name from the top. Each directory, dir itself included, continues with rest in the
// walk's order, which is the recursion's: the directory, then its subdirectories by name. done is false when the
// walk does not apply and the caller should recurse itself.
func (s *session) globTree(dir string, rest []string, depth int, visit func(string, []string, int) error, tooDeep error) (done bool, err error) {
	res, err := s.view.resolve(dir, true)
	if err != nil {
		return false, nil
	}
	if _, _, vol := s.view.locate(res); vol != nil || s.view.leadsToVolume(res) {
		return false, nil
	}
	fi, err := s.view.lstat(res)
	if err != nil || !fi.IsDir() {
		return false, nil
	}
	s.view.rec.add(readTree, res)
	start := strings.TrimPrefix(res, "/")
	if start == "" {
		start = "."
	}
	// A directory past the walk's depth bound is past MaxGlobDepth; the check below covers a start already at it.
	opts := fsaccess.WalkOptions{MaxDepth: max(s.lim.MaxGlobDepth-depth, 1)}
	err = fsaccess.WalkFS(s.ctx, s.view.root, start, opts, func(name string, d fs.DirEntry, err error) error {
		if le := (*fsaccess.WalkLimitError)(nil); errors.As(err, &le) && le.Depth {
			return tooDeep
		}
		if err != nil || !d.IsDir() {
			return nil // unreadable directories match nothing, like a shell's glob
		}
		if err := s.ctx.Err(); err != nil {
			return err
		}
		rel, level := "", 0
		if name != start {
			rel = strings.TrimPrefix(name, start+"/")
			if start == "." {
				rel = name
			}
			level = strings.Count(rel, "/") + 1
		}
		if depth+level > s.lim.MaxGlobDepth {
			return tooDeep
		}
		return visit(path.Join(dir, rel), rest, depth+level)
	})
	return true, err
}

// globDescend continues a glob below child, through a link to a directory as a shell does.
func (s *session) globDescend(child string, rest []string, depth int, visit func(string, []string, int) error) error {
	if len(rest) == 0 {
		return visit(child, nil, depth)
	}
	res, err := s.view.resolve(child, true)
	if err != nil {
		return nil
	}
	if fi, err := s.view.lstat(res); err != nil || !fi.IsDir() {
		return nil
	}
	// Keep the path as named (not the link's target), as a shell's glob prints it.
	return visit(child, rest, depth)
}

// globList lists a directory for glob; unreadable directories match nothing, like a shell's glob.
func (s *session) globList(dir string) ([]string, bool) {
	res, err := s.view.resolve(dir, true)
	if err != nil {
		return nil, false
	}
	names, err := s.readDirNames(res)
	if err != nil {
		return nil, false
	}
	return names, true
}

func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// files lists every entry at or below dir (the walk is shared), links not followed.
func (s *session) files(dir string) ([]*fileData, error) {
	dir = cleanPath(dir)
	all, err := s.tree()
	if err != nil {
		return nil, err
	}
	if dir == "/" {
		return all, nil
	}
	prefix := dir + "/"
	var out []*fileData
	for _, f := range all {
		if f.path == dir || strings.HasPrefix(f.path, prefix) {
			out = append(out, f)
		}
	}
	return out, nil
}

// whichDirs are where which() looks when the image sets no PATH: Debian's default for root.
var whichDirs = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// which finds name the way a shell would: each directory of the image's PATH (or the default), keeping the
// executable regular files (links followed). Different paths to the same file (/bin being a link to /usr/bin)
// are each reported.
func (s *session) which(name string) []string {
	if name == "" || strings.Contains(name, "/") {
		return nil
	}
	dirs := whichDirs
	if cfg := s.config(); cfg != nil {
		for _, e := range cfg.Env {
			if v, ok := strings.CutPrefix(e, "PATH="); ok && v != "" {
				dirs = append(strings.Split(v, ":"), whichDirs...)
			}
		}
	}
	seen := map[string]bool{}
	var out []string
	for _, d := range dirs {
		if d == "" || !strings.HasPrefix(d, "/") {
			continue
		}
		p := cleanPath(d + "/" + name)
		if seen[p] {
			continue
		}
		seen[p] = true
		fd := s.statFile(p)
		if fd.failure() == nil && fd.st() != nil && fd.st().Mode().IsRegular() && fd.st().Mode().Perm()&0o111 != 0 {
			out = append(out, p)
		}
	}
	return out
}
