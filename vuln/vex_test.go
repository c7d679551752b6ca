package vuln

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rootscan/rootscan/report"
)

const imageDigest = "sha256:4b9475e08c5180d4e7417dc6a18a26dcce7691e4311e5353dbb952645c5ff43f"

func TestVEXApply(t *testing.T) {
	dir := t.TempDir()
	// v0.2.0 document: glibc's unfixed issue is not affected in this image (subcomponent), the openssl DSA is fixed
	// for the libssl3 package anywhere, and CVE-2023-45853 is first not_affected then affected (later wins).
	doc := `{
	  "@context": "https://openvex.dev/ns/v0.2.0",
	  "@id": "https://example.com/vex/2024-01",
	  "author": "Platform team",
	  "timestamp": "2024-01-10T10:00:00Z",
	  "version": 1,
	  "statements": [
	    {"vulnerability": {"name": "CVE-2010-4756"},
	     "products": [{"@id": "pkg:oci/app@` + imageDigest + `", "subcomponents": [{"@id": "pkg:deb/debian/libc6"}]}],
	     "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"},
	    {"vulnerability": {"name": "DSA-5532-1"}, "products": [{"@id": "pkg:deb/debian/libssl3?arch=amd64"}],
	     "status": "fixed"},
	    {"vulnerability": {"name": "CVE-2023-45853"}, "products": [{"@id": "` + imageDigest + `"}],
	     "status": "not_affected", "justification": "component_not_present", "timestamp": "2024-01-01T00:00:00Z"},
	    {"vulnerability": {"name": "CVE-2023-45853"}, "products": [{"@id": "` + imageDigest + `"}],
	     "status": "affected", "timestamp": "2024-02-01T00:00:00Z"},
	    {"vulnerability": {"name": "CVE-2019-1010022"}, "products": [{"@id": "sha256:0000"}], "status": "not_affected",
	     "justification": "component_not_present"}
	  ]}`
	// v0.0.1 document: strings for vulnerability and products.
	old := `{"@context": "https://openvex.dev/ns", "@id": "old", "timestamp": "2023-01-01T00:00:00Z",
	  "statements": [{"vulnerability": "GO-2023-1878", "products": ["pkg:golang/stdlib@v1.19.8"], "status": "not_affected",
	  "justification": "vulnerable_code_not_present"}]}`
	os.WriteFile(filepath.Join(dir, "a.json"), []byte(doc), 0o644)
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "b.json"), []byte(old), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o644)
	v, err := LoadVEX(dir)
	if err != nil {
		t.Fatal(err)
	}
	if v.Len() != 6 {
		t.Fatalf("statements = %d, want 6", v.Len())
	}
	target := report.Target{Kind: "oci", ImageDigest: imageDigest}
	vulns := []report.Vulnerability{
		{ID: "DEBIAN-CVE-2010-4756", Aliases: []string{"CVE-2010-4756"}, Package: "libc6", PURL: "pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12"},
		{ID: "DEBIAN-CVE-2010-4756", Aliases: []string{"CVE-2010-4756"}, Package: "libc-bin", PURL: "pkg:deb/debian/libc-bin@2.36-9?arch=amd64"},
		{ID: "DSA-5532-1", Package: "libssl3", PURL: "pkg:deb/debian/libssl3@3.0.9-1?arch=amd64&distro=debian-12"},
		{ID: "DSA-5532-1", Package: "libssl3", PURL: "pkg:deb/debian/libssl3@3.0.9-1?arch=arm64"},
		{ID: "DEBIAN-CVE-2023-45853", Aliases: []string{"CVE-2023-45853"}, Package: "zlib1g", PURL: "pkg:deb/debian/zlib1g@1"},
		{ID: "DEBIAN-CVE-2019-1010022", Aliases: []string{"CVE-2019-1010022"}, Package: "libc6", PURL: "pkg:deb/debian/libc6@2.36-9"},
		{ID: "GO-2023-1878", Package: "stdlib", PURL: "pkg:golang/stdlib@v1.19.8"},
		{ID: "GO-2023-1878", Package: "stdlib", PURL: "pkg:golang/stdlib@v1.20.5"},
	}
	if n := v.Apply(target, vulns); n != 3 {
		t.Errorf("suppressed %d, want 3", n)
	}
	want := []string{"not_affected", "", "fixed", "", "", "", "not_affected", ""}
	for i, f := range vulns {
		got := ""
		if f.Suppressed != nil {
			got = f.Suppressed.Status
		}
		if got != want[i] {
			t.Errorf("%s %s: suppression %q, want %q", f.ID, f.PURL, got, want[i])
		}
	}
	if s := vulns[0].Suppressed; s.Justification != "vulnerable_code_not_in_execute_path" || s.Source != "a.json (https://example.com/vex/2024-01)" {
		t.Errorf("suppression = %+v", s)
	}
	// Another image: the image-scoped statements do not apply.
	other := []report.Vulnerability{{ID: "DEBIAN-CVE-2010-4756", Aliases: []string{"CVE-2010-4756"}, PURL: "pkg:deb/debian/libc6@2.36-9"}}
	if n := v.Apply(report.Target{ImageDigest: "sha256:ffff"}, other); n != 0 {
		t.Errorf("statement for another image applied")
	}
}

