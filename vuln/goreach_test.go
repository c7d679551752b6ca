package vuln

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rootscan/rootscan/report"
)

// goRecord is a Go advisory for module mod, affected below 1.5.0, with the given imports.
func goRecord(id, mod string, imports ...map[string]any) *Record {
	af := map[string]any{
		"package": map[string]any{"ecosystem": "Go", "name": mod},
		"ranges":  []any{map[string]any{"type": "SEMVER", "events": []any{map[string]any{"introduced": "0"}, map[string]any{"fixed": "1.5.0"}}}},
	}
	if len(imports) > 0 {
		af["ecosystem_specific"] = map[string]any{"imports": imports}
	}
	b, err := json.Marshal(map[string]any{"id": id, "modified": "2024-01-01T00:00:00Z", "affected": []any{af}})
	if err != nil {
		panic(err)
	}
	r, err := ParseRecord(b)
	if err != nil {
		panic(err)
	}
	return r
}

// TestGoPlatformAndReachability: govulncheck's rules on a table of advisories and programs. An import limited to
// other platforms removes the entry (and the finding when no entry is left); a program that is not described, or
// with no GOOS, is not filtered. Reachable is true when a listed symbol (or, without symbols, the package; without
// imports, the module) is in a program's functions, false when no program has it, unknown when a program's
// functions are not known.
func TestGoPlatformAndReachability(t *testing.T) {
	const mod = "example.com/m"
	recs := []*Record{
		goRecord("GO-SYM", mod, map[string]any{"path": mod + "/a", "symbols": []string{"F", "T.M"}}),
		goRecord("GO-PKG", mod, map[string]any{"path": mod + "/b"}),
		goRecord("GO-MOD", mod),
		goRecord("GO-WIN", mod, map[string]any{"path": mod + "/a", "goos": []string{"windows"}, "symbols": []string{"F"}}),
		goRecord("GO-ARM", mod, map[string]any{"path": mod + "/c", "goarch": []string{"arm64"}},
			map[string]any{"path": mod + "/a", "goos": []string{"plan9"}}),
	}
	db := buildDBFromRecords(t, recs)
	syms := func(keys ...uint64) *report.GoSymbols { return report.NewGoSymbols(keys) }
	onlyA := syms(report.GoSymbolKey(mod+"/a", "T.M"), report.GoPackageKey(mod+"/a"), report.GoModuleKey(mod))
	onlyB := syms(report.GoSymbolKey(mod+"/b", "G"), report.GoPackageKey(mod+"/b"), report.GoModuleKey(mod))
	other := syms(report.GoSymbolKey(mod+"/a", "Other"), report.GoPackageKey(mod+"/a"), report.GoModuleKey(mod))
	none := syms(report.GoModuleKey("stdlib"))
	for _, c := range []struct {
		name string
		bins []report.GoBinary
		want map[string]report.Reachability // id -> verdict; absent: no finding
	}{
		{"linux/amd64 using a.T.M", []report.GoBinary{{Path: "bin/x", GOOS: "linux", GOARCH: "amd64", Symbols: onlyA}},
			map[string]report.Reachability{"GO-SYM": "true", "GO-PKG": "false", "GO-MOD": "true"}},
		{"linux/arm64 using b", []report.GoBinary{{Path: "bin/x", GOOS: "linux", GOARCH: "arm64", Symbols: onlyB}},
			map[string]report.Reachability{"GO-SYM": "false", "GO-PKG": "true", "GO-MOD": "true", "GO-ARM": "false"}},
		{"windows/amd64, another function of a", []report.GoBinary{{Path: "bin/x", GOOS: "windows", GOARCH: "amd64", Symbols: other}},
			map[string]report.Reachability{"GO-SYM": "false", "GO-PKG": "false", "GO-MOD": "true", "GO-WIN": "false"}},
		{"no code of the module", []report.GoBinary{{Path: "bin/x", GOOS: "linux", GOARCH: "amd64", Symbols: none}},
			map[string]report.Reachability{"GO-SYM": "false", "GO-PKG": "false", "GO-MOD": "false"}},
		{"functions unknown", []report.GoBinary{{Path: "bin/x", GOOS: "linux", GOARCH: "amd64"}},
			map[string]report.Reachability{"GO-SYM": "unknown", "GO-PKG": "unknown", "GO-MOD": "unknown"}},
		{"no platform recorded", []report.GoBinary{{Path: "bin/x", Symbols: onlyA}},
			map[string]report.Reachability{"GO-SYM": "true", "GO-PKG": "false", "GO-MOD": "true", "GO-WIN": "false", "GO-ARM": "true"}},
		{"program not described", nil,
			map[string]report.Reachability{"GO-SYM": "unknown", "GO-PKG": "unknown", "GO-MOD": "unknown", "GO-WIN": "unknown", "GO-ARM": "unknown"}},
		{"two programs: one reaches it", []report.GoBinary{
			{Path: "bin/x", GOOS: "linux", GOARCH: "amd64", Symbols: none},
			{Path: "bin/y", GOOS: "windows", GOARCH: "amd64", Symbols: onlyA}},
			map[string]report.Reachability{"GO-SYM": "true", "GO-PKG": "false", "GO-MOD": "true", "GO-WIN": "false"}},
		{"two programs: one unknown", []report.GoBinary{
			{Path: "bin/x", GOOS: "linux", GOARCH: "amd64", Symbols: none},
			{Path: "bin/y", GOOS: "linux", GOARCH: "amd64"}},
			map[string]report.Reachability{"GO-SYM": "unknown", "GO-PKG": "unknown", "GO-MOD": "unknown"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := &report.Result{GoBinaries: c.bins}
			res.Packages = []report.Package{{Name: mod, Version: "1.2.0", Ecosystem: "Go", Locations: []string{"bin/x", "bin/y"}}}
			if err := db.Match(context.Background(), res); err != nil {
				t.Fatal(err)
			}
			got := map[string]report.Reachability{}
			for _, v := range res.Vulnerabilities {
				got[v.ID] = v.Reachable
			}
			if len(got) != len(c.want) {
				t.Errorf("findings %v, want %v", got, c.want)
			}
			for id, w := range c.want {
				if got[id] != w {
					t.Errorf("%s: reachable %q, want %q", id, got[id], w)
				}
			}
		})
	}
}

