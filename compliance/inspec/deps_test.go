package inspec

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/rootscan/rootscan/compliance"
	"github.com/rootscan/rootscan/report"
)

// overlayProfile is the test overlay (testdata/site-overlay): skip_control, an impact override, a describe
// override, an input for its dependency, require_controls, and a dependency that is not vendored.
const overlayProfile = "testdata/site-overlay"

// readTree reads a directory's files by their path in it.
func readTree(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// overlayWant is every control's result of the overlay on the eval root: base-03 and o-2 are not reported.
var overlayWant = map[string]want{
	"base-01": {report.ControlPassed, ""},
	"base-02": {report.ControlPassed, ""},
	"base-04": {report.ControlPassed, ""},
	"base-05": {report.ControlPassed, ""},
	"o-1":     {report.ControlPassed, ""},
	"r-1":     {report.ControlSkipped, "dependency remote is not vendored: run inspec vendor"},
}

func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func prefixed(prefix string, files map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range files {
		out[prefix+k] = v
	}
	return out
}

func tarGz(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	tw := tar.NewWriter(zw)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// overlayArchive is the overlay as `inspec archive` writes it after `inspec vendor`: the profile in a
// directory, inspec.lock naming each url dependency's sha256, vendor/SHA.tar.gz for base, an unpacked
// vendor/SHA/ for other.
func overlayArchive(t testing.TB) string {
	src := readTree(t, overlayProfile)
	top, base, other := map[string]string{}, map[string]string{}, map[string]string{}
	for name, data := range src {
		switch {
		case strings.HasPrefix(name, "deps/base/"):
			base["base-2.0.1/"+strings.TrimPrefix(name, "deps/base/")] = data
		case strings.HasPrefix(name, "deps/other/"):
			other[strings.TrimPrefix(name, "deps/other/")] = data
		case name == "inspec.yml":
			data = strings.Replace(data, "    path: deps/base\n", "    url: https://example.invalid/base.tar.gz\n", 1)
			data = strings.Replace(data, "    path: deps/other\n", "    git: https://example.invalid/other.git\n    tag: v0.1.0\n", 1)
			top["site-overlay/"+name] = data
		default:
			top["site-overlay/"+name] = data
		}
	}
	baseTar := tarGz(t, base)
	sum := sha256.Sum256(baseTar)
	baseKey := hex.EncodeToString(sum[:])
	otherKey := strings.Repeat("ab", 20) // a git dependency is vendored by its commit
	top["site-overlay/inspec.lock"] = fmt.Sprintf(`---
lockfile_version: 1
depends:
- name: base
  resolved_source:
    url: https://example.invalid/base.tar.gz
    sha256: %s
  version_constraints: []
- name: other
  resolved_source:
    git: https://example.invalid/other.git
    ref: %s
    tag: v0.1.0
  version_constraints: []
`, baseKey, otherKey)
	top["site-overlay/vendor/"+baseKey+".tar.gz"] = string(baseTar)
	for k, v := range prefixed("site-overlay/vendor/"+otherKey+"/", other) {
		top[k] = v
	}
	p := filepath.Join(t.TempDir(), "site-overlay-1.0.0.tar.gz")
	if err := os.WriteFile(p, tarGz(t, top), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func evalLoaded(t testing.TB, p *Profile, inputs map[string]any) (*Runner, []report.ControlResult) {
	t.Helper()
	root := evalRoot(t, evalFiles, evalModes)
	res := &report.Result{OS: &report.OS{ID: "debian", VersionID: "12"}}
	tg := compliance.NewTarget(context.Background(), root, report.Target{Kind: "dir"}, nil, res, compliance.Limits{}, nil)
	r := NewRunner(p, inputs, EvalLimits{})
	return r, r.Evaluate(context.Background(), tg)
}

// TestOverlayDependencies runs the overlay from a directory and from an archive with vendored dependencies:
// skip_control drops base-03, the impact override keeps base-02's check, the describe override replaces
// base-04's, the overlay's input makes base-05 pass, require_controls runs o-1 only, and the overlay of a
// dependency that is not vendored is skipped with the reason.
func TestOverlayDependencies(t *testing.T) {
	for what, src := range map[string]string{"dir": overlayProfile, "archive": overlayArchive(t)} {
		t.Run(what, func(t *testing.T) {
			p, err := Load(context.Background(), src, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			status := map[string]DepStatus{}
			for _, d := range p.Deps {
				status[d.Name] = d.Status
			}
			if status["base"] != DepLoaded || status["other"] != DepLoaded || status["remote"] != DepNotVendored {
				t.Fatalf("deps %v", status)
			}
			var ids []string
			for _, v := range p.CheckWithDeps(DefaultCatalog()) {
				ids = append(ids, v.Control.File+"#"+v.Control.ID)
			}
			if got := strings.Join(ids, " "); got != "controls/overlay.rb#base-02 controls/overlay.rb#base-04 controls/overlay.rb#r-1 "+
				"base:controls/base.rb#base-01 base:controls/base.rb#base-02 base:controls/base.rb#base-04 base:controls/base.rb#base-05 other:controls/o.rb#o-1" {
				t.Errorf("check %s", got)
			}
			r, got := evalLoaded(t, p, nil)
			checkResults(t, got, overlayWant)
			imp := map[string]float64{}
			for _, res := range got {
				imp[res.ID] = res.Impact
			}
			if imp["base-02"] != 0.3 || imp["base-01"] != 0.7 || imp["r-1"] != 1.0 {
				t.Errorf("impacts %v", imp)
			}
			hc, _, ok := r.HDFControl("base-04")
			if !ok || hc.Title == nil || *hc.Title != "site config exists" || hc.SourceLocation.Line != 6 {
				t.Errorf("base-04 HDF %+v", hc)
			}
			deps := r.HDFDependencies()
			if len(deps) != 2 || deps[0].Name != "base" || deps[0].ParentProfile != "site-overlay" || len(deps[0].Controls) != 5 ||
				len(deps[0].Controls[0].Results) != 0 || deps[1].Name != "other" {
				t.Errorf("HDF dependencies %+v", deps)
			}
			hc, _, _ = r.HDFControl("base-01")
			if hc.Tags["severity"] != "high" || !strings.Contains(hc.SourceLocation.Ref, "base") {
				t.Errorf("base-01 HDF %+v", hc)
			}
		})
	}
}

// TestOverlayInputFile: --input-file wins over the overlay's input, as in InSpec.
func TestOverlayInputFile(t *testing.T) {
	p, err := Load(context.Background(), overlayProfile, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	_, got := evalLoaded(t, p, map[string]any{"conf_path": "/etc/nothing"})
	for _, r := range got {
		if r.ID == "base-05" && (r.Status != report.ControlFailed || !strings.Contains(r.Message, "/etc/nothing")) {
			t.Errorf("base-05: %s %q", r.Status, r.Message)
		}
	}
}

// TestDependencyLimits: a cycle (a depends on b depends on a), a chain deeper than the limit and a path that
// leaves the profile end in reasons, not in a hang or a read outside the profile.
func TestDependencyLimits(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"inspec.yml":      "name: a\ndepends:\n  - name: b\n    path: b\n  - name: out\n    path: ../../etc\n  - name: deep\n    path: d0\n",
		"controls/a.rb":   "include_controls 'b'\n3.times { include_controls 'b' }\n", // once, as InSpec registers a control once
		"b/inspec.yml":    "name: b\ndepends:\n  - name: a\n    path: ..\n",
		"b/controls/b.rb": "control 'b-1' do\n  describe file('/etc/passwd') do\n    it { should exist }\n  end\nend\ninclude_controls 'a'\n",
	}
	deep := "d0"
	for i := 0; i < 20; i++ {
		next := fmt.Sprintf("d%d", i+1)
		files[deep+"/inspec.yml"] = fmt.Sprintf("name: %s\ndepends:\n  - name: %s\n    path: %s\n", filepath.Base(deep), next, next)
		deep += "/" + next
	}
	writeTree(t, dir, files)
	p, err := Load(context.Background(), dir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	b := p.Dep("b")
	if b == nil || b.Status != DepLoaded || b.Profile.Dep("a").Status != DepMissing || !strings.Contains(b.Profile.Dep("a").Reason, "cycle") {
		t.Fatalf("b: %+v", b)
	}
	if o := p.Dep("out"); o.Status != DepNotVendored || !strings.Contains(o.Reason, "outside the profile") {
		t.Errorf("out: %+v", o)
	}
	d, depth := p.Dep("deep"), 0
	for d != nil && d.Status == DepLoaded {
		d, depth = d.Profile.Deps[0], depth+1
	}
	if d == nil || depth >= maxDepDepth || !strings.Contains(d.Reason, "levels") && !strings.Contains(d.Reason, "no profile") {
		t.Errorf("deep chain: depth %d, %+v", depth, d)
	}
	_, got := evalLoaded(t, p, nil)
	if len(got) != 1 || got[0].ID != "b-1" || got[0].Status != report.ControlPassed {
		t.Errorf("results %+v", got)
	}
	lines := p.DepReport()
	if len(lines) == 0 || lines[0].File != "inspec.yml" || lines[0].Line != 3 {
		t.Errorf("report %+v", lines)
	}
}

// FuzzDependencies resolves arbitrary inspec.yml and inspec.lock files over a vendor directory whose profiles
// depend on each other by name and path: resolution ends (cycles, depth) without a panic, every dependency is
// loaded or says why not, and chains stay within the depth limit.
func FuzzDependencies(f *testing.F) {
	f.Add("name: a\ndepends:\n  - name: b\n    path: vendor/k1\n", "depends:\n- name: b\n  resolved_source: {sha256: k1}\n", "name: b\ndepends:\n  - name: a\n    path: ../..\n")
	f.Add("name: a\ndepends:\n  - name: b\n    url: https://x/b.tar.gz\n", "depends:\n- name: b\n  resolved_source: {sha256: k1}\n  dependencies:\n  - name: c\n    resolved_source: {ref: k2}\n", "name: b\ndepends:\n  - name: c\n    git: https://x/c\n")
	f.Add("name: a\ndepends:\n  - path: ../../../etc\n  - name: z\n    path: vendor/k2\n", "", "name: z\ndepends:\n  - name: z\n    path: .\n")
	f.Fuzz(func(t *testing.T, top, lock, vendored string) {
		files := map[string][]byte{
			"inspec.yml":              []byte(top),
			"inspec.lock":             []byte(lock),
			"vendor/k1/inspec.yml":    []byte(vendored),
			"vendor/k2/inspec.yml":    []byte(vendored),
			"vendor/k1/controls/x.rb": []byte("include_controls 'a'\ncontrol 'x' do\nend\n"),
		}
		p, err := FromFiles("fuzz", files, Limits{})
		if err != nil {
			return
		}
		loadDeps(p, files, Limits{})
		var walk func(*Profile, int)
		walk = func(p *Profile, depth int) {
			if depth > maxDepDepth {
				t.Fatalf("dependency chain deeper than %d", maxDepDepth)
			}
			for _, d := range p.Deps {
				if (d.Status == DepLoaded) != (d.Profile != nil) || d.Status != DepLoaded && d.Reason == "" {
					t.Fatalf("dependency %+v", d)
				}
				if d.Profile != nil {
					walk(d.Profile, depth+1)
				}
			}
		}
		walk(p, 0)
		_ = p.DepReport()
		_ = p.CheckWithDeps(DefaultCatalog())
	})
}

// TestVendoredArchiveBudget: a vendored archive unpacks within what the profile's byte limit leaves, so a
// small archive of a large file (a compression bomb) makes its dependency missing, not memory grow.
func TestVendoredArchiveBudget(t *testing.T) {
	bomb := tarGz(t, map[string]string{"b/inspec.yml": "name: b\n", "b/files/big": strings.Repeat("\x00", 4<<20)})
	files := map[string][]byte{
		"inspec.yml":      []byte("name: a\ndepends:\n  - name: b\n    url: https://example.invalid/b.tar.gz\n"),
		"inspec.lock":     []byte("depends:\n- name: b\n  resolved_source:\n    sha256: k\n"),
		"vendor/k.tar.gz": bomb,
		"controls/a.rb":   []byte("include_controls 'b'\n"),
	}
	lim := Limits{MaxTotalBytes: 1 << 20}
	p, err := FromFiles("t", files, lim)
	if err != nil {
		t.Fatal(err)
	}
	loadDeps(p, files, lim.withDefaults())
	if d := p.Dep("b"); d == nil || d.Status != DepMissing || !strings.Contains(d.Reason, "vendor/k.tar.gz does not load: ") {
		t.Errorf("b: %+v", d)
	}
	lim = Limits{}
	p, _ = FromFiles("t", files, lim)
	loadDeps(p, files, lim.withDefaults())
	if d := p.Dep("b"); d == nil || d.Status != DepLoaded {
		t.Errorf("b within the default limit: %+v", d)
	}
}

// BenchmarkOverlayArchive loads the vendored overlay archive (two dependencies, one a nested archive) and
// evaluates it on the eval root.
func BenchmarkOverlayArchive(b *testing.B) {
	src := overlayArchive(b)
	root := evalRoot(b, evalFiles, evalModes)
	res := &report.Result{OS: &report.OS{ID: "debian", VersionID: "12"}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		p, err := Load(context.Background(), src, Limits{})
		if err != nil {
			b.Fatal(err)
		}
		tg := compliance.NewTarget(context.Background(), root, report.Target{Kind: "dir"}, nil, res, compliance.Limits{}, nil)
		if got := NewRunner(p, nil, EvalLimits{}).Evaluate(context.Background(), tg); len(got) != 6 {
			b.Fatalf("%d results", len(got))
		}
	}
}
