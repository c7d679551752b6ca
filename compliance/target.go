package compliance

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"

	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// Target is one target's filesystem and facts as another rule engine (the InSpec evaluator) sees them. It wraps
// the session the CEL engine uses, so both engines resolve paths in the same container view (volumes over the
// root, links resolved inside it), read through the same bounds and share what was already parsed (etc/passwd
// once per target). A Target is not safe for concurrent use: one evaluation goroutine owns it.
type Target struct {
	s *session
}

// NewTarget opens the view of fsys (the container's root) with its volumes. res gives the inventory (Packages,
// OS) and is only read.
func NewTarget(ctx context.Context, fsys scan.FS, t report.Target, vols []Volume, res *report.Result, lim Limits, log *slog.Logger) *Target {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Target{s: &session{ctx: ctx, view: newView(fsys, vols), tgt: t, res: res, lim: lim.withDefaults(), log: log}}
}

// Context is the evaluation's context.
func (t *Target) Context() context.Context { return t.s.ctx }

// Info is the target as the report names it (kind, image config, security context, mounts). It is recorded as a
// read of every container fact, so a result that used it is never reused for a container with other facts.
func (t *Target) Info() report.Target {
	t.s.config()
	t.s.security()
	t.s.mounts()
	return t.s.tgt
}

// Result is the inventory the analyzers found (nil when none ran).
func (t *Target) Result() *report.Result { return t.s.inventory() }

// Limits are the bounds in force, defaults filled in.
func (t *Target) Limits() Limits { return t.s.lim }

// FileStat is what a path resolves to in the container's view.
type FileStat struct {
	// Path is the path as named, clean and absolute.
	Path string
	// Exists says the path exists after following links (a dangling link does not exist, as in InSpec).
	Exists bool
	// Type is the type after following links: file, directory, symlink (only for a dangling link or with
	// Lstat), pipe, socket, character_device, block_device, other; "" when missing.
	Type string
	// Symlink says the path itself is a link; LinkTarget is the link's text, Resolved the path with every
	// link followed.
	Symlink    bool
	LinkTarget string
	Resolved   string
	// Mode is st_mode & 07777 of the link's target; 0 for a link itself.
	Mode int64
	// UID and GID are -1 when the FS does not give owners; Owner and Group are the container's names for them
	// ("" when its passwd or group does not name them).
	UID, GID     int64
	Owner, Group string
	Size         int64
}

// Stat describes p with links followed (InSpec's file resource); Lstat describes p itself. An error is a
// failure other than "does not exist" (a link loop, permission denied).
func (t *Target) Stat(p string) (FileStat, error) { return t.stat(p, true) }

// Lstat is Stat without following a final link.
func (t *Target) Lstat(p string) (FileStat, error) { return t.stat(p, false) }

func (t *Target) stat(p string, follow bool) (FileStat, error) {
	d := t.s.statFile(p)
	st := FileStat{Path: d.path, UID: -1, GID: -1, Resolved: d.resolved()}
	if err := d.failure(); err != nil {
		return st, err
	}
	lst := d.lst()
	if lst == nil {
		return st, nil
	}
	st.Symlink = lst.Mode()&fs.ModeSymlink != 0
	if st.Symlink {
		target, err := t.s.view.readLink(d.lpath())
		if err != nil {
			return st, fmt.Errorf("readlink %s: %w", d.path, unwrapPathError(err))
		}
		st.LinkTarget = target
	}
	fi := d.st()
	if !follow {
		fi = lst
	}
	if fi == nil {
		st.Type = "symlink" // dangling: the link itself is all there is
		return st, nil
	}
	st.Exists = follow || d.st() != nil
	st.Type = typeName(fi.Mode())
	if fi.Mode()&fs.ModeSymlink == 0 {
		st.Mode = unixMode(fi.Mode())
	}
	st.UID, st.GID = ids(fi)
	if st.UID >= 0 {
		st.Owner, st.Group = t.s.userName(st.UID), t.s.groupName(st.GID)
	}
	st.Size = fi.Size()
	return st, nil
}

// ReadFile reads p (links followed), bounded by MaxContentBytes.
func (t *Target) ReadFile(p string) (string, error) {
	return t.s.statFile(p).content()
}

// SHA256 hashes p (links followed) in hex, bounded by MaxHashBytes.
func (t *Target) SHA256(p string) (string, error) {
	return t.s.statFile(p).sha256()
}

