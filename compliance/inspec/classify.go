package inspec

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/rootscan/rootscan/compliance/inspec/ruby"
)

// Support says how rootscan can answer a resource.
type Support uint8

// Support levels.
const (
	// Unsupported resources make their controls skipped.
	Unsupported Support = iota
	// Filesystem resources are answered from the container's root.
	Filesystem
	// Process resources need the container's running process: the daemon and the one-shot node scan of a running
	// container have it, a --dir or --oci scan does not.
	Process
)

// Catalog is what the evaluator supports: resources and matchers by name.
type Catalog struct {
	Resources map[string]Support
	Matchers  map[string]bool
	// Commands are the programs whose command('...') forms are answered from the filesystem.
	Commands map[string]bool
}

// DefaultCatalog lists the resources and matchers with InSpec's semantics that rootscan answers from a
// container's filesystem (issue 16's list).
func DefaultCatalog() *Catalog {
	c := &Catalog{Resources: map[string]Support{}, Matchers: map[string]bool{}, Commands: map[string]bool{}}
	for _, r := range strings.Fields(`file directory parse_config parse_config_file ini json yaml login_defs
		sshd_config ssh_config passwd shadow etc_group users user groups group package packages gem pip npm xml pam
		etc_fstab limits_conf os platform virtualization command`) {
		c.Resources[r] = Filesystem
	}
	for _, r := range strings.Fields(`processes kernel_parameter mount os_env`) {
		c.Resources[r] = Process
	}
	for _, m := range strings.Fields(`eq eql equal cmp be be_in include match exist be_empty be_nil be_installed
		be_file be_directory be_symlink be_readable be_writable be_executable be_owned_by be_grouped_into
		be_more_permissive_than be_a be_an be_kind_of all start_with end_with contain_exactly match_array
		be_truthy be_falsey be_zero be_between match_pam_rule match_pam_rules contain_duplicates cover`) {
		c.Matchers[m] = true
	}
	for _, p := range strings.Fields(`which ls stat grep egrep cat test readlink realpath head [ find`) {
		c.Commands[p] = true
	}
	return c
}

// inspecResources are the resource names InSpec ships (lib/inspec/resources), which a profile can call
// without defining them; those the catalog lacks make a control skipped.
var inspecResources = strings.Fields(`aide_conf apache apache_conf apt audit_policy auditd auditd_conf auditd_rules
	bash bond bridge bsd_service cassandradb_conf cassandradb_session cgroup chocolatey_package chrony_conf command
	cpan cran cron crontab csv default_gateway dh_params directory docker docker_container docker_image
	docker_plugin docker_service etc_fstab etc_group etc_hosts etc_hosts_allow etc_hosts_deny file filesystem
	firewalld gem group groups grub_conf host http iis_app iis_app_pool iis_site iis_website inetd_conf ini
	interface interfaces ip6tables ipfilter ipnat iptables json kernel_module kernel_parameter kernel_parameters
	key_rsa ksh launchd_service limits_conf linux_audit_system linux_kernel_parameter login_defs lxc mail_alias
	mount mssql_session mssql_sys_conf mysql mysql_conf mysql_session nftables nginx nginx_conf npm ntp_conf
	oneget oracledb_conf oracledb_listener_conf oracledb_session os os_env package packages parse_config
	parse_config_file passwd php_config pip platform port postfix_conf postgres postgres_conf postgres_hba_conf
	postgres_ident_conf postgres_session powershell ppa processes registry_key routing_table runit_service script
	security_identifier security_policy selinux service shadow ssh_config ssh_key sshd_active_config sshd_config
	ssl sys_info systemd_service sysv_service timezone toml upstart_service user users vbscript virtualization
	windows_feature windows_firewall windows_firewall_rule windows_hotfix windows_registry_key windows_task wmi
	x509_certificate x509_private_key xinetd_conf xml yaml yum zfs zfs_dataset zfs_pool pam sudoers`)

// Verdict is the static answer for one control.
type Verdict struct {
	Control *Control
	// Run is false when the control will be reported skipped; Reasons say why, each at its file:line.
	Run     bool
	Reasons []string
	// NodeOnly is a skipped control whose only reasons are process resources: a node scan of a running container
	// and the daemon evaluate it, a --dir or --oci scan skips it.
	NodeOnly bool
}

