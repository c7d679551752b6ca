package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFiles writes files (path in dir → content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// An InSpec profile is listed control by control: what a filesystem answers runs, command() is skipped with
// the line that needs exec, and a file that does not parse keeps its control, skipped with the parse error.
func TestProfileCheckInSpec(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"inspec.yml": "name: demo\nversion: 0.1.0\n",
		"controls/x.rb": `control 'passwd-1' do
  impact 0.7
  describe file('/etc/passwd') do
    it { should exist }
  end
end

control 'sshd-1' do
  describe command('sshd -T') do
    its('stdout') { should match /permitrootlogin no/ }
  end
end
`,
		"controls/y.rb": `# a typo a user makes
control 'broken-1' do
  describe file('/etc/shadow' do
    it { should exist }
  end
end
`,
	})
	stdout, stderr, code := run(t, "profile", "check", dir)
	if code != exitOK {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitOK, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	want := []string{
		dir + ": InSpec profile demo 0.1.0",
		"controls/x.rb:1  passwd-1  run",
		`controls/x.rb:8  sshd-1  skip  controls/x.rb:9: command("sshd -T") needs exec in the target`,
		"controls/y.rb:2  broken-1  skip  controls/y.rb:2: the file does not parse: controls/y.rb:3: ",
		"3 controls: 1 will run, 2 will be skipped",
		`  skipped: command("...") needs exec in the target (1 controls)`,
		"  skipped: the file does not parse (1 controls)",
	}
	if len(lines) != len(want) {
		t.Fatalf("stdout has %d lines, want %d:\n%s", len(lines), len(want), stdout)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want it to start with %q", i+1, lines[i], w)
		}
	}
	if !strings.HasPrefix(stderr, "controls/y.rb:3: ") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr = %q, want the parse error alone as controls/y.rb:3: message", stderr)
	}
}

// A path that looks like an InSpec profile but cannot be loaded fails as a broken YAML/CEL profile does, and
// the other paths are still checked.
func TestProfileCheckInSpecUnloadable(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"inspec.yml": "version: 1.0.0\n"}) // no name
	stdout, stderr, code := run(t, "profile", "check", dir, filepath.Join(dir, "missing.tar.gz"), "builtin:container-baseline")
	if code != exitPartial {
		t.Errorf("exit %d, want %d", code, exitPartial)
	}
	if !strings.Contains(stderr, "the profile has no name") || !strings.Contains(stderr, "missing.tar.gz") {
		t.Errorf("stderr does not say why both profiles failed:\n%s", stderr)
	}
	if !strings.Contains(stdout, "builtin:container-baseline: profile container-baseline") {
		t.Errorf("the CEL profile after them was not checked:\n%s", stdout)
	}
}

