package scan

import (
	"cmp"
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/rootscan/rootscan/report"
)

// fakeAnalyzer declares a name, a version and requirements, and records when its Analyze ran.
type fakeAnalyzer struct {
	name     string
	version  int
	requires []string
	ran      *[]string
}

func (a fakeAnalyzer) Name() string       { return a.name }
func (a fakeAnalyzer) Version() int       { return a.version }
func (a fakeAnalyzer) Requires() []string { return a.requires }
func (a fakeAnalyzer) Paths() []string    { return nil }
func (a fakeAnalyzer) Analyze(context.Context, FS, *report.Result) error {
	if a.ran != nil {
		*a.ran = append(*a.ran, a.name)
	}
	return nil
}

// fakeReader is a fakeAnalyzer that reads the whole inventory.
type fakeReader struct{ fakeAnalyzer }

func (fakeReader) ReadsInventory() {}

func names(as []Analyzer) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.Name()
	}
	return out
}

// integrityAnalyzers is the set `rootscan scan --integrity` runs.
func integrityAnalyzers() []Analyzer {
	return append(DefaultAnalyzers(), NewDebIntegrity(), NewRPMIntegrity())
}

// checkOrder fails unless every analyzer of got comes after those it requires, and every InventoryReader after all
// the others.
func checkOrder(t *testing.T, got []Analyzer) {
	t.Helper()
	pos := map[string]int{}
	for i, a := range got {
		pos[a.Name()] = i
	}
	for i, a := range got {
		for _, r := range a.Requires() {
			if j, ok := pos[r]; !ok || j > i {
				t.Errorf("%s at %d runs before %s, which it requires (at %d, present %v)", a.Name(), i, r, j, ok)
			}
		}
		if _, ok := a.(InventoryReader); ok {
			for j, b := range got[i+1:] {
				if _, ok := b.(InventoryReader); !ok {
					t.Errorf("inventory reader %s at %d runs before %s at %d", a.Name(), i, b.Name(), i+1+j)
				}
			}
		}
	}
}

// The analyzers rootscan runs, as it lists them and in reverse: both orders satisfy every requirement, and the listed
// order, which already does, is kept as it is (the order of a result's packages follows it).
func TestOrderDefaultAnalyzers(t *testing.T) {
	for _, set := range [][]Analyzer{DefaultAnalyzers(), integrityAnalyzers()} {
		got, err := Order(set)
		if err != nil {
			t.Fatalf("Order(%v): %v", names(set), err)
		}
		checkOrder(t, got)
		if !slices.Equal(names(got), names(set)) {
			t.Errorf("Order changed an order that meets every requirement:\n got  %v\n want %v", names(got), names(set))
		}

		slices.Reverse(set)
		got, err = Order(set)
		if err != nil {
			t.Fatalf("Order(%v): %v", names(set), err)
		}
		checkOrder(t, got)
	}
	// The set does declare requirements (else the checks above would hold for any order).
	required := 0
	for _, a := range integrityAnalyzers() {
		required += len(a.Requires())
	}
	if required < 5 {
		t.Errorf("the default analyzers declare %d requirements, want at least os-release for apk and rpm, dpkg for distroless and deb-integrity, rpm for rpm-integrity", required)
	}
}

func TestOrderStableAndReaders(t *testing.T) {
	set := []Analyzer{
		fakeReader{fakeAnalyzer{name: "report"}},
		fakeAnalyzer{name: "c", requires: []string{"a"}},
		fakeAnalyzer{name: "b"},
		fakeReader{fakeAnalyzer{name: "check", requires: []string{"report"}}},
		fakeAnalyzer{name: "a"},
	}
	got, err := Order(set)
	if err != nil {
		t.Fatal(err)
	}
	// b keeps its place before a; c waits for a; the readers follow everything else, check after report.
	if want := []string{"b", "a", "c", "report", "check"}; !slices.Equal(names(got), want) {
		t.Errorf("order %v, want %v", names(got), want)
	}
}

func TestOrderRefusesBadSets(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  []Analyzer
		want string
	}{
		{"missing", []Analyzer{NewRPM(), NewApk()}, "rpm requires os-release, which is not among them"},
		{"missing fake", []Analyzer{fakeAnalyzer{name: "a", requires: []string{"nope"}}}, "a requires nope, which is not among them"},
		{"duplicate", []Analyzer{NewDpkg(), NewOSRelease(), NewDpkg()}, `two analyzers are named "dpkg"`},
		{"self", []Analyzer{fakeAnalyzer{name: "a", requires: []string{"a"}}}, "requirement cycle a -> a"},
		{"cycle", []Analyzer{
			fakeAnalyzer{name: "free"},
			fakeAnalyzer{name: "a", requires: []string{"b"}},
			fakeAnalyzer{name: "b", requires: []string{"free", "c"}},
			fakeAnalyzer{name: "c", requires: []string{"a"}},
		}, "requirement cycle a -> b -> c -> a"},
		{"reader required", []Analyzer{
			fakeReader{fakeAnalyzer{name: "r"}},
			fakeAnalyzer{name: "x", requires: []string{"r"}},
		}, "requirement cycle r -> x -> r"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Order(tc.set)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Order = %v, %v; want an error with %q", names(got), err, tc.want)
			}
			// Run refuses the set as a whole: one error, nothing analyzed.
			var ran []string
			set := append(slices.Clone(tc.set), fakeAnalyzer{name: "witness", ran: &ran})
			res := Run(context.Background(), fstest.MapFS{}, set)
			if len(ran) != 0 || len(res.Errors) != 1 || res.Errors[0].Analyzer != "scan" || !strings.Contains(res.Errors[0].Err, tc.want) {
				t.Errorf("Run: ran %v, errors %+v", ran, res.Errors)
			}
		})
	}
}

