package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// --fail-on-controls is a CI gate: the built binary exits with 3 (or --exit-code) when controls at or above the
// severity failed, and waived controls stop counting until their waiver expires.
func TestComplianceFailOnControls(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/sbin/nologin\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	profile := filepath.Join(dir, "gate.yaml")
	if err := os.WriteFile(profile, []byte(`name: gate
controls:
  - id: gate-crit
    impact: 0.9
    checks:
      - expr: file("/etc/shadow").exists
  - id: gate-medium
    impact: 0.5
    checks:
      - expr: file("/etc/passwd").mode_octal == "0600"
  - id: gate-low
    impact: 0.1
    checks:
      - expr: file("/etc/passwd").exists
`), 0o644); err != nil {
		t.Fatal(err)
	}
	waiver := func(expires string) string {
		p := filepath.Join(t.TempDir(), "waivers.yaml")
		if err := os.WriteFile(p, []byte("gate-crit:\n  justification: no shadow in this image\n  expiration_date: "+expires+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	active, expired := waiver("2999-12-31"), waiver("2020-01-01")
	base := []string{"scan", "--dir", root, "--no-baseline", "--profile", profile, "--packages=false"}
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string // substring; "" means the gate did not speak
	}{
		{"no gate", nil, 0, ""},
		{"critical", []string{"--fail-on-controls", "CRITICAL"}, 3, "1 compliance controls failed at --fail-on-controls: " + root + ": gate/gate-crit (CRITICAL, failed)\n"},
		{"critical waived", []string{"--fail-on-controls", "CRITICAL", "--waivers", active}, 0, ""},
		{"critical waiver expired", []string{"--fail-on-controls", "CRITICAL", "--waivers", expired}, 3, "gate/gate-crit (CRITICAL, failed)"},
		{"medium with waiver", []string{"--fail-on-controls", "MEDIUM", "--waivers", active}, 3, "1 compliance controls failed at --fail-on-controls: " + root + ": gate/gate-medium (MEDIUM, failed)\n"},
		{"medium exit code", []string{"--fail-on-controls", "medium", "--exit-code", "7"}, 7, "2 compliance controls failed"},
		{"exactly low", []string{"--fail-on-controls", "LOW"}, 3, "2 compliance controls failed"},
		{"exactly low list", []string{"--fail-on-controls", "LOW,NONE"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runRootscan(t, time.Minute, append(append([]string{}, base...), tt.args...)...)
			if res.code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", res.code, tt.code, res.stdout, res.stderr)
			}
			gate := strings.Contains(res.stderr, "--fail-on-controls")
			if tt.stderr == "" && gate || tt.stderr != "" && !strings.Contains(res.stderr, tt.stderr) {
				t.Errorf("stderr %q, want %q", res.stderr, tt.stderr)
			}
		})
	}
	// Without any profile there is nothing to gate on: a usage error, not a silent pass.
	res := runRootscan(t, time.Minute, "scan", "--dir", root, "--no-baseline", "--fail-on-controls", "HIGH")
	if res.code != 2 || !strings.Contains(res.stderr, "--fail-on-controls needs at least one profile") {
		t.Errorf("gate without profiles: exit %d, stderr %s", res.code, res.stderr)
	}
	res = runRootscan(t, time.Minute, "scan", "--dir", root, "--fail-on-controls", "SEVERE")
	if res.code != 2 || !strings.Contains(res.stderr, `--fail-on-controls "SEVERE"`) {
		t.Errorf("bad level: exit %d, stderr %s", res.code, res.stderr)
	}
}
