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
	tg := compliance.NewTarget(context.Background(), root, report.Target{Kind: "dir"}, nil, res, compliance.Limits{}, nil)
	return NewRunner(p, inputs, EvalLimits{}).Evaluate(context.Background(), tg)
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
