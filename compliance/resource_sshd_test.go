package compliance

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rootscan/rootscan/report"
)

func TestParseSSHD(t *testing.T) {
	tests := []struct {
		name, in, want string // want: the parsed value as JSON
	}{
		{"first value wins, keywords case-insensitive",
			"PermitRootLogin no\npermitrootlogin yes\nPasswordAuthentication=yes\nPasswordAuthentication no\n",
			`{"passwordauthentication":"yes","permitrootlogin":"no"}`},
		{"list keywords keep every line",
			"HostKey /etc/ssh/ssh_host_rsa_key\nhostkey /etc/ssh/ssh_host_ed25519_key\nPort 22\nPort 2222\nListenAddress 0.0.0.0\n",
			`{"hostkey":["/etc/ssh/ssh_host_rsa_key","/etc/ssh/ssh_host_ed25519_key"],"listenaddress":["0.0.0.0"],"port":["22","2222"]}`},
		{"word keywords accumulate words",
			"AcceptEnv LANG LC_*\nAcceptEnv \"TZ\"\nAllowUsers alice bob@10.0.0.1\n",
			`{"acceptenv":["LANG","LC_*","TZ"],"allowusers":["alice","bob@10.0.0.1"]}`},
		{"match blocks in order, settings first-wins inside",
			"PasswordAuthentication no\nMatch User anoncvs\n  X11Forwarding no\n  X11Forwarding yes\n  PermitTTY no\nMatch Address 10.0.0.0/8,192.168.0.0/16 User admin\n  PasswordAuthentication yes\nMatch all\n  Port 2022\n",
			`{"match":[{"conditions":{"user":"anoncvs"},"criteria":"User anoncvs","settings":{"permittty":"no","x11forwarding":"no"}},` +
				`{"conditions":{"address":"10.0.0.0/8,192.168.0.0/16","user":"admin"},"criteria":"Address 10.0.0.0/8,192.168.0.0/16 User admin","settings":{"passwordauthentication":"yes"}},` +
				`{"conditions":{"all":""},"criteria":"all","settings":{"port":["2022"]}}],"passwordauthentication":"no"}`},
		{"include listed without a filesystem",
			"Include /etc/ssh/sshd_config.d/*.conf\n# comment\n\nUsePAM yes\n",
			`{"include":["/etc/ssh/sshd_config.d/*.conf"],"usepam":"yes"}`},
		{"blanks between arguments collapse, quoted values kept",
			"Subsystem\tsftp\t/usr/lib/openssh/sftp-server\nBanner \"/etc/my  banner\"\n",
			`{"banner":"/etc/my  banner","subsystem":["sftp /usr/lib/openssh/sftp-server"]}`},
	}
	for _, tt := range tests {
		v, err := ParseConfig([]byte(tt.in), FormatSSHD)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got, _ := json.Marshal(v)
		if string(got) != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
	for _, bad := range []string{"Match\n", "Match User\n"} {
		if _, err := ParseConfig([]byte(bad), FormatSSHD); err == nil || !strings.Contains(err.Error(), "sshd: line 1: Match") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// Include in the container's view: relative to /etc/ssh, globbed in name order, read before the lines after it
// (so a drop-in wins over the main file, as with Debian's default config), a Match in a drop-in ends with it,
// and self-inclusion stops at sshd's depth bound.
func TestSSHDInclude(t *testing.T) {
	files := map[string]string{
		"etc/ssh/sshd_config":                   "Include sshd_config.d/*.conf\nPasswordAuthentication no\nPermitRootLogin no\nPort 22\n",
		"etc/ssh/sshd_config.d/50-cloud.conf":   "PasswordAuthentication yes\nMatch User deploy\n  PermitTTY no\n",
		"etc/ssh/sshd_config.d/10-port.conf":    "Port 2222\n",
		"etc/ssh/sshd_config.d/ignored.txt":     "PermitRootLogin yes\n",
		"etc/ssh/sshd_config.d/dir.conf/x.conf": "PermitRootLogin yes\n",
		"etc/ssh/loop_config":                   "Include /etc/ssh/loop_config\n",
	}
	f := newFixture(t, files)
	l, _ := NewLoader(Limits{})
	check := func(expr string) report.ControlResult {
		t.Helper()
		p, err := l.Parse("t.yaml", []byte("name: t\ncontrols:\n  - id: a\n    checks:\n      - expr: '"+expr+"'\n"))
		if err != nil {
			t.Fatal(err)
		}
		return NewEngine(l, []*Profile{p}).Evaluate(context.Background(), f.root, report.Target{}, nil, &report.Result{})[0]
	}
	for _, expr := range []string{
		`parse_config("/etc/ssh/sshd_config", "sshd").passwordauthentication == "yes"`,
		`parse_config("/etc/ssh/sshd_config", "sshd").permitrootlogin == "no"`,
		`parse_config("/etc/ssh/sshd_config", "sshd").port == ["2222", "22"]`,
		`parse_config("/etc/ssh/sshd_config", "sshd").include == ["sshd_config.d/*.conf"]`,
		`parse_config("/etc/ssh/sshd_config", "sshd").match.map(m, m.conditions.user) == ["deploy"]`,
		`parse_config("/etc/ssh/sshd_config", "sshd").match[0].settings == {"permittty": "no"}`,
	} {
		if r := check(expr); r.Status != report.ControlPassed {
			t.Errorf("%s: %s %s", expr, r.Status, r.Message)
		}
	}
	r := check(`parse_config("/etc/ssh/loop_config", "sshd").size() > 0`)
	if r.Status != report.ControlError || !strings.Contains(r.Message, "Include nested deeper than 16") {
		t.Errorf("include loop: %s %s", r.Status, r.Message)
	}
}
