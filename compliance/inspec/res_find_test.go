package inspec

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rootscan/rootscan/report"
)

// findFiles is a small merged-usr root with what the baselines' find commands look for.
var findFiles = map[string]string{
	"etc/passwd":            "root:x:0:0:root:/root:/bin/bash\napp:x:1000:1000::/home/app:/bin/sh\n",
	"etc/group":             "root:x:0:\napp:x:1000:\n",
	"usr/bin/su":            "ELF",
	"usr/bin/wall":          "ELF",
	"usr/bin/ls":            "ELF",
	"usr/lib/ok.so":         "ELF",
	"usr/lib/bad.so":        "ELF",
	"lib":                   "->usr/lib",
	"tmp":                   "/",
	"var/open":              "/",
	"var/orphan":            "x",
	"home/app/.netrc":       "machine x",
	"home/app/sub/.rhosts":  "+ +",
	"home/app/sub/deep/key": "k",
}

var findModes = map[string]os.FileMode{
	"usr/bin/su": 0o755 | os.ModeSetuid, "usr/bin/wall": 0o755 | os.ModeSetgid, "usr/bin/ls": 0o755,
	"usr/lib/bad.so": 0o666, "tmp": 0o777 | os.ModeSticky, "var/open": 0o777,
}

func TestEvaluateFind(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("the unowned files are made with chown, which needs root")
	}
	dir := evalDir(t, findFiles, findModes)
	for _, f := range []string{"var/orphan", "usr/lib/bad.so"} {
		if err := os.Lchown(filepath.Join(dir, f), 4242, 4242); err != nil {
			t.Fatal(err)
		}
	}
	got := evalOnRoot(t, openRoot(t, dir), `
control 'suid' do
  describe command('find / -xdev -type f \( -perm -4000 -o -perm -2000 \) 2>/dev/null') do
    its('stdout') { should eq "/usr/bin/su\n/usr/bin/wall\n" }
    its('exit_status') { should eq 0 }
  end
  describe command('find / -xdev -type f -perm /u=s,g=s') do
    its('stdout') { should eq "/usr/bin/su\n/usr/bin/wall\n" }
  end
end
control 'dev-sec-suid-library' do
  describe command("find / -type d \\( -path '/proc/*' -o -path '/var/lib/lxd/containers/*' \\) -prune -type f -o -perm -2000 -o -perm 4000 2>/dev/null | grep -v '^find:'") do
    its('stdout') { should eq "/usr/bin/wall\n" }
  end
end
control 'world-writable-dirs' do
  describe command('find / -xdev -type d  \( -perm -0002 -a ! -perm -1000 \) -print 2>/dev/null').stdout.strip.split("\n") do
    it { should eq ['/var/open'] }
  end
  describe command('find / -xdev -type d -perm -o+w') do
    its('stdout') { should eq "/tmp\n/var/open\n" }
  end
end
control 'stig-owners' do
  describe command('find /lib /usr/lib /lib32 ! \-user root \-type f') do
    its('stdout') { should eq "/usr/lib/bad.so\n" }
    its('stderr') { should eq "find: '/lib32': No such file or directory\n" }
    its('exit_status') { should eq 1 }
  end
  describe command('find -L /lib -perm /022 -type f').stdout do
    it { should eq "/lib/bad.so\n" }
  end
  describe command('find / -xdev -nouser -o -nogroup') do
    its('stdout') { should eq "/usr/lib/bad.so\n/var/orphan\n" }
  end
  describe command('find /usr -group 1000') do
    its('stdout') { should eq '' }
  end
end
control 'rhosts' do
  describe command("find / -maxdepth 3 \\( -iname .rhosts -o -iname .NETRC \\) -print 2>/dev/null | grep -v '^find:'") do
    its('stdout') { should eq "/home/app/.netrc\n" }
  end
end
control 'prune-and-names' do
  describe command('find / -path /usr -prune -o -type f -perm -4000 -print') do
    its('stdout') { should eq '' }
  end
  describe command("find /usr/bin -name 's*'") do
    its('stdout') { should eq "/usr/bin/su\n" }
  end
  describe command('find /var -maxdepth 1 -type d') do
    its('stdout') { should eq "/var\n/var/open\n" }
  end
  describe command('find /home -mindepth 2 -name "*s*"') do
    its('stdout') { should eq "/home/app/sub\n/home/app/sub/.rhosts\n" }
  end
end
control 'find-errors' do
  describe command('find / -user nosuchuser') do
    its('stderr') { should eq "find: 'nosuchuser' is not the name of a known user\n" }
    its('exit_status') { should eq 1 }
  end
end
control 'find-exec' do
  describe command('find / -newer /etc/passwd') do
    its('stdout') { should eq '' }
  end
end
`)
	checkResults(t, got, map[string]want{
		"suid":                 {report.ControlPassed, ""},
		"dev-sec-suid-library": {report.ControlPassed, ""},
		"world-writable-dirs":  {report.ControlPassed, ""},
		"stig-owners":          {report.ControlPassed, ""},
		"rhosts":               {report.ControlPassed, ""},
		"prune-and-names":      {report.ControlPassed, ""},
		"find-errors":          {report.ControlPassed, ""},
		"find-exec":            {report.ControlSkipped, `command("find / -newer /etc/passwd") needs exec in the target`},
	})
}

