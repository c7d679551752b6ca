package scan

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
)

// The Go fixtures are built by the test itself (goBinFixtures) from the sources below, against
// github.com/google/uuid v1.6.0 and v1.4.0 (from the module cache, else the configured GOPROXY). The expected module
// sets were checked against `go version -m` on the built binaries (TestGoBinaryMatchesGoVersionM does it each run).

const gobinMain = `package main

import (
	"fmt"

	"github.com/google/uuid"
)

func main() { fmt.Println(uuid.NewString()) }
`

var (
	gobinOnce     sync.Once
	gobinBuilt    map[string][]byte
	gobinErr      error
	gobinGoVers   string // "1.26.0": the local toolchain as OSV names it
	gobinGoPrefix string // "go1.26.0"
)

// goBinFixtures builds, once per test binary, the programs the tests scan:
//
//	plain     module example.com/app requiring uuid v1.6.0, default flags
//	stripped  the same with -trimpath -ldflags="-s -w"
//	replaced  uuid v1.6.0 replaced by uuid v1.4.0
//	local     uuid replaced by a local directory (no version)
func goBinFixtures(t testing.TB) map[string][]byte {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go tool not found: %v", err)
	}
	gobinOnce.Do(func() { gobinBuilt, gobinErr = buildGoBinFixtures(goBin) })
	if gobinErr != nil {
		t.Fatal(gobinErr)
	}
	return gobinBuilt
}

func buildGoBinFixtures(goBin string) (map[string][]byte, error) {
	out, err := exec.Command(goBin, "env", "GOVERSION").Output()
	if err != nil {
		return nil, err
	}
	gobinGoPrefix = strings.TrimSpace(string(out))
	gobinGoVers = strings.TrimPrefix(gobinGoPrefix, "go")
	work, err := os.MkdirTemp("", "gobin-fixtures-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	env := append(os.Environ(), "GOFLAGS=-mod=mod -buildvcs=false", "GOSUMDB=off", "GOWORK=off",
		"GOTOOLCHAIN=local", "CGO_ENABLED=0", "GOOS=linux")
	type prog struct {
		name, gomod string
		flags       []string
	}
	const req = "module example.com/app\n\ngo 1.21\n\nrequire github.com/google/uuid v1.6.0\n"
	progs := []prog{
		{"plain", req, nil},
		{"stripped", req, []string{"-trimpath", "-ldflags=-s -w"}},
		{"replaced", req + "\nreplace github.com/google/uuid v1.6.0 => github.com/google/uuid v1.4.0\n", nil},
		{"local", req + "\nreplace github.com/google/uuid => ./uuidlocal\n", nil},
	}
	bins := map[string][]byte{}
	for _, p := range progs {
		dir := filepath.Join(work, p.name)
		files := map[string]string{
			"go.mod":              p.gomod,
			"main.go":             gobinMain,
			"uuidlocal/go.mod":    "module github.com/google/uuid\n\ngo 1.21\n",
			"uuidlocal/uuid.go":   "package uuid\n\nfunc NewString() string { return \"local\" }\n",
			"uuidlocal/README.md": "a stand-in for github.com/google/uuid\n",
		}
		for name, content := range files {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
				return nil, err
			}
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				return nil, err
			}
		}
		args := append([]string{"build", "-o", "app"}, p.flags...)
		cmd := exec.Command(goBin, append(args, ".")...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, errors.New("go build " + p.name + ": " + err.Error() + "\n" + string(out))
		}
		b, err := os.ReadFile(filepath.Join(dir, "app"))
		if err != nil {
			return nil, err
		}
		bins[p.name] = b
	}
	return bins, nil
}

// gobinLines renders packages as "name version location,location" for exact comparisons.
func gobinLines(ps []report.Package) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name+" "+p.Version+" "+strings.Join(p.Locations, ","))
	}
	return out
}

func gobinWrite(t testing.TB, root, name string, data []byte, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // not subject to the umask
		t.Fatal(err)
	}
}

