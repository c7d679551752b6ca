package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rootscan scan and sbom parse each real rpm database (go-rpmdb's test data in scan/testdata/rpm: Berkeley DB, ndb,
// sqlite) in a child process, one per analyzer that reads it, and report every package of it.
func TestScanRPMOutOfProcess(t *testing.T) {
	for _, tc := range []struct {
		fixture, path, osID string
		packages            int
	}{
		{"centos7-plain.Packages.gz", "var/lib/rpm/Packages", "centos", 144},
		{"sle15-bci.Packages.db.gz", "var/lib/rpm/Packages.db", "sles", 35},
		{"fedora35.rpmdb.sqlite.gz", "usr/lib/sysimage/rpm/rpmdb.sqlite", "fedora", 137},
	} {
		t.Run(tc.path, func(t *testing.T) {
			root := t.TempDir()
			db := gunzipFixture(t, filepath.Join("../scan/testdata/rpm", tc.fixture))
			// An executable no package owns makes the unowned-files analyzer read the database's file lists.
			for name, data := range map[string][]byte{tc.path: db, "etc/os-release": []byte("ID=" + tc.osID + "\n"), "usr/local/bin/tool": []byte("#!/bin/sh\n")} {
				p := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, data, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			res := runRootscan(t, 2*time.Minute, "scan", "-o", "json", "--log-level", "debug", "--dir", root)
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			r := decode(t, res).Reports[0].Result
			n := 0
			for _, p := range r.Packages {
				if p.FoundBy == "rpm" {
					n++
				}
			}
			if n != tc.packages || len(r.Errors) != 0 {
				t.Fatalf("%d rpm packages, want %d; errors %v", n, tc.packages, r.Errors)
			}
			// The rpm analyzer and the unowned-files analyzer each read the database once, each in a child.
			if c := strings.Count(res.stderr, `msg="rpm database parsed in a child process"`); c != 2 {
				t.Errorf("%d child parses logged, want 2:\n%s", c, res.stderr)
			}
			sb := runRootscan(t, 2*time.Minute, "sbom", "--dir", root, "--log-level", "debug")
			if sb.code != 0 || !strings.Contains(sb.stdout, `"name": "bash"`) && !strings.Contains(sb.stdout, `"name":"bash"`) {
				t.Fatalf("sbom exit %d: %.500s\n%s", sb.code, sb.stdout, sb.stderr)
			}
			if !strings.Contains(sb.stderr, `msg="rpm database parsed in a child process"`) {
				t.Errorf("sbom parsed in process:\n%s", sb.stderr)
			}
		})
	}
}
