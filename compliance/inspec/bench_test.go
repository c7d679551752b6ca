package inspec

import (
	"fmt"
	"strings"
	"testing"
)

// stigLikeProfile generates a profile of n controls, one file each, shaped like the MITRE STIG baselines:
// long descs, a dozen tags, a guard and a describe block or loop per control.
func stigLikeProfile(n int) map[string][]byte {
	files := map[string][]byte{"inspec.yml": []byte("name: generated\nversion: 1.0.0\ninputs:\n  - name: users\n    value: [root]\n")}
	text := strings.Repeat("The operating system must be configured so that this setting holds. ", 20)
	for i := range n {
		src := fmt.Sprintf(`control 'SV-%06d' do
  title 'Setting %d must hold'
  desc '%s'
  desc 'check', 'Verify with:

$ sudo grep -i setting /etc/config

If it does not hold, this is a finding.'
  desc 'fix', 'Set it.'
  impact 0.5
  tag severity: 'medium'
  tag gtitle: 'SRG-OS-000480-GPOS-00227'
  tag gid: 'V-%d'
  tag rid: 'SV-%dr1_rule'
  tag stig_id: 'OS-08-%06d'
  tag cci: ['CCI-000366']
  tag nist: ['CM-6 b']
  tag 'host', 'container'

  only_if('Control not applicable within a container', impact: 0.0) do
    !virtualization.system.eql?('docker')
  end

  input('users').each do |u|
    describe file("/home/#{u}/.profile") do
      it { should_not be_more_permissive_than('0740') }
      its('owner') { should cmp u }
    end
  end
  describe parse_config_file('/etc/login.defs') do
    its('PASS_MAX_DAYS.to_i') { should cmp <= 60 }
  end
end
`, i, i, text, i, i, i)
		files[fmt.Sprintf("controls/SV-%06d.rb", i)] = []byte(src)
	}
	return files
}

// BenchmarkParseProfile450 loads a generated 450-control profile: every file lexed, parsed, and its controls
// extracted, plus the checksum.
func BenchmarkParseProfile450(b *testing.B) {
	files := stigLikeProfile(450)
	size := 0
	for _, d := range files {
		size += len(d)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		p, err := FromFiles("generated", files, Limits{})
		if err != nil {
			b.Fatal(err)
		}
		if len(p.Controls) != 450 || p.Files[0].Err != nil {
			b.Fatalf("%d controls, %v", len(p.Controls), p.Files[0].Err)
		}
	}
}

// BenchmarkCheckProfile450 is the static classification of that profile.
func BenchmarkCheckProfile450(b *testing.B) {
	p, err := FromFiles("generated", stigLikeProfile(450), Limits{})
	if err != nil {
		b.Fatal(err)
	}
	cat := DefaultCatalog()
	b.ReportAllocs()
	for b.Loop() {
		vs := p.Check(cat)
		if len(vs) != 450 || !vs[0].Run {
			b.Fatalf("%d verdicts, first %+v", len(vs), vs[0].Reasons)
		}
	}
}
