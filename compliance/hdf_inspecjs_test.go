package compliance

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rootscan/rootscan/report"
)

// inspecjsVersion is the Heimdall reader the HDF must satisfy (what Heimdall 2.x and saf bundle).
const inspecjsVersion = "inspecjs@2.12"

// inspecjsScript reads an HDF file with inspecjs the way Heimdall does and prints each control's id and the status
// Heimdall shows for it, or the exception Heimdall would hit.
const inspecjsScript = `
const fs = require('fs');
const {convertFile, hdfWrapControl} = require('inspecjs');
const res = convertFile(fs.readFileSync(process.argv[2], 'utf8'), true);
if (!res['1_0_ExecJson']) { console.error(JSON.stringify(res.errors || res)); process.exit(2); }
const out = {};
for (const p of res['1_0_ExecJson'].profiles) {
  for (const c of p.controls) {
    try { out[c.id] = hdfWrapControl(c).status; } catch (e) { out[c.id] = 'exception: ' + e; }
  }
}
console.log(JSON.stringify(out));
`

// TestHDFHeimdallStatus writes the HDF of the built-in baseline on a root where controls pass, fail, are skipped
// and are waived, reads it back with Heimdall's own reader (npm inspecjs) and asserts the status Heimdall shows for
// every control is the one rootscan reported.
func TestHDFHeimdallStatus(t *testing.T) {
	dir := inspecjs(t)
	e := baselineEngine(t)
	f := newFixture(t, testFiles)
	f.chmod(t, "etc/shadow", 0o644) // a world-readable shadow makes a control fail
	rs := e.Evaluate(context.Background(), f.root, report.Target{Config: &report.ImageConfig{User: "root"}}, nil, &report.Result{})
	if len(rs) == 0 {
		t.Fatal("no control results")
	}
	// A waiver that does not run the control: Heimdall shows it "Not Applicable".
	waived := rs[0].ID
	e.Waivers = Waivers{waived: {Justification: "accepted"}}
	rs = e.Evaluate(context.Background(), f.root, report.Target{Config: &report.ImageConfig{User: "root"}}, nil, &report.Result{})
	doc := e.HDF(report.Report{StartedAt: time.Now(), Duration: time.Second, Result: &report.Result{Compliance: rs}})
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	hdf := filepath.Join(t.TempDir(), "baseline.hdf.json")
	if err := os.WriteFile(hdf, data, 0o644); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "status.js")
	if err := os.WriteFile(script, []byte(inspecjsScript), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", script, hdf)
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(dir, "node_modules"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("inspecjs: %v\n%s", err, stderrOf(err))
	}
	var got map[string]string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("inspecjs output %q: %v", out, err)
	}
	seen := map[string]bool{}
	for _, r := range rs {
		seen[r.Status] = true
		want := heimdallStatus(r, e.Waivers)
		if got[r.ID] != want {
			t.Errorf("%s: rootscan %s (impact %v), Heimdall shows %q, want %q", r.ID, r.Status, r.Impact, got[r.ID], want)
		}
	}
	if len(got) != len(rs) {
		t.Errorf("Heimdall read %d controls, rootscan wrote %d", len(got), len(rs))
	}
	for _, s := range []string{report.ControlPassed, report.ControlFailed, report.ControlSkipped} {
		if !seen[s] {
			t.Errorf("no control %s: the test root no longer covers every status", s)
		}
	}
}

// heimdallStatus is the status Heimdall shows for a rootscan result: inspecjs's ExecControl rules (an error is a
// profile error, a waived or impact-0 control is not applicable, then failed > passed > skipped).
func heimdallStatus(r report.ControlResult, w Waivers) string {
	_, waived := w[r.ID]
	switch {
	case r.Status == report.ControlError:
		return "Profile Error"
	case waived && !w[r.ID].Run, r.Impact == 0:
		return "Not Applicable"
	case r.Status == report.ControlFailed:
		return "Failed"
	case r.Status == report.ControlPassed:
		return "Passed"
	case r.Status == report.ControlSkipped:
		return "Not Reviewed"
	}
	return "Profile Error"
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// inspecjs returns a directory whose node_modules holds inspecjs, installed once from the npm registry under
// $ROOTSCAN_TESTBED_CACHE/inspecjs. Without node or the registry the test is skipped, unless
// ROOTSCAN_INTEGRATION=require, which makes it fail.
func inspecjs(t *testing.T) string {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("ROOTSCAN_INTEGRATION") == "require" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format+" (set ROOTSCAN_INTEGRATION=require to fail instead)", args...)
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable("inspecjs: %s not found: %v", tool, err)
		}
	}
	cache := os.Getenv("ROOTSCAN_TESTBED_CACHE")
	if cache == "" {
		cache = "/var/cache/rootscan-testbed"
	}
	dir := filepath.Join(cache, "inspecjs")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "inspecjs", "package.json")); err == nil {
		return dir
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		unavailable("inspecjs cache: %v", err)
	}
	// Install into a fresh directory and rename it into place, so a concurrent or interrupted install never
	// leaves a half-filled cache behind.
	tmp, err := os.MkdirTemp(cache, "inspecjs-install-")
	if err != nil {
		unavailable("inspecjs cache: %v", err)
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund", "--prefix", tmp, inspecjsVersion)
	if out, err := cmd.CombinedOutput(); err != nil {
		unavailable("npm install %s: %v\n%s", inspecjsVersion, err, strings.TrimSpace(string(out)))
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "node_modules", "inspecjs", "package.json")); serr != nil {
			t.Fatalf("inspecjs cache: %v", err)
		}
	}
	return dir
}
