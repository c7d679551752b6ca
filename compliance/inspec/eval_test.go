package inspec

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootscan/rootscan/compliance"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
)

// evalRoot is a small root on disk with the files a Debian image has, opened through fsaccess like a container.
func evalRoot(t testing.TB, files map[string]string, modes map[string]os.FileMode) *fsaccess.Root {
	t.Helper()
	return openRoot(t, evalDir(t, files, modes))
}

// evalDir writes files ("->x" a symlink to x, "/" a directory) with modes into a new directory.
func evalDir(t testing.TB, files map[string]string, modes map[string]os.FileMode) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasPrefix(content, "->"):
			if err := os.Symlink(strings.TrimPrefix(content, "->"), p); err != nil {
				t.Fatal(err)
			}
		case content == "/":
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, m := range modes {
		if err := os.Chmod(filepath.Join(dir, name), m); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func openRoot(t testing.TB, dir string) *fsaccess.Root {
	t.Helper()
	root, err := fsaccess.OpenDir(dir, fsaccess.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return root
}

var evalFiles = map[string]string{
	"etc/passwd":             "root:x:0:0:root:/root:/bin/bash\nsshd:x:100:65534::/run/sshd:/usr/sbin/nologin\napp:x:1000:1000::/home/app:/bin/sh\n",
	"etc/shadow":             "root:*:19000:0:99999:7:::\nsshd:!:19000::::::\napp:$6$x$y:19000:1:90:7:::\n",
	"etc/group":              "root:x:0:\nshadow:x:42:\napp:x:1000:\nusers:x:100:app\n",
	"etc/login.defs":         "# defaults\nPASS_MAX_DAYS\t99999\nPASS_MIN_DAYS 0\nUMASK\t\t022\n",
	"etc/ssh/sshd_config":    "Port 22\nPermitRootLogin no\npermitrootlogin yes\nHostKey /etc/ssh/a\nHostKey /etc/ssh/b\nCiphers aes256-ctr,aes128-ctr\n",
	"etc/app.json":           `{"server": {"port": 8080, "tls": true}, "users": ["a", "b"]}`,
	"etc/localtime":          "->/usr/share/zoneinfo/UTC",
	"usr/share/zoneinfo/UTC": "TZif",
	"usr/sbin/sshd":          "ELF",
	"bin":                    "->usr/bin",
	"usr/bin/dash":           "ELF",
	"tmp":                    "/",
}

var evalModes = map[string]os.FileMode{
	"etc/shadow": 0o640, "usr/sbin/sshd": 0o755, "usr/bin/dash": 0o755, "tmp": 0o777 | os.ModeSticky,
}

func evalProfile(t testing.TB, yml string, controls map[string]string, inputs map[string]any) []report.ControlResult {
	t.Helper()
	return evalProfileCtx(context.Background(), t, yml, controls, inputs)
}

func evalProfileCtx(ctx context.Context, t testing.TB, yml string, controls map[string]string, inputs map[string]any) []report.ControlResult {
	t.Helper()
	files := map[string][]byte{"inspec.yml": []byte(yml)}
	for k, v := range controls {
		files[k] = []byte(v)
	}
	p, err := FromFiles("test", files, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	root := evalRoot(t, evalFiles, evalModes)
	res := &report.Result{
		OS: &report.OS{ID: "debian", VersionID: "12"},
		Packages: []report.Package{
			{Name: "openssh-server", Version: "1:9.2p1-2+deb12u3", Ecosystem: report.EcosystemDebian, Arch: "amd64"},
			{Name: "login", Version: "1:4.13+dfsg1-1", Ecosystem: report.EcosystemDebian, Arch: "amd64"},
			{Name: "requests", Version: "2.31.0", Ecosystem: report.EcosystemPyPI},
		},
	}
	tg := compliance.NewTarget(ctx, root, report.Target{Kind: "dir"}, nil, res, compliance.Limits{}, nil)
	return NewRunner(p, inputs, EvalLimits{}).Evaluate(ctx, tg)
}

type want struct {
	status string
	msg    string // a substring of the message ("" = empty message)
}

func checkResults(t *testing.T, got []report.ControlResult, wants map[string]want) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range got {
		seen[r.ID] = true
		w, ok := wants[r.ID]
		if !ok {
			t.Errorf("unexpected control %s: %s %q", r.ID, r.Status, r.Message)
			continue
		}
		if r.Status != w.status || (w.msg == "" && r.Message != "") || !strings.Contains(r.Message, w.msg) {
			t.Errorf("%s: got %s %q, want %s %q", r.ID, r.Status, r.Message, w.status, w.msg)
			for _, c := range r.Checks {
				t.Logf("   %s: %s %q", c.Desc, c.Status, c.Message)
			}
		}
	}
	for id := range wants {
		if !seen[id] {
			t.Errorf("control %s has no result", id)
		}
	}
}

func TestEvaluateFileResources(t *testing.T) {
	got := evalProfile(t, "name: t\n", map[string]string{"controls/file.rb": `
control 'shadow-mode' do
  impact 0.7
  describe file('/etc/shadow') do
    it { should exist }
    it { should be_file }
    its('mode') { should cmp '0640' }
    its('owner') { should eq 'root' }
    it { should_not be_readable.by('others') }
    it { should be_readable.by('group') }
    it { should_not be_more_permissive_than('0640') }
  end
end
control 'shadow-too-open' do
  describe file('/etc/shadow') do
    it { should_not be_more_permissive_than('0600') }
  end
end
control 'link' do
  describe file('/etc/localtime') do
    it { should be_symlink }
    its('link_path') { should eq '/usr/share/zoneinfo/UTC' }
    its('content') { should match /^TZ/ }
  end
  describe file('/bin/dash') do
    it { should be_executable }
    its('mode') { should cmp 0755 }
  end
end
control 'missing' do
  describe file('/etc/nope') do
    it { should_not exist }
    its('mode') { should be_nil }
  end
  describe file('/etc/nope2') do
    it { should exist }
  end
end
control 'tmp-sticky' do
  describe directory('/tmp') do
    it { should be_sticky }
    it { should be_directory }
  end
end
`}, nil)
	checkResults(t, got, map[string]want{
		"shadow-mode":     {report.ControlPassed, ""},
		"shadow-too-open": {report.ControlFailed, "File /etc/shadow is expected not to be more permissive than \"0600\""},
		"link":            {report.ControlPassed, ""},
		"missing":         {report.ControlFailed, "File /etc/nope2 is expected to exist"},
		"tmp-sticky":      {report.ControlPassed, ""},
	})
}

// The Ruby and RSpec that profiles write, and InSpec's cmp rules.
func TestEvaluateLanguage(t *testing.T) {
	got := evalProfile(t, "name: t\ninputs:\n  - name: users\n    value: [root, app]\n", map[string]string{"controls/lang.rb": `
lines = "a=1\nb=2\n"
control 'regex-lines' do
  describe lines do
    it { should match /^b=2$/ }
    it { should_not match /\Ab=2/ }
  end
end
control 'cmp-rules' do
  describe ['0644'] do
    it { should cmp '0644' }
  end
  describe 'Yes' do
    it { should cmp 'yes' }
  end
  describe '1.10.2' do
    it { should cmp > '1.9' }
  end
  describe '42' do
    it { should cmp 42 }
  end
  describe 0o640 do
    it { should cmp '0640' }
  end
  describe 'abc' do
    it { should cmp /b/ }
  end
end
control 'ruby' do
  x = input('users').map(&:upcase).select { |u| u.start_with?('R') }
  h = { 'a' => [1, 2], b: 3 }
  y = case h['a'].size
      when 0..1 then 'small'
      else 'large'
      end
  z = begin
    Integer('nope')
  rescue ArgumentError => e
    'rescued'
  end
  total = 0
  [1, 2, 3].each { |i| next if i == 2; total += i }
  describe [x, y, z, total, h[:b], 'a b  c'.split, "k=v".split('=', 2).last, nil&.size, 7.to_s.to_i] do
    it { should eq [['ROOT'], 'large', 'rescued', 4, 3, ['a', 'b', 'c'], 'v', nil, 7] }
  end
end
control 'let-and-inspec' do
  describe 'login.defs' do
    let(:defs) { inspec.login_defs }
    it { expect(defs.PASS_MAX_DAYS).to cmp 99999 }
  end
end
control 'filter-tables' do
  describe users.where { uid >= 1000 }.usernames do
    it { should eq ['app'] }
  end
  describe passwd.where(user: /^s/).shells do
    it { should all(match %r{nologin$}) }
  end
  describe etc_group.where(name: 'users') do
    its('users') { should include 'app' }
  end
  describe shadow.where { password =~ /^\$/ }.users do
    it { should eq ['app'] }
  end
end
control 'library' do
  describe app_config do
    its('port') { should eq 8080 }
    its('path') { should eq '/etc/app.json' }
    it { should be_tls }
  end
end
control 'host-file' do
  describe File.exist?('/etc/passwd') do
    it { should eq true }
  end
end
control 'describe-one' do
  describe.one do
    describe sshd_config do
      its('Port') { should cmp 2222 }
    end
    describe sshd_config do
      its('Port') { should cmp 22 }
    end
  end
end
`, "controls/guarded.rb": `
crypto = ssh_crypto.valid_ciphers
only_if('no sshd binary') { command('sshd').exist? }
control 'uses-library' do
  describe sshd_config do
    its('Ciphers') { should eq crypto }
  end
end
control 'no-library' do
  describe sshd_config do
    its('HostKey') { should eq ['/etc/ssh/a', '/etc/ssh/b'] }
  end
end
`, "controls/none.rb": `
only_if('needs a shell') { command('bash').exist? }
control 'no-bash' do
  impact 0.7
  describe file('/bin/bash') do
    it { should exist }
  end
end
`, "libraries/ssh_crypto.rb": `
class SshCrypto < Inspec.resource(1)
  name 'ssh_crypto'
  def valid_ciphers
    inspec.command('sshd -V').stderr
  end
end
`, "libraries/app_config.rb": `
class AppConfig < Inspec.resource(1)
  name 'app_config'
  attr_reader :path

  def initialize(path = '/etc/app.json')
    super()
    @path = path
    @data = inspec.json(path)
  end

  def port
    @data.params['server']['port']
  end

  def tls?
    settings['tls'] == true
  end

  def to_s
    "App config #{@path}"
  end

  private

  def settings
    @data.params.fetch('server', {})
  end
end
`}, nil)
	checkResults(t, got, map[string]want{
		"regex-lines":    {report.ControlPassed, ""},
		"cmp-rules":      {report.ControlPassed, ""},
		"ruby":           {report.ControlPassed, ""},
		"let-and-inspec": {report.ControlPassed, ""},
		"filter-tables":  {report.ControlPassed, ""},
		"describe-one":   {report.ControlPassed, ""},
		"uses-library":   {report.ControlSkipped, `command("sshd -V") needs exec in the target`},
		"library":        {report.ControlPassed, ""},
		"no-library":     {report.ControlPassed, ""},
		"no-bash":        {report.ControlSkipped, "Skipped control due to only_if condition: needs a shell"},
		"host-file":      {report.ControlSkipped, "File.exist? reads the machine running the profile"},
	})
}

// command('...') lines that only read files are answered from the root, in the forms the baselines write;
// every other line needs exec and skips its check.
func TestEvaluateCommands(t *testing.T) {
	got := evalProfile(t, "name: t\n", map[string]string{"controls/cmd.rb": `
control 'which' do
  describe command('which sshd') do
    its('stdout') { should eq "/usr/sbin/sshd\n" }
    its('exit_status') { should eq 0 }
  end
  describe command('which nosuch').exit_status do
    it { should eq 1 }
  end
end
control 'stat' do
  describe command('stat -c "%a %U:%G %F" /etc/shadow').stdout.strip do
    it { should eq '640 root:root regular file' }
  end
  describe command("stat -c %A /tmp").stdout do
    it { should match /^drwxrwxrwx/ }
  end
end
control 'grep' do
  describe command("grep -E '^(root|app):' /etc/passwd").stdout.lines.size do
    it { should eq 2 }
  end
  describe command('grep -c "^PASS_M\(AX\|IN\)_DAYS" /etc/login.defs 2>/dev/null').stdout.to_i do
    it { should eq 2 }
  end
  describe command('grep -q nosuch /etc/passwd').exit_status do
    it { should eq 1 }
  end
  describe command('grep x /etc/nosuch').exit_status do
    it { should eq 2 }
  end
end
control 'files' do
  describe command('test -f /etc/passwd').exit_status do
    it { should eq 0 }
  end
  describe command('[ -d /etc/passwd ]').exit_status do
    it { should eq 1 }
  end
  describe command('readlink -f /etc/localtime').stdout do
    it { should eq "/usr/share/zoneinfo/UTC\n" }
  end
  describe command('ls /etc/ssh').stdout do
    it { should eq "sshd_config\n" }
  end
  describe command('head -n 1 /etc/passwd').stdout do
    it { should start_with 'root:' }
  end
  describe command('cat /etc/ssh/*').stdout do
    it { should include 'PermitRootLogin no' }
  end
end
control 'pipes' do
  describe command('ls /etc | wc -l') do
    its('stdout') { should eq "7\n" }
  end
  describe command("grep -v '^root' /etc/passwd | grep -c sh 2>&1") do
    its('stdout') { should eq "2\n" }
  end
  describe command('cat /etc/nosuch 2>&1 | head -n 1') do
    its('stdout') { should eq "cat: /etc/nosuch: No such file or directory\n" }
    its('stderr') { should eq '' }
  end
  describe command('cat "/etc/ssh/*"') do
    its('exit_status') { should eq 1 }
  end
end
control 'needs-exec' do
  describe command('ls /etc | xargs ls') do
    its('stdout') { should eq "1\n" }
  end
  describe command('sshd -T').stdout do
    it { should match /permitrootlogin/ }
  end
end
`}, nil)
	checkResults(t, got, map[string]want{
		"which":      {report.ControlPassed, ""},
		"stat":       {report.ControlPassed, ""},
		"grep":       {report.ControlPassed, ""},
		"files":      {report.ControlPassed, ""},
		"pipes":      {report.ControlPassed, ""},
		"needs-exec": {report.ControlSkipped, `command("ls /etc | xargs ls") needs exec in the target; command("sshd -T") needs exec in the target`},
	})
}

// Hostile profile code costs its own control: loops, doubling strings, self-nesting arrays and deep recursion
// stop at the bounds with an error result, and the next control still runs.
func TestEvaluateBounds(t *testing.T) {
	got := evalProfile(t, "name: t\n", map[string]string{"controls/bad.rb": `
control 'loop' do
  loop { }
end
control 'doubling' do
  s = 'x' * 1024
  40.times { s = s + s }
end
control 'nesting' do
  a = [1]
  30.times { a << a }
  describe a.flatten.join(',').size do
    it { should eq 0 }
  end
end
def down(n)
  down(n + 1)
end
control 'recursion' do
  down(0)
end
control 'still-runs' do
  describe [[1, [2]], 3].join(',') do
    it { should eq '1,2,3' }
  end
end
`}, nil)
	checkResults(t, got, map[string]want{
		"loop":       {report.ControlError, "evaluation stopped after"},
		"doubling":   {report.ControlError, "a string grew past"},
		"nesting":    {report.ControlError, "an array grew past"},
		"recursion":  {report.ControlError, "evaluation nested deeper than"},
		"still-runs": {report.ControlPassed, ""},
	})
}

// Comparing arrays that contain themselves ends: identity first, then a bound on the nodes compared.
func TestEqualSelfNesting(t *testing.T) {
	a, b := newArray([]any{int64(1)}), newArray([]any{int64(1)})
	for range 20 {
		a.v = append(a.v, a)
		b.v = append(b.v, b)
	}
	if !equal(a, a) {
		t.Error("an array is not equal to itself")
	}
	if equal(a, b) {
		t.Error("two self-nesting arrays compared equal past the bound")
	}
}

// etc_fstab and limits_conf read their files as InSpec's resources do.
func TestEvaluateSystemFiles(t *testing.T) {
	evalFiles["etc/fstab"] = "# <fs> <mount> <type> <options> <dump> <pass>\nUUID=1 / ext4 errors=remount-ro 0 1\ntmpfs /tmp tmpfs nodev,nosuid,noexec 0 0\n"
	evalFiles["etc/security/limits.conf"] = "# limits\n*  hard  core  0\n@adm soft nproc 100\n*  soft  nofile 1024\n"
	defer delete(evalFiles, "etc/fstab")
	defer delete(evalFiles, "etc/security/limits.conf")
	got := evalProfile(t, "name: t\n", map[string]string{"controls/sys.rb": `
control 'fstab' do
  describe etc_fstab.where { mount_point == '/tmp' } do
    its('mount_options.first') { should include 'noexec' }
    its('file_system_type') { should cmp 'tmpfs' }
  end
  describe etc_fstab.mount_point do
    it { should eq ['/', '/tmp'] }
  end
end
control 'limits' do
  describe limits_conf do
    its('*') { should include ['hard', 'core', '0'] }
    its('@adm') { should eq [['soft', 'nproc', '100']] }
  end
end
`}, nil)
	checkResults(t, got, map[string]want{"fstab": {report.ControlPassed, ""}, "limits": {report.ControlPassed, ""}})
}
