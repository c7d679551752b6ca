package integration

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rootscan/rootscan/exporter"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
)

// siemReceiver is a real HTTP webhook endpoint that can be taken down (503) and brought back.
type siemReceiver struct {
	mu     sync.Mutex
	down   bool
	events []exporter.Event
	srv    *httptest.Server
}

func newSIEMReceiver(t *testing.T) *siemReceiver {
	r := &siemReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		down := r.down
		r.mu.Unlock()
		if down {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		var batch []exporter.Event
		if err := json.NewDecoder(req.Body).Decode(&batch); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.events = append(r.events, batch...)
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *siemReceiver) setDown(down bool) {
	r.mu.Lock()
	r.down = down
	r.mu.Unlock()
}

// byID returns the received events by ID and how many arrived more than once.
func (r *siemReceiver) byID() (map[string]exporter.Event, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string]exporter.Event{}
	dups := 0
	for _, e := range r.events {
		if _, ok := m[e.ID]; ok {
			dups++
		}
		m[e.ID] = e
	}
	return m, dups
}

func (r *siemReceiver) find(typ exporter.EventType, containerID string, match func(exporter.Event) bool) bool {
	evs, _ := r.byID()
	for _, e := range evs {
		if e.Type == typ && e.ContainerID == containerID && (match == nil || match(e)) {
			return true
		}
	}
	return false
}