// Run calls Analyze in the computed order, not the list's.
func TestRunFollowsOrder(t *testing.T) {
	var ran []string
	Run(context.Background(), fstest.MapFS{}, []Analyzer{
		fakeAnalyzer{name: "late", requires: []string{"early"}, ran: &ran},
		fakeAnalyzer{name: "early", ran: &ran},
	})
	if want := []string{"early", "late"}; !slices.Equal(ran, want) {
		t.Errorf("ran %v, want %v", ran, want)
	}
}

// The requirements the analyzers declare are the ones they have: whatever order a caller lists them in, the result
// is the same up to the order of its packages. An undeclared requirement would show here (apk before os-release
// reports Wolfi's packages as Alpine's; rpm before it, SUSE's as plain RPM; distroless before dpkg finds no flavour).
func TestRequirementsSuffice(t *testing.T) {
	roots := map[string]fstest.MapFS{
		"wolfi": {
			"etc/os-release":       file([]byte("ID=wolfi\nNAME=Wolfi\n")),
			"lib/apk/db/installed": file(testdata(t, "apk/installed")),
		},
		"sles": {
			"etc/os-release":          file([]byte("ID=sles\nVERSION_ID=15.4\n")),
			"var/lib/rpm/Packages.db": file(gunzipTestdata(t, "rpm/sle15-bci.Packages.db.gz")),
		},
		"distroless": distrolessTestRoot(t),
	}
	for name, fsys := range roots {
		t.Run(name, func(t *testing.T) {
			set := integrityAnalyzers()
			want := canonicalResult(t, Run(context.Background(), fsys, set))
			slices.Reverse(set)
			if got := canonicalResult(t, Run(context.Background(), fsys, set)); got != want {
				t.Errorf("reversed list gives\n%s\nlisted order gives\n%s", got, want)
			}
			if !strings.Contains(want, `"ecosystem"`) {
				t.Fatalf("root found no packages: %s", want)
			}
		})
	}
}

// distrolessTestRoot is a distroless Debian root: status.d stanzas, os-release, no shell.
func distrolessTestRoot(t *testing.T) fstest.MapFS {
	t.Helper()
	fsys := fstest.MapFS{"etc/os-release": file(testdata(t, "os-release/distroless-debian12"))}
	entries, err := os.ReadDir("testdata/dpkg/status.d")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "bash" {
			fsys["var/lib/dpkg/status.d/"+e.Name()] = file(testdata(t, "dpkg/status.d/"+e.Name()))
		}
	}
	return fsys
}

// canonicalResult is res as JSON with its packages sorted, so results that differ only in package order compare
// equal.
func canonicalResult(t *testing.T, res *report.Result) string {
	t.Helper()
	slices.SortFunc(res.Packages, func(x, y report.Package) int {
		return cmp.Or(cmp.Compare(x.Ecosystem, y.Ecosystem), cmp.Compare(x.Name, y.Name), cmp.Compare(x.Version, y.Version), cmp.Compare(x.FoundBy, y.FoundBy))
	})
	b, err := json.MarshalIndent(res, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFingerprint(t *testing.T) {
	fp := func(set []Analyzer) string {
		t.Helper()
		s, err := Fingerprint(set)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	base := fp(DefaultAnalyzers())
	if again := fp(DefaultAnalyzers()); again != base {
		t.Errorf("two builds of the same set differ: %q, %q", base, again)
	}
	for _, a := range DefaultAnalyzers() {
		if !strings.Contains(base, " "+a.Name()+"/") {
			t.Errorf("fingerprint %q does not name %s", base, a.Name())
		}
	}
	// A bumped analyzer, a different set and a reordered set (package order follows run order) all change it.
	bumped := DefaultAnalyzers()
	bumped[1] = bumpedAnalyzer{bumped[1]}
	reordered := DefaultAnalyzers()
	reordered[1], reordered[2] = reordered[2], reordered[1]
	for name, set := range map[string][]Analyzer{
		"bumped":    bumped,
		"fewer":     DefaultAnalyzers()[:len(DefaultAnalyzers())-1],
		"reordered": reordered,
	} {
		if got := fp(set); got == base {
			t.Errorf("%s: fingerprint unchanged: %q", name, got)
		}
	}
	if _, err := Fingerprint([]Analyzer{NewRPM()}); err == nil {
		t.Error("Fingerprint of a set that cannot run: no error")
	}
}

// bumpedAnalyzer is an analyzer at its next version.
type bumpedAnalyzer struct{ Analyzer }

func (b bumpedAnalyzer) Version() int { return b.Analyzer.Version() + 1 }
