package inspec

import (
	"slices"
	"strings"

	"github.com/rootscan/rootscan/report"
)

// languageEcosystems are the inventory's non-OS packages: package() and packages() answer the distribution's.
var languageEcosystems = map[string]bool{
	report.EcosystemGo: true, report.EcosystemPyPI: true, report.EcosystemNpm: true, report.EcosystemMaven: true,
	report.EcosystemCratesIO: true, report.EcosystemRubyGems: true, report.EcosystemNuGet: true, report.EcosystemPackagist: true,
}

// packageRes is package(name), gem(name), pip(name) and npm(name), answered from the inventory.
type packageRes struct {
	kind, name string
	pkg        *report.Package
}

func (p *packageRes) String() string { return p.kind + " " + p.name }

func (p *packageRes) method(_ *evaluator, name string, _ []any, _ *proc) (any, bool, error) {
	switch name {
	case "installed?":
		return p.pkg != nil, true, nil
	case "version":
		if p.pkg == nil {
			return nil, true, nil
		}
		return p.pkg.Version, true, nil
	case "name":
		return p.name, true, nil
	case "arch":
		if p.pkg == nil {
			return nil, true, nil
		}
		return p.pkg.Arch, true, nil
	case "info":
		h := newHash()
		h.set("name", p.name)
		h.set("installed", p.pkg != nil)
		if p.pkg != nil {
			h.set("version", p.pkg.Version)
			h.set("type", strings.ToLower(p.pkg.Ecosystem))
		}
		return h, true, nil
	case "held?":
		return nil, true, skipf("package(%q).held? is not read from the filesystem", p.name)
	}
	return nil, false, nil
}

func findPackage(ev *evaluator, name string, want func(eco string) bool) *report.Package {
	pkgs := ev.t.Packages()
	for i := range pkgs {
		if pkgs[i].Name == name && want(pkgs[i].Ecosystem) {
			return &pkgs[i]
		}
	}
	return nil
}

func newPackage(ev *evaluator, args []any) (any, error) {
	n, _ := strArg(args, 0)
	return &packageRes{kind: "System Package", name: n, pkg: findPackage(ev, n, func(e string) bool { return !languageEcosystems[e] })}, nil
}

func langPackage(kind, eco string) func(*evaluator, []any) (any, error) {
	return func(ev *evaluator, args []any) (any, error) {
		n, _ := strArg(args, 0)
		return &packageRes{kind: kind, name: n, pkg: findPackage(ev, n, func(e string) bool { return e == eco })}, nil
	}
}

func newPackages(ev *evaluator, args []any) (any, error) {
	var match func(string) bool
	switch p := argOr(args, 0).(type) {
	case *regex:
		match = p.re.MatchString
	case string:
		match = func(s string) bool { return s == p }
	default:
		return nil, rbErr("ArgumentError", "packages needs a name or a regexp")
	}
	t := &tableRes{name: "Packages", cols: cols("names", "name", "versions", "version", "statuses", "status", "architectures", "architecture")}
	for _, pkg := range ev.t.Packages() {
		if !languageEcosystems[pkg.Ecosystem] && match(pkg.Name) {
			t.rows = append(t.rows, row("name", pkg.Name, "version", pkg.Version, "status", "installed", "architecture", pkg.Arch))
		}
	}
	return t, nil
}

// osRes is os and platform, from the os-release the analyzers read.
type osRes struct {
	name, release, family, arch string
	families                    []string
}

// familyOf maps an os-release ID (and ID_LIKE) onto InSpec's platform family and its parents.
func familyOf(id string, like []string) (string, []string) {
	for _, n := range append([]string{id}, like...) {
		switch n {
		case "debian", "ubuntu", "linuxmint", "raspbian", "kali":
			return "debian", []string{"debian", "linux", "unix", "os"}
		case "rhel", "centos", "rocky", "almalinux", "ol", "oracle", "scientific":
			return "redhat", []string{"redhat", "linux", "unix", "os"}
		case "fedora":
			return "fedora", []string{"fedora", "linux", "unix", "os"}
		case "amzn", "amazon":
			return "amazon", []string{"amazon", "redhat", "linux", "unix", "os"}
		case "alpine":
			return "alpine", []string{"alpine", "linux", "unix", "os"}
		case "sles", "opensuse", "opensuse-leap", "suse":
			return "suse", []string{"suse", "linux", "unix", "os"}
		case "arch":
			return "arch", []string{"arch", "linux", "unix", "os"}
		case "wolfi", "chainguard":
			return "wolfi", []string{"wolfi", "linux", "unix", "os"}
		}
	}
	return "linux", []string{"linux", "unix", "os"}
}

func newOS(ev *evaluator, _ []any) (any, error) {
	o := &osRes{name: "unknown", release: "unknown", arch: "unknown"}
	if info := ev.t.OS(); info != nil {
		o.name, o.release = strings.ToLower(info.ID), info.VersionID
		o.family, o.families = familyOf(o.name, info.IDLike)
	} else {
		o.family, o.families = familyOf("", nil)
	}
	for _, p := range ev.t.Packages() {
		if p.Arch != "" && p.Arch != "all" && p.Arch != "noarch" && !languageEcosystems[p.Ecosystem] {
			o.arch = map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[p.Arch]
			if o.arch == "" {
				o.arch = p.Arch
			}
			break
		}
	}
	return o, nil
}

func (o *osRes) String() string { return "Operating System Detection" }

func (o *osRes) params() *hash {
	return row("name", o.name, "family", o.family, "release", o.release, "arch", o.arch,
		"families", newArray(strsToAny(o.families, false)))
}

func (o *osRes) method(_ *evaluator, name string, args []any, _ *proc) (any, bool, error) {
	switch name {
	case "name", "family", "release", "arch", "families":
		v, _ := o.params().get(name)
		return v, true, nil
	case "params", "to_hash":
		return o.params(), true, nil
	case "[]":
		v, _ := o.params().get(toS(argOr(args, 0)))
		return v, true, nil
	case "in_family?":
		return slices.Contains(o.families, toS(argOr(args, 0))), true, nil
	case "windows?", "darwin?", "bsd?", "solaris?", "aix?", "hpux?":
		return false, true, nil
	case "supported?":
		return true, true, nil
	}
	if f, ok := strings.CutSuffix(name, "?"); ok {
		return f == o.name || slices.Contains(o.families, f), true, nil
	}
	return nil, false, nil
}
