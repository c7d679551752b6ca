package integration

import (
	"archive/zip"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rootscan/rootscan/internal/testbed"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
	"github.com/rootscan/rootscan/internal/testbed/sbomtest"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/vuln/version"
)

// vulnTestdata holds real OSV records for the fixture images' packages (see its README).
const vulnTestdata = "../vuln/testdata/osv"

// vulnImportDB runs `rootscan db import` on the test records into a fresh directory.
func vulnImportDB(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "db")
	res := runRootscan(t, time.Minute, "db", "import", "--db", dir, vulnTestdata)
	if res.code != 0 {
		t.Fatalf("db import exit %d: %s", res.code, res.stderr)
	}
	return dir
}

// vulnLines renders findings as "ID package version severity fixed=... [suppressed]", sorted.
func vulnLines(vs []report.Vulnerability) []string {
	var out []string
	for _, v := range vs {
		s := fmt.Sprintf("%s %s %s %s fixed=%s", v.ID, v.Package, v.Version, v.Severity, v.FixedVersion)
		if v.Suppressed != nil {
			s += " suppressed=" + v.Suppressed.Status
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// wantDistrolessVulns is what the test records must yield for the Debian packages of an image, decided per record
// from the facts the records state (the versions in the fixture are apt's candidates, so the fixed DSAs are only
// expected when the fixture predates their fix).
func wantDistrolessVulns(t *testing.T, pkgs []ociimage.DebPackage) []string {
	t.Helper()
	before := func(v, fix string) bool {
		n, err := compareVersions("Debian:12", v, fix)
		if err != nil {
			t.Fatalf("fixture version %q: %v", v, err)
		}
		return n < 0
	}
	var want []string
	for _, p := range pkgs {
		t.Logf("fixture package %s %s (source %s %s)", p.Name, p.Version, p.Source, p.SourceVersion)
		switch p.Source {
		case "glibc":
			want = append(want,
				"DEBIAN-CVE-2010-4756 "+p.Name+" "+p.Version+" LOW fixed=",
				"DEBIAN-CVE-2019-1010022 "+p.Name+" "+p.Version+" LOW fixed=")
			if before(p.SourceVersion, "2.36-9+deb12u3") {
				want = append(want, "DSA-5514-1 "+p.Name+" "+p.Version+" HIGH fixed=2.36-9+deb12u3")
			}
		case "openssl":
			if before(p.SourceVersion, "3.0.11-1~deb12u1") {
				want = append(want, "DSA-5532-1 "+p.Name+" "+p.Version+" MEDIUM fixed=3.0.11-1~deb12u1")
			}
		case "zlib":
			want = append(want, "DEBIAN-CVE-2023-45853 "+p.Name+" "+p.Version+" UNKNOWN fixed=")
		}
	}
	slices.Sort(want)
	return want
}

// `db import` of real records, then `scan --oci` of the distroless image: exactly the expected advisories, matched
// through the source package (libc6 is glibc), with severities from Debian's urgency; the Go program built by this
// toolchain has no stdlib finding. Then --severity, --exit-code, VEX, SARIF and CycloneDX VEX on the same image.
func TestVulnDistrolessOCI(t *testing.T) {
	testbed.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	img, layout, manifest := distrolessLayout(t, ctx)
	db := vulnImportDB(t)

	res := runRootscan(t, 2*time.Minute, "scan", "--oci", layout, "--db", db, "-o", "json")
	if res.code != 0 {
		t.Fatalf("scan exit %d: %s", res.code, res.stderr)
	}
	if strings.Contains(res.stderr, "not checked") {
		t.Errorf("stderr says not checked with a database: %s", res.stderr)
	}
	doc := decode(t, res)
	r := doc.Reports[0]
	want := wantDistrolessVulns(t, img.Packages())
	if len(want) < 2 {
		t.Fatalf("fixture: expected at least glibc's two open issues, want = %v", want)
	}
	if got := vulnLines(r.Result.Vulnerabilities); !slices.Equal(got, want) {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, v := range r.Result.Vulnerabilities {
		if v.PURL == "" || !strings.HasPrefix(v.PURL, "pkg:deb/debian/"+v.Package+"@") || len(v.Aliases) == 0 {
			t.Errorf("finding without purl or aliases: %+v", v)
		}
	}
	// Every advisory of the test corpus (one OSV record per .json file) is in the database and said so.
	records, err := filepath.Glob(filepath.Join(vulnTestdata, "*", "*.json"))
	if err != nil || len(records) == 0 {
		t.Fatalf("test corpus: %v, %d records", err, len(records))
	}
	var status map[string]any
	json.Unmarshal([]byte(res.stdout), &status)
	if st, _ := status["vulnerabilityDatabase"].(map[string]any); st["checked"] != true || st["advisories"] != float64(len(records)) {
		t.Errorf("vulnerabilityDatabase = %v, want %d advisories", status["vulnerabilityDatabase"], len(records))
	}

	// --severity LOW keeps the LOW findings and --exit-code trips; MEDIUM drops them (when no DSA applies).
	res = runRootscan(t, 2*time.Minute, "scan", "--oci", layout, "--db", db, "--severity", "LOW", "--exit-code", "7")
	if res.code != 7 {
		t.Errorf("--severity LOW --exit-code 7: exit %d, stderr %s", res.code, res.stderr)
	}
	if !strings.Contains(res.stdout, "DEBIAN-CVE-2010-4756") || !strings.Contains(res.stdout, "VULNERABILITIES") {
		t.Errorf("table output lacks the findings:\n%s", res.stdout)
	}
	openAboveLow := 0
	for _, w := range want {
		if !strings.Contains(w, " LOW ") {
			openAboveLow++
		}
	}
	res = runRootscan(t, 2*time.Minute, "scan", "--oci", layout, "--db", db, "--severity", "MEDIUM", "--exit-code", "7", "-o", "json")
	wantCode := 0
	if openAboveLow > 0 {
		wantCode = 7
	}
	if res.code != wantCode {
		t.Errorf("--severity MEDIUM: exit %d, want %d", res.code, wantCode)
	}
	if got := decode(t, res).Reports[0].Result.Vulnerabilities; len(got) != openAboveLow {
		t.Errorf("--severity MEDIUM kept %v", vulnLines(got))
	}

	// VEX: glibc's two open issues are not_affected in this image (by manifest digest): still listed and counted
	// as suppressed, no longer tripping --exit-code.
	vexDir := t.TempDir()
	vex := `{"@context":"https://openvex.dev/ns/v0.2.0","@id":"https://example.com/vex/1","author":"test","timestamp":"2024-01-01T00:00:00Z","version":1,
	  "statements":[{"vulnerability":{"name":"CVE-2010-4756"},"products":[{"@id":"pkg:oci/distroless-base@` + manifest.String() + `","subcomponents":[{"@id":"pkg:deb/debian/libc6"}]}],"status":"not_affected","justification":"vulnerable_code_not_in_execute_path"},
	  {"vulnerability":{"name":"CVE-2019-1010022"},"products":[{"@id":"` + manifest.String() + `"}],"status":"not_affected","justification":"vulnerable_code_cannot_be_controlled_by_adversary"}]}`
	os.WriteFile(filepath.Join(vexDir, "image.json"), []byte(vex), 0o644)
	res = runRootscan(t, 2*time.Minute, "scan", "--oci", layout, "--db", db, "--vex", vexDir, "--severity", "LOW", "--exit-code", "7", "-o", "json")
	if res.code != wantCode {
		t.Errorf("with VEX: exit %d, want %d (stderr %s)", res.code, wantCode, res.stderr)
	}
	var wantVEX []string
	for _, w := range want {
		if strings.HasPrefix(w, "DEBIAN-CVE-2010-4756 libc6 ") || strings.HasPrefix(w, "DEBIAN-CVE-2019-1010022 ") {
			w += " suppressed=not_affected"
		}
		wantVEX = append(wantVEX, w)
	}
	if got := vulnLines(decode(t, res).Reports[0].Result.Vulnerabilities); !slices.Equal(got, wantVEX) {
		t.Errorf("with VEX:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantVEX, "\n"))
	}

	// SARIF: one result per finding, suppressed ones marked.
	res = runRootscan(t, 2*time.Minute, "scan", "--oci", layout, "--db", db, "--vex", vexDir, "-o", "sarif")
	var sarif struct {
		Version string `json:"version"`
		Runs    []struct {
			Results []struct {
				RuleID       string `json:"ruleId"`
				Suppressions []any  `json:"suppressions"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &sarif); err != nil || sarif.Version != "2.1.0" || len(sarif.Runs) != 1 {
		t.Fatalf("SARIF: %v\n%.500s", err, res.stdout)
	}
	if err := sbomtest.ValidateSARIF([]byte(res.stdout)); err != nil {
		t.Errorf("SARIF 2.1.0 schema: %v", err)
	}
	suppressed := 0
	for _, r := range sarif.Runs[0].Results {
		suppressed += len(r.Suppressions)
	}
	if len(sarif.Runs[0].Results) != len(want) || suppressed != 2 {
		t.Errorf("SARIF: %d results (%d suppressed), want %d (2)", len(sarif.Runs[0].Results), suppressed, len(want))
	}

	// CycloneDX VEX: every finding, with the analysis state of the suppressed ones.
	res = runRootscan(t, 2*time.Minute, "scan", "--oci", layout, "--db", db, "--vex", vexDir, "-o", "cyclonedx-vex")
	var bom struct {
		SpecVersion     string `json:"specVersion"`
		Vulnerabilities []struct {
			ID       string `json:"id"`
			Analysis *struct {
				State string `json:"state"`
			} `json:"analysis"`
		} `json:"vulnerabilities"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &bom); err != nil || bom.SpecVersion != "1.6" || len(bom.Vulnerabilities) != len(want) {
		t.Fatalf("CycloneDX VEX: %v, %d vulnerabilities\n%.500s", err, len(bom.Vulnerabilities), res.stdout)
	}
	notAffected := 0
	for _, v := range bom.Vulnerabilities {
		if v.Analysis != nil && v.Analysis.State == "not_affected" {
			notAffected++
		}
	}
	if notAffected != 2 {
		t.Errorf("CycloneDX VEX: %d not_affected, want 2", notAffected)
	}

	// Without a database the scan runs, says once that vulnerabilities were not checked, and reports none.
	res = runRootscan(t, 2*time.Minute, "scan", "--oci", layout, "--db", filepath.Join(t.TempDir(), "none"), "-o", "json", "--exit-code", "7")
	if res.code != 0 || strings.Count(res.stderr, "vulnerabilities not checked") != 1 {
		t.Errorf("no database: exit %d, stderr %q", res.code, res.stderr)
	}
	if d := decode(t, res); len(d.Reports[0].Result.Vulnerabilities) != 0 || len(d.Reports[0].Result.Packages) == 0 {
		t.Errorf("no database: %+v", d.Reports[0].Result)
	}
}

// Language packages from real Debian 12 .debs: Debian's fzf is a Go 1.19 program (GO-2023-1878 until 1.19.11),
// python3-requests 2.28.1 and python3-urllib3 1.26.12 carry real GitHub advisories with CVSS v3.1 scores.
func TestVulnLanguagesDir(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root := t.TempDir()
	debs := langUnpackDebs(t, ctx, root, []string{"fzf", "python3-requests", "python3-urllib3"})
	fzfGo := langFzfGoVersion(t, ctx, debs["fzf"])
	db := vulnImportDB(t)

	res := runRootscan(t, 2*time.Minute, "scan", "--dir", root, "--db", db, "-o", "json")
	if res.code != 0 {
		t.Fatalf("scan exit %d: %s", res.code, res.stderr)
	}
	r := decode(t, res).Reports[0]
	want := []string{
		"GHSA-9wx4-h78v-vm56 requests 2.28.1 MEDIUM fixed=2.32.0",
		"GHSA-j8r2-6x86-q33q requests 2.28.1 MEDIUM fixed=2.31.0",
		"GHSA-v845-jxx5-vc9f urllib3 1.26.12 MEDIUM fixed=1.26.17",
	}
	if n, err := compareVersions("Go", fzfGo, "1.19.11"); err != nil {
		t.Fatal(err)
	} else if n < 0 {
		want = append(want, "GO-2023-1878 stdlib "+fzfGo+" UNKNOWN fixed=1.19.11")
	}
	slices.Sort(want)
	if got := vulnLines(r.Result.Vulnerabilities); !slices.Equal(got, want) {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	scores := map[string]float64{}
	for _, v := range r.Result.Vulnerabilities {
		scores[v.ID] = v.Score
	}
	if scores["GHSA-j8r2-6x86-q33q"] != 6.1 || scores["GHSA-9wx4-h78v-vm56"] != 5.6 || scores["GHSA-v845-jxx5-vc9f"] != 4.4 {
		t.Errorf("CVSS scores = %v", scores)
	}
}

// A running distroless container on the private containerd is matched like its image, the report still naming pod,
// namespace and image digest; and the table counts its findings.
func TestVulnRunningContainer(t *testing.T) {
	bed, ctx, img, ref := startBed(t, ociimage.Distroless)
	_, id := runWebApp(t, ctx, bed, ref.Name)
	db := vulnImportDB(t)
	mountDir := filepath.Join(t.TempDir(), "mounts")
	doc, res := scanJSON(t, bed, mountDir, "--db", db, "--namespace", "shop")
	if res.code != 0 {
		t.Fatalf("scan exit %d: %s", res.code, res.stderr)
	}
	r := reportFor(t, doc, id)
	if r.Target.Pod != "web" || r.Target.ImageDigest != ref.Manifest.String() {
		t.Errorf("target = %+v", r.Target)
	}
	want := wantDistrolessVulns(t, img.Packages())
	if got := vulnLines(r.Result.Vulnerabilities); !slices.Equal(got, want) {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	assertNoMountsUnder(t, mountDir)

	res = runRootscan(t, 2*time.Minute, "scan", "--runtime-endpoint", "unix://"+bed.Address(), "--mount-dir", mountDir, "--db", db, "--namespace", "shop", "--packages=false")
	if !strings.Contains(res.stdout, "VULNERABILITIES") || !strings.Contains(res.stdout, "DEBIAN-CVE-2010-4756") {
		t.Errorf("table lacks the findings:\n%s", res.stdout)
	}
	assertNoMountsUnder(t, mountDir)
}

// `rootscan db update` against a real HTTP server: a first download, a 304 on the next run (validators sent back),
// then a cut-short body and a non-archive, each failing with the old database still in place and still matching.
func TestVulnDBUpdate(t *testing.T) {
	archive := filepath.Join(t.TempDir(), "all.zip")
	zipDir(t, vulnTestdata+"/debian", archive)
	body, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	mode, etag, requests := "", `"a1"`, []string{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		requests = append(requests, r.Header.Get("If-None-Match"))
		if mode == "" && r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		switch mode {
		case "truncated":
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body[:len(body)/3])
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		case "garbage":
			w.Write([]byte("<html>gateway timeout</html>"))
		default:
			w.Write(body)
		}
	}))
	defer srv.Close()
	// db update refuses plain http: the child trusts the test server's certificate through SSL_CERT_FILE.
	certFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", certFile)
	url := srv.URL + "/Debian/all.zip"
	db := filepath.Join(t.TempDir(), "db")

	res := runRootscan(t, time.Minute, "db", "update", "--db", db, "--url", url)
	if res.code != 0 || !strings.Contains(res.stdout, "updated: 6 advisories") {
		t.Fatalf("first update: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.MkdirAll(filepath.Join(root, "var/lib/dpkg/status.d"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("ID=debian\nVERSION_ID=\"12\"\n"), 0o644)
	os.WriteFile(filepath.Join(root, "var/lib/dpkg/status.d/libssl3"), []byte("Package: libssl3\nVersion: 3.0.9-1\nArchitecture: amd64\nSource: openssl\n"), 0o644)
	wantFindings := []string{"DSA-5532-1 libssl3 3.0.9-1 MEDIUM fixed=3.0.11-1~deb12u1"}
	check := func(stage string) {
		t.Helper()
		res := runRootscan(t, time.Minute, "scan", "--dir", root, "--db", db, "-o", "json")
		if got := vulnLines(decode(t, res).Reports[0].Result.Vulnerabilities); !slices.Equal(got, wantFindings) {
			t.Errorf("%s: findings %v, want %v", stage, got, wantFindings)
		}
		st := runRootscan(t, time.Minute, "db", "status", "--db", db)
		if st.code != 0 || !strings.Contains(st.stdout, "advisories: 6") || !strings.Contains(st.stdout, "etag \"a1\"") {
			t.Errorf("%s: db status exit %d\n%s%s", stage, st.code, st.stdout, st.stderr)
		}
	}
	check("after download")

	res = runRootscan(t, time.Minute, "db", "update", "--db", db, "--url", url)
	if res.code != 0 || !strings.Contains(res.stdout, "up to date") || requests[len(requests)-1] != `"a1"` {
		t.Errorf("304 update: exit %d %s (If-None-Match %q)", res.code, res.stdout, requests[len(requests)-1])
	}
	check("after 304")

	for _, m := range []string{"truncated", "garbage"} {
		mu.Lock()
		mode, etag = m, `"a2"`
		mu.Unlock()
		res = runRootscan(t, time.Minute, "db", "update", "--db", db, "--url", url)
		if res.code != 2 || !strings.Contains(res.stderr, "rootscan: update") {
			t.Errorf("%s: exit %d, stderr %q", m, res.code, res.stderr)
		}
		check("after " + m)
	}

	st := runRootscan(t, time.Minute, "db", "status", "--db", db, "--max-age", "1ns")
	if st.code != 1 || !strings.Contains(st.stderr, "warning: vulnerability database is") {
		t.Errorf("stale database: exit %d, stderr %q", st.code, st.stderr)
	}
}

// zipDir writes the *.json files of dir into a zip archive the way osv.dev publishes all.zip.
func zipDir(t *testing.T, dir, out string) {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		w, err := zw.Create(filepath.Base(p))
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

// compareVersions orders two versions of an OSV ecosystem with the comparator the matcher uses.
func compareVersions(ecosystem, a, b string) (int, error) {
	c, err := version.For(ecosystem)
	if err != nil {
		return 0, err
	}
	return c(a, b)
}
