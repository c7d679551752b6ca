// Package integration runs the rootscan binary against a private containerd with real images, pods and mounts.
package integration

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/internal/testbed"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
	"github.com/rootscan/rootscan/report"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// rootscanBin is built once by TestMain, the way users run it: a separate process with its own exit code.
var rootscanBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rootscan-integration-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rootscanBin = filepath.Join(dir, "rootscan")
	build := exec.Command("go", "build", "-o", rootscanBin, "github.com/rootscan/rootscan/cmd/rootscan")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build rootscan:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// scanOutput mirrors the JSON document of `rootscan scan -o json`.
type scanOutput struct {
	Node    string          `json:"node"`
	Runtime string          `json:"runtime"`
	Reports []report.Report `json:"reports"`
}

type runResult struct {
	stdout, stderr string
	code           int
	maxRSSKiB      int64
	elapsed        time.Duration
}

func runRootscan(t testing.TB, timeout time.Duration, args ...string) runResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, rootscanBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	res := runResult{stdout: out.String(), stderr: errb.String(), elapsed: time.Since(start)}
	if ctx.Err() != nil {
		t.Fatalf("rootscan %v did not finish within %v (hang?)\nstderr: %s", args, timeout, res.stderr)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		t.Fatalf("run rootscan: %v", err)
	}
	// rootscan logs its own VmHWM at debug level; wait4's ru_maxrss would count this test process's pages, which
	// the vfork'd child shares until exec.
	if m := regexp.MustCompile(`peak_rss_kib=(\d+)`).FindStringSubmatch(res.stderr); m != nil {
		res.maxRSSKiB, _ = strconv.ParseInt(m[1], 10, 64)
	}
	return res
}

func scanJSON(t testing.TB, bed *testbed.Containerd, mountDir string, extra ...string) (scanOutput, runResult) {
	t.Helper()
	args := append([]string{"scan", "-o", "json", "--log-level", "debug", "--runtime-endpoint", "unix://" + bed.Address(), "--mount-dir", mountDir}, extra...)
	res := runRootscan(t, 2*time.Minute, args...)
	return decode(t, res), res
}

func decode(t testing.TB, res runResult) scanOutput {
	t.Helper()
	var doc scanOutput
	if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil {
		t.Fatalf("rootscan output is not JSON (exit %d): %v\nstdout: %.2000s\nstderr: %s", res.code, err, res.stdout, res.stderr)
	}
	return doc
}

func reportFor(t testing.TB, doc scanOutput, containerID string) report.Report {
	t.Helper()
	for _, r := range doc.Reports {
		if r.Target.ContainerID == containerID {
			return r
		}
	}
	t.Fatalf("no report for container %s among %d reports", containerID, len(doc.Reports))
	return report.Report{}
}

