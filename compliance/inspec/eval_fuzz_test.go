package inspec

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rootscan/rootscan/compliance"
	"github.com/rootscan/rootscan/report"
)

// FuzzEvaluate evaluates arbitrary control files on a small root: the evaluator must never panic, and must stay
// within its step bound (a hang shows up as a slow run, an unbounded one as the deadline below).
func FuzzEvaluate(f *testing.F) {
	for _, s := range []string{
		"control 'a' do\n  describe file('/etc/passwd') do\n    its('mode') { should cmp '0644' }\n  end\nend\n",
		"x = input('users', value: [1, 2])\nx.each { |u| control \"c-#{u}\" do\n describe u do\n it { should be > 1 }\n end\n end }\n",
		"control 'b' do\n  only_if { os.linux? }\n  describe.one do\n    describe sshd_config do\n      its('Port') { should cmp 22 }\n    end\n  end\nend\n",
		"control 'c' do\n  a = []\n  while true do a << a end\nend\n",
		"control 'd' do\n  describe passwd.where { uid.to_i == 0 }.users do\n it { should eq ['root'] }\n end\nend\n",
		"def f(n)\n  f(n + 1)\nend\ncontrol 'e' do\n  f(1)\nend\n",
		"control 'f' do\n  s = 'a' * 1000\n  10.times { s = s + s }\n  describe s.size do\n it { should eq 0 }\n end\nend\n",
		"control 'g' do\n  x = begin\n raise 'x'\n rescue => e\n e\n end\n expect(x).to match(/x/)\nend\n",
		"control 'h' do\n  loop { }\nend\n",
		"control 'i' do\n  a = [1]\n  b = [1]\n  20.times { a << a; b << b }\n  describe a do\n it { should eq b }\n end\nend\n",
		"class R < Inspec.resource(1)\n  name 'r'\n  def initialize\n    @x = inspec.file('/etc/passwd').content\n  end\n  def lines\n    @x.lines\n  end\nend\ncontrol 'j' do\n  describe r do\n    its('lines') { should_not be_empty }\n  end\nend\n",
		"control 'k' do\n  describe command(\"grep -c '^root' /etc/passwd\").stdout.to_i do\n it { should eq 1 }\n end\nend\n",
		"control 'l' do\n  describe command('find / -xdev \\( -perm -4000 -o -name \"*d*\" \\) -print | grep -c x').stdout do\n it { should eq '' }\n end\nend\n",
		"control 'm' do\n  describe pam('/etc/pam.d') do\n its('lines') { should match_pam_rule('auth .* pam_unix.so').all_with_args('x') }\n end\n describe xml(content: '<a b=\"1\"/>') do\n its(['//@b']) { should eq ['1'] }\n end\nend\n",
	} {
		f.Add(s)
	}
	root := evalRoot(f, evalFiles, evalModes)
	f.Fuzz(func(t *testing.T, src string) {
		p, err := FromFiles("fuzz", map[string][]byte{"inspec.yml": []byte("name: fuzz\n"), "controls/f.rb": []byte(src)}, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		tg := compliance.NewTarget(ctx, root, report.Target{Kind: "dir"}, nil, &report.Result{}, compliance.Limits{}, nil)
		lim := EvalLimits{MaxSteps: 50_000, MaxDepth: 100, MaxStringBytes: 1 << 20, MaxElems: 100_000}
		start := time.Now()
		rs := NewRunner(p, nil, lim).Evaluate(ctx, tg)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("evaluation ran %v", time.Since(start))
		}
		for _, r := range rs {
			if r.Status == "" {
				t.Fatalf("control %q has no status", r.ID)
			}
		}
	})
}
