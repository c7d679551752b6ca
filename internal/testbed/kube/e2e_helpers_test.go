package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rootscan/rootscan/exporter"
)

// siemReceiver is the SIEM the test runs: an HTTP endpoint on the pod
// bridge's gateway address (the node's address on the test's own bridge), to
// which the scanner's generic HTTP sink posts JSON arrays of events.
type siemReceiver struct {
	url string
	srv *http.Server

	mu     sync.Mutex
	events []exporter.Event
}

func startReceiver(t *testing.T, host string) *siemReceiver {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("SIEM receiver: %v", err)
	}
	r := &siemReceiver{url: "http://" + l.Addr().String() + "/events?format=json"}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(l) }()
	t.Cleanup(func() { _ = r.srv.Close() })
	return r
}

func (r *siemReceiver) serve(w http.ResponseWriter, req *http.Request) {
	var batch []exporter.Event
	if err := json.NewDecoder(io.LimitReader(req.Body, 64<<20)).Decode(&batch); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.events = append(r.events, batch...)
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// matching returns the events received so far that ok accepts.
func (r *siemReceiver) matching(ok func(exporter.Event) bool) []exporter.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []exporter.Event
	for _, e := range r.events {
		if ok(e) {
			out = append(out, e)
		}
	}
	return out
}

func (r *siemReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// series returns the sample lines of metric name that carry every label
// (each `key="value"`).
func series(metrics, name string, labels ...string) []string {
	var out []string
	for _, line := range strings.Split(metrics, "\n") {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		if !slices.ContainsFunc(labels, func(l string) bool { return !strings.Contains(line, l) }) {
			out = append(out, line)
		}
	}
	return out
}

// sum adds up the values of sample lines.
func sum(lines []string) float64 {
	var s float64
	for _, l := range lines {
		if i := strings.LastIndexByte(l, ' '); i > 0 {
			v, _ := strconv.ParseFloat(l[i+1:], 64)
			s += v
		}
	}
	return s
}

// podLabels are the label matchers of one container's series.
func podLabels(ns, pod, ctr string) []string {
	return []string{`namespace="` + ns + `"`, `pod="` + pod + `"`, `container="` + ctr + `"`}
}

// helmCmd runs helm against the cluster with its caches and config under
// dir, never the user's.
func helmCmd(ctx context.Context, c *Cluster, helm, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, helm, append([]string{"--kubeconfig", c.Kubeconfig()}, args...)...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(dir, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(dir, "config"), "HELM_DATA_HOME="+filepath.Join(dir, "data"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// deployTool is the deploy tool binary $env names (make deploy-tools builds
// them); it skips, or fails under ROOTSCAN_INTEGRATION=require, without it.
func deployTool(t *testing.T, env string) string {
	t.Helper()
	p := os.Getenv(env)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("ROOTSCAN_INTEGRATION") == "require" {
			t.Fatalf("no tool at $%s=%q (make deploy-tools builds it)", env, p)
		}
		t.Skipf("no tool at $%s=%q (make deploy-tools builds it)", env, p)
	}
	return p
}

// procUsage is what /proc says about a process: resident memory and the CPU
// time it used since it started, over its age.
type procUsage struct {
	pid        int
	rssMiB     float64
	cpuSeconds float64
	age        time.Duration
}

// scannerProcess finds the daemon whose command line names stateDir.
func scannerProcess(stateDir string) (procUsage, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return procUsage{}, err
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cl, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cl), "--state-dir="+stateDir+"\x00") {
			continue
		}
		return usageOf(pid)
	}
	return procUsage{}, fmt.Errorf("no process with --state-dir=%s", stateDir)
}

func usageOf(pid int) (procUsage, error) {
	u := procUsage{pid: pid}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			u.rssMiB = kb / 1024
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// Fields after the command name (which may hold spaces): utime and stime
	// are the 14th and 15th fields, starttime the 22nd, in clock ticks (100/s
	// on Linux).
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	if len(f) < 20 {
		return u, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	start, _ := strconv.ParseFloat(f[19], 64)
	u.cpuSeconds = (utime + stime) / 100
	if up, err := os.ReadFile("/proc/uptime"); err == nil {
		if secs, err := strconv.ParseFloat(strings.Fields(string(up))[0], 64); err == nil {
			u.age = time.Duration((secs - start/100) * float64(time.Second))
		}
	}
	return u, nil
}

// summaryUsage reads the scanner container's working set and CPU rate from
// the kubelet's summary API, through the API server's node proxy.
func summaryUsage(ctx context.Context, c *Cluster, ns string) (string, error) {
	body, ok := c.get(ctx, c.p.apiURL()+"/api/v1/nodes/"+NodeName+"/proxy/stats/summary")
	if !ok {
		return "", fmt.Errorf("kubelet summary API did not answer 200: %.300s", body)
	}
	var s struct {
		Pods []struct {
			PodRef     struct{ Name, Namespace string }
			Containers []struct {
				Name string
				CPU  *struct {
					UsageNanoCores       *uint64 `json:"usageNanoCores"`
					UsageCoreNanoSeconds *uint64 `json:"usageCoreNanoSeconds"`
				} `json:"cpu"`
				Memory *struct {
					WorkingSetBytes *uint64 `json:"workingSetBytes"`
					RSSBytes        *uint64 `json:"rssBytes"`
				} `json:"memory"`
			}
		}
	}
	if err := json.Unmarshal(body, &s); err != nil {
		return "", fmt.Errorf("decode summary: %w", err)
	}
	for _, p := range s.Pods {
		if p.PodRef.Namespace != ns {
			continue
		}
		for _, ctr := range p.Containers {
			var parts []string
			if ctr.Memory != nil && ctr.Memory.WorkingSetBytes != nil {
				parts = append(parts, fmt.Sprintf("working set %.1f MiB", float64(*ctr.Memory.WorkingSetBytes)/(1<<20)))
			}
			if ctr.Memory != nil && ctr.Memory.RSSBytes != nil {
				parts = append(parts, fmt.Sprintf("RSS %.1f MiB", float64(*ctr.Memory.RSSBytes)/(1<<20)))
			}
			if ctr.CPU != nil && ctr.CPU.UsageNanoCores != nil {
				parts = append(parts, fmt.Sprintf("CPU %.1f millicores", float64(*ctr.CPU.UsageNanoCores)/1e6))
			}
			if ctr.CPU != nil && ctr.CPU.UsageCoreNanoSeconds != nil {
				parts = append(parts, fmt.Sprintf("CPU time %.1f s", float64(*ctr.CPU.UsageCoreNanoSeconds)/1e9))
			}
			return fmt.Sprintf("%s/%s %s: %s", ns, p.PodRef.Name, ctr.Name, strings.Join(parts, ", ")), nil
		}
	}
	return "", fmt.Errorf("summary has no pod in %s", ns)
}

// durations summarises latencies: median and worst.
func durations(ds []time.Duration) (median, worst time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)-1]
}
