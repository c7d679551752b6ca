package deploy

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// envIntegration is internal/testbed's switch: with "require", a test that cannot run (a missing tool) fails
// instead of skipping, so CI cannot pass without running it.
const envIntegration = "ROOTSCAN_INTEGRATION"

// tool finds a binary the tests run: $ROOTSCAN_<NAME> (the Makefile sets it to what deploy/tools/build-tool.sh
// builds; when set it must exist, so CI never tests with another version), else $PATH, else the newest build in
// the testbed cache. Without it the test skips, or fails under
// ROOTSCAN_INTEGRATION=require.
func tool(t *testing.T, name, env string) string {
	t.Helper()
	var why string
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
		why = fmt.Sprintf("%s=%s does not exist (run `make deploy-tools`)", env, p)
	}
	if p, err := exec.LookPath(name); err == nil && why == "" {
		return p
	}
	cache := os.Getenv("ROOTSCAN_TESTBED_CACHE")
	if cache == "" {
		cache = "/var/cache/rootscan-testbed"
	}
	if found, _ := filepath.Glob(filepath.Join(cache, name+"-*", name)); len(found) > 0 && why == "" {
		slices.Sort(found)
		return found[len(found)-1]
	}
	if why == "" {
		why = name + " not found (set " + env + ", put it on PATH, or run `make deploy-tools`)"
	}
	if os.Getenv(envIntegration) == "require" {
		t.Fatalf("%s (%s=require: these tests must run)", why, envIntegration)
	}
	t.Skipf("%s; set %s=require to fail instead", why, envIntegration)
	return ""
}

// run runs a tool and returns its stdout, failing the test with its stderr.
func run(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s%s", filepath.Base(bin), args, err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes()
}
