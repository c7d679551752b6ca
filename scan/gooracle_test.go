package scan

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/vuln"
)

// The govulncheck oracle: real Go programs, built with an old and the current toolchain for several platforms,
// stripped and not, are checked by govulncheck (golang.org/x/vuln, pinned in internal/tools) and by rootscan
// against the same Go vulnerability database (golang.org/x/vulndb's data/osv, pinned there too). Module-level
// findings must be equal, and rootscan's reachable findings must be govulncheck's symbol-level findings on the
// unstripped build, for the stripped build too (govulncheck itself reports every finding of a stripped program).
//
// Builds, tools and the indexed database are cached under $ROOTSCAN_TESTBED_CACHE (default
// /var/cache/rootscan-testbed)/gooracle. The test skips when the go command, the module proxy or the old toolchain
// is unavailable, unless ROOTSCAN_INTEGRATION=require.

// oracleBuild is one program build; each is made unstripped and with -ldflags=-s -w.
type oracleBuild struct {
	prog, toolchain, goos, goarch string
	flags                         []string
}

func (b oracleBuild) name() string {
	n := b.prog + "-" + b.goos + "-" + b.goarch
	for _, f := range b.flags {
		n += "-" + strings.Trim(strings.TrimPrefix(f, "-buildmode="), "-")
	}
	return n
}

var oracleBuilds = []oracleBuild{
	{prog: "old", toolchain: "go1.22.0", goos: "linux", goarch: "amd64"},
	{prog: "old", toolchain: "go1.22.0", goos: "linux", goarch: "amd64", flags: []string{"-trimpath"}},
	{prog: "old", toolchain: "go1.22.0", goos: "linux", goarch: "amd64", flags: []string{"-buildmode=pie"}},
	{prog: "old", toolchain: "go1.22.0", goos: "linux", goarch: "arm64"},
	{prog: "old", toolchain: "go1.22.0", goos: "windows", goarch: "amd64"},
	{prog: "cur", toolchain: "local", goos: "linux", goarch: "amd64"},
	{prog: "cur", toolchain: "local", goos: "linux", goarch: "amd64", flags: []string{"-buildmode=pie", "-trimpath"}},
	{prog: "cur", toolchain: "local", goos: "linux", goarch: "arm64"},
	{prog: "cur", toolchain: "local", goos: "windows", goarch: "amd64"},
}

func TestGovulncheckOracle(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Go programs and tools")
	}
	o := newOracle(t)
	db := o.rootscanDB(t)
	var total oracleCounts
	for _, b := range oracleBuilds {
		t.Run(b.name(), func(t *testing.T) {
			plain := o.build(t, b, false)
			want := o.govulncheck(t, plain)
			for _, bin := range []string{plain, o.build(t, b, true)} {
				mods, reach, unknown := rootscanGoFindings(t, db, bin)
				if !maps.Equal(mods, want.mods) {
					t.Errorf("%s: module-level findings differ from govulncheck's:\nonly rootscan: %v\nonly govulncheck: %v",
						filepath.Base(bin), setMinus(mods, want.mods), setMinus(want.mods, mods))
				}
				if !maps.Equal(reach, want.syms) {
					t.Errorf("%s: reachable findings differ from govulncheck's symbol-level findings:\nonly rootscan: %v\nonly govulncheck: %v",
						filepath.Base(bin), setMinus(reach, want.syms), setMinus(want.syms, reach))
				}
				if len(unknown) > 0 {
					t.Errorf("%s: reachability unknown for %v", filepath.Base(bin), unknown)
				}
				t.Logf("%s: %d findings, %d reachable (govulncheck: %d, %d)", filepath.Base(bin), len(mods), len(reach), len(want.mods), len(want.syms))
				total.add(mods, reach, want)
			}
		})
	}
	t.Logf("all builds: %+v", total)
}

type findingKey struct{ id, module string }

type findingSet = map[findingKey]bool

