package scan

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io/fs"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	rpmdb "github.com/knqyf263/go-rpmdb/pkg"
	"github.com/rootscan/rootscan/report"
)

func sha256hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// centos7Root is the centos:7 database (go-rpmdb's test data, see rpm_test.go) with the files of centos-release and
// libselinux whose content is known exactly: their sha256 is the one rpm recorded in the database, which proves
// the check hashes as rpm does. The other files of the two packages (GPG keys, presets, libraries) are absent.
func centos7Root(t *testing.T) fstest.MapFS {
	return fstest.MapFS{
		"etc/os-release":                     file([]byte("ID=\"centos\"\nVERSION_ID=\"7\"\n")),
		"var/lib/rpm/Packages":               file(gunzipTestdata(t, "rpm/centos7-plain.Packages.gz")),
		"etc/centos-release":                 file([]byte("CentOS Linux release 7.5.1804 (Core) \n")),
		"etc/centos-release-upstream":        file([]byte("Derived from Red Hat Enterprise Linux 7.5 (Source)\n")),
		"usr/lib/tmpfiles.d/libselinux.conf": file([]byte("d /var/run/setrans 0755 root root\n")),
	}
}

// runRPMIntegrity runs os-release and rpm, keeps only the named packages (so a root need not hold all 144 packages'
// files), then the integrity check.
func runRPMIntegrity(t *testing.T, fsys FS, a Analyzer, keep ...string) *report.Result {
	t.Helper()
	out := Run(context.Background(), fsys, []Analyzer{NewOSRelease(), NewRPM()})
	if len(out.Errors) > 0 {
		t.Fatalf("inventory errors: %v", errorLines(out.Errors))
	}
	out.Packages = slices.DeleteFunc(out.Packages, func(p report.Package) bool { return !slices.Contains(keep, p.Name) })
	if len(out.Packages) != len(keep) {
		t.Fatalf("packages %v, want %v", out.Packages, keep)
	}
	if err := a.Analyze(context.Background(), fsys, out); err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	return out
}