// ReadDir lists the directory p (links followed), names sorted, bounded by MaxDirEntries.
func (t *Target) ReadDir(p string) ([]string, error) {
	d := t.s.statFile(p)
	fi, err := d.info()
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("list %s: not a directory", d.path)
	}
	return t.s.readDirNames(d.resolved())
}

// Glob expands an absolute pattern ("*", "?", "[...]" per element, "**" for any depth) in the view.
func (t *Target) Glob(pattern string) ([]string, error) { return t.s.glob(pattern) }

// Which finds the executables named name on the image's PATH (Debian's default when it sets none).
func (t *Target) Which(name string) []string { return t.s.which(name) }

// Users are the accounts of etc/passwd, with etc/shadow's password fields.
func (t *Target) Users() ([]User, error) { return t.s.users() }

// Groups are the groups of etc/group.
func (t *Target) Groups() ([]Group, error) { return t.s.groups() }

// Packages are the inventory's packages (none when no analyzer ran).
func (t *Target) Packages() []report.Package {
	res := t.s.inventory()
	if res == nil {
		return nil
	}
	return res.Packages
}

// OS is the operating system the analyzers found (nil when unknown).
func (t *Target) OS() *report.OS {
	res := t.s.inventory()
	if res == nil {
		return nil
	}
	return res.OS
}

// ErrNoFile is returned by Config for a missing file.
var ErrNoFile = errors.New("file does not exist")

// Config reads p and parses it in one of the formats of parse_config (FormatKeyValue, FormatSSHD, ...), with
// sshd's Include directives read from the container. The value is made of map[string]any, []any and strings.
func (t *Target) Config(p, format string) (any, error) {
	if !isFormatKnown(format) {
		return nil, fmt.Errorf("config format %q is not known", format)
	}
	d := t.s.statFile(p)
	if d.failure() == nil && d.st() == nil {
		return nil, fmt.Errorf("%s: %w", d.path, ErrNoFile)
	}
	text, err := d.content()
	if err != nil {
		return nil, err
	}
	if format == FormatSSHD {
		v, err := parseSSHD([]byte(text), t.s.sshdInclude())
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", d.path, err)
		}
		return v, nil
	}
	v, err := ParseConfig([]byte(text), format)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", d.path, err)
	}
	return v, nil
}

// TreeEntry is one entry of the walk files() shares, with its Lstat facts (links are not followed).
type TreeEntry struct {
	Path, Type string
	// Mode is st_mode & 07777 (0 for a link); UID and GID are -1 when the FS does not give owners, Owner and Group
	// the container's names for them ("" when its passwd or group does not name them).
	Mode, UID, GID, Size int64
	Owner, Group         string
}

// Tree lists dir and the entries under it from the walk files() shares: bounded by MaxEntries (past it, an error)
// and MaxDepth (deep names the directories under dir left out for depth), /proc, /sys, /dev and volumes not walked.
func (t *Target) Tree(dir string) (entries []TreeEntry, deep []string, err error) {
	// The listing comes from the walk of the whole root, which any change to a container's layer can alter.
	t.s.view.rec.addFact(factWalk)
	fds, err := t.s.files(dir)
	if err != nil {
		return nil, nil, err
	}
	dir = cleanPath(dir)
	if t.s.cutReaches(dir) {
		// A partial listing must not answer a search as if it were whole (a find for setuid files would pass).
		return nil, nil, fmt.Errorf("listing %s: stopped at its bound of %d bytes at %s", dir, t.s.lim.MaxTreeBytes, shortPath(t.s.treeCut))
	}
	for _, p := range t.s.treeDeep {
		if dir == "/" || p == dir || strings.HasPrefix(p, dir+"/") {
			deep = append(deep, p)
		}
	}
	entries = make([]TreeEntry, 0, len(fds))
	for _, f := range fds {
		fi := (*treeInfo)(f)
		e := TreeEntry{Path: f.path, Type: typeName(fi.Mode()), Size: fi.Size()}
		if fi.Mode()&fs.ModeSymlink == 0 {
			e.Mode = unixMode(fi.Mode())
		}
		e.UID, e.GID = ids(fi)
		if e.UID >= 0 {
			e.Owner, e.Group = t.s.userName(e.UID), t.s.groupName(e.GID)
		}
		entries = append(entries, e)
	}
	return entries, deep, nil
}