// assertNoMountsUnder fails if any mount is left at or below dir.
func assertNoMountsUnder(t testing.TB, dir string) {
	t.Helper()
	points, err := fsaccess.MountPointsUnder(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(points) > 0 {
		t.Fatalf("mounts left behind under %s: %q", dir, points)
	}
}

// podState is what a scan must not change: every sandbox and container with its state, labels and annotations.
func podState(t testing.TB, bed *testbed.Containerd) string {
	t.Helper()
	ctx := context.Background()
	pods, err := bed.Runtime().ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := bed.Runtime().ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, p := range pods.GetItems() {
		lines = append(lines, fmt.Sprintf("pod %s %s %v labels=%v annotations=%v", p.GetId(), p.GetMetadata().GetName(), p.GetState(), p.GetLabels(), p.GetAnnotations()))
	}
	for _, c := range cs.GetContainers() {
		lines = append(lines, fmt.Sprintf("ctr %s %s %v labels=%v annotations=%v", c.GetId(), c.GetMetadata().GetName(), c.GetState(), c.GetLabels(), c.GetAnnotations()))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// snapshotDirs returns the upper dir and the workdir of a container's active overlay snapshot.
func snapshotDirs(t testing.TB, bed *testbed.Containerd, containerID string) (upper, work string) {
	t.Helper()
	ms, err := bed.Client().SnapshotService(testbed.Snapshotter).Mounts(context.Background(), containerID)
	if err != nil {
		t.Fatalf("snapshot mounts of %s: %v", containerID, err)
	}
	return overlayOption(ms, "upperdir="), overlayOption(ms, "workdir=")
}

func overlayOption(ms []mount.Mount, prefix string) string {
	for _, m := range ms {
		for _, o := range m.Options {
			if strings.HasPrefix(o, prefix) {
				return strings.TrimPrefix(o, prefix)
			}
		}
	}
	return ""
}

// treeDigest lists every entry under dir with its type, mode, size, mtime and content hash: any write, chmod or
// touch by the scanner changes it.
func treeDigest(t testing.TB, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(&b, "%s %v %d %d", rel, fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		if fi.Mode().IsRegular() && fi.Size() < 1<<20 {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			b.WriteString(" " + hex.EncodeToString(sum[:8]))
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return b.String()
}

func wantPackages(img *ociimage.Image) []string {
	var out []string
	for _, p := range img.Packages() {
		out = append(out, fmt.Sprintf("%s %s %s %s %s", p.Name, p.Version, p.Architecture, p.Source, p.SourceVersion))
	}
	sort.Strings(out)
	return out
}

// gotPackages lists the Debian packages of a result in wantPackages' form.
func gotPackages(res *report.Result) []string {
	if res == nil {
		return nil
	}
	var out []string
	for _, p := range res.Packages {
		if p.Ecosystem == report.EcosystemDebian {
			out = append(out, fmt.Sprintf("%s %s %s %s %s", p.Name, p.Version, p.Arch, p.Source, p.SourceVersion))
		}
	}
	sort.Strings(out)
	return out
}

// goPackages lists the Go modules of a result as "name version location".
func goPackages(res *report.Result) []string {
	if res == nil {
		return nil
	}
	var out []string
	for _, p := range res.Packages {
		if p.Ecosystem == report.EcosystemGo {
			out = append(out, fmt.Sprintf("%s %s %s", p.Name, p.Version, strings.Join(p.Locations, ",")))
		}
	}
	sort.Strings(out)
	return out
}

// wantGoProgram is what the Go analyzer must report for the test images' static programs (built by the same Go
// toolchain as this test, from a module without a version): the main module and the standard library.
func wantGoProgram(module, path string) []string {
	return []string{module + " (devel) " + path, "stdlib " + strings.TrimPrefix(runtime.Version(), "go") + " " + path}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// runRootscanSignalled starts a node scan, sends SIGTERM after delay and returns the exit code (-1: killed by the
// signal before the handler was installed).
func runRootscanSignalled(t testing.TB, bed *testbed.Containerd, mountDir string, delay time.Duration) int {
	t.Helper()
	cmd := exec.Command(rootscanBin, "scan", "-o", "json", "--runtime-endpoint", bed.Address(), "--mount-dir", mountDir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(delay)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		t.Fatal("rootscan did not exit after SIGTERM")
	}
	return cmd.ProcessState.ExitCode()
}

// distrolessLayout builds the distroless test image and writes it as an OCI layout in a temp dir, for the --oci,
// --dir and SBOM targets; it returns the image, the layout dir and the manifest digest.
func distrolessLayout(t testing.TB, ctx context.Context) (*ociimage.Image, string, digest.Digest) {
	t.Helper()
	img, err := ociimage.Distroless(ctx, ociimage.DefaultCacheDir())
	if err != nil {
		t.Fatalf("build distroless image: %v", err)
	}
	layout := filepath.Join(t.TempDir(), "layout")
	manifest, err := img.WriteLayout(layout)
	if err != nil {
		t.Fatalf("write OCI layout: %v", err)
	}
	return img, layout, manifest
}

// needTools skips (or, under ROOTSCAN_INTEGRATION=require, fails) a test that needs commands the machine lacks.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			langSkip(t, tool+" not found")
		}
	}
}

// distrolessRoot extracts the distroless test image the way `rootscan scan --oci` does and returns it with its
// confined root, closed when the test ends.
func distrolessRoot(t testing.TB, ctx context.Context) (*ociimage.Image, *fsaccess.Root) {
	t.Helper()
	img, layout, _ := distrolessLayout(t, ctx)
	root, _, err := fsaccess.OpenOCI(ctx, layout, t.TempDir(), fsaccess.OCIOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return img, root
}

// startBed starts the test bed's private containerd, builds an image with build (ociimage.Distroless, Hostile, …)
// and imports it. The context bounds the test's calls to the test bed to five minutes and ends with the test.
func startBed(t testing.TB, build func(ctx context.Context, cacheDir string) (*ociimage.Image, error)) (
	*testbed.Containerd, context.Context, *ociimage.Image, testbed.ImageRef) {
	t.Helper()
	bed := testbed.StartT(t, testbed.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	img, err := build(ctx, ociimage.DefaultCacheDir())
	if err != nil {
		t.Fatalf("build test image: %v", err)
	}
	ref, err := bed.Import(ctx, img)
	if err != nil {
		t.Fatalf("import %s: %v", img.Name, err)
	}
	return bed, ctx, img, ref
}

// startReadyDaemon starts `rootscan daemon` on bed's CRI with a state dir and a mount dir of its own and args, and
// waits until /readyz answers 200. It returns the daemon (killed when the test ends, see startDaemonProc) and its
// mount dir, which must be empty once it has stopped.
func startReadyDaemon(t testing.TB, bed *testbed.Containerd, args ...string) (*daemonProc, string) {
	t.Helper()
	mounts := filepath.Join(t.TempDir(), "mounts")
	d := startDaemonProc(t, append([]string{"--runtime-endpoint", bed.Address(), "--state-dir", filepath.Join(t.TempDir(), "state"),
		"--mount-dir", mounts}, args...)...)
	waitUntil(t, "/readyz", 30*time.Second, func() bool { code, _ := d.get("/readyz"); return code == 200 })
	return d, mounts
}

// terminate sends the daemon SIGTERM and fails the test unless it exits within 30s.
func (p *daemonProc) terminate(t testing.TB) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not exit within 30s of SIGTERM")
	}
}

// runWebApp runs the workload most tests watch: pod "web" in namespace "shop" with one container "app" of image. It
// returns the pod's and the container's IDs.
func runWebApp(t testing.TB, ctx context.Context, bed *testbed.Containerd, image string) (pod, id string) {
	t.Helper()
	return runPodWith(t, ctx, bed, testbed.PodSpec{Name: "web", Namespace: "shop"}, testbed.ContainerSpec{Name: "app", Image: image})
}

// runPodWith runs a pod with one container and returns the pod's and the container's IDs.
func runPodWith(t testing.TB, ctx context.Context, bed *testbed.Containerd, p testbed.PodSpec, c testbed.ContainerSpec) (pod, id string) {
	t.Helper()
	pod, err := bed.RunPod(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	id, err = bed.RunContainer(ctx, pod, c)
	if err != nil {
		t.Fatal(err)
	}
	return pod, id
}

// nodeAccess dials bed's CRI and snapshot service and makes a mounter under mountDir, each closed when the test
// ends: what the in-process node scanner and daemon are wired with.
func nodeAccess(t testing.TB, bed *testbed.Containerd, mountDir string) (*cri.Client, *fsaccess.Snapshots, *fsaccess.Mounter) {
	t.Helper()
	ctx := context.Background()
	client, err := cri.Dial(ctx, bed.Address())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	snaps, err := fsaccess.DialSnapshots(ctx, bed.Address())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { snaps.Close() })
	m, err := fsaccess.NewMounter(ctx, mountDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return client, snaps, m
}

// gunzipFixture reads a gzip-compressed test fixture whole.
func gunzipFixture(t testing.TB, path string) []byte {
	t.Helper()
	gz, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