// YAML/CEL profiles are checked as before: a good one is counted, a broken one is named with its error and
// exit 1.
func TestProfileCheckCEL(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"good.yaml": `name: good
version: 1.0.0
controls:
  - id: good-01
    title: passwd exists
    impact: 0.5
    checks:
      - desc: passwd
        expr: file("/etc/passwd").exists
`,
		"bad/bad.yaml": `name: bad
version: 1.0.0
controls:
  - id: bad-01
    title: broken
    impact: 0.5
    checks:
      - desc: not CEL
        expr: file("/etc/passwd").exists &&
`,
	})
	stdout, stderr, code := run(t, "profile", "check", filepath.Join(dir, "good.yaml"))
	if code != exitOK || stdout != filepath.Join(dir, "good.yaml")+": profile good 1.0.0: 1 controls OK\n" || stderr != "" {
		t.Errorf("good profile: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	stdout, stderr, code = run(t, "profile", "check", filepath.Join(dir, "bad"))
	if code != exitPartial || stdout != "" || !strings.Contains(stderr, "bad.yaml:9: control bad-01 check 1: Syntax error") {
		t.Errorf("broken profile: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// An InSpec profile runs in a scan of a directory: its controls are evaluated on the root with the inputs of
// --input-file, and -o hdf writes them as InSpec's exec JSON (profile, groups by file, results per describe).
func TestScanInSpecProfile(t *testing.T) {
	root, prof := t.TempDir(), t.TempDir()
	writeFiles(t, root, map[string]string{"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n", "etc/login.defs": "PASS_MAX_DAYS 60\n"})
	writeFiles(t, prof, map[string]string{
		"inspec.yml": "name: demo\nversion: 1.2.3\ninputs:\n  - name: max_days\n    value: 30\n",
		"controls/a.rb": `control 'passwd' do
  impact 0.7
  tag severity: 'high'
  describe file('/etc/passwd') do
    it { should exist }
  end
end
control 'max-days' do
  describe login_defs do
    its('PASS_MAX_DAYS') { should cmp <= input('max_days') }
  end
end
control 'cmd' do
  describe command('id -u') do
    its('stdout') { should eq "0" }
  end
end
`,
		"inputs.yml": "max_days: 90\n",
	})
	stdout, stderr, code := run(t, "scan", "--dir", root, "--no-baseline", "--profile", prof, "--input-file", filepath.Join(prof, "inputs.yml"), "-o", "hdf")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var doc struct {
		Profiles []struct {
			Name, Version, SHA256 string
			Groups                []struct{ ID string }
			Controls              []struct {
				ID      string
				Impact  float64
				Tags    map[string]any
				Results []struct {
					Status      string
					CodeDesc    string `json:"code_desc"`
					SkipMessage string `json:"skip_message"`
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	if len(doc.Profiles) != 1 || doc.Profiles[0].Name != "demo" || doc.Profiles[0].Version != "1.2.3" || len(doc.Profiles[0].SHA256) != 64 ||
		len(doc.Profiles[0].Groups) != 1 || doc.Profiles[0].Groups[0].ID != "controls/a.rb" {
		t.Fatalf("profile: %s", stdout)
	}
	got := map[string]string{}
	for _, c := range doc.Profiles[0].Controls {
		for _, r := range c.Results {
			got[c.ID] += r.Status + " " + r.CodeDesc + " " + r.SkipMessage + ";"
		}
	}
	want := map[string]string{
		"passwd":   "passed File /etc/passwd is expected to exist ;",
		"max-days": "passed login.defs PASS_MAX_DAYS is expected to cmp <= 90 ;",
		"cmd":      "skipped Command: `id -u` stdout is expected to eq \"0\" command(\"id -u\") needs exec in the target;",
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: got %q, want %q", id, got[id], w)
		}
	}
	if c := doc.Profiles[0].Controls[0]; c.Impact != 0.7 || c.Tags["severity"] != "high" {
		t.Errorf("passwd control: impact %v, tags %v", c.Impact, c.Tags)
	}
}

// An overlay's dependencies are reported with the inspec.yml line of each entry and the line of each
// include_controls: a loaded one lists its controls (minus skip_control), one that is not vendored says so,
// and the overlay's controls for it are skipped with that reason.
func TestProfileCheckInSpecDependencies(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"inspec.yml": "name: ovl\nversion: 1.0.0\ndepends:\n  - name: base\n    path: deps/base\n  - name: remote\n    url: https://example.invalid/r.tar.gz\n",
		"controls/o.rb": "include_controls 'base' do\n  skip_control 'b-2'\nend\n" +
			"include_controls 'remote' do\n  control 'r-1' do\n    impact 0.1\n  end\nend\n",
		"deps/base/inspec.yml": "name: base\nversion: 0.1.0\n",
		"deps/base/controls/b.rb": "control 'b-1' do\n  describe file('/etc/passwd') do\n    it { should exist }\n  end\nend\n" +
			"control 'b-2' do\n  describe file('/etc/shadow') do\n    it { should exist }\n  end\nend\n",
	})
	stdout, stderr, code := run(t, "profile", "check", dir)
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	want := dir + ": InSpec profile ovl 1.0.0\n" +
		"inspec.yml:4  dependency base  loaded (base 0.1.0, 2 controls)\n" +
		"inspec.yml:6  dependency remote  not vendored: dependency remote is not vendored: run inspec vendor\n" +
		"controls/o.rb:1  include_controls 'base'  loaded (1 skip_control, 0 require_control)\n" +
		"controls/o.rb:4  include_controls 'remote'  dependency remote is not vendored: run inspec vendor\n" +
		"controls/o.rb:5  r-1  skip  controls/o.rb:5: dependency remote is not vendored: run inspec vendor\n" +
		"base:controls/b.rb:1  b-1  run\n" +
		"2 controls: 1 will run, 1 will be skipped\n" +
		"  skipped: dependency remote is not vendored: run inspec vendor (1 controls)\n"
	if stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}
}

// A control that needs only the container's process is neither "run" nor a plain "skip": the check says a node
// scan of a running container and the daemon evaluate it, a --dir or --oci scan skips it.
func TestProfileCheckInSpecNodeOnly(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"inspec.yml": "name: procs\nversion: 0.1.0\n",
		"controls/p.rb": "control 'env-1' do\n  describe os_env('PATH') do\n    its('content') { should_not be_nil }\n  end\nend\n" +
			"control 'mixed-1' do\n  describe processes('sshd') do\n    it { should_not exist }\n  end\n" +
			"  describe command('sshd -T') do\n    its('exit_status') { should eq 0 }\n  end\nend\n",
	})
	stdout, stderr, code := run(t, "profile", "check", dir)
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	proc := "needs the container's running process: answered by the daemon and by a node scan of a running container, skipped for --dir and --oci"
	for _, w := range []string{
		"controls/p.rb:1  env-1  node-only  controls/p.rb:2: os_env " + proc + "\n",
		"controls/p.rb:6  mixed-1  skip  controls/p.rb:7: processes " + proc + "; controls/p.rb:10: command(\"sshd -T\") needs exec in the target\n",
		"2 controls: 0 will run, 1 will run in a node scan of a running container and in the daemon (skipped for --dir and --oci), 1 will be skipped\n",
	} {
		if !strings.Contains(stdout, w) {
			t.Errorf("stdout lacks %q:\n%s", w, stdout)
		}
	}
}
