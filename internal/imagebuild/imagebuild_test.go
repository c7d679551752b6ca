package imagebuild

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rootscan/rootscan/internal/testbed/ociimage"
	"github.com/rootscan/rootscan/report"
)

// repoRoot is the module's root, from this package's directory.
const repoRoot = "../.."

// TestImage builds the image twice, as `make image` does, and checks the two builds are the same bytes; then it
// reads the image independently of the writer, scans it with its own scanner, writes its SBOM and compares the
// files with what the Dockerfile's final stage copies.
func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds rootscan twice")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	src, err := GitSource(ctx, repoRoot, "test")
	if err != nil {
		t.Fatal(err)
	}
	var imgs []*ociimage.Image
	var outs []*Output
	var dirs []string
	for range 2 {
		img, err := Build(ctx, Options{Source: src})
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		out, err := Write(img, src, dir)
		if err != nil {
			t.Fatal(err)
		}
		imgs, outs, dirs = append(imgs, img), append(outs, out), append(dirs, dir)
	}
	if outs[0].Pin != outs[1].Pin {
		t.Fatalf("two builds of one commit differ: %+v and %+v", outs[0].Pin, outs[1].Pin)
	}
	if a, b := fileSum(t, filepath.Join(dirs[0], ArchiveFile)), fileSum(t, filepath.Join(dirs[1], ArchiveFile)); a != b {
		t.Errorf("two builds of one commit give different archives: %s and %s", a, b)
	}
	t.Logf("%s: %d bytes compressed, %d unpacked", outs[0].Pin.Ref(), outs[0].Compressed, outs[0].Unpacked)
	// The goal: a node pulls less than 20 MB.
	if outs[0].Compressed >= 20<<20 {
		t.Errorf("image is %d bytes compressed, the goal is under 20 MiB", outs[0].Compressed)
	}
	dir := dirs[0]
	files := checkLayout(t, filepath.Join(dir, LayoutDir), src)
	t.Run("scan", func(t *testing.T) { checkSelfScan(t, ctx, imgs[0], dir, src) })
	t.Run("sbom", func(t *testing.T) { checkSBOM(t, ctx, imgs[0], dir) })
	t.Run("dockerfile", func(t *testing.T) { checkDockerfile(t, imgs[0], files) })
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return string(h.Sum(nil))
}

// layoutFile is one entry of the image's flattened filesystem as its layers' tars state it.
type layoutFile struct {
	Mode     int64
	Type     byte
	Uid, Gid int
	Sum      [32]byte
}

// checkLayout reads the layout with archive/tar and encoding/json, not with the writer: the manifest carries the
// annotations, the config the creation time of the commit, every entry is root's (but nonroot's home) and has the
// commit's time, and there is nothing but the scanner, the base files and their directories.
func checkLayout(t *testing.T, layout string, src Source) map[string]layoutFile {
	t.Helper()
	var idx ocispec.Index
	readJSONFile(t, filepath.Join(layout, "index.json"), &idx)
	if len(idx.Manifests) != 1 {
		t.Fatalf("index has %d manifests, want 1", len(idx.Manifests))
	}
	var man ocispec.Manifest
	readJSONFile(t, blobPath(layout, idx.Manifests[0].Digest.Encoded()), &man)
	want := map[string]string{
		ocispec.AnnotationSource: SourceURL, ocispec.AnnotationRevision: src.Revision,
		ocispec.AnnotationVersion: "test", ocispec.AnnotationCreated: src.Created.Format(time.RFC3339),
	}
	for k, v := range want {
		if man.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, man.Annotations[k], v)
		}
	}
	var cfg ocispec.Image
	readJSONFile(t, blobPath(layout, man.Config.Digest.Encoded()), &cfg)
	if !cfg.Created.Equal(src.Created) || cfg.Config.User != "65532:65532" || !slices.Equal(cfg.Config.Entrypoint, []string{"/usr/bin/rootscan"}) {
		t.Errorf("config: created %v (commit %v), user %q, entrypoint %v", cfg.Created, src.Created, cfg.Config.User, cfg.Config.Entrypoint)
	}
	files := map[string]layoutFile{}
	for _, l := range man.Layers {
		readLayer(t, blobPath(layout, l.Digest.Encoded()), src.Created, files)
	}
	var paths []string
	for p, f := range files {
		paths = append(paths, p)
		if (f.Uid != 0 || f.Gid != 0) != (p == "home/nonroot") {
			t.Errorf("%s is owned by %d:%d", p, f.Uid, f.Gid)
		}
		if f.Type == tar.TypeReg && f.Mode&0o111 != 0 && p != BinaryPath {
			t.Errorf("%s is executable: only the scanner should be", p)
		}
	}
	slices.Sort(paths)
	wantPaths := []string{"etc", "etc/group", "etc/nsswitch.conf", "etc/os-release", "etc/passwd", "etc/rootscan",
		"etc/ssl", "etc/ssl/certs", "etc/ssl/certs/ca-certificates.crt", "home", "home/nonroot", "root", "run",
		"run/rootscan", "tmp", "usr", "usr/bin", "usr/bin/rootscan", "usr/share", "usr/share/doc",
		"usr/share/doc/ca-certificates", "usr/share/doc/ca-certificates/copyright", "var", "var/lib", "var/lib/dpkg",
		"var/lib/dpkg/status.d", "var/lib/dpkg/status.d/ca-certificates", "var/lib/rootscan"}
	if !slices.Equal(paths, wantPaths) {
		t.Errorf("image files:\n%v\nwant\n%v", paths, wantPaths)
	}
	return files
}