func gobinOpen(t testing.TB, dir string) *fsaccess.Root {
	t.Helper()
	r, err := fsaccess.OpenDir(dir, fsaccess.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestGoBinaryRealBinaries(t *testing.T) {
	bins := goBinFixtures(t)
	root := t.TempDir()
	gobinWrite(t, root, "usr/bin/app", bins["plain"], 0o755)
	gobinWrite(t, root, "opt/app/app-stripped", bins["stripped"], 0o755)
	gobinWrite(t, root, "srv/replaced", bins["replaced"], 0o750)
	gobinWrite(t, root, "srv/local", bins["local"], 0o700)
	// Not wanted or not Go: the same program without an x bit, a non-Go ELF, a script, junk behind an ELF magic.
	gobinWrite(t, root, "usr/share/app/app.copy", bins["plain"], 0o644)
	ls, err := os.ReadFile("/usr/bin/ls")
	if err != nil {
		t.Fatal(err)
	}
	gobinWrite(t, root, "usr/bin/ls", ls, 0o755)
	gobinWrite(t, root, "usr/bin/script", append([]byte("#!/bin/sh\n"), bytes.Repeat([]byte("# x\n"), 1<<15)...), 0o755)
	gobinWrite(t, root, "usr/bin/fake-elf", append([]byte("\x7fELF"), bytes.Repeat([]byte{0xff}, 1<<17)...), 0o755)

	res := Run(context.Background(), gobinOpen(t, root), []Analyzer{goOnlyBinary()})
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
	v := gobinGoVers
	want := []string{
		"example.com/app (devel) opt/app/app-stripped,srv/local,srv/replaced,usr/bin/app",
		"github.com/google/uuid (devel) srv/local",
		"github.com/google/uuid 1.4.0 srv/replaced",
		"github.com/google/uuid 1.6.0 opt/app/app-stripped,usr/bin/app",
		"stdlib " + v + " opt/app/app-stripped,srv/local,srv/replaced,usr/bin/app",
	}
	if got := gobinLines(res.Packages); !reflect.DeepEqual(got, want) {
		t.Errorf("packages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, p := range res.Packages {
		if p.Ecosystem != report.EcosystemGo || p.FoundBy != "go-binary" {
			t.Errorf("%s: ecosystem %q foundBy %q", p.Name, p.Ecosystem, p.FoundBy)
		}
	}
}

// TestGoBinaryMatchesGoVersionM checks the analyzer against the go command's own reading of the build info.
func TestGoBinaryMatchesGoVersionM(t *testing.T) {
	bins := goBinFixtures(t)
	dir := t.TempDir()
	for name, b := range bins {
		gobinWrite(t, dir, name, b, 0o755)
		out, err := exec.Command("go", "version", "-m", filepath.Join(dir, name)).Output()
		if err != nil {
			t.Fatal(err)
		}
		// Lines: "<file>: go1.x", "\tpath\t...", "\tmod\tp\tv\t...", "\tdep\tp\tv\t...", "\t=>\tp\tv\t...".
		var want []string
		for line := range strings.SplitSeq(string(out), "\n") {
			f := strings.Split(strings.TrimPrefix(line, "\t"), "\t")
			switch f[0] {
			case "mod", "dep":
				want = append(want, f[1]+" "+f[2])
			case "=>":
				last := want[len(want)-1]
				mod, _, _ := strings.Cut(last, " ")
				if f[2] == "" || f[2] == "(devel)" {
					want[len(want)-1] = mod + " (devel)"
				} else {
					want[len(want)-1] = f[1] + " " + f[2]
				}
			}
		}
		first, _, _ := strings.Cut(string(out), "\n")
		if !strings.HasSuffix(first, ": "+gobinGoPrefix) {
			t.Fatalf("go version -m: %q", first)
		}
		want = append(want, "stdlib "+gobinGoVers)
		var res report.Result
		a := goOnlyBinary().(FileAnalyzer)
		if err := a.AnalyzeFile(context.Background(), gobinOpen(t, dir), name, &res); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range res.Packages {
			ver := p.Version
			if ver != "(devel)" && p.Name != "stdlib" {
				ver = "v" + ver
			}
			got = append(got, p.Name+" "+ver)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %q, go version -m says %q", name, got, want)
		}
	}
}

func TestGoBinaryWants(t *testing.T) {
	a := goOnlyBinary().(FileAnalyzer)
	big := make([]byte, goBinMinSize)
	fsys := fstest.MapFS{
		"bin/exec":       {Data: big, Mode: 0o755},
		"bin/group-exec": {Data: big, Mode: 0o610},
		"bin/noexec":     {Data: big, Mode: 0o644},
		"bin/small":      {Data: big[:goBinMinSize-1], Mode: 0o755},
		"bin/tool.py":    {Data: big, Mode: 0o755},
		"bin/link":       {Data: []byte("exec"), Mode: fs.ModeSymlink | 0o777},
		"bin/dir.d":      {Mode: fs.ModeDir | 0o755},
		"bin/fifo":       {Mode: fs.ModeNamedPipe | 0o777},
	}
	want := map[string]bool{"bin/exec": true, "bin/group-exec": true}
	ents, err := fsys.ReadDir("bin")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ents {
		name := "bin/" + d.Name()
		if got := a.Wants(name, d); got != want[name] {
			t.Errorf("Wants(%s) = %v", name, got)
		}
	}
	// Outside a walk only the name is known: anything but a known data file may be a program.
	for name, want := range map[string]bool{
		"usr/local/bin/kubectl":              true,
		"usr/lib/go-1.19/bin/go":             true,
		"etc/app/config.yaml":                false,
		"usr/share/doc/fzf/copyright":        false,
		"usr/share/locale/de/LC_MESSAGES/x":  false,
		"usr/lib/python3/dist-packages/a.py": false,
	} {
		if got := a.Wants(name, nil); got != want {
			t.Errorf("Wants(%s, nil) = %v", name, got)
		}
	}
}

func TestGoToolchainVersion(t *testing.T) {
	for in, want := range map[string]string{
		"go1.22.3":                       "1.22.3",
		"go1.19.8":                       "1.19.8",
		"go1.21.0 X:boringcrypto":        "1.21.0",
		"go1.25.1 X:nodwarf5,jsonv2":     "1.25.1",
		"go1.22rc1":                      "1.22rc1",
		"go1.9":                          "1.9",
		"go1.21.4-bigcorp":               "1.21.4",
		"devel go1.23-f4a5c8e7 +0x0 abc": "",
		"":                               "",
		"gccgo":                          "",
		"go2.0":                          "",
	} {
		if got := goToolchainVersion(in); got != want {
			t.Errorf("goToolchainVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGoModuleReplace(t *testing.T) {
	for _, c := range []struct {
		in         debug.Module
		name, vers string
	}{
		{debug.Module{Path: "golang.org/x/sys", Version: "v0.3.0"}, "golang.org/x/sys", "0.3.0"},
		{debug.Module{Path: "a.example/m", Version: "v1.0.0", Replace: &debug.Module{Path: "b.example/fork", Version: "v1.0.1-fix"}}, "b.example/fork", "1.0.1-fix"},
		{debug.Module{Path: "a.example/m", Version: "v1.0.0", Replace: &debug.Module{Path: "../m"}}, "a.example/m", "(devel)"},
		{debug.Module{Path: "a.example/m", Version: "v1.0.0", Replace: &debug.Module{Path: "./m", Version: "(devel)"}}, "a.example/m", "(devel)"},
		{debug.Module{Path: "a.example/m", Version: "v1.0.0", Replace: &debug.Module{Path: "/src/m", Version: "(devel)"}}, "a.example/m", "(devel)"},
		{debug.Module{Path: "example.com/app", Version: "(devel)"}, "example.com/app", "(devel)"},
		{debug.Module{Path: "example.com/app"}, "example.com/app", "(devel)"},
		{debug.Module{Path: "k8s.io/api", Version: "v0.0.0-20230101000000-abcdefabcdef"}, "k8s.io/api", "0.0.0-20230101000000-abcdefabcdef"},
	} {
		if n, v := goModule(&c.in); n != c.name || v != c.vers {
			t.Errorf("goModule(%+v) = %s %s, want %s %s", c.in, n, v, c.name, c.vers)
		}
	}
}

// TestGoBinaryDebianBuild: a binary built outside module mode (as Debian builds) has build info with a package path
// but no module: only stdlib is reported.
func TestGoBinaryNoModuleInfo(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.19.8", Path: "github.com/junegunn/fzf"}
	got := gobinLines(goPackages(bi, "usr/bin/fzf", "go-binary"))
	if want := []string{"stdlib 1.19.8 usr/bin/fzf"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// noReaderAt hides ReadAt, like an FS whose files are plain streams.
type noReaderAt struct{ fs.File }

type noReaderAtFS struct{ FS }

func (f noReaderAtFS) Open(name string) (fs.File, error) {
	file, err := f.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return noReaderAt{file}, nil
}

func TestGoBinaryWithoutReaderAt(t *testing.T) {
	bins := goBinFixtures(t)
	fsys := noReaderAtFS{fstest.MapFS{"app": {Data: bins["stripped"], Mode: 0o755}}}
	res := Run(context.Background(), fsys, []Analyzer{goOnlyBinary()})
	if len(res.Errors) != 0 || len(res.Packages) != 3 {
		t.Fatalf("packages %q errors %v", gobinLines(res.Packages), res.Errors)
	}
	// Above the in-memory bound the file is refused, and said so.
	a := &binaryAnalyzer{name: goBinaryName, golang: true, minSize: 1, maxSize: goBinMaxSize, maxInMemory: 1 << 20}
	res = Run(context.Background(), fsys, []Analyzer{a})
	if len(res.Packages) != 0 || len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Err, ErrTooLarge.Error()) || res.Errors[0].Path != "app" {
		t.Fatalf("packages %q errors %v", gobinLines(res.Packages), res.Errors)
	}
}

func TestGoBinaryTooLargeOnOpen(t *testing.T) {
	// The walk's DirEntry said small enough; the file opened is bigger (replaced in between): refused.
	a := &binaryAnalyzer{name: goBinaryName, golang: true, minSize: 1, maxSize: 100, maxInMemory: 100}
	var res report.Result
	fsys := fstest.MapFS{"app": {Data: make([]byte, 101), Mode: 0o755}}
	if err := a.AnalyzeFile(context.Background(), fsys, "app", &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Err, ErrTooLarge.Error()) {
		t.Fatalf("errors %v", res.Errors)
	}
}

func TestGoBinaryCorruptBuildInfo(t *testing.T) {
	bins := goBinFixtures(t)
	b := bytes.Clone(bins["plain"])
	// Break one line of the embedded module list (a dependency line needs 2 or 3 tab-separated columns): the build info is
	// damaged, which is reported for the file and costs nothing else.
	dep := []byte("dep\tgithub.com/google/uuid\tv1.6.0\t")
	if !bytes.Contains(b, dep) {
		t.Fatal("no dependency line in fixture")
	}
	b = bytes.ReplaceAll(b, dep, []byte("dep\tgithub.com/google/uuid v1.6.0 "))
	fsys := fstest.MapFS{"app": {Data: b, Mode: 0o755}, "ok": {Data: bins["stripped"], Mode: 0o755}}
	res := Run(context.Background(), fsys, []Analyzer{goOnlyBinary()})
	if len(res.Errors) != 1 || res.Errors[0].Analyzer != "go-binary" || res.Errors[0].Path != "app" ||
		!strings.Contains(res.Errors[0].Err, "read Go build info") {
		t.Errorf("errors %+v", res.Errors)
	}
	if got := gobinLines(res.Packages); len(got) != 3 || !strings.HasSuffix(got[0], " ok") {
		t.Errorf("packages %q", got)
	}
}

func TestMergePackagesKeepsOthers(t *testing.T) {
	out := &report.Result{Packages: []report.Package{
		{Name: "zlib1g", Version: "1", Ecosystem: report.EcosystemDebian, FoundBy: "dpkg", Locations: []string{"var/lib/dpkg/status"}},
		{Name: "b", Version: "1", Ecosystem: report.EcosystemGo, FoundBy: "go-binary", Locations: []string{"y"}},
		{Name: "a", Version: "1", Ecosystem: report.EcosystemGo, FoundBy: "go-binary", Locations: []string{"y"}},
		{Name: "b", Version: "1", Ecosystem: report.EcosystemGo, FoundBy: "go-binary", Locations: []string{"x"}},
		{Name: "b", Version: "1", Ecosystem: report.EcosystemGo, FoundBy: "go-binary", Locations: []string{"x"}},
		{Name: "b", Version: "2", Ecosystem: report.EcosystemGo, FoundBy: "go-binary", Locations: []string{"z"}},
		{Name: "six", Version: "1", Ecosystem: report.EcosystemPyPI, FoundBy: "python", Locations: []string{"p"}},
	}}
	mergePackages(out, "go-binary")
	var got []string
	for _, p := range out.Packages {
		got = append(got, p.FoundBy+" "+p.Name+" "+p.Version+" "+strings.Join(p.Locations, ","))
	}
	want := []string{
		"dpkg zlib1g 1 var/lib/dpkg/status",
		"python six 1 p",
		"go-binary a 1 y",
		"go-binary b 1 x,y",
		"go-binary b 2 z",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func FuzzGoBinary(f *testing.F) {
	f.Add([]byte("\x7fELF"))
	f.Add(append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 128)...))
	if ls, err := os.ReadFile("/usr/bin/true"); err == nil {
		f.Add(ls)
	}
	a := &binaryAnalyzer{name: "binary", golang: true, rust: true, minSize: 0, maxSize: 1 << 20, maxInMemory: 1 << 20, rustMaxSection: 1 << 16, rustMaxJSON: 1 << 20}
	f.Fuzz(func(t *testing.T, data []byte) {
		var res report.Result
		fsys := fstest.MapFS{"x": {Data: data, Mode: 0o755}}
		if err := a.AnalyzeFile(context.Background(), fsys, "x", &res); err != nil {
			t.Fatal(err)
		}
		for _, p := range res.Packages {
			if p.Name == "" || p.Version == "" || (p.Ecosystem != report.EcosystemGo && p.Ecosystem != report.EcosystemCratesIO) {
				t.Fatalf("bad package %+v", p)
			}
		}
	})
}

// TestGoBinarySectionHeaders: the .go.buildinfo pre-check skips ordinary ELF files without searching them, yet a Go
// program whose section headers were removed (sstrip, some packers) is still found through its data segment.
func TestGoBinarySectionHeaders(t *testing.T) {
	bins := goBinFixtures(t)
	ls, err := os.ReadFile("/usr/bin/ls")
	if err != nil {
		t.Fatal(err)
	}
	if mayBeGo(bytes.NewReader(ls)) {
		t.Error("ls passes the Go pre-check")
	}
	if !mayBeGo(bytes.NewReader(bins["stripped"])) {
		t.Error("stripped Go program fails the Go pre-check")
	}
	noSections := bytes.Clone(bins["stripped"])
	if noSections[4] != 2 || noSections[5] != 1 {
		t.Skip("fixture is not 64-bit little-endian ELF")
	}
	clear(noSections[0x28:0x30]) // e_shoff
	clear(noSections[0x3c:0x40]) // e_shnum, e_shstrndx
	fsys := fstest.MapFS{"app": {Data: noSections, Mode: 0o755}}
	res := Run(context.Background(), fsys, []Analyzer{goOnlyBinary()})
	if got := gobinLines(res.Packages); len(res.Errors) != 0 || len(got) != 3 || got[1] != "github.com/google/uuid 1.6.0 app" {
		t.Errorf("packages %q errors %v", got, res.Errors)
	}
}
