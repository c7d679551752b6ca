// Command demo shows rootscan doing its job for real, on a private containerd
// with a small cluster's worth of pods: an exec into a distroless container
// fails for want of a shell, and rootscan inventories every container anyway,
// from outside, leaving no mount behind. `make demo` runs it (as root):
//
//	go run ./internal/testbed/cmd/demo --rootscan bin/rootscan
//
// Everything it starts is torn down at the end, on error and on ^C; it exits
// non-zero if any step failed.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/rootscan/rootscan/internal/testbed"
	"github.com/rootscan/rootscan/internal/testbed/gooracle"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
	"github.com/rootscan/rootscan/report"
)

func main() {
	rootscan := flag.String("rootscan", "bin/rootscan", "the rootscan binary to demonstrate")
	ctrd := flag.String("containerd", "", "containerd binary (default $"+testbed.EnvContainerd+", else containerd in PATH: Debian's)")
	flag.Parse()
	// Signals cancel ctx; the deferred teardown in run then still runs, and
	// later signals are swallowed so that it can finish.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	began := time.Now()
	err := run(ctx, *rootscan, *ctrd)
	interrupted := ctx.Err() != nil // before stop, which cancels ctx too
	stop()
	if interrupted {
		// The step error only says "context canceled" in many words; the
		// teardown said how it went.
		fmt.Fprintf(os.Stderr, "\ndemo interrupted after %v\n", time.Since(began).Round(time.Millisecond))
		os.Exit(130)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo FAILED after %v: %v\n", time.Since(began).Round(time.Millisecond), err)
		os.Exit(1)
	}
	fmt.Printf("\ndemo done in %v\n", time.Since(began).Round(time.Millisecond))
}

func header(format string, args ...any) { fmt.Printf("\n==> "+format+"\n", args...) }
func say(format string, args ...any)    { fmt.Printf("    "+format+"\n", args...) }

