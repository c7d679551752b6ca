package inspec

import (
	"fmt"
	"strings"

	"github.com/rootscan/rootscan/report"
)

// resource is an InSpec resource: what describe prints for it (String) and its methods. ok is false for a
// method the resource does not have.
type resource interface {
	String() string
	method(ev *evaluator, name string, args []any, blk *proc) (v any, ok bool, err error)
}

// resourceCtors are the resources answered from the container's filesystem and the inventory.
var resourceCtors = map[string]func(ev *evaluator, args []any) (any, error){
	"file":                   newFileResource,
	"directory":              newDirectoryResource,
	"parse_config":           newParseConfig,
	"parse_config_file":      newParseConfigFile,
	"login_defs":             newLoginDefs,
	"sshd_config":            newSSHDConfig,
	"ssh_config":             newSSHConfig,
	"json":                   newJSONResource,
	"yaml":                   newYAMLResource,
	"ini":                    newINIResource,
	"xml":                    newXMLResource,
	"pam":                    newPam,
	"passwd":                 newPasswd,
	"shadow":                 newShadow,
	"etc_group":              newEtcGroup,
	"users":                  newUsers,
	"user":                   newUser,
	"groups":                 newGroups,
	"group":                  newGroup,
	"package":                newPackage,
	"packages":               newPackages,
	"os":                     newOS,
	"platform":               newOS,
	"virtualization":         newVirtualization,
	"command":                newCommand,
	"etc_fstab":              newEtcFstab,
	"os_env":                 newOSEnv,
	"mount":                  newMount,
	"kernel_parameter":       newKernelParameter,
	"linux_kernel_parameter": newKernelParameter,
	"processes":              newProcesses,
	"limits_conf":            newLimitsConf,
	"gem":                    langPackage("Gem Package", report.EcosystemRubyGems),
	"pip":                    langPackage("Pip Package", report.EcosystemPyPI),
	"npm":                    langPackage("Npm Package", report.EcosystemNpm),
}

// resource makes the resource name; handled is false when name is no resource at all.
func (ev *evaluator) resource(name string, args []any) (any, bool, error) {
	ctor, ours := resourceCtors[name]
	if lr, ok := ev.libs[name]; ok && !ours {
		v, err := ev.newLibObject(lr, args)
		return v, true, err
	}
	if ours {
		v, err := ctor(ev, args)
		return v, true, err
	}
	for _, r := range inspecResources {
		if r == name {
			return nil, true, skipf("resource %s is not supported", name)
		}
	}
	if cloudResource(name) {
		return nil, true, skipf("resource %s needs a cloud API", name)
	}
	return nil, false, nil
}

func strArg(args []any, i int) (string, bool) {
	if i >= len(args) {
		return "", false
	}
	s, ok := args[i].(string)
	return s, ok
}

// optArg reads an option of a trailing hash argument.
func optArg(args []any, key string) (any, bool) {
	if len(args) == 0 {
		return nil, false
	}
	h, ok := args[len(args)-1].(*hash)
	if !ok {
		return nil, false
	}
	return h.get(key)
}

// cached memoizes what a resource parsed for the evaluation of one target.
func (ev *evaluator) cached(key string, make func() (any, error)) (any, error) {
	if v, ok := ev.cache[key]; ok {
		if err, isErr := v.(error); isErr {
			return nil, err
		}
		return v, nil
	}
	v, err := make()
	if err != nil {
		ev.cache[key] = err
		return nil, err
	}
	ev.cache[key] = v
	return v, nil
}

// command is command('x'): exist? is a lookup on the image's PATH (how guards use it); stdout, stderr and
// exit_status are answered from the filesystem for the command lines that only read files (fsCommands), and
// need exec for every other.
type commandRes struct {
	cmd      string
	done, ok bool
	res      cmdResult
	err      error
}

func newCommand(_ *evaluator, args []any) (any, error) {
	s, _ := strArg(args, 0)
	return &commandRes{cmd: s}, nil
}

func (c *commandRes) String() string { return "Command: `" + c.cmd + "`" }

func (c *commandRes) method(ev *evaluator, name string, _ []any, _ *proc) (any, bool, error) {
	if name == "exist?" {
		f := strings.Fields(c.cmd)
		if len(f) == 0 {
			return false, true, nil
		}
		if strings.HasPrefix(f[0], "/") {
			st, err := ev.t.Stat(f[0])
			return err == nil && st.Exists && st.Type == "file" && st.Mode&0o111 != 0, true, nil
		}
		return len(ev.t.Which(f[0])) > 0, true, nil
	}
	switch name {
	case "stdout", "stderr", "exit_status", "result":
		r, ok, err := c.answer(ev)
		if err != nil {
			return nil, true, rbErr("Inspec::Exceptions::ResourceFailed", "command(%q): %v", c.cmd, err)
		}
		if !ok {
			break
		}
		switch name {
		case "stdout", "result":
			return r.stdout, true, nil
		case "stderr":
			return r.stderr, true, nil
		}
		return r.exit, true, nil
	}
	return nil, true, skipf("command(%q) needs exec in the target", c.cmd)
}

// virtualization answers as InSpec does inside a container: the system is docker, the role guest.
type virtualizationRes struct{}

func newVirtualization(*evaluator, []any) (any, error) { return virtualizationRes{}, nil }

func (virtualizationRes) String() string { return "Virtualization Detection" }

func (virtualizationRes) method(_ *evaluator, name string, _ []any, _ *proc) (any, bool, error) {
	switch name {
	case "system":
		return "docker", true, nil
	case "role":
		return "guest", true, nil
	case "virtual_system?":
		return true, true, nil
	case "physical_system?":
		return false, true, nil
	case "params":
		h := newHash()
		h.set("system", "docker")
		h.set("role", "guest")
		return h, true, nil
	}
	return nil, false, nil
}

// rowRes is a row of a filter table (entries.each { |e| e.user }), answering its fields as methods.
type rowRes struct {
	table string
	h     *hash
}

func (r *rowRes) String() string { return fmt.Sprintf("%s row %s", r.table, inspect(r.h)) }

func (r *rowRes) method(ev *evaluator, name string, args []any, blk *proc) (any, bool, error) {
	if v, ok := r.h.get(name); ok && len(args) == 0 {
		return v, true, nil
	}
	if name == "[]" || name == "to_h" {
		if name == "to_h" {
			return r.h, true, nil
		}
		v, _ := r.h.get(argOr(args, 0))
		return v, true, nil
	}
	return ev.hashMethod(r.h, name, args, blk)
}
