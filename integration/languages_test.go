package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/internal/testbed"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// languagesInCLI says whether cmd/rootscan runs the Go and Python analyzers; the lead flips it when wiring them.
const languagesInCLI = true

// langDebs are real Debian 12 packages whose language inventory the scanner must report: fzf is a Go program (built
// by Debian outside module mode), the others ship Python metadata as egg-info (PKG-INFO) or dist-info (METADATA).
var langDebs = []string{
	"fzf", "python3-six", "python3-idna", "python3-certifi", "python3-requests", "python3-urllib3",
	"python3-chardet", "python3-yaml",
}

// TestLanguagePackagesInRealRoot unpacks real .debs and a freshly built Go program into a directory and scans it
// through the confined root, as `rootscan scan --dir` does.
func TestLanguagePackagesInRealRoot(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		langSkip(t, "go not found")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root := t.TempDir()
	debs := langUnpackDebs(t, ctx, root, langDebs)
	goVers := langBuildGo(t, ctx, filepath.Join(root, "usr/local/bin/langtest"))
	fzfGo := langFzfGoVersion(t, ctx, debs["fzf"])

	want := []string{
		"Go example.com/langtest (devel) usr/local/bin/langtest",
		"Go github.com/google/uuid 1.6.0 usr/local/bin/langtest",
		"PyPI certifi 2022.9.24 usr/lib/python3/dist-packages/certifi-2022.9.24.egg-info/PKG-INFO",
		"PyPI chardet 5.1.0 usr/lib/python3/dist-packages/chardet-5.1.0.dist-info/METADATA",
		"PyPI idna 3.3 usr/lib/python3/dist-packages/idna-3.3.egg-info/PKG-INFO",
		"PyPI pyyaml 6.0 usr/lib/python3/dist-packages/PyYAML-6.0.dist-info/METADATA",
		"PyPI requests 2.28.1 usr/lib/python3/dist-packages/requests-2.28.1.egg-info/PKG-INFO",
		"PyPI six 1.16.0 usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO",
		"PyPI urllib3 1.26.12 usr/lib/python3/dist-packages/urllib3-1.26.12.egg-info/PKG-INFO",
	}
	// fzf is built outside module mode: only its toolchain is known. Debian's Built-Using names that toolchain.
	if fzfGo == goVers {
		want = append(want, "Go stdlib "+goVers+" usr/bin/fzf,usr/local/bin/langtest")
	} else {
		want = append(want, "Go stdlib "+fzfGo+" usr/bin/fzf", "Go stdlib "+goVers+" usr/local/bin/langtest")
	}
	slices.Sort(want)

	res := langScan(t, ctx, root, scan.NewBinary(), scan.NewPython())
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
	if got := langLines(res.Packages); !reflect.DeepEqual(got, want) {
		t.Errorf("packages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	t.Run("cli", func(t *testing.T) {
		if !languagesInCLI {
			t.Skip("the Go and Python analyzers are not wired into cmd/rootscan yet")
		}
		res := runRootscan(t, 2*time.Minute, "scan", "--dir", root, "-o", "json")
		doc := decode(t, res)
		if len(doc.Reports) != 1 || doc.Reports[0].Result == nil {
			t.Fatalf("reports: %+v", doc.Reports)
		}
		var lang []report.Package
		for _, p := range doc.Reports[0].Result.Packages {
			if p.Ecosystem == report.EcosystemGo || p.Ecosystem == report.EcosystemPyPI {
				lang = append(lang, p)
			}
		}
		if got := langLines(lang); !reflect.DeepEqual(got, want) {
			t.Errorf("CLI packages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

func langSkip(t *testing.T, why string) {
	t.Helper()
	if os.Getenv(testbed.EnvIntegration) == "require" {
		t.Fatal(why)
	}
	t.Skip(why)
}

func langLines(ps []report.Package) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Ecosystem+" "+p.Name+" "+p.Version+" "+strings.Join(p.Locations, ","))
	}
	slices.Sort(out)
	return out
}

// langUnpackDebs fetches the named .debs (see langFetchDebs) and unpacks each into root with dpkg-deb, as dpkg
// would lay them out; it returns the .deb paths by package name.
func langUnpackDebs(t *testing.T, ctx context.Context, root string, names []string) map[string]string {
	t.Helper()
	needTools(t, "apt-get", "dpkg-deb")
	debs := langFetchDebs(t, ctx, names)
	for _, name := range names {
		if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", debs[name], root).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb -x %s: %v\n%s", debs[name], err, out)
		}
	}
	return debs
}

