package integration

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// --verify-packages on an rpm root (CentOS 7's database, go-rpmdb's test data in scan/testdata/rpm): a package file
// whose content is the one rpm recorded passes, a rewritten one is a finding with both sha256 digests, and an edited
// %config file is not reported. The root holds no other package files, so every other packaged file is reported
// missing; the test asserts on the files it wrote.
func TestScanRPMVerifyPackages(t *testing.T) {
	root := t.TempDir()
	db := gunzipFixture(t, "../scan/testdata/rpm/centos7-plain.Packages.gz")
	files := map[string]string{
		"var/lib/rpm/Packages":        string(db),
		"etc/os-release":              "ID=\"centos\"\nVERSION_ID=\"7\"\n",
		"etc/centos-release":          "CentOS Linux release 7.5.1804 (Core) \n",
		"etc/centos-release-upstream": "tampered\n",
		"etc/issue":                   "edited by the admin\n",
	}
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res := runRootscan(t, 2*time.Minute, "scan", "-o", "json", "--dir", root, "--verify-packages")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	r := decode(t, res).Reports[0].Result
	got := map[string]string{}
	for _, f := range r.Integrity {
		got[f.Path] = fmt.Sprintf("%s %s %s %s %s", f.Package, f.Ecosystem, f.Algorithm, f.Expected, f.Found)
	}
	want := fmt.Sprintf("centos-release RPM sha256 cf36872e084cfb281a4c169fab26c00a4f0fc36a81c061e54185ea9752d75941 %x", sha256.Sum256([]byte("tampered\n")))
	if got["etc/centos-release-upstream"] != want {
		t.Errorf("etc/centos-release-upstream: %q, want %q", got["etc/centos-release-upstream"], want)
	}
	for _, p := range []string{"etc/centos-release", "etc/issue", "etc/os-release"} {
		if g, ok := got[p]; ok {
			t.Errorf("%s reported: %s", p, g)
		}
	}
	// libselinux's library is absent: reported missing, with the digest rpm recorded.
	if g := got["usr/lib64/libselinux.so.1"]; g != "libselinux RPM sha256 eb18fbb4c96fab7933476d5aa18a528eca9d1efc0c93960fc8b91d0ffd4e4a90 " {
		t.Errorf("usr/lib64/libselinux.so.1: %q", g)
	}
}