func setMinus(a, b findingSet) []findingKey {
	var out []findingKey
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(x, y findingKey) int { return strings.Compare(x.id+x.module, y.id+y.module) })
	return out
}

// oracleCounts sums the findings of all builds, for precision and recall against govulncheck.
type oracleCounts struct {
	Findings, Reachable, TruePositives, GovulncheckReachable int
}

func (c *oracleCounts) add(mods, reach findingSet, want oracleResult) {
	c.Findings += len(mods)
	c.Reachable += len(reach)
	c.GovulncheckReachable += len(want.syms)
	for k := range reach {
		if want.syms[k] {
			c.TruePositives++
		}
	}
}

type oracle struct {
	cache, tools, govulndb, osvDir string
}

// oracleUnavailable skips, or fails under ROOTSCAN_INTEGRATION=require.
func oracleUnavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("ROOTSCAN_INTEGRATION") == "require" {
		t.Fatalf("govulncheck oracle unavailable: "+format, args...)
	}
	t.Skipf("govulncheck oracle unavailable: "+format, args...)
}

func newOracle(t *testing.T) *oracle {
	if _, err := exec.LookPath("go"); err != nil {
		oracleUnavailable(t, "no go command: %v", err)
	}
	cache := os.Getenv("ROOTSCAN_TESTBED_CACHE")
	if cache == "" {
		cache = "/var/cache/rootscan-testbed"
	}
	o := &oracle{cache: filepath.Join(cache, "gooracle")}
	if err := os.MkdirAll(o.cache, 0o755); err != nil {
		oracleUnavailable(t, "cache: %v", err)
	}
	toolsDir, err := filepath.Abs("../internal/tools")
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(toolsDir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	o.tools = filepath.Join(o.cache, "tools-"+hashOf(gomod))
	if _, err := os.Stat(filepath.Join(o.tools, "indexdb")); err != nil {
		tmp := o.tools + ".tmp"
		os.RemoveAll(tmp)
		if out, err := goCmd(toolsDir, nil, "build", "-o", tmp+"/", "golang.org/x/vuln/cmd/govulncheck",
			"golang.org/x/vulndb/cmd/indexdb"); err != nil {
			oracleUnavailable(t, "build govulncheck and indexdb: %v\n%s", err, out)
		}
		if err := os.Rename(tmp, o.tools); err != nil {
			t.Fatal(err)
		}
	}
	out, err := goCmd(toolsDir, nil, "mod", "download", "-json", "golang.org/x/vulndb")
	if err != nil {
		oracleUnavailable(t, "download golang.org/x/vulndb: %v\n%s", err, out)
	}
	var mod struct{ Dir, Version string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download: %v\n%s", err, out)
	}
	o.osvDir = filepath.Join(mod.Dir, "data", "osv")
	o.govulndb = filepath.Join(o.cache, "govulndb-"+mod.Version)
	if _, err := os.Stat(filepath.Join(o.govulndb, "index")); err != nil {
		tmp := o.govulndb + ".tmp"
		os.RemoveAll(tmp)
		if out, err := exec.Command(filepath.Join(o.tools, "indexdb"), "-vulns", o.osvDir, "-out", tmp).CombinedOutput(); err != nil {
			t.Fatalf("indexdb: %v\n%s", err, out)
		}
		if err := os.Rename(tmp, o.govulndb); err != nil {
			t.Fatal(err)
		}
	}
	return o
}

func hashOf(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// goCmd runs the go command in dir with the process's environment plus env.
func goCmd(dir string, env []string, args ...string) ([]byte, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return append(out, stderr.Bytes()...), err
	}
	return out, nil
}

// rootscanDB imports the same data/osv into a rootscan database.
func (o *oracle) rootscanDB(t *testing.T) *vuln.DB {
	dir := t.TempDir()
	b, err := vuln.NewBuilder(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.ImportPath(context.Background(), o.osvDir, vuln.Limits{}); err != nil {
		b.Abort()
		t.Fatal(err)
	}
	if _, err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	db, err := vuln.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// build builds one program (cached by its sources, toolchain, platform and flags) and returns the binary's path,
// alone in its directory so that a scan of the directory sees only it.
func (o *oracle) build(t *testing.T, b oracleBuild, strip bool) string {
	t.Helper()
	src := filepath.Join("testdata", "gooracle", b.prog)
	var parts [][]byte
	for _, f := range []string{"go.mod", "go.sum", "main.go"} {
		data, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, data)
	}
	args := append([]string{"build", "-o"}, "")
	args = append(args, b.flags...)
	if strip {
		args = append(args, "-ldflags=-s -w")
	}
	parts = append(parts, []byte(b.toolchain+b.goos+b.goarch+strings.Join(args, " ")))
	name := b.name()
	if strip {
		name += "-stripped"
	}
	dir := filepath.Join(o.cache, "bin", name+"-"+hashOf(parts...))
	bin := filepath.Join(dir, b.prog)
	if b.goos == "windows" {
		bin += ".exe"
	}
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	args[2] = filepath.Join(tmp, filepath.Base(bin))
	env := []string{"GOTOOLCHAIN=" + b.toolchain, "GOOS=" + b.goos, "GOARCH=" + b.goarch, "CGO_ENABLED=0", "GOFLAGS=-mod=readonly"}
	if out, err := goCmd(src, env, append(args, ".")...); err != nil {
		if b.toolchain != "local" {
			oracleUnavailable(t, "build with %s: %v\n%s", b.toolchain, err, out)
		}
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	return bin
}

// oracleResult is govulncheck's verdict on one program: its module-level findings and those it reports at
// symbol level.
type oracleResult struct {
	mods, syms findingSet
}

func (o *oracle) govulncheck(t *testing.T, bin string) oracleResult {
	t.Helper()
	cmd := exec.Command(filepath.Join(o.tools, "govulncheck"), "-mode=binary", "-scan=symbol", "-format=json",
		"-db=file://"+o.govulndb, bin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("govulncheck %s: %v\n%s", bin, err, stderr.Bytes())
	}
	res := oracleResult{mods: findingSet{}, syms: findingSet{}}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var msg struct {
			Finding *struct {
				OSV   string `json:"osv"`
				Trace []struct {
					Module   string `json:"module"`
					Function string `json:"function"`
				} `json:"trace"`
			} `json:"finding"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("govulncheck output: %v", err)
		}
		if msg.Finding == nil || len(msg.Finding.Trace) == 0 {
			continue
		}
		k := findingKey{msg.Finding.OSV, msg.Finding.Trace[0].Module}
		res.mods[k] = true
		if msg.Finding.Trace[0].Function != "" {
			res.syms[k] = true
		}
	}
	return res
}

// rootscanGoFindings scans the binary's directory with the binary analyzer and matches the result: the Go
// findings, those reachable, and those whose reachability is unknown.
func rootscanGoFindings(t *testing.T, db *vuln.DB, bin string) (mods, reach findingSet, unknown []string) {
	t.Helper()
	res := Run(context.Background(), os.DirFS(filepath.Dir(bin)).(FS), []Analyzer{NewBinary()})
	for _, e := range res.Errors {
		t.Errorf("scan %s: %s: %s", bin, e.Path, e.Err)
	}
	if len(res.GoBinaries) != 1 {
		t.Fatalf("scan %s: %d Go programs found, want 1", bin, len(res.GoBinaries))
	}
	if err := db.Match(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	mods, reach = findingSet{}, findingSet{}
	for _, v := range res.Vulnerabilities {
		if v.Ecosystem != report.EcosystemGo {
			continue
		}
		k := findingKey{v.ID, v.Package}
		mods[k] = true
		switch v.Reachable {
		case report.ReachableTrue:
			reach[k] = true
		case report.ReachableUnknown, "":
			unknown = append(unknown, fmt.Sprint(k))
		}
	}
	return mods, reach, unknown
}
