package integration

import (
	"bufio"
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

	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// npmInCLI says whether cmd/rootscan runs the npm analyzer (scan.DefaultAnalyzers); the lead flips it when wiring it.
const npmInCLI = true

// npmDebs are real Debian 12 packages that install Node.js modules the Debian way, under usr/share/nodejs (not in a
// node_modules directory): two small libraries with a bundled @types package each, and Debian's npm itself (72
// manifests, some in its own node_modules).
var npmDebs = []string{"node-ms", "node-debug", "npm"}

// npmManifestRe is this test's own idea of where an installed manifest is, to check the analyzer against the .debs'
// file lists.
var npmManifestRe = regexp.MustCompile(`^usr/share/nodejs/(?:.*/node_modules/)?(@[^/]+/)?[^/@.][^/]*/package\.json$`)

// TestNpmPackagesInRealRoot scans a root holding a real npm install (the manifests of scan/testdata/npm, from
// `npm install express@4.19.2 @types/node@20.11.30`) and Debian's node-* packages, through the confined root as
// `rootscan scan --dir` does. Oracles: `npm ls --all --parseable --long` for node_modules, the .debs' file lists
// and control fields (Version, Provides) for Debian's modules.
func TestNpmPackagesInRealRoot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root := t.TempDir()
	debs := langUnpackDebs(t, ctx, root, npmDebs)
	if err := os.CopyFS(filepath.Join(root, "app"), os.DirFS("../scan/testdata/npm/root/app")); err != nil {
		t.Fatal(err)
	}

	res := langScan(t, ctx, root, scan.NewNpm())
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
	got := map[string]string{} // location -> "name version"
	for _, p := range res.Packages {
		if p.Ecosystem != report.EcosystemNpm || p.FoundBy != "npm" || p.PURL != npmPURL(p.Name, p.Version) {
			t.Errorf("%+v", p)
		}
		for _, l := range p.Locations {
			if prev, dup := got[l]; dup {
				t.Errorf("%s reported twice: %s and %s %s", l, prev, p.Name, p.Version)
			}
			got[l] = p.Name + " " + p.Version
		}
	}

	// node_modules: exactly what npm ls lists.
	var gotApp []string
	for l, nv := range got {
		if strings.HasPrefix(l, "app/") {
			gotApp = append(gotApp, nv+" "+l)
		}
	}
	slices.Sort(gotApp)
	if want := npmLsLines(t, "../scan/testdata/npm/npm-ls-parseable-long.txt", "app/"); !reflect.DeepEqual(gotApp, want) {
		t.Errorf("node_modules packages:\n%s\nwant (npm ls):\n%s", strings.Join(gotApp, "\n"), strings.Join(want, "\n"))
	}

	// Debian: every manifest the .debs ship is reported, and nothing else.
	var wantDeb, gotDeb []string
	for _, name := range npmDebs {
		out, err := exec.CommandContext(ctx, "dpkg-deb", "-c", debs[name]).Output()
		if err != nil {
			t.Fatalf("dpkg-deb -c %s: %v", debs[name], err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 6 || !strings.HasPrefix(f[0], "-") {
				continue
			}
			if p := strings.TrimPrefix(f[5], "./"); npmManifestRe.MatchString(p) {
				wantDeb = append(wantDeb, p)
			}
		}
	}
	for l := range got {
		if !strings.HasPrefix(l, "app/") {
			gotDeb = append(gotDeb, l)
		}
	}
	slices.Sort(wantDeb)
	slices.Sort(gotDeb)
	if len(wantDeb) < 70 || !reflect.DeepEqual(gotDeb, wantDeb) {
		t.Errorf("Debian manifests reported:\n%s\nshipped:\n%s", strings.Join(gotDeb, "\n"), strings.Join(wantDeb, "\n"))
	}

	// Debian: names and versions agree with the packages' control fields. "2.1.3+~cs0.7.31-3" is upstream 2.1.3 with
	// a bundled component; Provides "node-types-ms (= 0.7.31)" is @types/ms 0.7.31, "node-npmcli-git (= 4.0.3)" is
	// @npmcli/git 4.0.3, "node-libnpmpack (= 5.0.6)" is libnpmpack 5.0.6.
	checked := 0
	for _, name := range npmDebs {
		out, err := exec.CommandContext(ctx, "dpkg-deb", "-f", debs[name], "Version", "Provides").Output()
		if err != nil {
			t.Fatal(err)
		}
		fields := map[string]string{}
		for _, line := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(line, ": "); ok {
				fields[k] = v
			}
		}
		upstream := regexp.MustCompile(`^(?:\d+:)?([0-9.]+)`).FindStringSubmatch(fields["Version"])
		if upstream == nil {
			t.Fatalf("%s: version %q", name, fields["Version"])
		}
		main := strings.TrimPrefix(name, "node-")
		want := map[string]string{main: upstream[1]}
		for _, m := range regexp.MustCompile(`node-([a-z0-9-]+) \(= ([0-9.]+)\)`).FindAllStringSubmatch(fields["Provides"], -1) {
			pkg := m[1]
			if s, ok := strings.CutPrefix(pkg, "types-"); ok {
				pkg = "@types/" + s
			} else if s, ok := strings.CutPrefix(pkg, "npmcli-"); ok {
				pkg = "@npmcli/" + s
			}
			want[pkg] = m[2]
		}
		for pkg, ver := range want {
			l := "usr/share/nodejs/" + pkg + "/package.json"
			if _, shipped := got[l]; !shipped && pkg != main {
				continue // a Provides for a module Debian ships elsewhere or under another name
			}
			checked++
			if got[l] != pkg+" "+ver {
				t.Errorf("%s: got %q, want %q (from %s's control fields)", l, got[l], pkg+" "+ver, name)
			}
		}
	}
	t.Logf("%d manifests: %d in node_modules, %d from Debian; %d Debian modules checked against control fields", len(got), len(gotApp), len(gotDeb), checked)
	if checked < 20 {
		t.Errorf("only %d Debian modules checked against control fields", checked)
	}

	t.Run("cli", func(t *testing.T) {
		if !npmInCLI {
			t.Skip("the npm analyzer is not wired into cmd/rootscan yet")
		}
		res := runRootscan(t, 2*time.Minute, "scan", "--dir", root, "-o", "json")
		doc := decode(t, res)
		if len(doc.Reports) != 1 || doc.Reports[0].Result == nil {
			t.Fatalf("reports: %+v", doc.Reports)
		}
		n := 0
		for _, p := range doc.Reports[0].Result.Packages {
			if p.Ecosystem == report.EcosystemNpm {
				n += len(p.Locations)
			}
		}
		if n != len(got) {
			t.Errorf("CLI reports %d npm manifests, the analyzer %d", n, len(got))
		}
	})
}

// npmPURL is the package URL purl-spec prescribes for npm: the scope is the namespace, its "@" percent-encoded.
func npmPURL(name, version string) string {
	return "pkg:npm/" + strings.Replace(name, "@", "%40", 1) + "@" + version
}

// npmLsLines turns `npm ls --all --parseable --long` lines ("<abs path>:<name>@<version>[:...]") into "name version
// path" lines, the path relative to the scanned root (prefix stands for the install directory).
func npmLsLines(t *testing.T, file, prefix string) []string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	var project string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		dir, spec, _ := strings.Cut(sc.Text(), ":")
		if project == "" {
			project = dir
			continue
		}
		spec, _, _ = strings.Cut(spec, ":")
		i := strings.LastIndexByte(spec, '@')
		rel, ok := strings.CutPrefix(dir, project+"/")
		if i <= 0 || !ok {
			t.Fatalf("npm ls line %q", sc.Text())
		}
		out = append(out, spec[:i]+" "+spec[i+1:]+" "+prefix+rel+"/package.json")
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	if len(out) != 73 {
		t.Fatalf("npm ls lists %d packages, want 73", len(out))
	}
	return out
}
