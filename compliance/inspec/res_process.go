package inspec

import (
	"errors"
	"regexp"
	"strconv"
	"strings"

	"github.com/rootscan/rootscan/compliance"
)

// os_env, mount, kernel_parameter and processes: answered from the container's running process when the node has
// it (the daemon, the one-shot node scan of a running container), skipped with the reason otherwise (--dir, --oci).

// processOnly is the static check's reason for a process resource: it runs in a node scan, not on a --dir or --oci.
const processOnly = "needs the container's running process: answered by the daemon and by a node scan of a running container, skipped for --dir and --oci"

// processErr turns a failed read of the container's process into the control's outcome: skipped when the target
// has no process or the answer would be the host's, a resource failure otherwise.
func processErr(name string, err error) error {
	var ns *compliance.NamespacedError
	switch {
	case errors.Is(err, compliance.ErrNoProcess):
		return skipf("%s %v", name, err)
	case errors.As(err, &ns):
		return skipf("%s: %v", name, err)
	}
	return rbErr("Inspec::Exceptions::ResourceFailed", "%s: %v", name, err)
}

// valueRes is a resource whose matchers read named values (os_env's content, kernel_parameter's value).
type valueRes struct {
	name string
	vals map[string]any
}

func (r *valueRes) String() string { return r.name }

func (r *valueRes) method(_ *evaluator, name string, args []any, _ *proc) (any, bool, error) {
	if len(args) > 0 {
		return nil, false, nil
	}
	v, ok := r.vals[name]
	return v, ok, nil
}

func newOSEnv(ev *evaluator, args []any) (any, error) {
	key, _ := strArg(args, 0)
	env, err := ev.t.Environ()
	if err != nil {
		return nil, processErr("os_env", err)
	}
	r := &valueRes{name: "Environment variable " + key, vals: map[string]any{"content": nil, "split": nil}}
	if v, ok := env[key]; ok {
		r.vals["content"] = v
		// InSpec splits on the platform's path separator; Ruby's split drops trailing empty fields.
		r.vals["split"] = newArray(strsToAny(strings.Split(v, ":"), true))
	}
	return r, nil
}

var integerValue = regexp.MustCompile(`^-?\d+$`)

func newKernelParameter(ev *evaluator, args []any) (any, error) {
	key, ok := strArg(args, 0)
	if !ok {
		return nil, rbErr("ArgumentError", "kernel_parameter needs a parameter name")
	}
	v, err := ev.t.KernelParameter(key)
	if err != nil {
		return nil, processErr("kernel_parameter", err)
	}
	var val any = v
	if integerValue.MatchString(v) {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			val = n // InSpec gives numeric parameters as integers
		}
	}
	return &valueRes{name: "Kernel Parameter " + key, vals: map[string]any{"value": val}}, nil
}

// mountRes is mount(path): the last mount at path wins, as the one the container sees.
type mountRes struct {
	path   string
	mounts []compliance.MountInfo
}

func (m *mountRes) String() string { return "Mount " + m.path }

func (m *mountRes) method(_ *evaluator, name string, args []any, _ *proc) (any, bool, error) {
	if len(args) > 0 && name != "be_mounted" {
		return nil, false, nil
	}
	var last *compliance.MountInfo
	if len(m.mounts) > 0 {
		last = &m.mounts[len(m.mounts)-1]
	}
	switch name {
	case "mounted?":
		return last != nil, true, nil
	case "count":
		return int64(len(m.mounts)), true, nil
	}
	if last == nil {
		switch name {
		case "device", "type", "options", "content":
			return nil, true, nil
		}
		return nil, false, nil
	}
	switch name {
	case "device":
		return last.Device, true, nil
	case "type":
		return last.Type, true, nil
	case "options":
		return newArray(strsToAny(last.Options, false)), true, nil
	case "content":
		return last.Device + " on " + last.Path + " type " + last.Type + " (" + strings.Join(last.Options, ",") + ")", true, nil
	}
	return nil, false, nil
}

func newMount(ev *evaluator, args []any) (any, error) {
	p, ok := strArg(args, 0)
	if !ok {
		return nil, rbErr("ArgumentError", "mount needs a path")
	}
	all, err := ev.t.Mounts()
	if err != nil {
		return nil, processErr("mount", err)
	}
	m := &mountRes{path: p}
	for _, mi := range all {
		if mi.Path == p {
			m.mounts = append(m.mounts, mi)
		}
	}
	return m, nil
}

// newProcesses is processes(grep): a filter table of the processes whose command matches. A string matches as
// InSpec makes it a pattern: the name after any directory, then a space or the end.
func newProcesses(ev *evaluator, args []any) (any, error) {
	re := regexp.MustCompile(`.*`)
	label := "processes"
	if len(args) > 0 {
		switch a := args[0].(type) {
		case string:
			p := a
			if !strings.HasPrefix(p, "/") {
				p = "(/[^/]*)*" + p
			}
			r, err := compileRegex("^"+p+`(\s|$)`, "")
			if err != nil {
				return nil, rbErr("RegexpError", "processes(%q): %v", a, err)
			}
			re, label = r.re, "Processes "+a
		case *regex:
			re, label = a.re, "Processes "+a.src
		}
	}
	ps, err := ev.t.Processes()
	if err != nil {
		return nil, processErr("processes", err)
	}
	// InSpec's columns, as its ps line gives them: pid, vsz and rss integers, the others ps's text.
	t := &tableRes{name: label, cols: cols("pids", "pid", "ppids", "ppid", "users", "user", "commands", "command",
		"states", "stat", "labels", "label", "cpus", "cpu", "mem", "mem", "vsz", "vsz", "rss", "rss", "tty", "tty",
		"start", "start", "time", "time")}
	for _, p := range ps {
		if !re.MatchString(p.Command) {
			continue
		}
		t.rows = append(t.rows, row("pid", int64(p.Pid), "ppid", int64(p.PPid), "user", p.User, "command", p.Command,
			"stat", p.Stat, "label", nil, "cpu", p.CPU, "mem", p.Mem, "vsz", p.VSZ, "rss", p.RSS, "tty", p.TTY,
			"start", p.Start, "time", p.Time))
	}
	return t, nil
}
