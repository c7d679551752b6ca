package inspec

import (
	"crypto/md5" //nolint:gosec // InSpec's md5sum, a file fingerprint profiles compare, not a security use
	"encoding/hex"
	"path"
	"strconv"
	"strings"

	"github.com/rootscan/rootscan/compliance"
)

// fileRes is InSpec's file and directory resource, with its semantics: links are followed for what the file
// is (type, mode, owner, content), mode is st_mode & 07777, owner and group are names from the container's
// passwd and group, a missing file answers nil to its attributes.
type fileRes struct {
	kind string // "File" or "Directory"
	st   compliance.FileStat
	err  error
}

func newFileResource(ev *evaluator, args []any) (any, error) { return statResource(ev, "File", args) }

func newDirectoryResource(ev *evaluator, args []any) (any, error) {
	return statResource(ev, "Directory", args)
}

func statResource(ev *evaluator, kind string, args []any) (any, error) {
	p, ok := strArg(args, 0)
	if !ok {
		return nil, rbErr("ArgumentError", "%s needs a path", strings.ToLower(kind))
	}
	st, err := ev.t.Stat(p)
	st.Path = p
	return &fileRes{kind: kind, st: st, err: err}, nil
}

func (f *fileRes) String() string { return f.kind + " " + f.st.Path }

func (f *fileRes) method(ev *evaluator, name string, args []any, _ *proc) (any, bool, error) {
	if f.err != nil && name != "path" {
		// A link loop or an unreadable directory: InSpec's stat fails the same way.
		return nil, true, rbErr("Inspec::Exceptions::ResourceFailed", "%s: %v", f.String(), f.err)
	}
	if v, ok := f.kindMethod(name); ok {
		return v, true, nil
	}
	if v, ok, err := f.permMethod(name, args); ok {
		return v, true, err
	}
	return f.contentMethod(ev, name, args)
}

// kindMethod answers what the path is.
func (f *fileRes) kindMethod(name string) (any, bool) {
	st := f.st
	switch name {
	case "path":
		return st.Path, true
	case "basename":
		return st.Path[strings.LastIndex(st.Path, "/")+1:], true
	case "exist?", "exists?":
		return st.Exists, true
	case "file?":
		return st.Exists && st.Type == "file", true
	case "directory?":
		return st.Exists && st.Type == "directory", true
	case "symlink?":
		return st.Symlink, true
	case "pipe?":
		return st.Type == "pipe", true
	case "socket?":
		return st.Type == "socket", true
	case "character_device?":
		return st.Type == "character_device", true
	case "block_device?":
		return st.Type == "block_device", true
	case "type":
		switch {
		case !st.Exists && !st.Symlink:
			return nil, true
		case st.Type == "other":
			return "unknown", true
		}
		return st.Type, true
	case "link_path":
		if !st.Symlink || !st.Exists {
			return nil, true
		}
		return st.Resolved, true
	case "shallow_link_path":
		if !st.Symlink {
			return nil, true
		}
		return st.LinkTarget, true
	}
	return nil, false
}

