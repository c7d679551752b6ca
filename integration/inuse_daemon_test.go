package integration

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rootscan/rootscan/bpf/bpftest"
	"github.com/rootscan/rootscan/exporter"
	"github.com/rootscan/rootscan/internal/testbed"
)

// TestDaemonInUse runs the daemon with --ebpf=on against a Debian container whose processes (dash, coreutils' sleep)
// map libc6's libc, while apt is installed and has not run: the glibc findings are in use (a finding.in_use event
// each, the in_use="true" series) and apt's are not (in_use="false"). Then a process of the container executes
// /usr/bin/apt: within seconds, long before the next resync and with no containerd event, apt's findings turn in
// use, with their finding.in_use events.
func TestDaemonInUse(t *testing.T) {
	bed := testbed.StartT(t, testbed.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ref, err := bed.Import(ctx, mergedUsrImage(t, ctx, "rootscan.test/inuse-daemon:1", inUseDebs))
	if err != nil {
		t.Fatal(err)
	}
	db := vulnImportDB(t)

	bpftest.EnsureTracefs(t)
	recv := newSIEMReceiver(t)
	// A resync far beyond the test's waits: what moves the verdicts is the kernel's record, not a periodic check.
	args := []string{"--runtime-endpoint", bed.Address(), "--state-dir", filepath.Join(t.TempDir(), "state"),
		"--mount-dir", filepath.Join(t.TempDir(), "mounts"), "--node-name", "node-1", "--resync", "10m",
		"--sink", recv.srv.URL + "/hook?format=json", "--db", db, "--ebpf", "on"}
	d := startDaemonProc(t, args...)
	waitUntil(t, "/readyz", 30*time.Second, func() bool { code, _ := d.get("/readyz"); return code == 200 })

	pod, err := bed.RunPod(ctx, testbed.PodSpec{Name: "inuse", Namespace: "inuse"})
	if err != nil {
		t.Fatal(err)
	}
	// The container's shell waits for /go, then runs apt: from inside, with no CRI exec, so no containerd event
	// tells the daemon to look.
	script := "while [ ! -e /go ]; do /usr/bin/sleep 0.1; done; /usr/bin/apt --version; exec /usr/bin/sleep 600"
	id, err := bed.RunContainer(ctx, pod, testbed.ContainerSpec{Name: "app", Image: ref.Name, Command: []string{"/usr/bin/dash", "-c", script}})
	if err != nil {
		t.Fatal(err)
	}

	// findings gathers the container's vulnerability findings ("advisory package") from its finding.opened events,
	// and how many finding.in_use events each got. A finding opened before the container ran says unknown; none
	// says false at the SIEM, where only turning in use is an event: false is read from the metric's label.
	findings := func() (map[string]bool, map[string]int) {
		evs, _ := recv.byID()
		opened, inUse := map[string]bool{}, map[string]int{}
		for _, e := range evs {
			if e.ContainerID != id || e.Finding == nil || e.Finding.Vulnerability == nil {
				continue
			}
			k := e.Finding.Vulnerability.ID + " " + e.Finding.Vulnerability.Package
			switch e.Type {
			case exporter.EventFindingOpened:
				opened[k] = true
			case exporter.EventFindingInUse:
				inUse[k]++
			}
		}
		return opened, inUse
	}
	// all says whether pkg has findings and whether every one of them got (in) or none got (!in) finding.in_use.
	all := func(opened map[string]bool, inUse map[string]int, pkg string, in bool) bool {
		n := 0
		for k := range opened {
			if strings.HasSuffix(k, " "+pkg) {
				n++
				if (inUse[k] > 0) != in {
					return false
				}
			}
		}
		return n > 0
	}
	var opened map[string]bool
	var inUse map[string]int
	defer func() {
		if t.Failed() {
			t.Logf("findings at the SIEM: %v; finding.in_use events: %v", opened, inUse)
		}
	}()
	defer func() { stopDaemon(t, d) }()
	waitUntil(t, "finding.in_use for glibc's findings and none for apt's", 30*time.Second, func() bool {
		opened, inUse = findings()
		return all(opened, inUse, "libc6", true) && all(opened, inUse, "apt", false)
	})
	// Every package of the image has owned files, so each finding is in use or not: the series count the findings
	// with a finding.in_use event as in_use="true" and the rest (apt's among them) as in_use="false".
	labels := []string{"namespace=inuse", "pod=inuse", "container=app", "node=node-1"}
	var series [2]float64
	seriesMatch := func() bool {
		_, body := d.get("/metrics")
		series[0] = sumMetric(body, exporter.MetricVulnerabilities, append(labels, "in_use=true")...)
		series[1] = sumMetric(body, exporter.MetricVulnerabilities, append(labels, "in_use=false")...)
		return series[0] == float64(len(inUse)) && series[1] == float64(len(opened)-len(inUse))
	}
	waitUntil(t, "the in_use series to count the findings by verdict", 10*time.Second, seriesMatch)
	t.Logf("before apt ran: %d findings, %d in use (%v); series in_use=true %v, false %v", len(opened), len(inUse), inUse, series[0], series[1])

	// The checks the container's start queued (the daemon looks again a second after an event) are done: only
	// the kernel's record can make the daemon look now.
	time.Sleep(3 * time.Second)
	// apt runs (and fails for want of its library package, which the image lacks): the kernel saw its executable.
	if err := os.WriteFile(filepath.Join("/proc", strconv.Itoa(containerPID(t, ctx, bed, id)), "root/go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	took := waitUntil(t, "finding.in_use for apt's findings", 15*time.Second, func() bool {
		opened, inUse = findings()
		return all(opened, inUse, "apt", true)
	})
	t.Logf("apt's start (at most 0.1s after /go appeared) to its finding.in_use events at the SIEM sink: %v", took)
	if took > 3*time.Second {
		t.Errorf("apt's findings turned in use %v after it ran, want within 3s", took)
	}
	waitUntil(t, "the in_use series to follow", 10*time.Second, seriesMatch)
	for k, n := range inUse {
		if n != 1 {
			t.Errorf("finding.in_use for %s sent %d times, want once", k, n)
		}
	}

	// SIGHUP re-matches every container from its kept inventory (the findings are made anew): the verdicts stay.
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the reload", 10*time.Second, func() bool { return strings.Contains(d.stderr.String(), "SIGHUP: reloading") })
	for range 20 {
		if !seriesMatch() {
			t.Fatalf("after SIGHUP the in_use series read true %v, false %v; want %d and %d", series[0], series[1], len(inUse), len(opened)-len(inUse))
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A restarted daemon finds the image in its disk cache, so nothing is mounted to analyze it; it mounts the image
	// once more to index its owned files (the index is kept in memory only) and marks the findings from what the
	// running processes map now: glibc's in use; apt's not, as apt ran before this daemon watched the container.
	stopDaemon(t, d)
	d = startDaemonProc(t, args...)
	libc := 0
	for k := range opened {
		if strings.HasSuffix(k, " libc6") {
			libc++
		}
	}
	waitUntil(t, "the restarted daemon's in_use series", 30*time.Second, func() bool {
		_, body := d.get("/metrics")
		series[0] = sumMetric(body, exporter.MetricVulnerabilities, append(labels, "in_use=true")...)
		series[1] = sumMetric(body, exporter.MetricVulnerabilities, append(labels, "in_use=false")...)
		return series[0] == float64(libc) && series[1] == float64(len(opened)-libc)
	})
	_, body := d.get("/metrics")
	if hits, _ := metric(body, exporter.MetricCacheHitsTotal); hits < 1 {
		t.Errorf("%s = %v after the restart, want the image from the cache", exporter.MetricCacheHitsTotal, hits)
	}
	if misses, _ := metric(body, exporter.MetricCacheMissesTotal); misses != 0 {
		t.Errorf("%s = %v after the restart, want 0", exporter.MetricCacheMissesTotal, misses)
	}
}

// stopDaemon ends the daemon as its pod would be ended (SIGTERM), so it unmounts what it holds.
func stopDaemon(t *testing.T, d *daemonProc) {
	select {
	case <-d.done:
		return
	default:
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Error(err)
		return
	}
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		t.Error("daemon did not stop on SIGTERM")
	}
}

// sumMetric adds the values of every series of name whose labels contain each label=value pair.
func sumMetric(body, name string, labels ...string) float64 {
	sum := 0.0
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			ok = ok && strings.Contains(line, k+`="`+v+`"`)
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); ok && err == nil {
			sum += v
		}
	}
	return sum
}
