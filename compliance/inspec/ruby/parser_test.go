package ruby

import (
	"strings"
	"testing"
)

// TestParseTree checks the tree of each construct profiles use, in the spellings the public baselines write.
func TestParseTree(t *testing.T) {
	tests := []struct{ src, want string }{
		// The DSL.
		{`control 'x-1' do
  impact 0.7
  title "t"
end`, `(control "x-1" {(impact 0.7) (title "t")})`},
		{`describe file('/etc/passwd') do
  it { should be_file }
  its('mode') { should cmp '0644' }
  its(['a', 'b']) { should_not be_nil }
end`, `(describe (file "/etc/passwd") {(it {(should be_file)}) (its "mode" {(should (cmp "0644"))}) (its ["a" "b"] {(should_not be_nil)})})`},
		{`tag severity: 'medium', nist: ['AC-1', 'AC-2']`, `(tag {:severity=>"medium", :nist=>["AC-1" "AC-2"]})`},
		{`tag 'host'`, `(tag "host")`},
		{`tag :container`, `(tag :container)`},
		{`tag cis: { 'level' => 1 }`, `(tag {:cis=>{"level"=>1}})`},
		{`desc 'check', 'Run it'`, `(desc "check" "Run it")`},
		{`ref 'NSA', url: 'https://x'`, `(ref "NSA" {:url=>"https://x"})`},
		{`only_if('no sshd') { command('sshd').exist? }`, `(only_if "no sshd" {((command "sshd").exist?)})`},
		{`only_if('container', impact: 0.0) do
  !virtualization.system.eql?('docker')
end`, `(only_if "container" {:impact=>0} {(! ((virtualization.system).eql? "docker"))})`},
		{`describe.one do
  describe x do end
end`, `(describe.one {(describe x {})})`},
		{`its('a.b') { should cmp >= 5 }`, `(its "a.b" {(should (>= cmp 5))})`},
		{`it { should be_in ['a', 'b'] }`, `(it {(should (be_in ["a" "b"]))})`},
		{`it { should match /^x$/i }`, `(it {(should (match /^x$/i))})`},
		{`it { should eq -1 }`, `(it {(should (eq -1))})`},
		{`expect(x).to eq 1`, `((expect x).to (eq 1))`},
		{`expect(x).not_to be_empty`, `((expect x).not_to be_empty)`},
		{`x = input('users', value: [])`, `(= $x (input "users" {:value=>[]}))`},
		{`include_controls 'base' do
  skip_control 'V-1'
  control 'V-2' do
    impact 0.0
  end
end`, `(include_controls "base" {(skip_control "V-1") (control "V-2" {(impact 0)})})`},
		{`describe command('ls').stdout.strip do
  it { should eq '' }
end`, `(describe (((command "ls").stdout).strip) {(it {(should (eq ""))})})`},
		{`describe passwd.where { user =~ /^r/ }.entries do end`,
			`(describe ((passwd.where {(=~ user /^r/)}).entries) {})`},
		{"users.where { uid >= 1000 }\n  .usernames.each do |u|\n  describe user(u) do end\nend",
			`(((users.where {(>= uid 1000)}).usernames).each {|u| (describe (user $u) {})})`},
		// Ruby.
		{`a = 1 + 2 * 3 ** 2`, `(= $a (+ 1 (* 2 (** 3 2))))`},
		{`x = 1; x -1`, `(= $x 1) (- $x 1)`},
		{`a && b || !c`, `(|| (&& a b) (! c))`},
		{`a and not b or c`, `(or (and a (not b)) c)`},
		{`x = a ? b : c`, `(= $x (if a [b] [c]))`},
		{`x = y.empty? ? 'a' : 'b'`, `(= $x (if (y.empty?) ["a"] ["b"]))`},
		{`puts x if y`, `(if y [(puts x)] [])`},
		{`return unless z`, `(unless z [(return)] [])`},
		{`x = %w[a b c]`, `(= $x ["a" "b" "c"])`},
		{`x = %i(a b)`, `(= $x [:a :b])`},
		{`x = %r{^/etc/.*$}m`, `(= $x /^/etc/.*$/m)`},
		{`x = "a#{b + 1}c\t"`, "(= $x \"a#{(+ b 1)}c\t\")"},
		{`x = 'it''s' 'x'`, `(= $x "itsx")`},
		{`x = 'a\'b\\c\d'`, `(= $x "a'b\c\d")`},
		{"x = <<~EOS\n  one\n    two\n  #{y}\nEOS\nz", "(= $x \"one\n  two\n#{y}\n\") z"},
		{"x = <<-EOS.strip\n  raw\n  EOS", "(= $x (\"  raw\n\".strip))"},
		{"f(<<~A, <<~B)\n a\nA\n b\nB\ng", "(f \"a\n\" \"b\n\") g"},
		{`h = { 'a' => 1, b: :c, "d": 2 }`, `(= $h {"a"=>1, :b=>:c, :d=>2})`},
		{`x = 1..5`, `(= $x 1..5)`},
		{`x = a&.b&.c`, `(= $x ((a&.b)&.c))`},
		{`x = File::SEPARATOR`, `(= $x File::SEPARATOR)`},
		{`x = __FILE__`, `(= $x __FILE__)`},
		{"=begin\nignored\n=end\nx = 1 # trailing", `(= $x 1)`},
		{"if a\n  b\nelsif c\n  d\nelse\n  e\nend", `(if a [b] [(if c [d] [e])])`},
		{"unless a then b end", `(unless a [b] [])`},
		{"case x\nwhen 'a', 'b' then 1\nwhen /c/\n  2\nelse 3\nend", `(case x (when ["a" "b"] [1]) (when [/c/] [2]) [3])`},
		{"begin\n  a\nrescue Foo, Bar => e\n  b\nensure\n  c\nend", `(begin [a] (rescue [Foo Bar] $e [b]) (ensure [c]))`},
		{"x = y rescue nil", `(= $x (begin [y] (rescue [] _ [nil])))`},
		{"[1, 2].each do |i|\n  puts i\nend", `([1 2].each {|i| (puts $i)})`},
		{"a.map { |k, v| k }", `(a.map {|k,v| $k})`},
		{"a, b = line.split(':', 2)", `(masgn [$a $b] (line.split ":" 2))`},
		{"@x ||= {}", `(||= @x {})`},
		{"x = !!y", `(= $x (! (! y)))`},
		{"x = -> (a) { a * 2 }", `(= $x (lambda [(* $a 2)]))`},
		{"x = defined?(y)", `(= $x (defined? y))`},
		{"x = y[0][:k]", `(= $x (index (index y 0) :k))`},
		{"x = ::File.join(a, 'b')", `(= $x (::File.join a "b"))`},
		{"x = ?a", `(= $x "a")`},
		{"x = 0755", `(= $x 493)`},
		{"x = 1_000", `(= $x 1000)`},
		{"x = y.select { |l| l !~ /^#/ }", `(= $x (y.select {|l| (!~ $l /^#/)}))`},
		{"x = a.b(1) { 2 }.c", `(= $x ((a.b 1 {2}).c))`},
		{"raise ArgumentError, \"bad #{x}\" unless ok", "(unless ok [(raise ArgumentError \"bad #{x}\")] [])"},
		{`class SshCrypto < Inspec.resource(1)
  name 'ssh_crypto'
  supports platform: 'unix'
  attr_reader :params

  def initialize(path = nil)
    @path = path || '/etc/ssh'
  end

  def valid_ciphers
    case inspec.os[:family]
    when 'debian' then %w[a b]
    end
  end

  def self.helper; end

  private

  def read(x)
    return nil if x.nil?
    x.to_s
  rescue StandardError
    nil
  end
end`, `(class SshCrypto < (Inspec.resource 1) [(name "ssh_crypto") (supports {:platform=>"unix"}) (attr_reader :params) ` +
			`(def initialize(path) [(= @path (|| $path "/etc/ssh"))]) (def valid_ciphers() [(case (index (inspec.os) :family) (when ["debian"] [["a" "b"]]) [])]) ` +
			`(def self.helper() []) private (def read(x) [(if ($x.nil?) [(return nil)] []) ($x.to_s)] (rescue [nil]))])`},
		{"module Foo\n  X = 1\nend", `(module Foo [(= X 1)])`},
		{"x.y = 1", `(= (x.y) 1)`},
		{"while i < 3 do i += 1 end", `(while (< i 3) [(+= $i 1)])`},
	}
	for _, tc := range tests {
		f, err := Parse("t.rb", []byte(tc.src), Limits{})
		if err != nil {
			t.Errorf("%q: %v", tc.src, err)
			continue
		}
		if got := sexps(f.Body); got != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.src, got, tc.want)
		}
	}
}

