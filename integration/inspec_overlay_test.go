package integration

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// The overlay test profile, as a directory with its dependencies inside it and as the inspec archive of its
// vendored form (vendor/SHA256.tar.gz for a url dependency, vendor/COMMIT/ for a git one, inspec.lock).
const (
	overlayProfileDir     = "../compliance/inspec/testdata/site-overlay"
	overlayProfileArchive = "../compliance/inspec/testdata/site-overlay-1.0.0.tar.gz"
)

// TestInSpecOverlay runs the overlay on the Debian root with sshd and login: skip_control drops base-03,
// require_controls keeps o-1 only, the impact override keeps base-02's check, the describe override replaces
// base-04's (the dependency's would fail: /etc/site.conf is not there), the overlay's input for base makes
// base-05 read login.defs, and the overlay of a url dependency that is not vendored is skipped with the reason.
// Heimdall reads the HDF: the dependencies are profiles of their own with parent_profile, their controls as they
// define them with the overlay's results, the controls the overlay drops left out.
func TestInSpecOverlay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root := debianSSHRoot(t, ctx)
	want := map[string]inspecWant{
		"base-01": {"Passed", ""},
		"base-02": {"Passed", ""},
		"base-04": {"Passed", ""},
		"base-05": {"Passed", ""},
		"o-1":     {"Passed", ""},
		"r-1":     {"Not Reviewed", "dependency remote is not vendored: run inspec vendor"},
	}
	for what, profile := range map[string]string{"dir": overlayProfileDir, "archive": overlayProfileArchive} {
		doc := assertInSpecProfile(t, "overlay "+what, profile, []string{"--dir", root}, want)
		profiles, _ := doc["profiles"].([]any)
		var got []string
		impacts := map[string]any{}
		for _, p := range profiles {
			m, _ := p.(map[string]any)
			cs, _ := m["controls"].([]any)
			results := 0
			for _, c := range cs {
				cm, _ := c.(map[string]any)
				rs, _ := cm["results"].([]any)
				results += len(rs)
				if m["parent_profile"] == nil {
					impacts[fmt.Sprint(cm["id"])] = cm["impact"]
				}
			}
			got = append(got, fmt.Sprintf("%v<%v:%d/%d", m["name"], m["parent_profile"], len(cs), results))
		}
		if fmt.Sprint(got) != "[site-overlay<<nil>:6/6 base<site-overlay:4/4 other<site-overlay:1/1]" {
			t.Errorf("%s: HDF profiles %v", what, got)
		}
		if impacts["base-02"] != 0.3 || impacts["r-1"] != 1.0 || impacts["base-01"] != 0.7 {
			t.Errorf("%s: impacts %v", what, impacts)
		}
	}
}