func blobPath(layout, hex string) string { return filepath.Join(layout, "blobs", "sha256", hex) }

func readJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// readLayer applies a gzip layer tar to files, checking every mtime is mtime and entries come in sorted order.
func readLayer(t *testing.T, path string, mtime time.Time, files map[string]layoutFile) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var last string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if name <= last {
			t.Errorf("layer entry %s after %s", name, last)
		}
		last = name
		if !h.ModTime.Equal(mtime) {
			t.Errorf("%s has mtime %v, want the commit's %v", name, h.ModTime, mtime)
		}
		lf := layoutFile{Mode: h.Mode, Type: h.Typeflag, Uid: h.Uid, Gid: h.Gid}
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			lf.Sum = sha256.Sum256(b)
		}
		files[name] = lf
	}
}

// checkSelfScan scans the layout with the image's own scanner: a distroless root (no shell, no package manager),
// Debian 12's ca-certificates at the pinned version and the scanner's own Go modules, every baseline control that
// ran passed, and the image config as built.
func checkSelfScan(t *testing.T, ctx context.Context, img *ociimage.Image, dir string, src Source) {
	out, err := RunBinary(ctx, img, "scan", "--oci", filepath.Join(dir, LayoutDir), "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Reports []report.Report `json:"reports"`
	}
	if err := json.Unmarshal(out, &doc); err != nil || len(doc.Reports) != 1 {
		t.Fatalf("scan output: %d reports, %v", len(doc.Reports), err)
	}
	r := doc.Reports[0].Result
	if r == nil {
		t.Fatalf("no scan result: %s", doc.Reports[0].Error)
	}
	if r.Distroless == nil || !r.Distroless.Distroless || len(r.Distroless.Shells)+len(r.Distroless.PackageManagers) != 0 {
		t.Errorf("scan says distroless %+v, want true with no shell and no package manager", r.Distroless)
	}
	if r.OS == nil || r.OS.ID != "debian" || r.OS.VersionID != debianRelease {
		t.Errorf("os %+v, want debian %s", r.OS, debianRelease)
	}
	var debs, gomods []string
	for _, p := range r.Packages {
		switch p.Ecosystem {
		case "Debian":
			debs = append(debs, p.Name+"="+p.Version)
		case "Go":
			gomods = append(gomods, p.Name)
		}
	}
	if !slices.Equal(debs, []string{caCertsPackage + "=" + caCertsVersion}) {
		t.Errorf("Debian packages %v, want only the pinned %s", debs, caCertsPackage)
	}
	if !slices.Contains(gomods, "github.com/rootscan/rootscan") || !slices.Contains(gomods, "stdlib") {
		t.Errorf("Go modules %v lack the scanner itself or the standard library", gomods)
	}
	if len(r.Errors) != 0 {
		t.Errorf("scan errors: %+v", r.Errors)
	}
	passed := 0
	for _, c := range r.Compliance {
		switch c.Status {
		case report.ControlPassed:
			passed++
		case report.ControlFailed, report.ControlError:
			t.Errorf("baseline control %s %q: %s", c.ID, c.Title, c.Status)
		}
	}
	if passed == 0 {
		t.Error("no baseline control passed: the scan did not check the image")
	}
	if got := doc.Reports[0].Target.Config; got == nil || got.User != "65532:65532" ||
		got.Labels[ocispec.AnnotationRevision] != src.Revision {
		t.Errorf("scanned image config %+v, want user 65532:65532 and revision %s", got, src.Revision)
	}
}