// The files as installed by rpm: no finding. Then one file altered, one deleted, one replaced by a symlink, a
// %config file edited and deleted, a %doc file deleted and another rewritten.
func TestRPMIntegrityCentOS7(t *testing.T) {
	fsys := centos7Root(t)
	// The absent files of the two packages, as rpm -V reports them ("missing"), expected digests from the database.
	missing := []string{
		"centos-release RPM etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7 sha256 8b48b04b336bd725b9e611c441c65456a4168083c4febc28e88828d8ec14827f ",
		"centos-release RPM etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-Debug-7 sha256 77e0e92b7c64862bfdaee6d40bb998aacbcaad0e54d0bbcf63ea34839083e206 ",
		"centos-release RPM etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-Testing-7 sha256 96a0d5aa99059b937b46828d611b0cce3d765b05d110b0b081365c61487b22ed ",
		"centos-release RPM etc/rpm/macros.dist sha256 66e684fe666f736395deec4e6813aa4e567074447984cf77b4b36c0bfa7f49d6 ",
		"centos-release RPM usr/lib/systemd/system-preset/85-display-manager.preset sha256 ac3e811c49cac013f48b46a20a514b1dbc1a55831498dd4d211bf111a0faa3a9 ",
		"centos-release RPM usr/lib/systemd/system-preset/90-default.preset sha256 f574074bfc494c5ce3d286b5e229a9c89c6d5a0a3585054ff9763d097e3501b1 ",
		"centos-release RPM usr/share/centos-release/EULA sha256 94a2f38fd8b16ddc83d908380d590020811fadb6a0abef793270dd2635c51a28 ",
		"libselinux RPM usr/lib64/libselinux.so.1 sha256 eb18fbb4c96fab7933476d5aa18a528eca9d1efc0c93960fc8b91d0ffd4e4a90 ",
		"libselinux RPM usr/sbin/sefcontext_compile sha256 496d23a8b0501521608af7f636933ab0dd9048dbb23f2c8de19ad76ec4547cf8 ",
	}
	out := runRPMIntegrity(t, fsys, NewRPMIntegrity(), "centos-release", "libselinux")
	if got := findingLines(out.Integrity); !reflect.DeepEqual(got, missing) {
		t.Fatalf("installed files: findings\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(missing, "\n"))
	}
	if len(out.Errors) > 0 {
		t.Fatalf("errors: %v", errorLines(out.Errors))
	}

	fsys["etc/centos-release-upstream"] = file([]byte("Derived from nothing\n"))                          // altered
	delete(fsys, "usr/lib/tmpfiles.d/libselinux.conf")                                                    // deleted
	fsys["etc/centos-release"] = &fstest.MapFile{Data: []byte("/dev/null"), Mode: fs.ModeSymlink | 0o777} // replaced
	fsys["etc/issue"] = file([]byte("edited %config file\n"))                                             // %config: not checked
	fsys["usr/share/doc/centos-release/Contributors"] = file([]byte("rewritten\n"))                       // %doc present: checked
	// usr/share/doc/centos-release/GPL stays absent: a missing %doc file is what nodocs installs leave.
	out = runRPMIntegrity(t, fsys, NewRPMIntegrity(), "centos-release", "libselinux")
	want := append([]string{
		"centos-release RPM etc/centos-release sha256 8672216ed62f67d811e3892304fb52ca4a34433f015d72d96821328d3846e0e4 not a regular file",
		"centos-release RPM etc/centos-release-upstream sha256 cf36872e084cfb281a4c169fab26c00a4f0fc36a81c061e54185ea9752d75941 " + sha256hex("Derived from nothing\n"),
	}, missing[:3]...)
	want = append(want, missing[3:6]...)
	want = append(want,
		missing[6],
		"centos-release RPM usr/share/doc/centos-release/Contributors sha256 6ffe7a75b253c4f79bc0879cac8dc72781a2aa586452246d56544479cb939303 "+sha256hex("rewritten\n"),
		"libselinux RPM usr/lib/tmpfiles.d/libselinux.conf sha256 a4da5964a3357d01279f47ccf363d50448b4704808eb6d8bbb833357c7aebae5 ",
	)
	want = append(want, missing[7:]...)
	if got := findingLines(out.Integrity); !reflect.DeepEqual(got, want) {
		t.Fatalf("changed root: findings\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(out.Errors) > 0 {
		t.Fatalf("errors: %v", errorLines(out.Errors))
	}
}

// Only packages the rpm analyzer reported are checked, with their ecosystem; without any, the database is not
// even read.
func TestRPMIntegrityOnlyRPMPackages(t *testing.T) {
	fsys := centos7Root(t)
	out := &report.Result{Packages: []report.Package{{Name: "centos-release", Version: "7-5.1804.el7.centos", Arch: "x86_64", Ecosystem: report.EcosystemDebian, FoundBy: "dpkg"}}}
	if err := NewRPMIntegrity().Analyze(context.Background(), fsys, out); err != nil {
		t.Fatal(err)
	}
	if len(out.Integrity) != 0 || len(out.Errors) != 0 {
		t.Fatalf("checked a dpkg package: %v %v", out.Integrity, out.Errors)
	}
	fsys["etc/os-release"] = file([]byte("ID=rhel\n"))
	out = runRPMIntegrity(t, fsys, NewRPMIntegrity(), "libselinux")
	for _, f := range out.Integrity {
		if f.Ecosystem != report.EcosystemRedHat || f.Package != "libselinux" {
			t.Fatalf("finding %+v: want package libselinux, ecosystem %s", f, report.EcosystemRedHat)
		}
	}
	if len(out.Integrity) != 2 {
		t.Fatalf("findings %v, want the two missing libselinux files", findingLines(out.Integrity))
	}
}

// The per-root bounds end the check with an error that says what was skipped, and the findings so far are kept.
func TestRPMIntegrityLimits(t *testing.T) {
	fsys := centos7Root(t)
	a := NewRPMIntegrity().(*rpmIntegrityAnalyzer)
	a.maxFiles = 2
	out := runRPMIntegrity(t, fsys, a, "centos-release", "libselinux")
	// Database order puts libselinux first: its conf (present, correct) and library (missing) use up the budget.
	wantF := []string{"libselinux RPM usr/lib64/libselinux.so.1 sha256 eb18fbb4c96fab7933476d5aa18a528eca9d1efc0c93960fc8b91d0ffd4e4a90 "}
	if got := findingLines(out.Integrity); !reflect.DeepEqual(got, wantF) {
		t.Fatalf("findings %q, want %q", got, wantF)
	}
	wantE := []string{
		"rpm-integrity : file limit reached: checked 2 files: skipped 1 more files of libselinux",
		"rpm-integrity : file limit reached: checked 2 files: skipped all files of 1 more packages",
	}
	if got := errorLines(out.Errors); !reflect.DeepEqual(got, wantE) {
		t.Fatalf("errors %q, want %q", got, wantE)
	}

	a = NewRPMIntegrity().(*rpmIntegrityAnalyzer)
	a.maxFindings = 1
	out = runRPMIntegrity(t, fsys, a, "centos-release", "libselinux")
	if len(out.Integrity) != 1 || !slices.Equal(errorLines(out.Errors), []string{"rpm-integrity : 8 more integrity findings not listed"}) {
		t.Fatalf("findings %v errors %v", findingLines(out.Integrity), errorLines(out.Errors))
	}
}

func TestRPMDigest(t *testing.T) {
	for _, tc := range []struct {
		algo rpmdb.DigestAlgorithm
		name string
		sum  string // of "abc"
	}{
		{0, "md5", "900150983cd24fb0d6963f7d28e17f72"},
		{rpmdb.PGPHASHALGO_MD5, "md5", "900150983cd24fb0d6963f7d28e17f72"},
		{rpmdb.PGPHASHALGO_SHA1, "sha1", "a9993e364706816aba3e25717850c26c9cd0d89d"},
		{rpmdb.PGPHASHALGO_SHA224, "sha224", "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"},
		{rpmdb.PGPHASHALGO_SHA256, "sha256", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{rpmdb.PGPHASHALGO_SHA384, "sha384", "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"},
		{rpmdb.PGPHASHALGO_SHA512, "sha512", "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"},
	} {
		name, newHash := rpmDigest(tc.algo)
		if name != tc.name || newHash == nil {
			t.Fatalf("%d: %s, supported %t", tc.algo, name, newHash != nil)
		}
		if got := hexSum(newHash(), "abc"); got != tc.sum {
			t.Errorf("%s(abc) = %s, want %s", name, got, tc.sum)
		}
	}
	if name, newHash := rpmDigest(rpmdb.PGPHASHALGO_RIPEMD160); newHash != nil || name != "ripemd160" {
		t.Errorf("ripemd160: %s, supported %t; want unsupported", name, newHash != nil)
	}
}

func hexSum(h hash.Hash, s string) string {
	h.Write([]byte(s))
	return hex.EncodeToString(h.Sum(nil))
}

// FuzzRPMIntegrityFiles feeds arbitrary file lists (as a damaged or hostile header would hold them: dir indexes out
// of range, "..", empty names, odd digests) to the per-package check: a bad list is an error, never a panic, and no
// path outside the usual tree syntax is opened.
func FuzzRPMIntegrityFiles(f *testing.F) {
	f.Add("/usr/bin/\x00/etc/", "hello\x00passwd", []byte{0, 1}, uint16(0o100644), "5d41402abc4b2a76b9719d911017c592", int32(0), int32(1))
	f.Add("/../\x00", "etc/shadow\x00", []byte{0, 7}, uint16(0o100755), "", int32(rpmdb.RPMFILE_DOC), int32(8))
	f.Add("", "", []byte{}, uint16(0o040755), "zz", int32(-1), int32(99))
	f.Fuzz(func(t *testing.T, dirs, bases string, idx []byte, mode uint16, digest string, flags int32, algo int32) {
		info := &rpmdb.PackageInfo{Name: "p", Version: "1", DigestAlgorithm: rpmdb.DigestAlgorithm(algo)}
		info.DirNames = strings.Split(dirs, "\x00")
		info.BaseNames = strings.Split(bases, "\x00")
		for _, b := range idx {
			info.DirIndexes = append(info.DirIndexes, int32(int8(b)))
			info.FileModes = append(info.FileModes, mode)
			info.FileDigests = append(info.FileDigests, digest)
			info.FileFlags = append(info.FileFlags, flags)
		}
		fsys := fstest.MapFS{"usr/bin/hello": file([]byte("hello")), "etc/passwd": file([]byte("root:x:0:0::/root:/bin/sh\n"))}
		r := newRpmIntegrityRun(NewRPMIntegrity().(*rpmIntegrityAnalyzer), fsys)
		if err := r.checkPackage(context.Background(), report.Package{Name: "p", Ecosystem: "RPM"}, info, "db"); err != nil {
			t.Fatal(err)
		}
		for _, fd := range r.findings {
			if !fs.ValidPath(fd.Path) || strings.HasPrefix(fd.Path, "/") {
				t.Fatalf("finding for path %q", fd.Path)
			}
		}
	})
}
