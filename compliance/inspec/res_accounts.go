package inspec

import (
	"strconv"
	"strings"

	"github.com/rootscan/rootscan/compliance"
)

// The account resources read the container's etc/passwd, etc/shadow and etc/group through the shared target,
// which parses each once per target.

func (ev *evaluator) accounts() ([]compliance.User, []compliance.Group, error) {
	us, err := ev.t.Users()
	if err != nil {
		return nil, nil, rbErr("Inspec::Exceptions::ResourceFailed", "%v", err)
	}
	gs, err := ev.t.Groups()
	if err != nil {
		return nil, nil, rbErr("Inspec::Exceptions::ResourceFailed", "%v", err)
	}
	return us, gs, nil
}

func newPasswd(ev *evaluator, _ []any) (any, error) {
	us, _, err := ev.accounts()
	if err != nil {
		return nil, err
	}
	t := &tableRes{name: "/etc/passwd", cols: cols("users", "user", "passwords", "password", "uids", "uid", "gids", "gid",
		"descs", "desc", "homes", "home", "shells", "shell", "usernames", "user")}
	for _, u := range us {
		pw := u.Password
		if pw != "x" && pw != "" && !strings.HasPrefix(pw, "!") && !strings.HasPrefix(pw, "*") {
			pw = "x" // passwd says x; the hash came from shadow
		}
		t.rows = append(t.rows, row("user", u.Name, "password", pw, "uid", strconv.FormatInt(u.UID, 10),
			"gid", strconv.FormatInt(u.GID, 10), "desc", u.Gecos, "home", u.Home, "shell", u.Shell))
	}
	return t, nil
}

// shadowRows parses etc/shadow's nine fields; empty fields are nil, as InSpec gives them.
func (ev *evaluator) shadowRows() ([]*hash, error) {
	v, err := ev.readConfig("/etc/shadow")
	if err != nil {
		return nil, rbErr("Inspec::Exceptions::ResourceFailed", "%v", err)
	}
	s, ok := v.(string)
	if !ok {
		return nil, skipf("Can't find file: /etc/shadow") // InSpec's FileReader skips the resource
	}
	var rows []*hash
	names := []string{"user", "password", "last_change", "min_days", "max_days", "warn_days", "inactive_days", "expiry_date", "reserved"}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		r := newHash()
		for i, n := range names {
			var val any
			if i < len(f) && f[i] != "" {
				val = f[i]
			}
			r.set(n, val)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func newShadow(ev *evaluator, _ []any) (any, error) {
	rows, err := ev.shadowRows()
	if err != nil {
		return nil, err
	}
	return &tableRes{name: "/etc/shadow", rows: rows, cols: cols("users", "user", "passwords", "password",
		"last_changes", "last_change", "min_days", "min_days", "max_days", "max_days", "warn_days", "warn_days",
		"inactive_days", "inactive_days", "expiry_dates", "expiry_date")}, nil
}

func newEtcGroup(ev *evaluator, _ []any) (any, error) {
	_, gs, err := ev.accounts()
	if err != nil {
		return nil, err
	}
	t := &tableRes{name: "/etc/group", cols: cols("groups", "name", "names", "name", "gids", "gid", "users", "members"),
		flat: map[string]bool{"users": true}}
	for _, g := range gs {
		t.rows = append(t.rows, row("name", g.Name, "gid", g.GID, "members", newArray(strsToAny(g.Members, false))))
	}
	return t, nil
}

func newGroups(ev *evaluator, args []any) (any, error) {
	v, err := newEtcGroup(ev, args)
	if err != nil {
		return nil, err
	}
	t := v.(*tableRes)
	t.name = "Groups"
	return t, nil
}

// userRows joins passwd, group and shadow into the users table's rows.
func (ev *evaluator) userRows() ([]*hash, error) {
	us, gs, err := ev.accounts()
	if err != nil {
		return nil, err
	}
	shadow, _ := ev.shadowRows()
	byName := map[string]*hash{}
	for _, r := range shadow {
		n, _ := r.get("user")
		byName[toS(n)] = r
	}
	var rows []*hash
	for _, u := range us {
		primary := ""
		groups := []any{}
		for _, g := range gs {
			if g.GID == u.GID {
				primary = g.Name
				groups = append(groups, g.Name)
			}
		}
		for _, g := range gs {
			if g.GID != u.GID && contains(strsToAny(g.Members, false), u.Name) {
				groups = append(groups, g.Name)
			}
		}
		r := row("username", u.Name, "uid", u.UID, "gid", u.GID, "groupname", nilIfEmpty(primary),
			"groups", newArray(groups), "home", u.Home, "shell", u.Shell)
		for _, f := range [][2]string{{"mindays", "min_days"}, {"maxdays", "max_days"}, {"warndays", "warn_days"}} {
			var v any
			if s, ok := byName[u.Name]; ok {
				if x, _ := s.get(f[1]); x != nil {
					v = leadingInt(toS(x), 10)
				}
			}
			r.set(f[0], v)
		}
		pw, _ := byName[u.Name].getOr("password")
		r.set("encrypted_password", pw)
		rows = append(rows, r)
	}
	return rows, nil
}

func (h *hash) getOr(k any) (any, bool) {
	if h == nil {
		return nil, false
	}
	return h.get(k)
}

func newUsers(ev *evaluator, _ []any) (any, error) {
	rows, err := ev.userRows()
	if err != nil {
		return nil, err
	}
	return &tableRes{name: "Users", rows: rows, cols: cols("usernames", "username", "uids", "uid", "gids", "gid",
		"groupnames", "groupname", "groups", "groups", "homes", "home", "shells", "shell", "mindays", "mindays",
		"maxdays", "maxdays", "warndays", "warndays")}, nil
}

// accountRes is user(name) and group(name): one row, or none when the account does not exist.
type accountRes struct {
	kind, name string
	r          *hash
}

func (a *accountRes) String() string { return a.kind + " " + a.name }

func (a *accountRes) method(_ *evaluator, name string, args []any, _ *proc) (any, bool, error) {
	switch name {
	case "exist?", "exists?":
		return a.r != nil, true, nil
	case "has_user?":
		m, _ := a.r.getOr("members")
		arr, _ := m.(*array)
		return arr != nil && contains(arr.v, argOr(args, 0)), true, nil
	case "group":
		v, _ := a.r.getOr("groupname")
		return v, true, nil
	case "passwordage", "lastlogin", "badpasswordattempts", "has_authorized_key?":
		return nil, true, skipf("%s(%q).%s is not read from the filesystem", strings.ToLower(a.kind), a.name, name)
	case "members_array":
		v, _ := a.r.getOr("members")
		return v, true, nil
	}
	if a.r == nil {
		return nil, true, nil
	}
	if v, ok := a.r.get(name); ok {
		return v, true, nil
	}
	return nil, false, nil
}

func newUser(ev *evaluator, args []any) (any, error) {
	n, _ := strArg(args, 0)
	rows, err := ev.userRows()
	if err != nil {
		return nil, err
	}
	a := &accountRes{kind: "User", name: n}
	for _, r := range rows {
		if v, _ := r.get("username"); v == n {
			a.r = r
			break
		}
	}
	return a, nil
}

func newGroup(ev *evaluator, args []any) (any, error) {
	n, _ := strArg(args, 0)
	_, gs, err := ev.accounts()
	if err != nil {
		return nil, err
	}
	a := &accountRes{kind: "Group", name: n}
	for _, g := range gs {
		if g.Name == n {
			a.r = row("name", g.Name, "gid", g.GID, "members", newArray(strsToAny(g.Members, false)))
			break
		}
	}
	return a, nil
}
