package inspec

import (
	"strings"
	"testing"

	"github.com/rootscan/rootscan/report"
)

// Debian's files as libpam-runtime and openssh-server write them, with a pwquality line added.
var pamFiles = map[string]string{
	"etc/pam.d/common-auth": "# here are the per-package modules\n" +
		"auth\t[success=2 default=ignore]\tpam_unix.so nullok\n" +
		"auth\t[success=1 default=ignore]\tpam_pkcs11.so\n" +
		"auth\trequisite\t\t\tpam_deny.so\n" +
		"auth\trequired\t\t\tpam_permit.so\n",
	"etc/pam.d/common-password": "password\trequisite\t\t\tpam_pwquality.so retry=3 minlen=15\n" +
		"password\t[success=1 default=ignore]\tpam_unix.so obscure \\\n  use_authtok try_first_pass yescrypt\n" +
		"password\trequisite\t\t\tpam_deny.so\n",
	"etc/pam.d/login":   "auth optional pam_faildelay.so delay=3000000\nauth include common-auth\nsession optional pam_lastlog.so showfailed\n",
	"etc/pam.d/sshd":    "@include common-auth\naccount required pam_nologin.so\n",
	"etc/pam.d/.hidden": "not a rule\n",
	"etc/pam.conf":      "login auth required pam_unix.so\nsu auth sufficient pam_rootok.so\n",
	"etc/pam-dir/one":   "auth required pam_unix.so nullok\n",
	"etc/pam-dir/two":   "auth sufficient pam_unix.so nullok try_first_pass\n",
	"etc/pam-loop/a":    "auth include b\n",
	"etc/pam-loop/b":    "auth include a\n",
}

func TestEvaluatePam(t *testing.T) {
	got := evalOn(t, pamFiles, nil, `
control 'stig-pkcs11' do
  describe pam('/etc/pam.d/common-auth') do
    its('lines') { should match_pam_rule('auth [success=1 default=ignore] pam_pkcs11.so') }
    its('lines') { should match_pam_rule('auth .* pam_unix.so nullok') }
    its('lines') { should_not match_pam_rule('auth required pam_faillock.so') }
    its('rules') { should match_pam_rules(['auth requisite pam_deny.so', 'auth required pam_permit.so']).exactly }
    its('rules') { should_not match_pam_rules(['auth [success=2 default=ignore] pam_unix.so', 'auth required pam_permit.so']).exactly }
  end
end
control 'chains' do
  describe pam('/etc/pam.d/common-password') do
    its('lines') { should match_pam_rule('password .* pam_pwquality.so').any_with_integer_arg('retry', '>=', 3) }
    its('lines') { should_not match_pam_rule('password .* pam_pwquality.so').all_with_integer_arg('minlen', '>', 15) }
    its('lines') { should match_pam_rule('password .* pam_unix.so').all_with_args('yescrypt') }
    its('lines') { should match_pam_rule('password .* pam_unix.so use_authtok') }
    its('services') { should include 'common-password' }
  end
end
control 'include' do
  describe pam('/etc/pam.d/login') do
    its('lines') { should match_pam_rule('auth requisite pam_deny.so') }
    its('lines') { should match_pam_rule('session .* pam_lastlog.so').all_with_args('showfailed') }
    its('lines') { should_not match_pam_rule('session .* pam_lastlog.so').all_without_args('silent') }
  end
end
control 'alternation-self-match' do
  describe pam('/etc/pam.d/common-password') do
    its('lines') { should match_pam_rule('password (required|requisite) pam_pwquality.so') }
  end
end
control 'pam-conf' do
  describe pam('/etc/pam.conf') do
    its('lines') { should match_pam_rule('auth sufficient pam_rootok.so') }
  end
end
control 'pam-conf-rules' do
  describe pam('/etc/pam.conf') do
    its('lines') { should_not match_pam_rules(['auth sufficient pam_rootok.so']) }
    its('services') { should eq({'login' => ['login auth required pam_unix.so'], 'su' => ['su auth sufficient pam_rootok.so']}) }
  end
end
control 'directory' do
  describe pam('/etc/pam-dir') do
    its('lines') { should match_pam_rule('auth .* pam_unix.so').all_with_args('nullok') }
    its('lines') { should_not match_pam_rule('auth .* pam_unix.so').all_with_args('debug') }
    its('rules.services') { should eq ['one', 'two'] }
  end
end
control 'directory-no-service' do
  describe pam('/etc/pam-dir') do
    its('lines') { should match_pam_rules(['auth required pam_unix.so']) }
  end
end
control 'directory-services' do
  describe pam('/etc/pam.d/login').rules.services do
    it { should eq ['login'] }
  end
end
control 'at-include' do
  describe pam('/etc/pam.d/sshd') do
    its('lines') { should match_pam_rule('account required pam_nologin.so') }
  end
end
control 'loop' do
  describe pam('/etc/pam-loop/a') do
    its('lines') { should match_pam_rule('auth .* pam_unix.so') }
  end
end
control 'missing' do
  describe pam('/etc/pam.d/nosuch') do
    its('lines') { should match_pam_rule('auth .* pam_unix.so') }
  end
end
`)
	checkResults(t, got, map[string]want{
		"stig-pkcs11": {report.ControlPassed, ""},
		"chains":      {report.ControlPassed, ""},
		"include":     {report.ControlPassed, ""},
		// MITRE's Rules#include? compares the expected rules with themselves: a regex control never equals its text.
		"alternation-self-match": {report.ControlFailed, "to include password (required|requisite) pam_pwquality.so"},
		"pam-conf":               {report.ControlError, "More than one service found: '[login', 'su]'"},
		// the file's name is the service when none is given: pam.conf's rules name theirs
		"pam-conf-rules":       {report.ControlPassed, ""},
		"directory":            {report.ControlPassed, ""},
		"directory-no-service": {report.ControlError, `You must pass ":service_name" as an option!`},
		"directory-services":   {report.ControlPassed, ""},
		"at-include":           {report.ControlError, "Invalid PAM configuration rule: '@include common-auth'"},
		"loop":                 {report.ControlError, "nested deeper than"},
		"missing":              {report.ControlFailed, "to include auth .* pam_unix.so"},
	})
}