// Check classifies every control of the profile: whether rootscan can evaluate it from a filesystem, and if
// not, why, at the line that needs what a filesystem cannot give.
func (p *Profile) Check(cat *Catalog) []Verdict {
	known := map[string]bool{}
	for _, r := range inspecResources {
		known[r] = true
	}
	libs := map[string]*LibResource{}
	for _, l := range p.Libraries {
		for _, r := range l.Resources {
			libs[r.Name] = r
		}
	}
	cl := &classifier{cat: cat, known: known, libs: libs, libReasons: map[string][]string{}}
	guards := map[string][]*Guard{}
	for _, f := range p.Files {
		guards[f.Name] = f.Guards
	}
	out := make([]Verdict, 0, len(p.Controls))
	for _, c := range p.Controls {
		v := Verdict{Control: c}
		why := ""
		if c.Overlay {
			why = p.depReason(c.Include)
		}
		switch {
		case c.Err != nil:
			v.Reasons = []string{fmt.Sprintf("%s:%d: the file does not parse: %v", c.File, c.Line, c.Err)}
		case why != "":
			v.Reasons = []string{fmt.Sprintf("%s:%d: %s", c.File, c.Line, why)}
		default:
			var rs reasons
			for _, g := range guards[c.File] {
				cl.node(c.File, g.Block, nil, &rs)
			}
			cl.node(c.File, c.Block, nil, &rs)
			cl.matchers(c, &rs)
			v.Reasons = rs.list
		}
		v.Run = len(v.Reasons) == 0
		v.NodeOnly = !v.Run && onlyProcessReasons(v.Reasons)
		out = append(out, v)
	}
	return out
}

func onlyProcessReasons(rs []string) bool {
	for _, r := range rs {
		if !strings.HasSuffix(r, processOnly) {
			return false
		}
	}
	return true
}

// reasons collects distinct skip reasons in the order found.
type reasons struct {
	list []string
	seen map[string]bool
}

func (r *reasons) add(s string) {
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	if !r.seen[s] {
		r.seen[s] = true
		r.list = append(r.list, s)
	}
}

type classifier struct {
	cat        *Catalog
	known      map[string]bool
	libs       map[string]*LibResource
	libReasons map[string][]string
	// visiting guards against library resources that call each other in a cycle.
	visiting map[string]bool
}

// node walks n, with its parent, for resource calls.
func (cl *classifier) node(file string, n, parent ruby.Node, rs *reasons) {
	if n == nil {
		return
	}
	if c, ok := n.(*ruby.Call); ok && (c.Recv == nil || isIdent(c.Recv, "inspec")) {
		cl.resource(file, c, parent, rs)
	}
	if id, ok := n.(*ruby.Ident); ok && !id.Local && id.Name != "command" {
		cl.resource(file, &ruby.Call{Pos: id.Pos, Name: id.Name}, parent, rs)
	}
	if c, ok := n.(*ruby.Call); ok && c.Name == "where" && c.Block != nil {
		// A filter table's where block names the table's columns (user, port, command), not resources.
		cl.node(file, c.Recv, n, rs)
		for _, a := range c.Args {
			cl.node(file, a, n, rs)
		}
		return
	}
	for _, ch := range ruby.Children(n) {
		cl.node(file, ch, n, rs)
	}
}

func (cl *classifier) resource(file string, c *ruby.Call, parent ruby.Node, rs *reasons) {
	at := fmt.Sprintf("%s:%d", file, c.Line)
	// A library that redefines a resource rootscan answers itself (the STIG baselines' os and virtualization,
	// written to detect containers by running commands) is answered by rootscan's own resource.
	if lr, ok := cl.libs[c.Name]; ok && !(cl.known[c.Name] && cl.cat.Resources[c.Name] == Filesystem) {
		method := ""
		if p, ok := parent.(*ruby.Call); ok && p.Recv == ruby.Node(c) {
			method = p.Name
		}
		for _, r := range cl.library(lr, method) {
			rs.add(fmt.Sprintf("%s: %s (%s:%d) %s", at, c.Name, lr.File, lr.Line, r))
		}
		return
	}
	switch sup, ok := cl.cat.Resources[c.Name]; {
	case ok && sup == Process:
		rs.add(fmt.Sprintf("%s: %s %s", at, c.Name, processOnly))
	case ok && c.Name == "command":
		if r := cl.command(c, parent); r != "" {
			rs.add(at + ": " + r)
		}
	case ok:
	case cl.known[c.Name]:
		rs.add(fmt.Sprintf("%s: resource %s is not supported", at, c.Name))
	case cloudResource(c.Name):
		rs.add(fmt.Sprintf("%s: resource %s needs a cloud API", at, c.Name))
	}
}

