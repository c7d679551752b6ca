package compliance

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// files() from the shared walk gives exactly what its own walk gives: the same results for the baseline, on a
// root with setuid, world-writable and key files, and also when the shared walk was cut short by its bound.
func TestAnalyzerSharesWalk(t *testing.T) {
	files := map[string]string{}
	for k, v := range testFiles {
		files[k] = v
	}
	files["root/.ssh/id_rsa"] = "-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n"
	files["srv/data/x"] = "x"
	f := newFixture(t, files)
	if err := os.Chmod(filepath.Join(f.dir, "srv/data"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(f.dir, "srv/data/x"), fs.ModeSetuid|0o755); err != nil {
		t.Fatal(err)
	}
	l, _ := NewLoader(Limits{})
	ps, err := l.Load(Baseline)
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(l, ps)
	target := report.Target{Config: &report.ImageConfig{User: "app"}}
	key := func(rs []report.ControlResult) string {
		s := ""
		for _, r := range rs {
			s += fmt.Sprintf("%s=%s %s\n", r.ID, r.Status, r.Message)
		}
		return s
	}
	res := scan.Run(context.Background(), f.root, []scan.Analyzer{scan.NewDpkg()})
	want := key(e.Evaluate(context.Background(), f.root, target, nil, res))
	for _, lim := range []scan.WalkLimits{{}, {MaxEntries: 5}} {
		a := e.Analyzer(target, nil)
		if !a.wantTree {
			t.Fatal("the baseline calls files(), the analyzer should collect the tree")
		}
		got := scan.RunWithLimits(context.Background(), f.root, []scan.Analyzer{scan.NewDpkg(), a}, lim)
		if g := key(got.Compliance); g != want {
			t.Errorf("limits %+v: shared walk gives\n%s\nown walk gives\n%s", lim, g, want)
		}
	}
	for _, w := range []string{"container-baseline-04=failed check 1 (no setuid or setgid regular files): observed [\"/srv/data/x\"]\n", "container-baseline-05=failed check 1 (no world-writable entries outside /tmp and /var/tmp): observed [\"/srv/data\"]\n"} {
		if !strings.Contains(want, w) {
			t.Errorf("results lack %q:\n%s", w, want)
		}
	}

	// A profile without files() collects nothing.
	p, err := l.Parse("n.yaml", []byte("name: n\ncontrols:\n  - id: a\n    checks:\n      - expr: file('/etc/passwd').exists\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := NewEngine(l, []*Profile{p}).Analyzer(target, nil)
	scan.Run(context.Background(), f.root, []scan.Analyzer{a})
	if a.wantTree || a.listing.tb.out != nil {
		t.Errorf("profile without files() collected the tree")
	}
}

// packages() sees the whole inventory even when the compliance analyzer is listed before the package analyzers:
// it is an inventory reader, so Run runs it after them.
func TestAnalyzerRunsAfterInventory(t *testing.T) {
	f := newFixture(t, map[string]string{
		"var/lib/dpkg/status": "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\n\n",
	})
	l, _ := NewLoader(Limits{})
	p, err := l.Parse("n.yaml", []byte("name: n\ncontrols:\n  - id: libc\n    checks:\n      - expr: packages().exists(p, p.name == \"libc6\")\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := NewEngine(l, []*Profile{p}).Analyzer(report.Target{}, nil)
	res := scan.Run(context.Background(), f.root, []scan.Analyzer{a, scan.NewDpkg()})
	if len(res.Packages) != 1 || len(res.Compliance) != 1 || res.Compliance[0].Status != report.ControlPassed {
		t.Errorf("packages %+v, compliance %+v", res.Packages, res.Compliance)
	}
}

// A directory chain deeper than the walk's bound is left out of files(), not the whole tree: the baseline's setuid
// and private-key controls still fail and name what they found, with a note naming the chain; a tree-wide control
// that found nothing is an error (it did not see everything), and a control reading files() elsewhere is untouched.
// Both walks (the engine's own, and the shared scan walk with its bound or with a lower compliance bound) agree.
func TestTreeTooDeepSkipped(t *testing.T) {
	files := map[string]string{
		"root/.ssh/id_rsa": "-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n",
		"srv/bin/su":       "x",
		"etc/passwd":       "root:x:0:0::/root:/bin/sh\n",
	}
	chain := strings.Repeat("d/", 140)
	files[chain+"f"] = "x" // past the bound: not read
	f := newFixture(t, files)
	f.chmod(t, "srv/bin/su", fs.ModeSetuid|0o755)
	deepDir := "/" + strings.Repeat("d/", 129)
	deepDir = deepDir[:len(deepDir)-1]

	var etc *Profile
	l, _ := NewLoader(Limits{})
	ps, err := l.Load(Baseline)
	if err != nil {
		t.Fatal(err)
	}
	if etc, err = l.Parse("etc.yaml", []byte("name: etc\ncontrols:\n  - id: etc\n    checks:\n      - expr: files('/etc').size() == 2\n")); err != nil {
		t.Fatal(err)
	}
	ps = append(ps, etc)
	target := report.Target{Config: &report.ImageConfig{User: "app"}}
	byID := func(rs []report.ControlResult) map[string]report.ControlResult {
		m := map[string]report.ControlResult{}
		for _, r := range rs {
			m[r.ID] = r
		}
		return m
	}
	check := func(name string, rs []report.ControlResult, levels int, skipped string) {
		t.Helper()
		m := byID(rs)
		note := fmt.Sprintf("1 directory deeper than %d levels were not examined: %s", levels, skipped)
		for id, want := range map[string]string{"container-baseline-04": `"/srv/bin/su"`, "container-baseline-09": `"/root/.ssh/id_rsa"`} {
			r := m[id]
			if r.Status != report.ControlFailed || !strings.Contains(r.Message, want) || !strings.Contains(r.Message, note) {
				t.Errorf("%s: %s = %s %q, want failed naming %s and %q", name, id, r.Status, r.Message, want, note)
			}
		}
		if r := m["container-baseline-10"]; r.Status != report.ControlError || !strings.Contains(r.Message, note) {
			t.Errorf("%s: credentials control = %s %q, want error with %q", name, r.Status, r.Message, note)
		}
		if r := m["etc"]; r.Status != report.ControlPassed || r.Message != "" {
			t.Errorf("%s: files('/etc') = %s %q, want passed without a note", name, r.Status, r.Message)
		}
	}

	e := NewEngine(l, ps)
	res := scan.Run(context.Background(), f.root, []scan.Analyzer{scan.NewDpkg()})
	check("own walk", e.Evaluate(context.Background(), f.root, target, nil, res), 128, deepDir)
	got := scan.Run(context.Background(), f.root, []scan.Analyzer{scan.NewDpkg(), e.Analyzer(target, nil)})
	check("shared walk", got.Compliance, 128, deepDir)

	l20, _ := NewLoader(Limits{MaxDepth: 20})
	e20 := NewEngine(l20, ps)
	got = scan.Run(context.Background(), f.root, []scan.Analyzer{scan.NewDpkg(), e20.Analyzer(target, nil)})
	check("shared walk, compliance bound 20", got.Compliance, 20, "/"+strings.Repeat("d/", 20)+"d")
	res = scan.Run(context.Background(), f.root, []scan.Analyzer{scan.NewDpkg()})
	check("own walk, bound 20", e20.Evaluate(context.Background(), f.root, target, nil, res), 20, "/"+strings.Repeat("d/", 20)+"d")
}

// Long paths cost files() bytes, not only entries. A directory whose path is longer than MaxDirPath is left out like
// one too deep; past MaxTreeBytes the listing stops. Either way the baseline's setuid and key controls still fail
// and name what they found, with a note naming what was not examined; a control that found nothing is an error; the
// listing kept stays within the bound; and both walks (the engine's own, the shared scan walk) agree.
func TestTreeByteBound(t *testing.T) {
	files := map[string]string{
		"root/.ssh/id_rsa": "-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n",
		"srv/bin/su":       "x",
		"etc/passwd":       "root:x:0:0::/root:/bin/sh\n",
		"a/0su":            "x",
	}
	long := ""
	for i := range 5 {
		long += fmt.Sprintf("/%03d%s", i, strings.Repeat("p", 247))
	}
	for i := range 50 {
		files[long[1:]+fmt.Sprintf("/%03d%s", i, strings.Repeat("f", 100))] = ""
		files[fmt.Sprintf("a/f%03d%s", i, strings.Repeat("f", 200))] = ""
	}
	f := newFixture(t, files)
	f.chmod(t, "srv/bin/su", fs.ModeSetuid|0o755)
	f.chmod(t, "a/0su", fs.ModeSetuid|0o755)
	l, _ := NewLoader(Limits{})
	ps, err := l.Load(Baseline)
	if err != nil {
		t.Fatal(err)
	}
	target := report.Target{Config: &report.ImageConfig{User: "app"}}
	type want struct {
		status string
		names  []string
	}
	check := func(what string, rs []report.ControlResult, note string, wants map[string]want) {
		t.Helper()
		for _, r := range rs {
			w, ok := wants[r.ID]
			if !ok {
				continue
			}
			delete(wants, r.ID)
			if r.Status != w.status || !strings.Contains(r.Message, note) {
				t.Errorf("%s: %s = %s %q, want %s with %q", what, r.ID, r.Status, r.Message, w.status, note)
			}
			for _, n := range w.names {
				if !strings.Contains(r.Message, n) {
					t.Errorf("%s: %s = %q does not name %s", what, r.ID, r.Message, n)
				}
			}
		}
		for id := range wants {
			t.Errorf("%s: no result for %s", what, id)
		}
	}
	both := func(lim Limits, note string, wants func() map[string]want) {
		t.Helper()
		l, _ := NewLoader(lim)
		e := NewEngine(l, ps)
		res := scan.Run(context.Background(), f.root, []scan.Analyzer{scan.NewDpkg()})
		check(fmt.Sprintf("own walk %+v", lim), e.Evaluate(context.Background(), f.root, target, nil, res), note, wants())
		got := scan.Run(context.Background(), f.root, []scan.Analyzer{scan.NewDpkg(), e.Analyzer(target, nil)})
		check(fmt.Sprintf("shared walk %+v", lim), got.Compliance, note, wants())
		s := treeSession(f.root, lim)
		data, _ := s.tree()
		kept := 0
		for _, d := range data {
			kept += len(d.path) + fileDataBytes
		}
		for _, p := range s.treeDeep {
			kept += len(p) + fileDataBytes
		}
		if kept > s.lim.MaxTreeBytes {
			t.Errorf("%+v: the listing keeps %d bytes, over its bound %d", lim, kept, s.lim.MaxTreeBytes)
		}
	}

	// The defaults: the long chain is left out from its 5th level (1,255 bytes), the rest is examined.
	both(Limits{}, "1 directory with paths longer than 1024 bytes were not examined: "+long[:300]+"...", func() map[string]want {
		return map[string]want{
			"container-baseline-04": {report.ControlFailed, []string{`"/srv/bin/su"`, `"/a/0su"`}},
			"container-baseline-09": {report.ControlFailed, []string{`"/root/.ssh/id_rsa"`}},
			"container-baseline-10": {report.ControlError, nil},
		}
	})
	// A byte bound inside /a (50 entries of 270 bytes): what came before is named, the rest is not examined.
	cut := fmt.Sprintf("/a/f%03d%s", 10, strings.Repeat("f", 200))
	bound := 0
	for _, p := range []string{"/000" + strings.Repeat("p", 247), "/a", "/a/0su"} {
		bound += len(p) + fileDataBytes
	}
	for i := range 10 {
		bound += len(fmt.Sprintf("/a/f%03d%s", i, strings.Repeat("f", 200))) + fileDataBytes
	}
	both(Limits{MaxDirPath: 100, MaxTreeBytes: bound}, fmt.Sprintf("files: the listing stopped at its bound of %d bytes: %s and what follows", bound, cut), func() map[string]want {
		return map[string]want{
			"container-baseline-04": {report.ControlFailed, []string{`"/a/0su"`}},
			"container-baseline-09": {report.ControlError, nil},
			"container-baseline-10": {report.ControlError, nil},
		}
	})
}