// TestParseErrors checks that malformed input gives a file:line error and that the bounds hold.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		src  string
		lim  Limits
		want string
	}{
		{"control 'x' do\n  title 'a'\n", Limits{}, `t.rb:3: expected "end" (to close keyword "do" at line 1), found end of file`},
		{"x = 'abc", Limits{}, `t.rb:1: unterminated literal`},
		{"x = <<~EOS\nbody\n", Limits{}, `t.rb:1: heredoc <<EOS is not terminated`},
		{"a\nb\nc = )", Limits{}, `t.rb:3: unexpected operator ")"`},
		{"x = 1 +", Limits{}, `t.rb:1: unexpected end of file`},
		{strings.Repeat("[", 500) + strings.Repeat("]", 500), Limits{}, "nested more than"},
		{strings.Repeat("a(", 1000), Limits{}, "nested more than"},
		{strings.Repeat("x ", 100), Limits{MaxTokens: 50}, "more than 50 tokens"},
		{"x = 1", Limits{MaxBytes: 3}, "more than the 3 allowed"},
		{`x = "#{"#{"#{1}"}"}"`, Limits{MaxDepth: 2}, "nested more than 2"},
		{"=begin\nnever closed", Limits{}, "=begin without =end"},
		{"x = 1 \x01", Limits{}, `unexpected character '\x01'`},
		{"case x\nin [a] then 1\nend", Limits{}, "t.rb:2: case/in pattern matching is not supported"},
	}
	for _, tc := range tests {
		_, err := Parse("t.rb", []byte(tc.src), tc.lim)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.40q: error %v, want %q", tc.src, err, tc.want)
		}
	}
}

// TestPositions checks lines of nodes and the end offset of a control's block.
func TestPositions(t *testing.T) {
	src := "x = 1\n\ncontrol 'a' do\n  describe file('/x') do\n    it { should exist }\n  end\nend # trailing\n"
	f, err := Parse("t.rb", []byte(src), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	c := f.Body[1].(*Call)
	if c.Line != 3 || f.Line(c.End) != 7 || !strings.HasSuffix(f.Text(c.Off, c.End), "  end\nend") {
		t.Errorf("control at %d..%d: %q", c.Line, f.Line(c.End), f.Text(c.Off, c.End))
	}
	d := c.Block.Body[0].(*Call)
	if d.Line != 4 || d.Args[0].Position().Line != 4 || d.Block.Body[0].Position().Line != 5 {
		t.Errorf("describe at %d, its block at %d", d.Line, d.Block.Body[0].Position().Line)
	}
}
