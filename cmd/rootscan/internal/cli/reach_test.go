package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rootscan/rootscan/report"
)

// goReachRoot builds a real Go program (standard library only, calling strings.ToUpper and not net/http) into a
// --dir root, and a database with one stdlib advisory on each of the two functions: one finding reachable, one not.
func goReachRoot(t *testing.T) (root, db string) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go tool not found: %v", err)
	}
	work := t.TempDir()
	src := "package main\n\nimport (\n\t\"os\"\n\t\"strings\"\n)\n\nfunc main() { os.Stdout.WriteString(strings.ToUpper(os.Args[0])) }\n"
	if err := os.WriteFile(filepath.Join(work, "go.mod"), []byte("module example.com/reach\n\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	root = filepath.Join(work, "root")
	if err := os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(root, "usr/bin/reach"), ".")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "CGO_ENABLED=0", "GOOS=linux", "GOWORK=off", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	recs := filepath.Join(work, "osv")
	if err := os.Mkdir(recs, 0o755); err != nil {
		t.Fatal(err)
	}
	for id, imp := range map[string]map[string]any{
		"GO-TEST-0001": {"path": "strings", "symbols": []string{"ToUpper"}},
		"GO-TEST-0002": {"path": "net/http", "symbols": []string{"Get"}},
	} {
		b, err := json.Marshal(map[string]any{"id": id, "modified": "2024-01-01T00:00:00Z", "summary": "test " + id,
			"affected": []any{map[string]any{
				"package":            map[string]any{"ecosystem": "Go", "name": "stdlib"},
				"ranges":             []any{map[string]any{"type": "SEMVER", "events": []any{map[string]any{"introduced": "0"}}}},
				"ecosystem_specific": map[string]any{"imports": []any{imp}},
			}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(recs, id+".json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db = filepath.Join(work, "db")
	if _, stderr, code := run(t, "db", "import", "--db", db, recs); code != exitOK {
		t.Fatalf("db import: exit %d: %s", code, stderr)
	}
	return root, db
}

// TestReachabilityOnTheCommandLine: the table's REACHABLE column, --reachable-only, -o openvex with and without
// --vex-unreachable-not-affected, and a JSON document without the programs' function sets, on a stripped program.
func TestReachabilityOnTheCommandLine(t *testing.T) {
	root, db := goReachRoot(t)
	scan := func(args ...string) string {
		t.Helper()
		out, stderr, code := run(t, append([]string{"scan", "--dir", root, "--db", db, "--no-baseline", "-q"}, args...)...)
		if code != exitOK {
			t.Fatalf("scan %q: exit %d: %s", args, code, stderr)
		}
		return out
	}
	row := func(out, id string) string { return regexp.MustCompile(`(?m)^  ` + id + `\s.*$`).FindString(out) }

	out := scan()
	if !strings.Contains(out, "REACHABLE") {
		t.Fatalf("table has no REACHABLE column:\n%s", out)
	}
	if r := row(out, "GO-TEST-0001"); !regexp.MustCompile(`\strue\s`).MatchString(r) {
		t.Errorf("strings.ToUpper finding: %q, want reachable true", r)
	}
	if r := row(out, "GO-TEST-0002"); !regexp.MustCompile(`\sfalse\s`).MatchString(r) {
		t.Errorf("net/http.Get finding: %q, want reachable false", r)
	}

	out = scan("--reachable-only")
	if row(out, "GO-TEST-0001") == "" || row(out, "GO-TEST-0002") != "" {
		t.Errorf("--reachable-only: want GO-TEST-0001 only:\n%s", out)
	}

	out = scan("-o", "json")
	var doc struct {
		Reports []report.Report `json:"reports"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Reports) != 1 || doc.Reports[0].Result == nil || len(doc.Reports[0].Result.GoBinaries) != 1 {
		t.Fatalf("JSON: want one report with one Go program: %.2000s", out)
	}
	b := doc.Reports[0].Result.GoBinaries[0]
	if b.Path != "/usr/bin/reach" && b.Path != "usr/bin/reach" || b.GOOS != "linux" || b.SymbolsFrom != "pclntab" || b.Symbols != nil {
		t.Errorf("JSON Go program = %+v, want path, platform and symbolsFrom pclntab, no symbols", b)
	}
	if strings.Contains(out, `"symbols"`) {
		t.Error(`JSON output holds "symbols"`)
	}

	statusOf := func(out string) map[string]string {
		t.Helper()
		var vex struct {
			Statements []struct {
				Vulnerability struct{ Name string } `json:"vulnerability"`
				Status        string                `json:"status"`
				Justification string                `json:"justification"`
			} `json:"statements"`
		}
		if err := json.Unmarshal([]byte(out), &vex); err != nil {
			t.Fatalf("openvex: %v\n%.2000s", err, out)
		}
		got := map[string]string{}
		for _, s := range vex.Statements {
			got[s.Vulnerability.Name] = s.Status + "/" + s.Justification
		}
		return got
	}
	if got := statusOf(scan("-o", "openvex")); got["GO-TEST-0001"] != "affected/" || got["GO-TEST-0002"] != "affected/" {
		t.Errorf("openvex without the flag: %v, want both affected", got)
	}
	got := statusOf(scan("-o", "openvex", "--vex-unreachable-not-affected"))
	if got["GO-TEST-0001"] != "affected/" || got["GO-TEST-0002"] != "not_affected/vulnerable_code_not_in_execute_path" {
		t.Errorf("openvex --vex-unreachable-not-affected: %v", got)
	}
	out = scan("-o", "cyclonedx-vex", "--vex-unreachable-not-affected")
	if !strings.Contains(out, `"code_not_reachable"`) {
		t.Errorf("cyclonedx-vex --vex-unreachable-not-affected states no finding code_not_reachable:\n%.3000s", out)
	}
	if _, stderr, code := run(t, "scan", "--dir", root, "--vex-unreachable-not-affected"); code != exitFatal || !strings.Contains(stderr, "needs -o cyclonedx-vex or -o openvex") {
		t.Errorf("--vex-unreachable-not-affected with the table: exit %d, %s", code, stderr)
	}
}
