package scan

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/rootscan/rootscan/report"
)

// rustRipgrepAudit is scan/testdata/rust/ripgrep-13.0.0.dep-v0.json: the audit data cargo-auditable would embed in
// Debian 12's ripgrep 13.0.0-4 (see testdata/rust/README.md), written the way auditable-serde serializes it.
func rustRipgrepAudit(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/rust/ripgrep-13.0.0.dep-v0.json")
	if err != nil {
		t.Fatal(err)
	}
	return rustCompress(t, data)
}

func rustCompress(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// rustRipgrepWant are the crates Debian's ripgrep .deb names in its X-Cargo-Built-Using field (the crates linked into
// /usr/bin/rg) plus ripgrep itself, an oracle independent of the fixture: the build-only crates of the audit data
// (cc, pkg-config, serde_derive and its proc-macro stack) must not appear.
var rustRipgrepWant = []string{
	"aho-corasick 0.7.19", "atty 0.2.14", "base64 0.13.0", "bitflags 1.3.2", "bstr 0.2.17", "bytecount 0.6.3",
	"byteorder 1.4.3", "cfg-if 1.0.0", "clap 2.34.0", "crossbeam-utils 0.8.12", "encoding_rs 0.8.31",
	"encoding_rs_io 0.1.7", "fnv 1.0.7", "globset 0.4.9", "grep 0.2.10", "grep-cli 0.1.6", "grep-matcher 0.1.5",
	"grep-pcre2 0.1.5", "grep-printer 0.1.6", "grep-regex 0.1.10", "grep-searcher 0.1.10", "ignore 0.4.18",
	"itoa 1.0.1", "lazy_static 1.4.0", "libc 0.2.139", "log 0.4.17", "memchr 2.5.0", "memmap2 0.5.7",
	"num_cpus 1.14.0", "once_cell 1.16.0", "pcre2 0.2.3", "pcre2-sys 0.2.5", "regex 1.7.0", "regex-automata 0.1.8",
	"regex-syntax 0.6.27", "ripgrep 13.0.0", "ryu 1.0.2", "same-file 1.0.6", "serde 1.0.147", "serde_json 1.0.87",
	"smawk 0.3.1", "strsim 0.10.0", "termcolor 1.1.2", "textwrap 0.16.0", "thread_local 1.1.4",
	"unicode-linebreak 0.1.4", "unicode-width 0.1.10", "walkdir 2.3.2",
}

func rustCrateLines(cs []rustCrate) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name+" "+c.Version)
	}
	slices.Sort(out)
	return out
}