func run(ctx context.Context, rootscanBin, ctrdBin string) (retErr error) {
	rs, err := exec.LookPath(rootscanBin)
	if err == nil {
		rs, err = filepath.Abs(rs)
	}
	if err != nil {
		return fmt.Errorf("find rootscan binary (build it with `make build`): %w", err)
	}
	opts := testbed.Options{Bin: ctrdBin}
	if opts.Bin == "" {
		opts.Bin = os.Getenv(testbed.EnvContainerd)
	}
	if opts.Bin == "" {
		opts.Bin = "containerd"
	}
	if p, err := exec.LookPath(opts.Bin); err == nil {
		opts.Bin = p
	}
	if err := testbed.Available(opts); err != nil {
		return fmt.Errorf("a private containerd cannot run here (`make deps` installs containerd and runc): %w", err)
	}
	tmp, err := os.MkdirTemp("", "rootscan-demo-")
	if err == nil {
		tmp, err = filepath.EvalSymlinks(tmp) // mountinfo shows resolved paths
	}
	if err != nil {
		return fmt.Errorf("create temp dir: %w", err)
	}
	mountDir := filepath.Join(tmp, "mounts")
	defer func() {
		// Only with nothing mounted: RemoveAll would reach into a mount.
		if left, err := releaseMounts(mountDir); err != nil || len(left) > 0 {
			err = fmt.Errorf("mounts left under %s: %q %v", mountDir, left, err)
			say("FAILED: %v", err)
			retErr = errors.Join(retErr, err)
		} else if err := os.RemoveAll(tmp); err != nil {
			retErr = errors.Join(retErr, fmt.Errorf("remove temp dir: %w", err))
		}
	}()

	header("starting a private containerd (%s)", opts.Bin)
	c, err := testbed.Start(ctx, opts)
	if err != nil {
		return fmt.Errorf("start containerd: %w", err)
	}
	defer func() {
		header("tearing down")
		if err := c.Stop(); err != nil {
			say("FAILED: %v", err)
			retErr = errors.Join(retErr, fmt.Errorf("stop containerd: %w", err))
			return
		}
		say("pods removed, containerd and shims stopped, mounts, cgroups and %s gone", c.Dir())
	}()
	say("containerd %s, socket %s", c.Version(), c.Address())
	say("private: its root, state, runc root and pod cgroups (%s) are its own", c.CgroupParent())

	distroless, hostile, catalog, err := images(ctx, c)
	if err != nil {
		return err
	}

	header("creating pods")
	type container struct{ ns, pod, name, image, state, id string }
	ctrs := []container{
		{"shop", "web", "app", distroless.Name, "running", ""},
		{"shop", "batch", "job", distroless.Name, "exited", ""},
		{"shop", "batch", "migrate", distroless.Name, "created", ""},
		{"attack", "evil", "evil", hostile.Name, "running", ""},
	}
	if catalog != nil {
		ctrs = slices.Insert(ctrs, 1, container{"shop", "api", "catalog", catalog.Name, "running", ""})
	}
	pods := map[string]string{}
	say("%-20s %-13s %-8s %s", "NAMESPACE/POD/NAME", "CONTAINER", "STATE", "IMAGE")
	for i := range ctrs {
		k := &ctrs[i]
		if pods[k.ns+"/"+k.pod] == "" {
			if pods[k.ns+"/"+k.pod], err = c.RunPod(ctx, testbed.PodSpec{Name: k.pod, Namespace: k.ns}); err != nil {
				return err
			}
		}
		if k.id, err = c.CreateContainer(ctx, pods[k.ns+"/"+k.pod], testbed.ContainerSpec{Name: k.name, Image: k.image}); err != nil {
			return err
		}
		if k.state != "created" {
			err = c.StartContainer(ctx, k.id)
		}
		if err == nil && k.state == "exited" {
			err = c.StopContainer(ctx, k.id, 10*time.Second)
		}
		if err != nil {
			return err
		}
		say("%-20s %-13.12s %-8s %s", k.ns+"/"+k.pod+"/"+k.name, k.id, k.state, k.image)
	}
	app := ctrs[0].id

	cmd := []string{"/bin/sh", "-c", "cat /var/lib/dpkg/status.d/*"}
	header("exec into shop/web/app, as exec-based scanners do: %q", cmd)
	ectx, cancel := context.WithTimeout(ctx, 20*time.Second)
	_, _, code, err := c.ExecSync(ectx, app, cmd)
	cancel()
	switch {
	case err == nil:
		return fmt.Errorf("exec into the distroless container ran (exit %d): the image should have no shell", code)
	case !strings.Contains(err.Error(), "no such file or directory"):
		return fmt.Errorf("exec into the distroless container failed in an unexpected way: %w", err)
	}
	msg := err.Error()
	if s, ok := status.FromError(errors.Unwrap(err)); ok {
		msg = s.Message()
	}
	say("error: %s", msg)
	say("no shell, no cat, no package manager: this is where exec-based scanners stop.")

	// From here on a failed step is reported where it happens and the others
	// still run.
	var errs []error
	fail := func(err error) { say("FAILED: %v", err); errs = append(errs, err) }
	dbDir := filepath.Join(tmp, "db")
	header("an offline vulnerability database from OSV records")
	sources, goDB := osvSources(ctx)
	importArgs := append([]string{"db", "import", "--db", dbDir}, sources...)
	fmt.Printf("$ %s %s\n", rootscanBin, strings.Join(importArgs, " "))
	if _, err := runRootscan(ctx, rs, importArgs, os.Stdout); err != nil {
		fail(fmt.Errorf("rootscan db import: %w", err))
	}

	base := []string{"scan", "--runtime-endpoint", "unix://" + c.Address(), "--mount-dir", mountDir, "--db", dbDir}
	header("rootscan: every container of the node, from outside")
	fmt.Printf("$ %s %s\n\n", rootscanBin, strings.Join(base, " "))
	took, err := runRootscan(ctx, rs, base, os.Stdout)
	fmt.Println()
	if err != nil {
		fail(fmt.Errorf("rootscan scan: %w", err))
	} else {
		say("the node scan took %v, rootscan's start to exit", took.Round(time.Millisecond))
	}

	args := slices.Concat(base, []string{"-o", "json", "--container", app})
	header("rootscan -o json for shop/web/app, summarised")
	fmt.Printf("$ %s %s | summary\n", rootscanBin, strings.Join(args, " "))
	var out bytes.Buffer
	if _, err := runRootscan(ctx, rs, args, &out); err != nil {
		fail(fmt.Errorf("rootscan scan -o json: %w", err))
	} else if err := summarise(out.Bytes(), distroless.Packages()); err != nil {
		fail(err)
	}

	if catalog != nil {
		header("shop/api/catalog: a Go service built with go1.22.0, the findings that matter first")
		id := ctrs[slices.IndexFunc(ctrs, func(k container) bool { return k.image == catalog.Name })].id
		if err := demoReachability(ctx, rs, base, id, goDB); err != nil {
			fail(fmt.Errorf("rootscan on shop/api/catalog: %w", err))
		}
	}

	header("rootscan daemon: the same node as the DaemonSet sees it, /metrics and SIEM events")
	if err := demoDaemon(ctx, rs, c.Address(), tmp, dbDir); err != nil {
		fail(fmt.Errorf("rootscan daemon: %w", err))
	}

	header("checking /proc/self/mountinfo and the pods after the scans")
	if left, err := releaseMounts(mountDir); err != nil || len(left) > 0 {
		fail(fmt.Errorf("rootscan left mounts under %s: %q %v", mountDir, left, err))
	} else {
		say("no mount under %s: every read-only mount was released", mountDir)
	}
	st, err := c.Runtime().ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: app})
	if state := st.GetStatus().GetState(); err != nil || state != runtimeapi.ContainerState_CONTAINER_RUNNING {
		fail(fmt.Errorf("shop/web/app after the scan: state %v, err %v", state, err))
	} else {
		say("shop/web/app still runs: the scans never entered it nor mounted its overlay a second time")
	}
	return errors.Join(errs...)
}