func TestVEXBad(t *testing.T) {
	for _, doc := range []string{`{`, `{"statements":[]}`, `{"statements":[{"vulnerability":{"name":"X"},"status":"fixed"}]}`, `[]`} {
		if _, err := parseVEX("x", []byte(doc)); err == nil {
			t.Errorf("ParseVEX(%s): no error", doc)
		}
	}
}

// FuzzParseVEX: a malformed document is an error, never a panic; applying a parsed one never panics.
func FuzzParseVEX(f *testing.F) {
	f.Add([]byte(`{"statements":[{"vulnerability":{"name":"CVE-1","aliases":["A"]},"products":[{"@id":"pkg:oci/x@sha256:1","subcomponents":[{"@id":"pkg:deb/debian/a"}]}],"status":"not_affected"}]}`))
	f.Add([]byte(`{"statements":[{"vulnerability":"CVE-1","products":["pkg:npm/%40a/b@1?x=y"],"status":"fixed"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := parseVEX("fuzz", data)
		if err != nil {
			return
		}
		v.Apply(report.Target{ImageDigest: "sha256:1"}, []report.Vulnerability{{ID: "CVE-1", PURL: "pkg:deb/debian/a@1"}, {ID: "A", PURL: "pkg:npm/%40a/b@1?x=y"}})
	})
}

// A ConfigMap mounted as a volume: keys are links to ..data/<key>, ..data links to a timestamped directory. Each
// document is read once, through its key.
func TestVEXConfigMapLayout(t *testing.T) {
	dir := t.TempDir()
	ts := filepath.Join(dir, "..2024_01_01_00_00_00.123")
	os.Mkdir(ts, 0o755)
	doc := `{"statements":[{"vulnerability":{"name":"CVE-2010-4756"},"products":[{"@id":"` + imageDigest + `"}],"status":"not_affected","justification":"component_not_present"}]}`
	os.WriteFile(filepath.Join(ts, "glibc.json"), []byte(doc), 0o644)
	os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data"))
	os.Symlink("..data/glibc.json", filepath.Join(dir, "glibc.json"))
	v, err := LoadVEX(dir)
	if err != nil {
		t.Fatal(err)
	}
	if v.Len() != 1 {
		t.Fatalf("statements = %d, want 1 (each key once)", v.Len())
	}
	vulns := []report.Vulnerability{{ID: "DEBIAN-CVE-2010-4756", Aliases: []string{"CVE-2010-4756"}, PURL: "pkg:deb/debian/libc6@1"}}
	if v.Apply(report.Target{ImageDigest: imageDigest}, vulns) != 1 || vulns[0].Suppressed.Source != "glibc.json" {
		t.Errorf("suppression = %+v", vulns[0].Suppressed)
	}
}

// parseVEX reads one OpenVEX document from memory through the parser LoadVEX uses for each file.
func parseVEX(name string, data []byte) (*VEX, error) {
	v := &VEX{}
	if err := v.add(name, data); err != nil {
		return nil, err
	}
	return v, nil
}
