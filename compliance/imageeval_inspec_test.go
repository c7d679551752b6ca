package compliance_test

import (
	"testing"

	"github.com/rootscan/rootscan/compliance"
	"github.com/rootscan/rootscan/compliance/inspec"
)

// inspecProbes are InSpec controls over the resources a profile reads from a filesystem, each failing with the
// value it saw, so comparing messages compares what the controls read. They are one profile: its controls share a
// run, and the run's reads decide whether a container keeps the image's results.
const inspecProbes = `
control 'i01' do
  describe file('/etc/passwd') do
    its('mode') { should cmp '0600' }
    its('owner') { should eq 'nobody' }
    its('content') { should eq '' }
  end
end
control 'i02' do
  describe passwd.where { uid == '0' } do
    its('users') { should eq [] }
  end
end
control 'i03' do
  describe file('/etc/shadow') do
    it { should_not exist }
  end
end
control 'i04' do
  describe sshd_config do
    its('PermitRootLogin') { should eq 'maybe' }
    its('PasswordAuthentication') { should eq 'maybe' }
  end
end
control 'i05' do
  describe command('find /srv /usr -xdev -type f').stdout do
    it { should eq '' }
  end
end
control 'i06' do
  describe directory('/etc/ssh') do
    its('mode') { should cmp '0700' }
  end
  describe file('/etc/localtime') do
    its('link_path') { should eq '/nowhere' }
  end
end
control 'i07' do
  describe file('/usr/bin/tool') do
    its('sha256sum') { should eq '' }
  end
  describe file('/tmp') do
    its('mode') { should cmp '01777' }
  end
end
`

// An InSpec profile goes through an image's evaluation and a container's delta as the CEL controls do: its results
// are the image's where the container's layer does not touch what the profile's run read, and always the same as
// evaluating the container's root in full, for every kind of upper-dir change (the differential test of the CEL
// controls, run with the profile beside the probes).
func TestImageDeltaInSpecSameAsFull(t *testing.T) {
	p, err := inspec.FromFiles("probes-inspec", map[string][]byte{
		"inspec.yml":    []byte("name: probes-inspec\nversion: 1.0.0\n"),
		"controls/a.rb": []byte(inspecProbes),
	}, inspec.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := compliance.NewLoader(compliance.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	e := compliance.NewEngine(l, nil)
	e.Runners = []compliance.ProfileRunner{inspec.NewRunner(p, nil, inspec.EvalLimits{})}
	kept, evaluated := compliance.ImageDeltaForTest(t, e, 40, 1)
	// One change of a random probed path leaves the profile's reads alone now and then (a file under
	// /usr/share/doc, /opt, /vol): those containers keep the image's results.
	if kept == 0 || evaluated == 0 {
		t.Errorf("InSpec results kept %d, evaluated again %d over 40 layers: want both", kept, evaluated)
	}
}
