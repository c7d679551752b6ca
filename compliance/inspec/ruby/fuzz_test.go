package ruby

import (
	"strings"
	"testing"
)

// FuzzParse feeds the reader arbitrary bytes: it must return a tree or a file:line error, never panic, and stay
// within its bounds (the tight limits keep every input's work small, so a hang shows up as a slow run).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"control 'a' do\n  impact 0.5\n  tag nist: ['AC-1']\n  describe file('/x') do\n    its('mode') { should cmp '0644' }\n  end\nend\n",
		"x = <<~EOS\n  #{y}\nEOS\n", "a, b = c.split(':')\n", "class A < Inspec.resource(1)\n def x; @y ||= {}; end\nend\n",
		"describe.one do\n it { should match /a#{b}/ }\nend", "%w[a b].each { |x| x }", "case a\nwhen 1 then 2\nend",
		"begin\n a\nrescue => e\n b\nensure\n c\nend", "x = \"#{\"#{1}\"}\"", "h = { a: 1, 'b' => %r{c}i }",
	} {
		f.Add([]byte(s))
	}
	lim := Limits{MaxBytes: 1 << 16, MaxTokens: 20_000, MaxDepth: 200}
	f.Fuzz(func(t *testing.T, src []byte) {
		file, err := Parse("f.rb", src, lim)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.rb:") {
				t.Fatalf("error without file:line: %v", err)
			}
			return
		}
		for _, n := range file.Body {
			Walk(n, func(c Node) bool {
				if p := c.Position(); p.Line < 1 || p.Off < 0 || p.Off > len(src) {
					t.Fatalf("%T at %+v outside the %d-byte source", c, p, len(src))
				}
				return true
			})
		}
	})
}