func TestParsePamRule(t *testing.T) {
	for _, tc := range []struct {
		line, service                   string
		hasService                      bool
		svc, typ, control, module, args string
		silent                          bool
	}{
		{"auth\t[success=2 default=ignore]\tpam_unix.so nullok", "x", true, "x", "auth", "[success=2 default=ignore]", "pam_unix.so", "nullok", false},
		{"-session optional pam_systemd.so", "x", true, "x", "session", "optional", "pam_systemd.so", "", true},
		{"login auth required pam_unix.so a b", "", false, "login", "auth", "required", "pam_unix.so", "a b", false},
		{"auth required /lib/security/pam_x.so", "x", true, "x", "auth", "required", "/lib/security/pam_x.so", "", false},
	} {
		r, err := parsePamRule(tc.line, tc.service, tc.hasService)
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		if r.service != tc.svc || r.typ != tc.typ || r.control != tc.control || r.module != tc.module ||
			strings.Join(r.args, " ") != tc.args || r.silent != tc.silent {
			t.Errorf("%q: got %+v", tc.line, r)
		}
	}
	if _, err := parsePamRule("@include common-auth", "x", true); err == nil {
		t.Error("a two-field line parsed")
	}
}

// FuzzPamFile parses arbitrary files as the pam resource reads them and matches their rules against each other:
// no panic, and every rule read keeps its fields.
func FuzzPamFile(f *testing.F) {
	for _, s := range pamFiles {
		f.Add(s, "auth .* pam_unix.so")
	}
	f.Add("a b c\\\n d e\n# x\n\n", "a (b|c) [d]")
	f.Fuzz(func(t *testing.T, content, expected string) {
		if len(content) > 64<<10 || len(expected) > 1024 {
			return
		}
		rs := &pamRules{target: "/etc/pam.d/f"}
		for _, l := range pamLines(content) {
			r, err := parsePamRule(l, "f", true)
			if err != nil {
				continue
			}
			if r.typ == "" || r.control == "" || r.module == "" {
				t.Fatalf("%q: empty field in %+v", l, r)
			}
			rs.rules = append(rs.rules, r)
			if len(rs.rules) > 64 {
				break
			}
		}
		w, err := parsePamRule(expected, "f", true)
		if err != nil {
			return
		}
		_, _ = rs.includeRules([]pamRule{w}, false)
		_, _ = rs.includeRules([]pamRule{w, w}, true)
	})
}