// checkSBOM writes the SBOM make image ships and checks it names the pinned package and the scanner's modules.
func checkSBOM(t *testing.T, ctx context.Context, img *ociimage.Image, dir string) {
	if err := WriteSBOM(ctx, img, dir); err != nil {
		t.Fatal(err)
	}
	var bom struct {
		BOMFormat  string `json:"bomFormat"`
		Components []struct {
			Name, Version, Purl string
		} `json:"components"`
	}
	readJSONFile(t, filepath.Join(dir, SBOMFile), &bom)
	var purls []string
	for _, c := range bom.Components {
		purls = append(purls, c.Purl)
	}
	for _, want := range []string{
		"pkg:deb/debian/" + caCertsPackage + "@" + caCertsVersion + "?arch=all&distro=debian-" + debianRelease,
		"pkg:golang/github.com/rootscan/rootscan",
	} {
		if bom.BOMFormat != "CycloneDX" || !slices.Contains(purls, want) {
			t.Errorf("SBOM (%s) lacks %s: %v", bom.BOMFormat, want, purls)
		}
	}
}

// TestPinnedDebRefusesOtherBytes: a cached .deb of the pinned name and version with other content is not used.
func TestPinnedDebRefusesOtherBytes(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, caCertsPackage+"_"+caCertsVersion+"_all.deb"), []byte("not a deb"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := baseFiles(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), "the pin says "+caCertsSHA256) {
		t.Fatalf("baseFiles with a forged .deb: %v, want a hash mismatch", err)
	}
}

func TestPinRoundTrip(t *testing.T) {
	p := Pin{Repository: "example.org/r", Tag: "1.2.3", Digest: "sha256:" + strings.Repeat("ab", 32), Revision: "abc"}
	got, err := ParsePin(p.Format())
	if err != nil || got != p {
		t.Fatalf("ParsePin(Format(%+v)) = %+v, %v", p, got, err)
	}
	for _, bad := range []string{
		strings.Replace(string(p.Format()), "IMAGE_TAG=1.2.3\n", "", 1),
		strings.Replace(string(p.Format()), "sha256:ab", "sha256:zz", 1),
		string(p.Format()) + "OTHER=1\n",
	} {
		if _, err := ParsePin([]byte(bad)); err == nil {
			t.Errorf("ParsePin accepted %q", bad)
		}
	}
}

// TestPinDeploy pins a copy of deploy/ and checks every carrier line moved; a file with the line twice fails.
func TestPinDeploy(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"kustomize/base/kustomization.yaml", "helm/rootscan/values.yaml", "helm/rootscan/Chart.yaml"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, "deploy", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := Pin{Repository: "example.org/r", Tag: "9.9.9", Digest: "sha256:" + strings.Repeat("cd", 32), Revision: "abc"}
	if err := PinDeploy(dir, p); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, PinFile))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ParsePin(b); err != nil || got != p {
		t.Errorf("image.env holds %+v, %v", got, err)
	}
	for _, e := range pinEdits(p) {
		b, err := os.ReadFile(filepath.Join(dir, e.file))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(e.line+"\n")) {
			t.Errorf("%s lacks %q after pinning", e.file, e.line)
		}
	}
	values := filepath.Join(dir, "helm/rootscan/values.yaml")
	b, _ = os.ReadFile(values)
	if err := os.WriteFile(values, append(b, "  tag: again\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := PinDeploy(dir, p); err == nil {
		t.Error("PinDeploy edited a values.yaml with two tag lines")
	}
}