// demoDaemon runs `rootscan daemon` until its first node check is done, shows the findings series it serves on
// /metrics and the events it wrote to a file sink, then stops it with SIGTERM as Kubernetes would.
func demoDaemon(ctx context.Context, bin, address, tmp, dbDir string) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	listen := l.Addr().String()
	l.Close()
	events := filepath.Join(tmp, "events.jsonl")
	args := []string{"daemon", "--runtime-endpoint", "unix://" + address, "--listen", listen,
		"--state-dir", filepath.Join(tmp, "state"), "--mount-dir", filepath.Join(tmp, "daemon-mounts"),
		"--db", dbDir, "--node-name", "demo-node", "--log-level", "warn", "--sink", "file:" + events + "?format=ecs"}
	fmt.Printf("$ %s %s &\n", bin, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	base := "http://" + listen
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready within a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("\n$ curl -s %s/metrics | grep 'container=\"app\"' | grep -v ' 0$'\n", base)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "rootscan_container_") && strings.Contains(line, `container="app"`) && !strings.HasSuffix(line, " 0") {
			fmt.Println(line)
		}
	}
	fmt.Printf("\n$ curl -s %s/metrics | grep -E '^rootscan_(scans_total|cache_(hits|misses)_total|mounts_held|vuln_db_loaded)'\n", base)
	for _, line := range strings.Split(string(body), "\n") {
		for _, m := range []string{"rootscan_scans_total", "rootscan_cache_hits_total", "rootscan_cache_misses_total", "rootscan_mounts_held", "rootscan_vuln_db_loaded"} {
			if strings.HasPrefix(line, m) {
				fmt.Println(line)
			}
		}
	}
	// Events reach the file sink through the spool a moment after the findings are published.
	time.Sleep(time.Second)
	b, err := os.ReadFile(events)
	if err != nil {
		return fmt.Errorf("read SIEM events: %w", err)
	}
	counts := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var e struct {
			Event struct {
				Action string `json:"action"`
			} `json:"event"`
			Rootscan struct {
				Finding struct {
					Kind string `json:"kind"`
				} `json:"finding"`
			} `json:"rootscan"`
		}
		if json.Unmarshal([]byte(line), &e) == nil {
			counts[e.Event.Action+" "+e.Rootscan.Finding.Kind]++
		}
	}
	fmt.Printf("\n$ jq -r '.event.action + \" \" + .rootscan.finding.kind' %s | sort | uniq -c\n", events)
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Printf("%7d %s\n", counts[k], k)
	}
	if len(counts) == 0 {
		return fmt.Errorf("no SIEM events written to %s", events)
	}
	return nil
}

