package compliance_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rootscan/rootscan/compliance"
	"github.com/rootscan/rootscan/compliance/inspec"
	"github.com/rootscan/rootscan/report"
)

// An InSpec profile runs in the Engine next to the CEL baseline: on the same root, with the waivers and the
// scope, and its controls are in the HDF as InSpec writes them (groups by file, inputs, code, per-describe
// results), read back with Heimdall's reader.
func TestEngineRunsInSpecProfile(t *testing.T) {
	files := map[string][]byte{
		"inspec.yml": []byte("name: site\nversion: 2.0.0\ninputs:\n  - name: shells\n    value: [/bin/sh]\n"),
		"controls/a.rb": []byte(`control 'site-01' do
  impact 0.7
  title 'passwd is root-owned'
  tag severity: 'high', nist: ['AC-3']
  describe file('/etc/passwd') do
    it { should be_owned_by 'root' }
    its('mode') { should cmp '0644' }
  end
end
control 'site-02' do
  impact 0.3
  describe passwd.where { user == 'root' }.shells do
    it { should eq input('shells') }
  end
end
`),
		"controls/b.rb": []byte(`control 'site-03' do
  describe command('sshd -T').stdout do
    it { should match /x/ }
  end
end
control 'site-04' do
  impact 0.5
  describe file('/etc/passwd') do
    it { should_not exist }
  end
end
`),
	}
	p, err := inspec.FromFiles("site", files, inspec.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := compliance.NewLoader(compliance.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := l.Load(compliance.Baseline)
	if err != nil {
		t.Fatal(err)
	}
	e := compliance.NewEngine(l, ps)
	e.Runners = []compliance.ProfileRunner{inspec.NewRunner(p, nil, inspec.EvalLimits{})}
	e.Waivers = compliance.Waivers{"site-04": {Justification: "accepted", Run: false}}
	e.Scope = &compliance.Scope{Rules: []compliance.ScopeRule{{Profiles: []string{"site"}, Namespaces: []string{"web"}}}}
	root := compliance.FixtureForTest(t, map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n", "etc/group": "root:x:0:\n", "etc/shadow": "root:*::::::::\n",
	})
	byID := func(rs []report.ControlResult) map[string]report.ControlResult {
		m := map[string]report.ControlResult{}
		for _, r := range rs {
			if r.Profile == "site" {
				m[r.ID] = r
			}
		}
		return m
	}
	out := e.Evaluate(context.Background(), root, report.Target{Kind: "container", Namespace: "jobs"}, nil, &report.Result{})
	if got := byID(out); len(got) != 0 {
		t.Errorf("the scope gives site to namespace web only, jobs got %v", got)
	}
	rs := e.Evaluate(context.Background(), root, report.Target{Kind: "container", Namespace: "web"}, nil, &report.Result{})
	got := byID(rs)
	want := map[string]string{"site-01": report.ControlPassed, "site-02": report.ControlPassed, "site-03": report.ControlSkipped, "site-04": report.ControlSkipped}
	for id, w := range want {
		if got[id].Status != w {
			t.Errorf("%s: %s %q, want %s", id, got[id].Status, got[id].Message, w)
		}
	}
	if got["site-04"].Waiver == nil || got["site-01"].Severity != report.SeverityHigh {
		t.Errorf("site-04 waiver %+v, site-01 severity %s", got["site-04"].Waiver, got["site-01"].Severity)
	}
	doc := e.HDF(report.Report{StartedAt: time.Now(), Result: &report.Result{Compliance: rs}})
	var site *compliance.HDFProfile
	for i := range doc.Profiles {
		if doc.Profiles[i].Name == "site" {
			site = &doc.Profiles[i]
		}
	}
	if site == nil || site.Version != "2.0.0" || len(site.SHA256) != 64 || len(site.Groups) != 2 || site.Groups[0].ID != "controls/a.rb" ||
		len(site.Attributes) != 1 || site.Controls[0].SourceLocation.Line != 1 || site.Controls[0].Tags["severity"] != "high" ||
		len(site.Controls[0].Results) != 2 || site.Controls[0].Results[1].CodeDesc != `File /etc/passwd mode is expected to cmp == "0644"` {
		b, _ := json.MarshalIndent(site, "", " ")
		t.Fatalf("HDF profile: %s", b)
	}
	heimdall := heimdallOf(t, doc)
	for id, w := range map[string]string{"site-01": "Passed", "site-02": "Passed", "site-03": "Not Reviewed", "site-04": "Not Applicable"} {
		if heimdall[id] != w {
			t.Errorf("%s: Heimdall shows %q, want %q", id, heimdall[id], w)
		}
	}
}

// heimdallOf writes doc and reads it back with inspecjs, returning the status Heimdall shows per control.
func heimdallOf(t *testing.T, doc compliance.HDF) map[string]string {
	t.Helper()
	dir := compliance.InspecjsForTest(t)
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	hdf := filepath.Join(t.TempDir(), "doc.hdf.json")
	script := filepath.Join(t.TempDir(), "status.js")
	if err := os.WriteFile(hdf, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, []byte(compliance.InspecjsScriptForTest), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", script, hdf)
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(dir, "node_modules"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("inspecjs: %v", err)
	}
	got := map[string]string{}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("inspecjs output %q: %v", out, err)
	}
	return got
}
