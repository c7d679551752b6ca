package vuln

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rootscan/rootscan/report"
)

// The enricher matches, applies VEX and then the severity filter; run again (the daemon's republish) it replaces the
// findings instead of adding to them; without a database it leaves the report alone.
func TestEnricher(t *testing.T) {
	db := buildDB(t, "testdata/osv")
	dbDir := filepath.Dir(db.Path())
	vexDir := t.TempDir()
	vex := `{"@context": "https://openvex.dev/ns/v0.2.0", "@id": "x", "timestamp": "2024-01-10T10:00:00Z", "version": 1,
	  "statements": [{"vulnerability": {"name": "DSA-5514-1"}, "products": [{"@id": "pkg:deb/debian/libc6"}], "status": "fixed"}]}`
	if err := os.WriteFile(filepath.Join(vexDir, "v.json"), []byte(vex), 0o644); err != nil {
		t.Fatal(err)
	}
	newReport := func() *report.Report {
		libc := deb("libc6", "2.36-9+deb12u2", "glibc", "2.36-9+deb12u2")
		libc.PURL = "pkg:deb/debian/libc6@2.36-9%2Bdeb12u2?arch=amd64"
		return &report.Report{Target: report.Target{Kind: "dir", Path: "/r"}, Result: &report.Result{OS: debian12,
			Packages: []report.Package{libc}}}
	}
	ids := func(rep *report.Report) (open, suppressed []string) {
		for _, v := range rep.Result.Vulnerabilities {
			if v.Suppressed != nil {
				suppressed = append(suppressed, v.ID)
			} else {
				open = append(open, v.ID)
			}
		}
		return open, suppressed
	}
	for _, tc := range []struct {
		severity         string
		vex              string
		open, suppressed []string
	}{
		{"", "", []string{"DEBIAN-CVE-2010-4756", "DEBIAN-CVE-2019-1010022", "DSA-5514-1"}, nil},
		{"HIGH", "", []string{"DSA-5514-1"}, nil},
		{"HIGH", vexDir, nil, []string{"DSA-5514-1"}},
	} {
		store, err := NewStore(dbDir)
		if err != nil {
			t.Fatal(err)
		}
		filter, err := report.ParseSeverityFilter(tc.severity)
		if err != nil {
			t.Fatal(err)
		}
		e, err := NewEnricher(store, tc.vex, filter)
		if err != nil {
			t.Fatal(err)
		}
		rep := newReport()
		for range 2 {
			if err := e.Enrich(context.Background(), rep); err != nil {
				t.Fatal(err)
			}
		}
		open, suppressed := ids(rep)
		slices.Sort(open)
		if !slices.Equal(open, tc.open) || !slices.Equal(suppressed, tc.suppressed) {
			t.Errorf("severity %q vex %q: open %q suppressed %q; want %q and %q", tc.severity, tc.vex, open, suppressed, tc.open, tc.suppressed)
		}
		if got := OpenFindings([]report.Report{*rep, {Error: "x"}}); got != len(tc.open) {
			t.Errorf("OpenFindings = %d, want %d", got, len(tc.open))
		}
		if st := e.Status(dbDir); !st.Checked || st.Advisories == 0 || st.Path != db.Path() {
			t.Errorf("status %+v", st)
		}
		e.Close()
	}
	none, err := NewEnricher(nil, "", report.SeverityFilter{})
	if err != nil {
		t.Fatal(err)
	}
	rep := newReport()
	rep.Result.Vulnerabilities = []report.Vulnerability{{ID: "KEPT"}}
	if err := none.Enrich(context.Background(), rep); err != nil || len(rep.Result.Vulnerabilities) != 1 {
		t.Errorf("without a database: %v, %+v", err, rep.Result.Vulnerabilities)
	}
	if st := none.Status("/nowhere"); st.Checked || st.Reason != "no usable vulnerability database in /nowhere" {
		t.Errorf("status without a database: %+v", st)
	}
	if _, err := NewEnricher(nil, filepath.Join(vexDir, "missing"), report.SeverityFilter{}); err == nil {
		t.Error("a VEX folder that does not exist was accepted")
	}
}