func cloudResource(name string) bool {
	for _, p := range []string{"aws_", "azure_", "azurerm_", "google_", "k8s_", "kubernetes_", "gcp_", "oci_", "vsphere_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// library returns why a custom resource cannot run when method is called on it: what its initialize, that
// method and the methods they call on self need that is not supported (all of its code when method is "").
func (cl *classifier) library(lr *LibResource, method string) []string {
	key := lr.Name + "." + method
	if r, ok := cl.libReasons[key]; ok {
		return r
	}
	if cl.visiting == nil {
		cl.visiting = map[string]bool{}
	}
	if cl.visiting[key] {
		return nil
	}
	cl.visiting[key] = true
	defer delete(cl.visiting, key)
	defs := map[string]*ruby.Def{}
	for _, n := range lr.Decl.Body {
		if d, ok := n.(*ruby.Def); ok && d.Recv == nil {
			defs[d.Name] = d
		}
	}
	var rs reasons
	if _, ok := defs[method]; method == "" || !ok {
		for _, n := range lr.Decl.Body {
			cl.node(lr.File, n, nil, &rs)
		}
	} else {
		cl.methods(lr.File, defs, []string{"initialize", method}, &rs)
	}
	var out []string
	for _, r := range rs.list {
		out = append(out, "calls "+r)
	}
	cl.libReasons[key] = out
	return out
}

// methods classifies the named methods of a resource class and the methods of the class they call.
func (cl *classifier) methods(file string, defs map[string]*ruby.Def, names []string, rs *reasons) {
	done := map[string]bool{}
	for len(names) > 0 {
		name := names[0]
		names = names[1:]
		d, ok := defs[name]
		if !ok || done[name] {
			continue
		}
		done[name] = true
		cl.node(file, d.Body, nil, rs)
		ruby.Walk(d.Body, func(n ruby.Node) bool {
			switch v := n.(type) {
			case *ruby.Call:
				if v.Recv == nil || isSelf(v.Recv) {
					names = append(names, v.Name)
				}
			case *ruby.Ident:
				names = append(names, v.Name)
			}
			return true
		})
	}
}

func isSelf(n ruby.Node) bool {
	_, ok := n.(*ruby.Self)
	return ok
}

// command decides whether a command('...') is one of the forms rootscan answers from the filesystem:
// command('x').exist? (a PATH lookup), or a literal pipeline runLine answers (checked without the target).
func (cl *classifier) command(c *ruby.Call, parent ruby.Node) string {
	if p, ok := parent.(*ruby.Call); ok && p.Recv == ruby.Node(c) && p.Name == "exist?" {
		return ""
	}
	if len(c.Args) == 0 {
		return "command without an argument"
	}
	s, ok := ruby.StringValue(c.Args[0])
	if !ok {
		return "command(...) with a computed command line needs exec in the target"
	}
	if cl.answerable(s) {
		return ""
	}
	return fmt.Sprintf("command(%q) needs exec in the target", s)
}

// answerable is runLine's test without the target: a pipeline of literal commands whose first is a catalog
// program (find with an expression parseFind takes) and whose others are filters.
func (cl *classifier) answerable(line string) bool {
	stages, ok := parseLine(line)
	if !ok {
		return false
	}
	for i, st := range stages {
		args, ok := staticWords(st.call.Args)
		if !ok {
			return false
		}
		prog := path.Base(args[0])
		switch {
		case i > 0:
			if _, ok := filterCommands[prog]; !ok {
				return false
			}
		case !cl.cat.Commands[prog]:
			return false
		case prog == "find":
			if _, err := parseFind(args[1:]); err != nil {
				return false
			}
		}
	}
	return true
}

// matchers adds a reason for each matcher the evaluator does not know.
func (cl *classifier) matchers(c *Control, rs *reasons) {
	var walk func(ds []*Describe)
	walk = func(ds []*Describe) {
		for _, d := range ds {
			for _, ck := range d.Checks {
				if name := matcherName(ck.Matcher); name != "" && !cl.cat.Matchers[name] {
					rs.add(fmt.Sprintf("%s:%d: matcher %s is not supported", c.File, ck.Line, name))
				}
			}
			walk(d.Nested)
		}
	}
	walk(c.Describes)
}

func matcherName(n ruby.Node) string {
	switch v := n.(type) {
	case *ruby.Call:
		if v.Recv != nil {
			return matcherName(v.Recv)
		}
		return v.Name
	case *ruby.Ident:
		return v.Name
	case *ruby.Binary:
		return matcherName(v.X)
	}
	return ""
}

// SkipReasons counts the verdicts' reasons by kind (the reason without its file:line and quoted details), most
// frequent first, for summaries.
func SkipReasons(vs []Verdict) []ReasonCount {
	counts := map[string]int{}
	for _, v := range vs {
		seen := map[string]bool{}
		for _, r := range v.Reasons {
			k := reasonKind(r)
			if !seen[k] {
				seen[k] = true
				counts[k]++
			}
		}
	}
	out := make([]ReasonCount, 0, len(counts))
	for k, n := range counts {
		out = append(out, ReasonCount{Reason: k, Controls: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Controls != out[j].Controls {
			return out[i].Controls > out[j].Controls
		}
		return out[i].Reason < out[j].Reason
	})
	return out
}

// ReasonCount is how many controls a kind of reason skips.
type ReasonCount struct {
	Reason   string
	Controls int
}

// location is a file:line in a reason.
var location = regexp.MustCompile(`\S+\.rb:\d+:? `)

func reasonKind(r string) string {
	r = location.ReplaceAllString(r, "")
	if i := strings.Index(r, "command(\""); i >= 0 {
		return r[:i] + "command(\"...\") needs exec in the target"
	}
	if strings.HasPrefix(r, "the file does not parse") {
		return "the file does not parse"
	}
	return r
}
