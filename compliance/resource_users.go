package compliance

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// User is one account of etc/passwd, with its etc/shadow password field when the image has one.
type User struct {
	Name, Gecos, Home, Shell string
	UID, GID                 int64
	// Password is the shadow hash field when etc/shadow lists the user, else passwd's ("x" means: see shadow).
	Password string
}

// HasPassword says whether the account can log in with a password: not empty-locked ("!", "*", "!!...").
// An empty field means no password is needed at all, which counts as having one (the worse case).
func (u User) HasPassword() bool {
	return !strings.HasPrefix(u.Password, "!") && !strings.HasPrefix(u.Password, "*") && u.Password != "x"
}

// Group is one group of etc/group.
type Group struct {
	Name    string
	GID     int64
	Members []string
}

// ParsePasswd parses etc/passwd. Blank and # lines are skipped; a line without seven fields or with a non-numeric
// id is an error (a scanner must not guess who uid 0 is).
func ParsePasswd(data []byte) ([]User, error) {
	var out []User
	err := colonRecords(data, "passwd", 7, func(n int, f []string) error {
		uid, err1 := strconv.ParseInt(f[2], 10, 64)
		gid, err2 := strconv.ParseInt(f[3], 10, 64)
		if err := errors.Join(err1, err2); err != nil || uid < 0 || gid < 0 {
			return fmt.Errorf("passwd line %d: bad uid or gid %q:%q", n, f[2], f[3])
		}
		out = append(out, User{Name: f[0], Password: f[1], UID: uid, GID: gid, Gecos: f[4], Home: f[5], Shell: f[6]})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ParseGroup parses etc/group ("name:x:gid:member,member").
func ParseGroup(data []byte) ([]Group, error) {
	var out []Group
	err := colonRecords(data, "group", 4, func(n int, f []string) error {
		gid, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil || gid < 0 {
			return fmt.Errorf("group line %d: bad gid %q", n, f[2])
		}
		g := Group{Name: f[0], GID: gid, Members: []string{}}
		if f[3] != "" {
			g.Members = strings.Split(f[3], ",")
		}
		out = append(out, g)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// colonRecords calls fn with each record of a colon-separated account file and its line number. Blank and #
// lines are skipped; a record without exactly want fields is an error, as is any error of fn: the first one stops
// the parse, and the callers return no records then, so a damaged file never yields half an account list.
func colonRecords(data []byte, kind string, want int, fn func(n int, f []string) error) error {
	n := 0
	for line := range strings.Lines(string(data)) {
		n++
		line = strings.TrimRight(line, "\r\n")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != want {
			return fmt.Errorf("%s line %d: %d fields, want %d", kind, n, len(f), want)
		}
		if err := fn(n, f); err != nil {
			return err
		}
	}
	return nil
}

// parseShadow maps user names to their shadow password field; malformed lines are skipped (the field is only
// ever used to say "locked" or not, and passwd already named the users).
func parseShadow(data []byte) map[string]string {
	out := map[string]string{}
	for line := range strings.Lines(string(data)) {
		f := strings.Split(strings.TrimRight(line, "\r\n"), ":")
		if len(f) >= 2 && f[0] != "" {
			out[f[0]] = f[1]
		}
	}
	return out
}

// readEtc reads one of the account files through the view; a missing file is no accounts, not an error.
func (s *session) readEtc(p string) ([]byte, error) {
	res, err := s.view.resolve(p, true)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	b, err := s.view.readFile(res, s.lim.MaxConfigBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

func (s *session) users() ([]User, error) {
	if s.usersDone {
		s.view.rec.replay(s.usersReads)
		return s.usersData, s.usersErr
	}
	s.usersDone = true
	m := s.view.rec.mark()
	defer func() { s.usersReads = s.view.rec.since(m) }()
	b, err := s.readEtc("/etc/passwd")
	if err == nil {
		s.usersData, err = ParsePasswd(b)
	}
	if err != nil {
		s.usersErr = fmt.Errorf("users: %w", err)
		return nil, s.usersErr
	}
	if sh, err := s.readEtc("/etc/shadow"); err == nil && sh != nil {
		pw := parseShadow(sh)
		for i := range s.usersData {
			if p, ok := pw[s.usersData[i].Name]; ok {
				s.usersData[i].Password = p
			}
		}
	}
	return s.usersData, nil
}

func (s *session) groups() ([]Group, error) {
	if s.groupsDone {
		s.view.rec.replay(s.groupsReads)
		return s.groupsData, s.groupsErr
	}
	s.groupsDone = true
	m := s.view.rec.mark()
	defer func() { s.groupsReads = s.view.rec.since(m) }()
	b, err := s.readEtc("/etc/group")
	if err == nil {
		s.groupsData, err = ParseGroup(b)
	}
	if err != nil {
		s.groupsErr = fmt.Errorf("groups: %w", err)
	}
	return s.groupsData, s.groupsErr
}

// userName is the passwd name of uid, or "" when the image does not name it.
func (s *session) userName(uid int64) string {
	us, _ := s.users()
	for _, u := range us {
		if u.UID == uid {
			return u.Name
		}
	}
	return ""
}

func (s *session) groupName(gid int64) string {
	gs, _ := s.groups()
	for _, g := range gs {
		if g.GID == gid {
			return g.Name
		}
	}
	return ""
}

func userType() *objectType {
	u := func(v any) User { return v.(User) }
	str := func(f func(User) string) func(any) (ref.Val, error) {
		return func(v any) (ref.Val, error) { return types.String(f(u(v))), nil }
	}
	return newObjectType("rootscan.User").
		field("name", types.StringType, str(func(x User) string { return x.Name })).
		field("uid", types.IntType, func(v any) (ref.Val, error) { return types.Int(u(v).UID), nil }).
		field("gid", types.IntType, func(v any) (ref.Val, error) { return types.Int(u(v).GID), nil }).
		field("gecos", types.StringType, str(func(x User) string { return x.Gecos })).
		field("home", types.StringType, str(func(x User) string { return x.Home })).
		field("shell", types.StringType, str(func(x User) string { return x.Shell })).
		field("password", types.StringType, str(func(x User) string { return x.Password })).
		field("has_password", types.BoolType, func(v any) (ref.Val, error) { return types.Bool(u(v).HasPassword()), nil })
}

func groupType() *objectType {
	g := func(v any) Group { return v.(Group) }
	return newObjectType("rootscan.Group").
		field("name", types.StringType, func(v any) (ref.Val, error) { return types.String(g(v).Name), nil }).
		field("gid", types.IntType, func(v any) (ref.Val, error) { return types.Int(g(v).GID), nil }).
		field("members", types.NewListType(types.StringType), func(v any) (ref.Val, error) {
			return types.NewStringList(types.DefaultTypeAdapter, g(v).Members), nil
		})
}