func TestParseRustAuditRipgrep(t *testing.T) {
	crates, err := parseRustAudit(rustRipgrepAudit(t), rustAuditMaxJSON)
	if err != nil {
		t.Fatal(err)
	}
	if got := rustCrateLines(crates); !reflect.DeepEqual(got, rustRipgrepWant) {
		t.Errorf("crates:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(rustRipgrepWant, "\n"))
	}
}

func TestParseRustAuditMalformed(t *testing.T) {
	bomb := rustCompress(t, append([]byte(`{"packages":[{"name":"a","version":"1.0.0","source":"crates.io","root":true}],"x":"`),
		bytes.Repeat([]byte("a"), 2<<20)...))
	for _, c := range []struct {
		name string
		data []byte
		want []string // crates still reported
		err  string
	}{
		{"not zlib", []byte(`{"packages":[]}`), nil, "not zlib data"},
		{"truncated", rustRipgrepAudit(t)[:100], nil, "decompress"},
		{"not json", rustCompress(t, []byte("packages")), nil, "parse .dep-v0"},
		{"no packages", rustCompress(t, []byte(`{"packages":[]}`)), nil, "no packages"},
		{"inflates past the limit", bomb, nil, "exceeds size limit"},
		{"dependency out of range", rustCompress(t, []byte(`{"packages":[{"name":"a","version":"1.0.0","source":"local","dependencies":[1],"root":true}]}`)), nil, "depends on package 1 of 1"},
		{"self dependency", rustCompress(t, []byte(`{"packages":[{"name":"a","version":"1.0.0","source":"local","dependencies":[0]}]}`)), nil, "depends on package 0"},
		{"two roots", rustCompress(t, []byte(`{"packages":[{"name":"a","version":"1.0.0","source":"local","root":true},{"name":"b","version":"1.0.0","source":"local","root":true}]}`)), nil, "several root"},
		{"unknown kind", rustCompress(t, []byte(`{"packages":[{"name":"a","version":"1.0.0","source":"local","kind":"dev"}]}`)), nil, `unknown kind "dev"`},
		{"invalid entries skipped", rustCompress(t, []byte(`{"packages":[{"name":"a","version":"1.0","source":"crates.io"},{"name":"../b","version":"1.0.0","source":"crates.io"},{"name":"c","version":"0.1.0-alpha.2","source":"git"}]}`)),
			[]string{"c 0.1.0-alpha.2"}, `2 .dep-v0 entries with an invalid name or version skipped, the first name "a", version "1.0"`},
		{"format 8 and unknown fields", rustCompress(t, []byte(`{"packages":[{"name":"app","version":"0.1.0","source":"local","root":true,"features":["x"]}],"format":8}`)),
			[]string{"app 0.1.0"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			crates, err := parseRustAudit(c.data, 1<<20)
			if got := rustCrateLines(crates); !reflect.DeepEqual(got, c.want) {
				t.Errorf("crates %q, want %q", got, c.want)
			}
			switch {
			case c.err == "" && err != nil:
				t.Errorf("error %v", err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Errorf("error %v, want one containing %q", err, c.err)
			}
		})
	}
}

// rustAddSection copies the ELF file src to dst with a .dep-v0 section holding data, as cargo-auditable's linker
// step leaves it (objcopy is how the fixture gets a real program's headers without a Rust toolchain).
func rustAddSection(t testing.TB, src, dst string, data []byte) {
	t.Helper()
	objcopy, err := exec.LookPath("objcopy")
	if err != nil {
		t.Skipf("objcopy (binutils) not found: %v", err)
	}
	sec := filepath.Join(t.TempDir(), "dep-v0")
	if err := os.WriteFile(sec, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(objcopy, "--add-section", rustAuditSection+"="+sec, src, dst).CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v\n%s", err, out)
	}
	if err := os.Chmod(dst, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestBinaryRustAndGo scans real ELF programs through a confined root with the analyzer rootscan runs: a C program
// (coreutils' ls) given ripgrep's audit data, the same program without it (nothing, no error), and a Go program
// that also carries audit data, whose Go modules and crates both come out of the one open.
func TestBinaryRustAndGo(t *testing.T) {
	bins := goBinFixtures(t)
	root := t.TempDir()
	audit := rustRipgrepAudit(t)
	hostLs, err := exec.LookPath("ls")
	if err != nil {
		t.Skip("no ls(1) to use as a real ELF program")
	}
	if data, err := os.ReadFile(hostLs); err != nil || len(data) < goBinMinSize {
		t.Skipf("%s is not a usable fixture (%d bytes, %v)", hostLs, len(data), err)
	}
	rustAddSection(t, hostLs, filepath.Join(root, "usr/bin/rg"), audit)
	plain, err := os.ReadFile(hostLs)
	if err != nil {
		t.Fatal(err)
	}
	gobinWrite(t, root, "usr/bin/ls", plain, 0o755)
	goSrc := filepath.Join(t.TempDir(), "app")
	if err := os.WriteFile(goSrc, bins["stripped"], 0o755); err != nil {
		t.Fatal(err)
	}
	rustAddSection(t, goSrc, filepath.Join(root, "opt/mixed"), rustCompress(t,
		[]byte(`{"packages":[{"name":"mixed","version":"0.1.0","source":"local","dependencies":[1],"root":true},{"name":"memchr","version":"2.5.0","source":"crates.io"}],"format":1}`)))

	res := Run(context.Background(), gobinOpen(t, root), []Analyzer{NewBinary()})
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
	var rust, golang []string
	for _, p := range res.Packages {
		line := p.Name + " " + p.Version + " " + strings.Join(p.Locations, ",")
		switch {
		case p.FoundBy == rustBinaryName && p.Ecosystem == report.EcosystemCratesIO:
			rust = append(rust, line)
		case p.FoundBy == goBinaryName && p.Ecosystem == report.EcosystemGo:
			golang = append(golang, line)
		default:
			t.Errorf("unexpected package %+v", p)
		}
	}
	var wantRust []string
	for _, c := range rustRipgrepWant {
		loc := " usr/bin/rg"
		if c == "memchr 2.5.0" {
			loc = " opt/mixed,usr/bin/rg"
		}
		wantRust = append(wantRust, c+loc)
	}
	wantRust = append(wantRust, "mixed 0.1.0 opt/mixed")
	slices.Sort(wantRust)
	slices.Sort(rust)
	if !reflect.DeepEqual(rust, wantRust) {
		t.Errorf("crates:\n%s\nwant:\n%s", strings.Join(rust, "\n"), strings.Join(wantRust, "\n"))
	}
	wantGo := []string{"example.com/app (devel) opt/mixed", "github.com/google/uuid 1.6.0 opt/mixed", "stdlib " + gobinGoVers + " opt/mixed"}
	if !reflect.DeepEqual(golang, wantGo) {
		t.Errorf("Go modules %q, want %q", golang, wantGo)
	}
	for _, p := range res.Packages {
		if p.Name == "ripgrep" && p.PURL != "pkg:cargo/ripgrep@13.0.0" {
			t.Errorf("purl %q", p.PURL)
		}
	}

	// The Go-only and Rust-only analyzers see only their own part.
	if res := Run(context.Background(), gobinOpen(t, root), []Analyzer{rustOnlyBinary()}); len(res.Packages) != len(wantRust) || len(res.Errors) != 0 {
		t.Errorf("rust-binary alone: %d packages, errors %v", len(res.Packages), res.Errors)
	}
	if res := Run(context.Background(), gobinOpen(t, root), []Analyzer{goOnlyBinary()}); len(res.Packages) != len(wantGo) || len(res.Errors) != 0 {
		t.Errorf("go-binary alone: %d packages, errors %v", len(res.Packages), res.Errors)
	}
}

// TestBinaryRustDamaged: damaged audit data is one error under rust-binary for that file, and the scan goes on.
func TestBinaryRustDamaged(t *testing.T) {
	hostLs, err := exec.LookPath("ls")
	if err != nil {
		t.Skip("no ls(1) to use as a real ELF program")
	}
	root := t.TempDir()
	rustAddSection(t, hostLs, filepath.Join(root, "bin/bad"), []byte("not zlib"))
	big := bytes.Repeat([]byte{1}, 4096)
	rustAddSection(t, hostLs, filepath.Join(root, "bin/big"), big)
	a := newBinaryAnalyzer("binary", true, true)
	a.rustMaxSection = 1024
	res := Run(context.Background(), gobinOpen(t, root), []Analyzer{a})
	if len(res.Packages) != 0 {
		t.Errorf("packages %v", res.Packages)
	}
	var got []string
	for _, e := range res.Errors {
		got = append(got, e.Analyzer+" "+e.Path+" "+e.Err)
	}
	slices.Sort(got)
	if len(got) != 2 || !strings.HasPrefix(got[0], "rust-binary bin/bad .dep-v0 section is not zlib data") ||
		!strings.HasPrefix(got[1], "rust-binary bin/big .dep-v0 section: file exceeds size limit: 4096 > 1024 bytes") {
		t.Errorf("errors:\n%s", strings.Join(got, "\n"))
	}
}

func FuzzParseRustAudit(f *testing.F) {
	f.Add(rustRipgrepAudit(f))
	f.Add(rustCompress(f, []byte(`{"packages":[{"name":"a","version":"1.0.0","source":"local","dependencies":[0]}]}`)))
	f.Add(rustCompress(f, []byte(`{"packages":[{"name":"a","version":"1.0.0","source":"local","kind":"build","root":true}],"format":1}`)))
	f.Add([]byte("x\x9c"))
	f.Fuzz(func(t *testing.T, data []byte) {
		crates, err := parseRustAudit(data, 1<<20)
		if err != nil && !errors.Is(err, ErrTooLarge) && len(crates) > 0 && !strings.Contains(err.Error(), "skipped") {
			t.Fatalf("crates %v with error %v", crates, err)
		}
		for _, c := range crates {
			if !validCrateName(c.Name) || !validCrateVersion(c.Version) {
				t.Fatalf("accepted %+v", c)
			}
		}
	})
}

// TestRustBinaryInMemory: audit data is found through any FS, not only fsaccess's (here testing/fstest.MapFS).
func TestRustBinaryInMemory(t *testing.T) {
	hostLs, err := exec.LookPath("ls")
	if err != nil {
		t.Skip("no ls(1) to use as a real ELF program")
	}
	dst := filepath.Join(t.TempDir(), "rg")
	rustAddSection(t, hostLs, dst, rustRipgrepAudit(t))
	data, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	res := Run(context.Background(), fstest.MapFS{"usr/bin/rg": {Data: data, Mode: 0o755}}, []Analyzer{NewBinary()})
	if len(res.Errors) != 0 || len(res.Packages) != len(rustRipgrepWant) {
		t.Errorf("packages %d errors %v", len(res.Packages), res.Errors)
	}
}