// permMethod answers mode, owner and the permission predicates.
func (f *fileRes) permMethod(name string, args []any) (any, bool, error) {
	st := f.st
	if !st.Exists {
		switch name {
		case "mode", "owner", "group", "uid", "gid", "size", "suid", "sgid", "sticky":
			return nil, true, nil
		case "readable?", "writable?", "executable?", "owned_by?", "grouped_into?", "setuid?", "setgid?", "sticky?", "more_permissive_than?":
			return false, true, nil
		}
	}
	switch name {
	case "mode":
		return st.Mode, true, nil
	case "owner", "group":
		id, n := st.UID, st.Owner
		if name == "group" {
			id, n = st.GID, st.Group
		}
		if n == "" && id >= 0 {
			return "UNKNOWN", true, nil
		}
		return nilIfEmpty(n), true, nil
	case "uid":
		return st.UID, true, nil
	case "gid":
		return st.GID, true, nil
	case "size":
		return st.Size, true, nil
	case "setuid?", "suid":
		return st.Mode&0o4000 != 0, true, nil
	case "setgid?", "sgid":
		return st.Mode&0o2000 != 0, true, nil
	case "sticky?", "sticky":
		return st.Mode&0o1000 != 0, true, nil
	case "owned_by?":
		return st.Owner != "" && st.Owner == toS(argOr(args, 0)), true, nil
	case "grouped_into?":
		return st.Group != "" && st.Group == toS(argOr(args, 0)), true, nil
	case "readable?", "writable?", "executable?":
		return f.permitted(name, args)
	case "more_permissive_than?":
		return f.morePermissive(args)
	}
	return nil, false, nil
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// permitted is readable?/writable?/executable? with InSpec's by: no class means any of owner, group and
// others has the bit.
func (f *fileRes) permitted(name string, args []any) (any, bool, error) {
	bit := map[string]int64{"readable?": 4, "writable?": 2, "executable?": 1}[name]
	if u, ok := argOr(args, 1).(string); ok && u != "" {
		return nil, true, skipf("%s by_user(%q) needs exec in the target", strings.TrimSuffix(name, "?"), u)
	}
	var mask int64
	switch who, _ := argOr(args, 0).(string); who {
	case "", "all":
		mask = bit<<6 | bit<<3 | bit
	case "owner", "user":
		mask = bit << 6
	case "group":
		mask = bit << 3
	case "other", "others":
		mask = bit
	default:
		return nil, true, rbErr("ArgumentError", "by(%q): want owner, group or others", who)
	}
	return f.st.Mode&mask != 0, true, nil
}

func (f *fileRes) morePermissive(args []any) (any, bool, error) {
	s, ok := argOr(args, 0).(string)
	if !ok || len(s) < 3 || len(s) > 4 {
		return nil, true, rbErr("ArgumentError", "more_permissive_than? needs an octal mode string such as '0644'")
	}
	max, err := strconv.ParseInt(s, 8, 64)
	if err != nil {
		return nil, true, rbErr("ArgumentError", "more_permissive_than?(%q): not an octal mode", s)
	}
	return f.st.Mode&0o777&^(max&0o777) != 0, true, nil
}

func (f *fileRes) contentMethod(ev *evaluator, name string, args []any) (any, bool, error) {
	switch name {
	case "content":
		if !f.st.Exists || f.st.Type != "file" {
			return nil, true, nil
		}
		s, err := ev.t.ReadFile(f.st.Path)
		if err != nil {
			return nil, true, rbErr("Inspec::Exceptions::ResourceFailed", "%v", err)
		}
		return s, true, nil
	case "sha256sum", "md5sum":
		if !f.st.Exists || f.st.Type != "file" {
			return nil, true, nil
		}
		if name == "sha256sum" {
			h, err := ev.t.SHA256(f.st.Path)
			if err != nil {
				return nil, true, rbErr("Inspec::Exceptions::ResourceFailed", "%v", err)
			}
			return h, true, nil
		}
		s, err := ev.t.ReadFile(f.st.Path)
		if err != nil {
			return nil, true, rbErr("Inspec::Exceptions::ResourceFailed", "%v", err)
		}
		sum := md5.Sum([]byte(s)) //nolint:gosec // see the import
		return hex.EncodeToString(sum[:]), true, nil
	case "linked_to?":
		return f.st.Symlink && f.st.Exists && f.st.Resolved == path.Clean("/"+toS(argOr(args, 0))), true, nil
	case "mounted?", "immutable?", "mtime", "selinux_label", "allowed?", "acl":
		return nil, true, skipf("file(%q).%s needs the running system", f.st.Path, name)
	case "entries", "children":
		if f.st.Type != "directory" {
			return nil, true, nil
		}
		names, err := ev.t.ReadDir(f.st.Path)
		if err != nil {
			return nil, true, rbErr("Inspec::Exceptions::ResourceFailed", "%v", err)
		}
		return newArray(strsToAny(names, false)), true, nil
	}
	return nil, false, nil
}