// langScan runs the analyzers over root through a confined Root, as `rootscan scan --dir` does.
func langScan(t *testing.T, ctx context.Context, root string, analyzers ...scan.Analyzer) *report.Result {
	t.Helper()
	r, err := fsaccess.OpenDir(root, fsaccess.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return scan.Run(ctx, r, analyzers)
}

// langFetchDebs returns the newest cached .deb of each package, downloading the missing ones with apt-get into the
// testbed's deb cache (shared with the image builders, so reruns work offline).
func langFetchDebs(t *testing.T, ctx context.Context, names []string) map[string]string {
	t.Helper()
	dir := filepath.Join(ociimage.DefaultCacheDir(), "debs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	find := func(name string) string {
		m, _ := filepath.Glob(filepath.Join(dir, name+"_*.deb"))
		if len(m) == 0 {
			return ""
		}
		slices.Sort(m)
		return m[len(m)-1]
	}
	var missing []string
	for _, n := range names {
		if find(n) == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		tmp, err := os.MkdirTemp(dir, ".download-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(tmp)
		cmd := exec.CommandContext(ctx, "apt-get", append([]string{"-q", "-o", "APT::Sandbox::User=root", "download"}, missing...)...)
		cmd.Dir = tmp
		if out, err := cmd.CombinedOutput(); err != nil {
			langSkip(t, "apt-get download: "+err.Error()+"\n"+string(out))
		}
		got, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
		for _, d := range got {
			if err := os.Rename(d, filepath.Join(dir, filepath.Base(d))); err != nil {
				t.Fatal(err)
			}
		}
	}
	debs := map[string]string{}
	for _, n := range names {
		if debs[n] = find(n); debs[n] == "" {
			t.Fatalf("no .deb for %s in %s", n, dir)
		}
	}
	return debs
}

// langBuildGo builds a small module-mode program requiring github.com/google/uuid v1.6.0, stripped and trimmed the
// way release builds are, and returns the toolchain version as OSV names it.
func langBuildGo(t *testing.T, ctx context.Context, out string) string {
	t.Helper()
	src := t.TempDir()
	files := map[string]string{
		"go.mod":  "module example.com/langtest\n\ngo 1.21\n\nrequire github.com/google/uuid v1.6.0\n",
		"main.go": "package main\n\nimport (\n\t\"fmt\"\n\n\t\"github.com/google/uuid\"\n)\n\nfunc main() { fmt.Println(uuid.NewString()) }\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod -buildvcs=false", "GOSUMDB=off", "GOWORK=off", "GOTOOLCHAIN=local",
		"CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	v, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(strings.TrimSpace(string(v)), "go")
}

// langFzfGoVersion reads the Go toolchain version fzf was built with from the .deb's Built-Using field
// ("golang-1.19 (= 1.19.8-2)" -> "1.19.8"), an oracle independent of the binary.
func langFzfGoVersion(t *testing.T, ctx context.Context, deb string) string {
	t.Helper()
	out, err := exec.CommandContext(ctx, "dpkg-deb", "-f", deb, "Built-Using").Output()
	if err != nil {
		t.Fatalf("dpkg-deb -f %s: %v", deb, err)
	}
	m := regexp.MustCompile(`golang-1\.[0-9]+ \(= ([0-9.]+)-[^)]*\)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no Go toolchain in Built-Using %q", out)
	}
	return string(m[1])
}
