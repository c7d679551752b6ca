package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// TestDebIntegrityDistroless checks the distroless-like image, read from an OCI layout like `rootscan scan --oci`
// does: the pristine image has no integrity finding even though its docs and man pages were stripped, and a
// rewritten and a deleted libc6 file are reported with the sums libc6's md5sums records.
func TestDebIntegrityDistroless(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test skipped in -short mode")
	}
	needTools(t, "apt-get", "dpkg-deb", "go")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	img, root := distrolessRoot(t, ctx)
	analyzers := func() []scan.Analyzer {
		return []scan.Analyzer{scan.NewOSRelease(), scan.NewDpkg(), scan.NewDebIntegrity()}
	}

	res := scan.Run(ctx, root, analyzers())
	if len(res.Errors) != 0 || len(res.Integrity) != 0 {
		t.Fatalf("pristine image: errors %+v, findings %+v", res.Errors, res.Integrity)
	}
	if got, want := gotPackages(res), wantPackages(img); !equalStrings(got, want) {
		t.Fatalf("packages\n got  %q\n want %q", got, want)
	}

	// The test changes the extracted tree behind the scanner's back, through the host path.
	sums := readMD5sums(t, filepath.Join(root.Path(), "var/lib/dpkg/status.d/libc6.md5sums"))
	changed, deleted := pathWithSuffix(t, sums, "/libc.so.6"), pathWithSuffix(t, sums, "/libm.so.6")
	newContent := []byte("not the C library\n")
	if err := os.WriteFile(filepath.Join(root.Path(), changed), newContent, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root.Path(), deleted)); err != nil {
		t.Fatal(err)
	}
	newSum := md5.Sum(newContent)

	res = scan.Run(ctx, root, analyzers())
	if len(res.Errors) != 0 {
		t.Errorf("errors: %+v", res.Errors)
	}
	want := []report.IntegrityFinding{
		{Package: "libc6", Ecosystem: report.EcosystemDebian, Path: changed, Algorithm: "md5", Expected: sums[changed], Found: hex.EncodeToString(newSum[:])},
		{Package: "libc6", Ecosystem: report.EcosystemDebian, Path: deleted, Algorithm: "md5", Expected: sums[deleted]},
	}
	if changed > deleted {
		want[0], want[1] = want[1], want[0]
	}
	if !reflect.DeepEqual(res.Integrity, want) {
		t.Errorf("findings\n got  %+v\n want %+v", res.Integrity, want)
	}
}

// readMD5sums reads an md5sums file into path -> sum, independently of the scanner's parser.
func readMD5sums(t *testing.T, p string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("%s: bad line %q", p, sc.Text())
		}
		m[name] = sum
	}
	return m
}

func pathWithSuffix(t *testing.T, sums map[string]string, suffix string) string {
	t.Helper()
	for p := range sums {
		if strings.HasSuffix(p, suffix) {
			return p
		}
	}
	t.Fatalf("no md5sums entry ends in %s", suffix)
	return ""
}
