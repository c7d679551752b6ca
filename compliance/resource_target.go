package compliance

import (
	"strconv"
	"strings"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"github.com/rootscan/rootscan/report"
)

// imageUID is the uid the image config's User ("name", "uid", "name:group", "uid:gid") runs as, resolved against
// the image's etc/passwd; "" is root, as runtimes default it. -1 when the name is not in etc/passwd (the runtime
// would refuse to start it).
func (s *session) imageUID() int64 {
	c := s.config()
	if c == nil {
		return -1
	}
	user, _, _ := strings.Cut(c.User, ":")
	if user == "" {
		return 0
	}
	if n, err := strconv.ParseInt(user, 10, 64); err == nil && n >= 0 {
		return n
	}
	us, _ := s.users()
	for _, u := range us {
		if u.Name == user {
			return u.UID
		}
	}
	return -1
}

// effectiveUID is the uid the container's process runs as: the security context's runAsUser when set, else the
// image's user. -1 when neither is known (a --dir target) or the image names an unknown user.
func (s *session) effectiveUID() int64 {
	if sc := s.security(); sc != nil && sc.RunAsUser != nil {
		return *sc.RunAsUser
	}
	return s.imageUID()
}

func strList(l []string) ref.Val {
	if l == nil {
		l = []string{}
	}
	return types.NewStringList(types.DefaultTypeAdapter, l)
}

func imageConfigType() *objectType {
	cfg := func(v any) *session { return v.(*session) }
	c := func(v any) report.ImageConfig {
		if p := cfg(v).config(); p != nil {
			return *p
		}
		return report.ImageConfig{}
	}
	return newObjectType("rootscan.ImageConfig").
		field("known", types.BoolType, func(v any) (ref.Val, error) { return types.Bool(cfg(v).config() != nil), nil }).
		field("user", types.StringType, func(v any) (ref.Val, error) { return types.String(c(v).User), nil }).
		field("uid", types.IntType, func(v any) (ref.Val, error) { return types.Int(cfg(v).imageUID()), nil }).
		field("env", types.NewMapType(types.StringType, types.StringType), func(v any) (ref.Val, error) {
			m := map[string]string{}
			for _, e := range c(v).Env {
				k, val, _ := strings.Cut(e, "=")
				m[k] = val
			}
			return types.NewStringStringMap(types.DefaultTypeAdapter, m), nil
		}).
		field("entrypoint", types.NewListType(types.StringType), func(v any) (ref.Val, error) { return strList(c(v).Entrypoint), nil }).
		field("cmd", types.NewListType(types.StringType), func(v any) (ref.Val, error) { return strList(c(v).Cmd), nil }).
		field("working_dir", types.StringType, func(v any) (ref.Val, error) { return types.String(c(v).WorkingDir), nil }).
		field("exposed_ports", types.NewListType(types.StringType), func(v any) (ref.Val, error) { return strList(c(v).ExposedPorts), nil }).
		field("labels", types.NewMapType(types.StringType, types.StringType), func(v any) (ref.Val, error) {
			m := c(v).Labels
			if m == nil {
				m = map[string]string{}
			}
			return types.NewStringStringMap(types.DefaultTypeAdapter, m), nil
		})
}

func securityContextType() *objectType {
	sc := func(v any) report.SecurityContext {
		if p := v.(*session).security(); p != nil {
			return *p
		}
		return report.SecurityContext{}
	}
	optInt := func(p *int64) ref.Val {
		if p == nil {
			return types.Int(-1)
		}
		return types.Int(*p)
	}
	return newObjectType("rootscan.SecurityContext").
		field("known", types.BoolType, func(v any) (ref.Val, error) { return types.Bool(v.(*session).security() != nil), nil }).
		field("run_as_user", types.IntType, func(v any) (ref.Val, error) { return optInt(sc(v).RunAsUser), nil }).
		field("run_as_group", types.IntType, func(v any) (ref.Val, error) { return optInt(sc(v).RunAsGroup), nil }).
		field("privileged", types.BoolType, func(v any) (ref.Val, error) { return types.Bool(sc(v).Privileged), nil }).
		field("read_only_root_filesystem", types.BoolType, func(v any) (ref.Val, error) {
			return types.Bool(sc(v).ReadOnlyRootFilesystem), nil
		}).
		field("capabilities_add", types.NewListType(types.StringType), func(v any) (ref.Val, error) { return strList(sc(v).CapabilitiesAdd), nil }).
		field("capabilities_drop", types.NewListType(types.StringType), func(v any) (ref.Val, error) { return strList(sc(v).CapabilitiesDrop), nil }).
		field("capabilities", types.NewListType(types.StringType), func(v any) (ref.Val, error) { return strList(sc(v).Capabilities), nil }).
		// Unset means allowed: that is Kubernetes' default unless no_new_privs is set.
		field("allow_privilege_escalation", types.BoolType, func(v any) (ref.Val, error) {
			p := sc(v).AllowPrivilegeEscalation
			return types.Bool(p == nil || *p), nil
		})
}

func packageType() *objectType {
	p := func(v any) report.Package { return v.(report.Package) }
	str := func(f func(report.Package) string) func(any) (ref.Val, error) {
		return func(v any) (ref.Val, error) { return types.String(f(p(v))), nil }
	}
	return newObjectType("rootscan.Package").
		field("name", types.StringType, str(func(x report.Package) string { return x.Name })).
		field("version", types.StringType, str(func(x report.Package) string { return x.Version })).
		field("ecosystem", types.StringType, str(func(x report.Package) string { return x.Ecosystem })).
		field("arch", types.StringType, str(func(x report.Package) string { return x.Arch })).
		field("source", types.StringType, str(func(x report.Package) string { return x.Source })).
		field("purl", types.StringType, str(func(x report.Package) string { return x.PURL }))
}

func mountType() *objectType {
	m := func(v any) report.Mount { return v.(report.Mount) }
	return newObjectType("rootscan.Mount").
		field("container_path", types.StringType, func(v any) (ref.Val, error) { return types.String(m(v).ContainerPath), nil }).
		field("host_path", types.StringType, func(v any) (ref.Val, error) { return types.String(m(v).HostPath), nil }).
		field("read_only", types.BoolType, func(v any) (ref.Val, error) { return types.Bool(m(v).ReadOnly), nil })
}
