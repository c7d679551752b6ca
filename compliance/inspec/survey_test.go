package inspec

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSurveyProfiles loads the profiles named in $ROOTSCAN_INSPEC_PROFILES (a path list: public baselines as a
// user brings them) and logs how many files parse, how many controls are found, and the static run/skip split
// with the top skip reasons. It only measures; it fails when a profile does not load at all.
func TestSurveyProfiles(t *testing.T) {
	dirs := filepath.SplitList(os.Getenv("ROOTSCAN_INSPEC_PROFILES"))
	if len(dirs) == 0 {
		t.Skip("set ROOTSCAN_INSPEC_PROFILES to profile directories to survey them")
	}
	for _, dir := range dirs {
		if dir == "" {
			continue
		}
		p, err := Load(context.Background(), dir, Limits{})
		if err != nil {
			t.Errorf("%s: %v", dir, err)
			continue
		}
		files, parsed := len(p.Files)+len(p.Libraries), 0
		for _, f := range p.Files {
			if f.Err == nil {
				parsed++
			} else {
				t.Logf("  %v", f.Err)
			}
		}
		for _, l := range p.Libraries {
			if l.Err == nil {
				parsed++
			} else {
				t.Logf("  %v", l.Err)
			}
		}
		vs := p.Check(DefaultCatalog())
		run := 0
		for _, v := range vs {
			if v.Run {
				run++
			}
		}
		t.Logf("%s %s: %d/%d files parse, %d controls, %d run, %d skipped, sha256 %s", p.Name, p.Version, parsed, files, len(vs), run, len(vs)-run, p.SHA256)
		for i, r := range SkipReasons(vs) {
			if i == 8 {
				break
			}
			t.Logf("  %4d  %s", r.Controls, strings.TrimSpace(r.Reason))
		}
	}
}