// daemonProc is a running `rootscan daemon`.
type daemonProc struct {
	cmd    *exec.Cmd
	url    string
	stderr *lockedBuffer
	done   chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freePort(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startDaemonProc(t testing.TB, args ...string) *daemonProc {
	t.Helper()
	addr := freePort(t)
	cmd := exec.Command(rootscanBin, append([]string{"daemon", "--listen", addr, "--log-level", "debug"}, args...)...)
	p := &daemonProc{cmd: cmd, url: "http://" + addr, stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("daemon stderr (tail):\n%s", tail(p.stderr.String(), 40))
		}
	})
	return p
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (p *daemonProc) get(path string) (int, string) {
	resp, err := http.Get(p.url + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric returns the value of the first series of name whose labels contain every given label=value pair.
func metric(body, name string, labels ...string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			if !strings.Contains(line, k+`="`+v+`"`) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		return v, err == nil
	}
	return 0, false
}

func waitUntil(t testing.TB, what string, timeout time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// The daemon end to end, as a DaemonSet runs it: a new container's findings reach /metrics and the SIEM within
// seconds; a SIEM outage loses no event; a kill -9 leaves no stale mount, loses no spooled event and rescans no
// cached image; a removed container's series and findings go; SIGTERM exits cleanly with nothing mounted.
func TestDaemonEndToEnd(t *testing.T) {
	bed, ctx, img, ref := startBed(t, ociimage.Distroless)
	recv := newSIEMReceiver(t)
	state := filepath.Join(t.TempDir(), "state")
	mounts := filepath.Join(t.TempDir(), "mounts")
	dbDir := filepath.Join(t.TempDir(), "db")
	args := []string{"--runtime-endpoint", bed.Address(), "--state-dir", state, "--mount-dir", mounts,
		"--node-name", "node-1", "--resync", "2s", "--sink", recv.srv.URL + "/hook?format=json", "--db", dbDir, "--db-reload", "1s"}
	d := startDaemonProc(t, args...)
	waitUntil(t, "/readyz", 30*time.Second, func() bool { code, _ := d.get("/readyz"); return code == 200 })

	_, c1 := runWebApp(t, ctx, bed, ref.Name)
	started := time.Now()
	labels := []string{"namespace=shop", "pod=web", "container=app", "node=node-1"}
	waitUntil(t, "the new container's packages on /metrics", 30*time.Second, func() bool {
		_, body := d.get("/metrics")
		v, ok := metric(body, exporter.MetricPackages, append(labels, "ecosystem=Debian")...)
		return ok && v == float64(len(img.Packages()))
	})
	t.Logf("container start to findings on /metrics: %v", time.Since(started))

	// The built-in compliance baseline ran on the container (a distroless image passes its shell control).
	_, body := d.get("/metrics")
	if v, ok := metric(body, exporter.MetricComplianceControls, append(labels, "status=passed")...); !ok || v < 1 {
		t.Errorf("%s{status=passed} = %v (found %v), want the baseline's passing controls", exporter.MetricComplianceControls, v, ok)
	}

	// A vulnerability database appears (as `rootscan db update` would swap it in): the running daemon picks it up
	// without restart and every container is matched again, with no filesystem read.
	if res := runRootscan(t, time.Minute, "db", "import", "--db", dbDir, vulnTestdata); res.code != 0 {
		t.Fatalf("db import: exit %d: %s", res.code, res.stderr)
	}
	waitUntil(t, "glibc's advisory at the SIEM after the database appeared", 30*time.Second, func() bool {
		return recv.find(exporter.EventFindingOpened, c1, func(e exporter.Event) bool {
			return e.Finding != nil && e.Finding.Vulnerability != nil && e.Finding.Vulnerability.ID == "DEBIAN-CVE-2010-4756"
		})
	})
	_, body = d.get("/metrics")
	if v, ok := metric(body, exporter.MetricVulnerabilities, append(labels, "severity=low", "fixable=false")...); !ok || v < 2 {
		t.Errorf("%s{severity=low,fixable=false} = %v (found %v), want glibc's two unfixed LOW advisories", exporter.MetricVulnerabilities, v, ok)
	}
	if v, ok := metric(body, exporter.MetricVulnDBLoaded); !ok || v != 1 {
		t.Errorf("%s = %v (found %v), want 1", exporter.MetricVulnDBLoaded, v, ok)
	}

	// The container drops an executable into its own layer: drift is a finding, opened at the SIEM.
	upper, _ := snapshotDirs(t, bed, c1)
	plant := func(name string) {
		t.Helper()
		p := filepath.Join(upper, "usr/local/bin", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\necho "+name+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	plant("miner")
	driftOpened := func(name string) func() bool {
		return func() bool {
			return recv.find(exporter.EventFindingOpened, c1, func(e exporter.Event) bool {
				return e.Finding != nil && e.Finding.Drift != nil && e.Finding.Drift.Path == "usr/local/bin/"+name && e.Finding.Drift.Executable
			})
		}
	}
	waitUntil(t, "drift of usr/local/bin/miner at the SIEM", 30*time.Second, driftOpened("miner"))
	_, body = d.get("/metrics")
	if v, ok := metric(body, exporter.MetricDriftPaths, append(labels, "change=added", "executable=true")...); !ok || v < 1 {
		t.Errorf("%s{change=added,executable=true} = %v (found %v), want >= 1", exporter.MetricDriftPaths, v, ok)
	}

	// The SIEM goes down; changes keep happening; the daemon is killed -9 mid-way and restarted.
	recv.setDown(true)
	plant("backdoor")
	time.Sleep(4 * time.Second) // two resyncs: the drift is seen and spooled while the SIEM refuses
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
	d2 := startDaemonProc(t, args...)
	waitUntil(t, "restarted daemon ready", 30*time.Second, func() bool { code, _ := d2.get("/readyz"); return code == 200 })
	recv.setDown(false)
	waitUntil(t, "drift of usr/local/bin/backdoor delivered after the outage", 30*time.Second, driftOpened("backdoor"))
	_, body = d2.get("/metrics")
	if v, ok := metric(body, exporter.MetricCacheMissesTotal); !ok || v != 0 {
		t.Errorf("restarted daemon: %s = %v (found %v), want 0: the image analysis is cached in the state dir", exporter.MetricCacheMissesTotal, v, ok)
	}
	if _, dups := recv.byID(); dups > 0 {
		t.Logf("%d events delivered twice (at-least-once; consumers de-duplicate by ID)", dups)
	}

	// Removing the container removes its series and closes its findings.
	if err := bed.StopContainer(ctx, c1, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := bed.RemoveContainer(ctx, c1); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the removed container's series gone", 30*time.Second, func() bool {
		_, body := d2.get("/metrics")
		_, ok := metric(body, exporter.MetricPackages, labels...)
		return !ok
	})
	waitUntil(t, "container.removed at the SIEM", 30*time.Second, func() bool { return recv.find(exporter.EventContainerRemoved, c1, nil) })
	for _, name := range []string{"miner", "backdoor"} {
		if !recv.find(exporter.EventFindingResolved, c1, func(e exporter.Event) bool {
			return e.Finding != nil && e.Finding.Drift != nil && e.Finding.Drift.Path == "usr/local/bin/"+name
		}) {
			t.Errorf("no finding.resolved for the drift of %s after the container was removed", name)
		}
	}

	// SIGTERM: a clean exit, nothing left mounted.
	d2.stopClean(t, mounts)
}

// stopClean sends SIGTERM and asserts what an orderly shutdown promises: exit 0 within 30s, no mount left under
// mounts, no error logged.
func (p *daemonProc) stopClean(t *testing.T, mounts string) {
	t.Helper()
	p.terminate(t)
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
	points, err := fsaccess.MountPointsUnder(mounts)
	if err != nil {
		t.Fatal(err)
	}
	if len(points) > 0 {
		t.Errorf("mounts left after SIGTERM: %v", points)
	}
	if m := regexp.MustCompile(`level=ERROR.*`).FindString(p.stderr.String()); m != "" {
		t.Errorf("daemon logged an error: %s", m)
	}
}
