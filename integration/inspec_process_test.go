package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rootscan/rootscan/exporter"
	"github.com/rootscan/rootscan/internal/testbed"
	"github.com/rootscan/rootscan/report"
)

const inspecProcessControls = `
control 'proc-env' do
  impact 0.5
  describe os_env('ROOTSCAN_MODE') do
    its('content') { should eq 'audit' }
  end
  describe os_env('PATH') do
    its('split') { should include '/usr/bin' }
  end
end
control 'proc-mount' do
  impact 0.5
  describe mount('/') do
    it { should be_mounted }
    its('type') { should eq 'overlay' }
  end
end
control 'proc-processes' do
  impact 0.5
  describe processes('sleep') do
    its('commands') { should eq ['/usr/bin/sleep 600'] }
  end
  describe processes('containerd') do
    it { should_not exist }
  end
end
control 'proc-kernel' do
  impact 0.5
  describe kernel_parameter('kernel.ostype') do
    its('value') { should eq 'Linux' }
  end
end
control 'proc-net' do
  impact 0.5
  describe kernel_parameter('net.ipv4.ip_forward') do
    its('value') { should be >= 0 }
  end
end
control 'proc-ipc' do
  impact 0.5
  describe kernel_parameter('kernel.shmmax') do
    its('value') { should be > 0 }
  end
end
`

// TestInSpecProcessResources: os_env, mount, processes and kernel_parameter read a running container's init
// through the host's /proc (containerd, in another pid namespace, is not among its processes); a namespaced
// parameter is read when the container shares the namespace with the scanner (the test bed's pods share the
// node's network) and skipped when it has its own (ipc); without --proc-root they are all skipped.
func TestInSpecProcessResources(t *testing.T) {
	bed, id, profile := startProcessContainer(t)
	mountDir := filepath.Join(t.TempDir(), "mounts")
	check := func(what string, extra []string, want map[string]inspecWant) {
		t.Helper()
		doc, res := scanJSON(t, bed, mountDir, append([]string{"--namespace", "inspecproc", "--no-baseline", "--profile", profile}, extra...)...)
		if res.code != 0 {
			t.Fatalf("%s: exit %d: %s", what, res.code, res.stderr)
		}
		r := reportFor(t, doc, id)
		for _, c := range r.Result.Compliance {
			w, ok := want[c.ID]
			if !ok || c.Status != w.heimdall || !strings.Contains(c.Message, w.msg) {
				t.Errorf("%s: %s: %s %q, want %+v", what, c.ID, c.Status, c.Message, w)
			}
		}
		if len(r.Result.Compliance) != len(want) {
			t.Errorf("%s: %d results, want %d", what, len(r.Result.Compliance), len(want))
		}
	}
	check("running", nil, map[string]inspecWant{
		"proc-env":       {report.ControlPassed, ""},
		"proc-mount":     {report.ControlPassed, ""},
		"proc-processes": {report.ControlPassed, ""},
		"proc-kernel":    {report.ControlPassed, ""},
		"proc-net":       {report.ControlPassed, ""}, // the test bed's pods share the node's network
		"proc-ipc":       {report.ControlSkipped, "kernel parameter kernel.shmmax is per ipc namespace and the container has its own"},
	})
	// Without the host's /proc the scan has no process to read: every process resource is skipped with the reason.
	reason := "needs the container's running process"
	check("no proc root", []string{"--proc-root", "", "--in-use=false"}, map[string]inspecWant{
		"proc-env": {report.ControlSkipped, reason}, "proc-mount": {report.ControlSkipped, reason},
		"proc-processes": {report.ControlSkipped, reason}, "proc-kernel": {report.ControlSkipped, reason},
		"proc-net": {report.ControlSkipped, reason}, "proc-ipc": {report.ControlSkipped, reason},
	})
	assertNoMountsUnder(t, mountDir)
}

// startProcessContainer runs a container whose init is sleep, with an environment of its own, and writes the
// profile of process resources.
func startProcessContainer(t *testing.T) (bed *testbed.Containerd, id, profile string) {
	t.Helper()
	bed = testbed.StartT(t, testbed.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	img := mergedUsrImage(t, ctx, "rootscan.test/inspec-proc:1", inUseDebs)
	ref, err := bed.Import(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	pod, err := bed.RunPod(ctx, testbed.PodSpec{Name: "proc", Namespace: "inspecproc"})
	if err != nil {
		t.Fatal(err)
	}
	id, err = bed.RunContainer(ctx, pod, testbed.ContainerSpec{Name: "app", Image: ref.Name, Command: []string{"/usr/bin/sleep", "600"},
		Env: map[string]string{"ROOTSCAN_MODE": "audit", "PATH": "/usr/local/bin:/usr/bin:/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	profile = t.TempDir()
	if err := os.MkdirAll(filepath.Join(profile, "controls"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(profile, "inspec.yml"), []byte("name: proc\nversion: 0.1.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(profile, "controls", "proc.rb"), []byte(inspecProcessControls), 0o644); err != nil {
		t.Fatal(err)
	}
	return bed, id, profile
}

// TestInSpecProcessResourcesDaemon: the daemon reads the container's process through its --proc-root (the host's
// /proc by default) and exports the results in the compliance metrics.
func TestInSpecProcessResourcesDaemon(t *testing.T) {
	bed, _, profile := startProcessContainer(t)
	d, mounts := startReadyDaemon(t, bed, "--db", filepath.Join(t.TempDir(), "db"),
		"--node-name", "node-1", "--resync", "1h", "--no-baseline", "--profile", profile)
	labels := []string{"namespace=inspecproc", "pod=proc", "container=app", "node=node-1"}
	count := func(status string) float64 {
		_, body := d.get("/metrics")
		v, _ := metric(body, exporter.MetricComplianceControls, append(labels, "status="+status, "severity=medium")...)
		return v
	}
	// proc-env, proc-mount, proc-processes, proc-kernel and proc-net pass; proc-ipc is skipped.
	waitUntil(t, "the process controls in the metrics", 60*time.Second, func() bool {
		return count("passed") == 5 && count("skipped") == 1
	})
	d.terminate(t)
	assertNoMountsUnder(t, mounts)
}
