package inspec

import (
	"regexp"
	"strings"
)

// etc_fstab and limits_conf: system configuration files with a resource of their own in InSpec.

func newEtcFstab(ev *evaluator, args []any) (any, error) {
	p, ok := strArg(args, 0)
	if !ok {
		p = "/etc/fstab"
	}
	content, err := ev.readConfig(p)
	if err != nil {
		return nil, rbErr("Inspec::Exceptions::ResourceFailed", "%v", err)
	}
	s, ok := content.(string)
	if !ok {
		return nil, skipf("Can't find file: %s", p)
	}
	t := &tableRes{name: "File System Table File (fstab)", cols: cols("device_name", "device_name", "mount_point", "mount_point",
		"file_system_type", "file_system_type", "mount_options", "mount_options", "dump_options", "dump_options",
		"file_system_options", "file_system_options")}
	for _, line := range strings.Split(s, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		r := row("device_name", f[0], "mount_point", f[1], "file_system_type", f[2],
			"mount_options", newArray(strsToAny(strings.Split(f[3], ","), false)))
		for i, k := range []string{"dump_options", "file_system_options"} {
			var v any
			if len(f) > 4+i {
				v = leadingInt(f[4+i], 10)
			}
			r.set(k, v)
		}
		t.rows = append(t.rows, r)
	}
	return t, nil
}

var limitsLine = regexp.MustCompile(`^\s*(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$`)

// newLimitsConf is limits_conf: each domain's [type, item, value] lines, as its('*') { should include [...] }
// reads them.
func newLimitsConf(ev *evaluator, args []any) (any, error) {
	p, ok := strArg(args, 0)
	if !ok {
		p = "/etc/security/limits.conf"
	}
	return fileConfig(ev, "limits.conf", p, configOpts{assignment: limitsLine, comment: "#", multipleValues: true, keyValues: 3}, false)
}