// FuzzCommandLine parses arbitrary command lines as command('...') gets them and runs find's expression parser
// on what they expand to: no panic, and the static check and the parser agree.
func FuzzCommandLine(f *testing.F) {
	for _, s := range []string{
		`find / -xdev -type d  \( -perm -0002 -a ! -perm -1000 \) -print 2>/dev/null`,
		`find /lib /usr/lib ! \-user root \-type f`,
		`find / -maxdepth 3 \( -iname .rhosts -o -iname .netrc \) -print 2>/dev/null | grep -v '^find:'`,
		`grep -c "^PASS_M\(AX\|IN\)_DAYS" /etc/login.defs >/dev/null 2>&1`,
		`find -L /bin -perm /u=s,g+s,o-w -name '[!a-c]*\?' -o -path '*/x/[]' -prune`,
		"cat $(echo x) | wc -l", "{ a; } | b", "ls /etc/{a,b}*", "a <<EOF\nx\nEOF",
	} {
		f.Add(s)
	}
	cl := &classifier{cat: DefaultCatalog()}
	f.Fuzz(func(t *testing.T, line string) {
		if len(line) > 4096 {
			return
		}
		ok := cl.answerable(line)
		stages, parsed := parseLine(line)
		if ok && !parsed {
			t.Fatalf("%q: answerable but does not parse", line)
		}
		for _, st := range stages {
			args, ok := staticWords(st.call.Args)
			if !ok || len(args) < 2 {
				continue
			}
			if fc, err := parseFind(args[1:]); err == nil && fc.expr == nil {
				t.Fatalf("%q: find parsed without an expression", line)
			}
			_, _ = fnmatchRegexp(args[len(args)-1], false)
			_, _, _ = findPerm(args[len(args)-1])
		}
	})
}

// MITRE's find controls collect paths in a Set: << keeps one of each.
func TestEvaluateSet(t *testing.T) {
	got := evalOn(t, map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/sh\n"}, nil, `
control 'set' do
  s = Set[]
  ['/a', '/b', '/a'].each { |x| s << x }
  t = Set.new(['x', 'x'])
  describe s.count do
    it { should eq 2 }
  end
  describe t.to_a do
    it { should eq ['x'] }
  end
  t << 'y'
  t << 'x'
  describe t.to_a do
    it { should eq ['x', 'y'] }
  end
end
`)
	checkResults(t, got, map[string]want{"set": {report.ControlPassed, ""}})
}
