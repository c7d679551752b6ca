package integration

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/rootscan/rootscan/exporter"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/internal/testbed"
	"github.com/rootscan/rootscan/internal/testbed/hostile"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
)

// The whole hostile corpus of issue 13 against the real daemon under the DaemonSet's memory limit: one container
// per case (the case written into its own upper dir, as the container itself could) next to two benign containers.
// The daemon stays up and is never OOM-killed, scans the benign containers, reports every hostile one (its
// findings, or scan.incomplete / scan.crashed with the reason), still names the setuid file and the private key
// planted beside a 130-deep tree, prints no forged line in the SIEM's CEF, and leaves nothing in its TMPDIR and
// nothing mounted.
func TestDaemonHostileCorpus(t *testing.T) {
	bed, _, img, ref := startBed(t, ociimage.Distroless)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // the whole corpus, not only the setup
	defer cancel()
	web, err := bed.RunPod(ctx, testbed.PodSpec{Name: "web", Namespace: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	benign := []string{"app-1", "app-2"}
	for _, name := range benign {
		if _, err := bed.RunContainer(ctx, web, testbed.ContainerSpec{Name: name, Image: ref.Name}); err != nil {
			t.Fatal(err)
		}
	}
	evil, err := bed.RunPod(ctx, testbed.PodSpec{Name: "evil", Namespace: "attack"})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{} // case -> container ID
	for _, c := range hostile.Cases() {
		id, err := bed.RunContainer(ctx, evil, testbed.ContainerSpec{Name: c.Name, Image: ref.Name})
		if err != nil {
			t.Fatal(err)
		}
		upper, _ := snapshotDirs(t, bed, id)
		if err := c.Write(upper); err != nil {
			t.Fatalf("write %s (%s) into the upper dir: %v", c.Name, c.What, err)
		}
		ids[c.Name] = id
	}

	limit := chartMemoryLimit(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	recv := newSIEMReceiver(t)
	cef := filepath.Join(t.TempDir(), "events.cef")
	mounts := filepath.Join(t.TempDir(), "mounts")
	// Runs after the daemon's own cleanup (a SIGKILL when the test failed early), before the temp dir's removal.
	// A daemon the kernel killed leaves its budget cgroup behind: removed here too (rmdir only takes an empty one).
	var memDir string
	t.Cleanup(func() {
		unmountUnder(t, mounts)
		if memDir != "" {
			os.Remove(memDir)
		}
	})
	d := startDaemonProc(t, "--runtime-endpoint", bed.Address(), "--state-dir", filepath.Join(t.TempDir(), "state"),
		"--mount-dir", mounts, "--node-name", "node-1", "--db", filepath.Join(t.TempDir(), "db"),
		"--memory-max", strconv.FormatInt(limit, 10),
		"--sink", recv.srv.URL+"/hook?format=json", "--sink", "file:"+cef+"?format=cef")
	pid := d.cmd.Process.Pid
	started := time.Now()
	waitUntil(t, "/healthz", 30*time.Second, func() bool { code, _ := d.get("/healthz"); return code == 200 })
	memDir = memoryCgroupDir(t, pid)
	// Ready means the first pass over every container is done: the corpus is in it. A daemon the kernel killed
	// at the chart's limit never gets there: say so at once rather than at the timeout.
	waitUntil(t, "/readyz", 5*time.Minute, func() bool {
		select {
		case <-d.done:
			return true
		default:
		}
		code, _ := d.get("/readyz")
		return code == 200
	})
	select {
	case <-d.done:
		t.Fatalf("daemon died during the corpus (%v; memory cgroup oom_kill %d, peak %s, limit %d MiB):\n%s",
			d.cmd.ProcessState, oomKills(t, memDir), cgroupPeak(memDir), limit>>20, tail(d.stderr.String(), 20))
	default:
	}

	// Every container is checked: the benign ones published, each hostile one published or reported incomplete.
	reported := func(body, name string) bool {
		if _, ok := metric(body, exporter.MetricLastScanTimestamp, "container="+name); ok {
			return true
		}
		_, ok := metric(body, exporter.MetricContainerIncomplete, "container="+name)
		return ok
	}
	waitUntil(t, "every container checked", time.Minute, func() bool {
		_, body := d.get("/metrics")
		for _, name := range benign {
			if v, ok := metric(body, exporter.MetricPackages, "namespace=shop", "container="+name, "ecosystem=Debian"); !ok || v != float64(len(img.Packages())) {
				return false
			}
		}
		for name := range ids {
			if !reported(body, name) {
				return false
			}
		}
		return true
	})
	t.Logf("corpus checked in %v", time.Since(started))

	// Each hostile container: its findings at the SIEM, or an incomplete or crashed check with the reason.
	_, body := d.get("/metrics")
	for name, id := range ids {
		if v, ok := metric(body, exporter.MetricContainerIncomplete, "container="+name); ok && v == 1 {
			if !recv.find(exporter.EventScanIncomplete, id, hasReason) && !recv.find(exporter.EventScanCrashed, id, hasReason) {
				t.Errorf("%s: incomplete on /metrics but no scan.incomplete or scan.crashed event with a reason", name)
			}
			t.Logf("%s: incomplete (%s)", name, incompleteLine(body, name))
			continue
		}
		waitUntil(t, name+"'s findings at the SIEM", 30*time.Second, func() bool {
			return recv.find(exporter.EventFindingOpened, id, nil)
		})
		t.Logf("%s: scanned, findings at the SIEM", name)
	}

	// The long paths are reported as not examined, not silently dropped: the tree-wide controls that found nothing
	// in the rest are errors naming the left-out directory, where the benign containers of the same image pass them.
	long, plain := sumMetric(body, exporter.MetricComplianceControls, "container=longpaths", "status=error"),
		sumMetric(body, exporter.MetricComplianceControls, "container=app-1", "status=error")
	if long <= plain {
		t.Errorf("longpaths: %v controls in error, app-1 %v: the left-out long paths are not reported", long, plain)
	}
	t.Logf("longpaths: %v controls in error (app-1: %v)", long, plain)

	// The deep tree does not hide what is planted beside it; the hostile name is a finding like any other.
	failed := func(id, control, path string) func() bool {
		return func() bool {
			return recv.find(exporter.EventFindingOpened, id, func(e exporter.Event) bool {
				c := e.Finding.Control
				return c != nil && c.ID == control && c.Status == "failed" && strings.Contains(c.Message, path)
			})
		}
	}
	waitUntil(t, "the planted setuid file named failed", 30*time.Second, failed(ids["deeptree"], "container-baseline-04", hostile.DeepSetuid))
	waitUntil(t, "the planted key named failed", 30*time.Second, failed(ids["deeptree"], "container-baseline-09", hostile.DeepKey))
	waitUntil(t, "the hostile name's setuid finding", 30*time.Second, func() bool {
		return recv.find(exporter.EventFindingOpened, ids["evilname"], func(e exporter.Event) bool {
			c := e.Finding.Control
			return c != nil && c.ID == "container-baseline-04" && c.Status == "failed" && strings.Contains(c.Message, "forged line")
		})
	})

	// The daemon stayed up within the chart's limit: the same process, serving, never OOM-killed.
	select {
	case <-d.done:
		t.Fatalf("daemon exited during the corpus:\n%s", tail(d.stderr.String(), 40))
	default:
	}
	if code, _ := d.get("/healthz"); code != 200 {
		t.Errorf("/healthz %d after the corpus", code)
	}
	if strings.Contains(d.stderr.String(), "panic") {
		t.Errorf("daemon panicked:\n%s", tail(d.stderr.String(), 40))
	}
	if n := oomKills(t, memDir); n != 0 {
		t.Errorf("%d OOM kills in the daemon's cgroup %s (memory limit %d)", n, memDir, limit)
	}
	t.Logf("daemon peak RSS over the corpus: %d MiB (VmHWM), cgroup peak %s; limit %d MiB",
		vmHWM(t, pid)>>10, cgroupPeak(memDir), limit>>20)

	d.stopClean(t, mounts)

	// No forged line: every CEF event is one line, with no terminal escape or Unicode line break in it, and the
	// hostile name's line starts as a CEF line, not as the forged text.
	data, err := os.ReadFile(cef)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	lines, named := 0, 0
	for sc.Scan() {
		line := sc.Text()
		lines++
		if !strings.HasPrefix(line, "CEF:") {
			t.Errorf("CEF line %d does not start an event: %.200q", lines, line)
		}
		if strings.ContainsAny(line, "\x1b\r\u2028\u2029\u0085") {
			t.Errorf("CEF line %d carries a raw escape or line separator: %.300q", lines, line)
		}
		if strings.Contains(line, "forged line") {
			named++
		}
	}
	if named == 0 {
		t.Errorf("no CEF event names the hostile file (%d lines)", lines)
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left in the daemon's TMPDIR: %s", e.Name())
	}
}

// unmountUnder detaches whatever a killed daemon left mounted under dir, so a failed run does not leave the host
// with mounts in a removed temp dir.
func unmountUnder(t *testing.T, dir string) {
	points, err := fsaccess.MountPointsUnder(dir)
	if err != nil {
		t.Log(err)
		return
	}
	for i := len(points) - 1; i >= 0; i-- {
		if err := unix.Unmount(points[i], unix.MNT_DETACH); err != nil {
			t.Logf("unmount %s: %v", points[i], err)
		}
	}
}

func hasReason(e exporter.Event) bool { return e.Incomplete != nil && e.Incomplete.Reason != "" }

// incompleteLine is the container's scan_incomplete series, for the log.
func incompleteLine(body, name string) string {
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, exporter.MetricContainerIncomplete+"{") && strings.Contains(l, `container="`+name+`"`) {
			return l
		}
	}
	return ""
}

// chartMemoryLimit is the DaemonSet's memory limit from the Helm chart's default values, in bytes.
func chartMemoryLimit(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile("../deploy/helm/rootscan/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Resources struct {
			Limits struct {
				Memory string `json:"memory"`
			} `json:"limits"`
		} `json:"resources"`
	}
	if err := yaml.Unmarshal(data, &values); err != nil {
		t.Fatal(err)
	}
	q, err := resource.ParseQuantity(values.Resources.Limits.Memory)
	if err != nil || q.Value() <= 0 {
		t.Fatalf("chart memory limit %q: %v", values.Resources.Limits.Memory, err)
	}
	return q.Value()
}