// runRootscan runs rootscan with its stderr on the terminal. A cancelled ctx
// sends it SIGTERM, not SIGKILL, so that it releases its mounts.
func runRootscan(ctx context.Context, bin string, args []string, stdout io.Writer) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = stdout, os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	began := time.Now()
	err := cmd.Run()
	return time.Since(began), err
}

// summarise prints what `rootscan scan -o json` said about one container and
// checks it against the packages the image was built from.
func summarise(out []byte, want []ociimage.DebPackage) error {
	var doc struct {
		Node    string          `json:"node"`
		Runtime string          `json:"runtime"`
		Reports []report.Report `json:"reports"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return fmt.Errorf("rootscan -o json: not JSON: %w", err)
	}
	if len(doc.Reports) != 1 || doc.Reports[0].Result == nil {
		return fmt.Errorf("rootscan -o json: want one report with a result, got %d reports: %.400s", len(doc.Reports), out)
	}
	r := doc.Reports[0]
	t := r.Target
	say("node %s, runtime %s (%d bytes of JSON)", doc.Node, doc.Runtime, len(out))
	say("target   %s  container %.12s  state %s", t.Name(), t.ContainerID, t.State)
	say("image    %s  %s", t.Image, t.ImageDigest)
	say("access   %s, scanned in %v", t.Access, r.Duration.Round(time.Microsecond))
	if o := r.Result.OS; o != nil {
		say("os       %s (from %s)", o.PrettyName, o.Source)
	}
	found := map[string]string{}
	for _, p := range r.Result.Packages {
		say("package  %-9s %-20s %-22s %s", p.Ecosystem, p.Name, p.Version, p.PURL)
		if p.Ecosystem == report.EcosystemDebian {
			found[p.Name] = p.Version
		}
	}
	for _, p := range want {
		if found[p.Name] != p.Version {
			return fmt.Errorf("rootscan -o json: package %s: got version %q, the image was built from %s", p.Name, found[p.Name], p.Version)
		}
	}
	if len(found) != len(want) {
		return fmt.Errorf("rootscan -o json: %d Debian packages, the image was built from %d", len(found), len(want))
	}
	say("= exactly the %d .debs the image was built from (and the Go program's build info), read without exec", len(want))
	for _, v := range r.Result.Vulnerabilities {
		say("vuln     %-24s %-8s %s %s (fixed: %s)", v.ID, v.Severity, v.Package, v.Version, dash(v.FixedVersion))
	}
	for _, c := range r.Result.Compliance {
		if c.Status != report.ControlPassed {
			say("control  %-8s %s %s: %s", c.Status, c.ID, c.Title, c.Message)
		}
	}
	for _, f := range r.Result.Files {
		say("unowned  %s (%s, %d bytes, sha256 %.12s)", f.Path, f.Kind, f.Size, f.SHA256)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// releaseMounts returns the mounts at or under dir that /proc/self/mountinfo
// shows, and unmounts them, deepest first, so that the demo leaves none.
func releaseMounts(dir string) ([]string, error) {
	ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	var points []string
	var errs []error
	for i := len(ms) - 1; i >= 0; i-- {
		points = append(points, ms[i].Mountpoint)
		if err := unix.Unmount(ms[i].Mountpoint, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", ms[i].Mountpoint, err))
		}
	}
	return points, errors.Join(errs...)
}

// images builds the demo's images and imports them into c: distroless, hostile and, when it can be built here,
// catalog (else nil).
func images(ctx context.Context, c *testbed.Containerd) (distroless, hostile, catalog *ociimage.Image, err error) {
	header("building and importing images (.debs and binaries cached in %s)", ociimage.DefaultCacheDir())
	distroless, err = ociimage.Distroless(ctx, "")
	if err != nil {
		return nil, nil, nil, err
	}
	hostile, err = ociimage.Hostile(ctx, "")
	if err != nil {
		return nil, nil, nil, err
	}
	catalog, err = catalogImage(ctx, distroless)
	if err != nil {
		return nil, nil, nil, err
	}
	say("%-34s %s  the pods' sandbox image", c.PauseImage().Name, c.PauseImage().Manifest)
	for _, img := range []*ociimage.Image{distroless, hostile, catalog} {
		if img == nil {
			continue
		}
		ref, err := c.Import(ctx, img)
		if err != nil {
			return nil, nil, nil, err
		}
		say("%-34s %s", ref.Name, ref.Manifest)
	}
	var built []string
	for _, p := range distroless.Packages() {
		built = append(built, p.Name+" "+p.Version)
	}
	say("distroless: %d Debian packages, no shell: %s", len(built), strings.Join(built, ", "))
	say("hostile: links out of its root, a FIFO, a device, 50 MiB of junk where dpkg's status files go")
	if catalog != nil {
		say("shop-catalog: distroless plus a Go service built with go1.22.0 against old golang.org/x/net and x/text")
	}
	return distroless, hostile, catalog, nil
}

// catalogImage returns the distroless image plus a layer holding the catalog service (testdata/catalog), built with
// go1.22.0 (fetched through the module proxy like the old modules it is built against) and stripped, as release
// builds are. Without a go command, module proxy or old toolchain it says so and returns nil: the demo goes on
// without that pod.
func catalogImage(ctx context.Context, distroless *ociimage.Image) (*ociimage.Image, error) {
	b := gooracle.Build{Src: "internal/testbed/cmd/demo/testdata/catalog", Toolchain: "go1.22.0", GOOS: "linux", GOARCH: runtime.GOARCH}
	say("GOTOOLCHAIN=%s go build -ldflags='-s -w' %s (cached; the first run fetches the toolchain and builds: a minute or two)", b.Toolchain, b.Src)
	builder, err := gooracle.NewBuilder(ociimage.DefaultCacheDir())
	var bin string
	if err == nil {
		bin, err = builder.Build(ctx, b, true)
	}
	if errors.Is(err, gooracle.ErrUnavailable) {
		say("NOTE: no Go service pod in this run, its build is not possible here: %s", reason(err))
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("build the catalog service: %w", err)
	}
	prog, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	img := *distroless
	img.Name = "rootscan.test/shop-catalog:1"
	img.Config.Entrypoint = []string{"/usr/local/bin/catalog"}
	img.Layers = append(slices.Clip(distroless.Layers), ociimage.Layer{Files: []ociimage.File{{Path: "usr/local/bin/catalog", Mode: 0o755, Data: prog}}})
	return &img, nil
}

// osvSources are the record folders the demo imports: the hand-kept advisories of every ecosystem
// (vuln/testdata/osv) and the Go team's whole database, golang.org/x/vulndb at the version internal/tools pins,
// from the module cache (or the module proxy). Without the latter it says so and goes on with the former; goDB
// tells which.
func osvSources(ctx context.Context) (dirs []string, goDB bool) {
	say("no feed is reachable here: real, published advisories kept as test data (vuln/testdata/osv)")
	dir, version, err := gooracle.OSVDir(ctx, "internal/tools")
	if err != nil {
		say("NOTE: the Go vulnerability database (golang.org/x/vulndb, pinned in internal/tools/go.mod) cannot be had: %s", reason(err))
		say("NOTE: falling back to the hand-kept records alone: Go programs get few findings")
		return []string{"vuln/testdata/osv"}, false
	}
	say("and the Go team's whole vulnerability database, the module golang.org/x/vulndb %s, from the module cache", version)
	return []string{"vuln/testdata/osv", dir}, true
}

// demoReachability shows the catalog service's findings the way a user should read them: how many there are and how
// many of them are reachable, per program and module, then only those whose vulnerable function is compiled into a
// program (--reachable-only). The Go team's records carry no severity, so a --severity cut would drop them all.
func demoReachability(ctx context.Context, rs string, base []string, id string, goDB bool) error {
	scan := slices.Concat(base, []string{"--container", id})
	var out bytes.Buffer
	if _, err := runRootscan(ctx, rs, slices.Concat(scan, []string{"-o", "json"}), &out); err != nil {
		return err
	}
	var doc struct{ Reports []report.Report }
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil || len(doc.Reports) != 1 || doc.Reports[0].Result == nil {
		return fmt.Errorf("-o json: want one report with a result (%v): %.400s", err, out.Bytes())
	}
	count := map[report.Reachability]int{}
	type module struct{ name, version string }
	var mods []module
	all, reachable := map[module]int{}, map[module]int{}
	vulns := doc.Reports[0].Result.Vulnerabilities
	for _, v := range vulns {
		count[v.Reachable]++
		m := module{v.Package, v.Version}
		if v.Ecosystem != report.EcosystemGo {
			continue
		}
		if all[m]++; all[m] == 1 {
			mods = append(mods, m)
		}
		if v.Reachable == report.ReachableTrue {
			reachable[m]++
		}
	}
	fmt.Printf("$ %s %s -o json | summary\n", rs, strings.Join(scan, " "))
	say("%d findings, %d reachable: the vulnerable function is compiled into the program (rootscan reads the runtime's", len(vulns), count[report.ReachableTrue])
	say("function table, which -ldflags='-s -w' leaves in place); %d are not, %d undecided, %d are not Go's", count[report.ReachableFalse], count[report.ReachableUnknown], count[""])
	slices.SortFunc(mods, func(a, b module) int { return strings.Compare(a.name+" "+a.version, b.name+" "+b.version) })
	for _, m := range mods {
		say("  %-18s %-36s %3d findings, %2d reachable", m.name, m.version, all[m], reachable[m])
	}
	say("(stdlib 1.22.0 is the catalog's; another stdlib is that of /app, the distroless base's Go program, built with the current toolchain)")
	if !goDB {
		say("NOTE: with the hand-kept records alone the catalog has few findings; `go mod download` in internal/tools brings the rest")
	} else if count[report.ReachableTrue] == 0 || count[report.ReachableFalse] == 0 {
		return fmt.Errorf("want both reachable and unreachable findings, got %v", count)
	}
	args := append(scan, "--reachable-only")
	fmt.Printf("\n$ %s %s\n\n", rs, strings.Join(args, " "))
	_, err := runRootscan(ctx, rs, args, os.Stdout)
	return err
}

// reason shortens an ErrUnavailable from gooracle to one line: what failed and the go command's last word on it.
func reason(err error) string {
	lines := strings.Split(strings.TrimPrefix(err.Error(), gooracle.ErrUnavailable.Error()+": "), "\n")
	for _, l := range slices.Backward(lines[1:]) {
		if l = strings.TrimSpace(l); l != "" {
			return lines[0] + ": " + l
		}
	}
	return lines[0]
}
