package inspec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rootscan/rootscan/compliance"
	"github.com/rootscan/rootscan/report"
)

const processControls = `
control 'env' do
  describe os_env('PATH') do
    its('content') { should eq '/usr/local/bin:/usr/bin' }
    its('split') { should include '/usr/local/bin' }
  end
  describe os_env('ROOTSCAN_MISSING') do
    its('content') { should be_nil }
  end
end
control 'root-mount' do
  describe mount('/') do
    it { should be_mounted }
    its('options') { should_not be_empty }
  end
  describe mount('/no/such/mount') do
    it { should_not be_mounted }
  end
end
control 'procs' do
  describe processes('sleep') do
    its('commands') { should include 'sleep 31.25' }
    its('users') { should include 'root' }
    its('states') { should all match /^[RSDTtZI][<NLsl+]*$/ }
    its('cpus') { should all match /^\d+\.\d$/ }
    its('mem') { should all match /^\d+\.\d$/ }
    its('vsz') { should all be > 0 }
    its('rss') { should all be > 0 }
    its('tty') { should all match %r{^(\?|pts/\d+|tty\S*|console)$} }
    its('start') { should all match /^\d{2}:\d{2}:\d{2}$/ }
    its('time') { should all match /^\d{2}:\d{2}:\d{2}$/ }
  end
  describe processes('sleep 31.25').where { vsz > 0 && tty == '?' && stat =~ /^SN?s$/ } do
    its('commands') { should eq ['sleep 31.25'] }
  end
  describe processes('no-such-process-rootscan') do
    it { should_not exist }
  end
end
control 'kernel' do
  describe kernel_parameter('kernel.ostype') do
    its('value') { should eq 'Linux' }
  end
  describe kernel_parameter('kernel.pid_max') do
    its('value') { should be > 0 }
  end
end
control 'net' do
  describe kernel_parameter('net.ipv4.ip_forward') do
    its('value') { should be >= 0 }
  end
end
`

// TestEvaluateProcessResources runs the process resources against a real process of this machine, read through
// /proc as the daemon reads a container's init.
func TestEvaluateProcessResources(t *testing.T) {
	if _, err := os.Stat("/proc/self/mountinfo"); err != nil {
		t.Skip("no /proc:", err)
	}
	if os.Getuid() != 0 {
		t.Skip("processes' users are asserted for a process running as root")
	}
	cmd := exec.Command("sleep", "31.25")
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin", "HOME=/root"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // its own session, no terminal: STAT "Ss", TTY "?"
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	checked := 0
	p := &compliance.Process{ProcRoot: "/proc", Pid: cmd.Process.Pid, Check: func() error { checked++; return nil }}
	controls := map[string]string{"controls/p.rb": processControls}
	wants := map[string]want{}
	// procps' ps is the oracle for the columns InSpec reads from it, once the child has exec'd sleep and sleeps
	// (right after the fork it is still this test's image, running).
	waitSleeping(t, cmd.Process.Pid)
	if out, err := exec.Command("ps", "-o", "stat=,tty=,vsz=,rss=,start=,time=", "-p", strconv.Itoa(cmd.Process.Pid)).Output(); err == nil {
		f := strings.Fields(string(out))
		controls["controls/ps.rb"] = fmt.Sprintf(`control 'ps-oracle' do
  describe processes('sleep 31.25') do
    its('states') { should eq [%q] }
    its('tty') { should eq [%q] }
    its('vsz') { should eq [%s] }
    its('rss') { should eq [%s] }
    its('start') { should eq [%q] }
    its('time') { should eq [%q] }
  end
end
`, f[0], f[1], f[2], f[3], f[4], f[5])
		wants["ps-oracle"] = want{report.ControlPassed, ""}
	} else {
		t.Log("no ps to compare the columns with:", err)
	}
	got := evalProfileCtx(compliance.WithProcess(context.Background(), p), t, "name: t\n", controls, nil)
	for id, w := range map[string]want{
		"env":        {report.ControlPassed, ""},
		"root-mount": {report.ControlPassed, ""},
		"procs":      {report.ControlPassed, ""},
		"kernel":     {report.ControlPassed, ""},
		"net":        {report.ControlPassed, ""}, // the child shares this test's network namespace
	} {
		wants[id] = w
	}
	checkResults(t, got, wants)
	if checked == 0 {
		t.Error("the pid was never checked to be the container's")
	}

	// A pid that is no longer the container's is not read.
	p.Check = func() error { return errors.New("pid " + strconv.Itoa(cmd.Process.Pid) + " was reused") }
	got = evalProfileCtx(compliance.WithProcess(context.Background(), p), t, "name: t\n", map[string]string{"controls/p.rb": processControls}, nil)
	for _, r := range got {
		if r.Status != report.ControlError || !strings.Contains(r.Message, "was reused") {
			t.Errorf("%s with a reused pid: %s %q, want error", r.ID, r.Status, r.Message)
		}
	}
}

// TestEvaluateProcessResourcesWithoutProcess: a --dir or --oci target, a stopped container, keep them skipped.
func TestEvaluateProcessResourcesWithoutProcess(t *testing.T) {
	got := evalProfile(t, "name: t\n", map[string]string{"controls/p.rb": processControls}, nil)
	reason := "needs the container's running process"
	checkResults(t, got, map[string]want{
		"env": {report.ControlSkipped, reason}, "root-mount": {report.ControlSkipped, reason},
		"procs": {report.ControlSkipped, reason}, "kernel": {report.ControlSkipped, reason}, "net": {report.ControlSkipped, reason},
	})
}

// waitSleeping waits until pid runs sleep and is asleep, as its columns are compared in that state.
func waitSleeping(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		stat, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		st, err := compliance.ParseProcStat(stat)
		if err == nil && st.State == "S" && string(cmdline) == "sleep\x0031.25\x00" {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("pid %d did not start sleeping", pid)
}
