package scan

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rootscan/rootscan/internal/testbed/gooracle"
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

var oracleBuilds = []gooracle.Build{
	{Src: "testdata/gooracle/old", Toolchain: "go1.22.0", GOOS: "linux", GOARCH: "amd64"},
	{Src: "testdata/gooracle/old", Toolchain: "go1.22.0", GOOS: "linux", GOARCH: "amd64", Flags: []string{"-trimpath"}},
	{Src: "testdata/gooracle/old", Toolchain: "go1.22.0", GOOS: "linux", GOARCH: "amd64", Flags: []string{"-buildmode=pie"}},
	{Src: "testdata/gooracle/old", Toolchain: "go1.22.0", GOOS: "linux", GOARCH: "arm64"},
	{Src: "testdata/gooracle/old", Toolchain: "go1.22.0", GOOS: "windows", GOARCH: "amd64"},
	{Src: "testdata/gooracle/cur", Toolchain: "local", GOOS: "linux", GOARCH: "amd64"},
	{Src: "testdata/gooracle/cur", Toolchain: "local", GOOS: "linux", GOARCH: "amd64", Flags: []string{"-buildmode=pie", "-trimpath"}},
	{Src: "testdata/gooracle/cur", Toolchain: "local", GOOS: "linux", GOARCH: "arm64"},
	{Src: "testdata/gooracle/cur", Toolchain: "local", GOOS: "windows", GOARCH: "amd64"},
}

func TestGovulncheckOracle(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Go programs and tools")
	}
	ctx := context.Background()
	o, err := gooracle.New(ctx, "../internal/tools", oracleCache())
	oracleCheck(t, err)
	db := oracleDB(t, o.OSVDir)
	var total oracleCounts
	for _, b := range oracleBuilds {
		t.Run(b.Name(), func(t *testing.T) {
			plain, err := o.Build(ctx, b, false)
			oracleCheck(t, err)
			stripped, err := o.Build(ctx, b, true)
			oracleCheck(t, err)
			want, err := o.Govulncheck(ctx, plain)
			if err != nil {
				t.Fatal(err)
			}
			bins := []string{plain, stripped}
			// Without section headers debug/buildinfo finds no build info in a PIE program (nor does govulncheck).
			if b.GOOS == "linux" && !slices.Contains(b.Flags, "-buildmode=pie") {
				bins = append(bins, withoutSectionHeaders(t, stripped))
			}
			for _, bin := range bins {
				mods, reach, unknown := rootscanGoFindings(t, db, bin)
				if !maps.Equal(mods, want.Modules) {
					t.Errorf("%s: module-level findings differ from govulncheck's:\nonly rootscan: %v\nonly govulncheck: %v",
						filepath.Base(bin), setMinus(mods, want.Modules), setMinus(want.Modules, mods))
				}
				if !maps.Equal(reach, want.Symbols) {
					t.Errorf("%s: reachable findings differ from govulncheck's symbol-level findings:\nonly rootscan: %v\nonly govulncheck: %v",
						filepath.Base(bin), setMinus(reach, want.Symbols), setMinus(want.Symbols, reach))
				}
				if len(unknown) > 0 {
					t.Errorf("%s: reachability unknown for %v", filepath.Base(bin), unknown)
				}
				t.Logf("%s: %d findings, %d reachable (govulncheck: %d, %d)", filepath.Base(bin), len(mods), len(reach), len(want.Modules), len(want.Symbols))
				total.add(mods, reach, want)
			}
		})
	}
	t.Logf("all builds: %+v", total)
}

// withoutSectionHeaders copies an ELF program with its section headers dropped (what sstrip does): the reader
// then finds the function table by its magic and the moduledata by its pointers.
func withoutSectionHeaders(t *testing.T, bin string) string {
	t.Helper()
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if elf.Class(data[elf.EI_CLASS]) != elf.ELFCLASS64 {
		t.Fatalf("%s: not a 64-bit ELF", bin)
	}
	clear(data[40:48]) // e_shoff
	clear(data[60:64]) // e_shnum, e_shstrndx
	out := filepath.Join(t.TempDir(), filepath.Base(bin))
	if err := os.WriteFile(out, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return out
}

// oracleCache is the test bed's cache directory.
func oracleCache() string {
	if d := os.Getenv("ROOTSCAN_TESTBED_CACHE"); d != "" {
		return d
	}
	return "/var/cache/rootscan-testbed"
}

// oracleCheck fails on err, or skips when the oracle cannot run here unless ROOTSCAN_INTEGRATION=require.
func oracleCheck(t *testing.T, err error) {
	t.Helper()
	switch {
	case err == nil:
	case errors.Is(err, gooracle.ErrUnavailable) && os.Getenv("ROOTSCAN_INTEGRATION") != "require":
		t.Skip(err)
	default:
		t.Fatal(err)
	}
}

type findingSet = map[gooracle.Finding]bool

func setMinus(a, b findingSet) []gooracle.Finding {
	var out []gooracle.Finding
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(x, y gooracle.Finding) int { return strings.Compare(x.ID+x.Module, y.ID+y.Module) })
	return out
}

// oracleCounts sums the findings of all builds, for precision and recall against govulncheck.
type oracleCounts struct {
	Findings, Reachable, TruePositives, GovulncheckReachable int
}

func (c *oracleCounts) add(mods, reach findingSet, want gooracle.Verdict) {
	c.Findings += len(mods)
	c.Reachable += len(reach)
	c.GovulncheckReachable += len(want.Symbols)
	for k := range reach {
		if want.Symbols[k] {
			c.TruePositives++
		}
	}
}

// oracleDB imports the oracle's data/osv into a rootscan database.
func oracleDB(t *testing.T, osvDir string) *vuln.DB {
	dir := t.TempDir()
	b, err := vuln.NewBuilder(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.ImportPath(context.Background(), osvDir, vuln.Limits{}); err != nil {
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
		k := gooracle.Finding{ID: v.ID, Module: v.Package}
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