// TestNonGoFindingsHaveNoReachability: the field stays empty (and out of JSON) outside Go.
func TestNonGoFindingsHaveNoReachability(t *testing.T) {
	v := report.Vulnerability{ID: "X", Package: "p", Version: "1", Ecosystem: "npm", Severity: report.SeverityLow}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"id":"X","severity":"LOW","package":"p","version":"1","ecosystem":"npm"}`; string(b) != want {
		t.Errorf("JSON %s, want %s", b, want)
	}
}

// buildDBFromRecords builds a database of the given records.
func buildDBFromRecords(t *testing.T, recs []*Record) *DB {
	return buildDBWith(t, func(b *Builder) error {
		for _, r := range recs {
			if _, err := b.Add(r); err != nil {
				return err
			}
		}
		return nil
	})
}

func TestDropUnreachable(t *testing.T) {
	vs := []report.Vulnerability{
		{ID: "A", Ecosystem: "Go", Reachable: report.ReachableTrue},
		{ID: "B", Ecosystem: "Go", Reachable: report.ReachableFalse},
		{ID: "C", Ecosystem: "Go", Reachable: report.ReachableUnknown},
		{ID: "D", Ecosystem: "Debian"},
		{ID: "E", Ecosystem: "Go", Reachable: report.ReachableFalse},
	}
	var ids []string
	for _, v := range DropUnreachable(vs) {
		ids = append(ids, v.ID)
	}
	if strings.Join(ids, ",") != "A,C,D" {
		t.Errorf("kept %v, want A,C,D", ids)
	}
}