// memoryCgroupDir is the memory cgroup the daemon put itself in (v2: the unified dir; v1: the memory controller's).
func memoryCgroupDir(t *testing.T, pid int) string {
	t.Helper()
	own, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(own)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[1] == "" && f[0] == "0" {
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
				return filepath.Join("/sys/fs/cgroup", f[2])
			}
		}
		for _, ctrl := range strings.Split(f[1], ",") {
			if ctrl == "memory" {
				return filepath.Join("/sys/fs/cgroup/memory", f[2])
			}
		}
	}
	t.Fatalf("no memory cgroup in /proc/%d/cgroup:\n%s", pid, own)
	return ""
}

// oomKills reads the cgroup's oom_kill count (memory.events on v2, memory.oom_control on v1).
func oomKills(t *testing.T, dir string) int {
	t.Helper()
	for _, file := range []string{"memory.events", "memory.oom_control"} {
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "oom_kill "); ok {
				n, _ := strconv.Atoi(strings.TrimSpace(v))
				return n
			}
		}
	}
	t.Fatalf("no oom_kill count under %s", dir)
	return 0
}

// cgroupPeak is the cgroup's peak memory (memory.peak on v2, memory.max_usage_in_bytes on v1, page cache included).
func cgroupPeak(dir string) string {
	for _, file := range []string{"memory.peak", "memory.max_usage_in_bytes"} {
		if data, err := os.ReadFile(filepath.Join(dir, file)); err == nil {
			if n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64); err == nil {
				return fmt.Sprintf("%d MiB", n>>20)
			}
		}
	}
	return "unknown"
}

// vmHWM is a process's peak resident set in KiB.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
