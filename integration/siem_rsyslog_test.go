package integration

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rootscan/rootscan/exporter"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
)

// rsyslogConf is deploy/README.md's rsyslog configuration for the syslog+tls sink (RFC 5425), the block that starts
// with "# /etc/rsyslog.d/rootscan.conf", with its paths moved into dir and its port to port on loopback.
func rsyslogConf(t *testing.T, dir, port string) string {
	t.Helper()
	b, err := os.ReadFile("../deploy/README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(b), "```\n# /etc/rsyslog.d/rootscan.conf")
	if block, _, ok = strings.Cut(block, "```"); !ok {
		t.Fatal("deploy/README.md has no ``` block starting with # /etc/rsyslog.d/rootscan.conf")
	}
	r := strings.NewReplacer("/etc/rsyslog-tls", dir, "/var/log/rootscan/events.log", filepath.Join(dir, "rootscan.log"),
		`port="6514"`, `address="127.0.0.1" port="`+port+`"`, "global(", `global(workDirectory="`+dir+`"`+"\n       ")
	conf := r.Replace("# /etc/rsyslog.d/rootscan.conf" + block)
	for _, want := range []string{dir + "/server.key", filepath.Join(dir, "rootscan.log"), port, "workDirectory"} {
		if !strings.Contains(conf, want) {
			t.Fatalf("deploy/README.md's rsyslog configuration changed shape: no %s after the test's replacements:\n%s", want, conf)
		}
	}
	return conf
}

// TestSyslogTLSIntoRsyslog runs the daemon's syslog+tls sink against Debian's rsyslog configured as deploy/README.md
// says (the configuration is read from there): a container's findings arrive as JSON events with its namespace, pod and container, over TLS verified
// against the test's private CA, and its removal arrives as container.removed.
func TestSyslogTLSIntoRsyslog(t *testing.T) {
	needTools(t, "rsyslogd")
	if !gtlsModule() {
		langSkip(t, "rsyslog's GnuTLS driver (rsyslog-gnutls) is not installed")
	}
	dir := t.TempDir()
	_, port, _ := net.SplitHostPort(freePort(t))
	ca, leaf := privateCA(t)
	keyDER, err := x509.MarshalPKCS8PrivateKey(leaf.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"ca.pem":       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}),
		"server.pem":   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]}),
		"server.key":   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		"rsyslog.conf": []byte(rsyslogConf(t, dir, port)),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	startRsyslog(t, dir, port)

	bed, ctx, _, ref := startBed(t, ociimage.Distroless)
	sink := "syslog+tls://127.0.0.1:" + port + "?format=json&ca=" + filepath.Join(dir, "ca.pem")
	d := startDaemonProc(t, "--runtime-endpoint", bed.Address(), "--state-dir", filepath.Join(t.TempDir(), "state"),
		"--mount-dir", filepath.Join(t.TempDir(), "mounts"), "--node-name", "node-1", "--resync", "2s", "--sink", sink)
	defer func() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		<-d.done
	}()
	pod, _ := runWebApp(t, ctx, bed, ref.Name)
	ofApp := func(typ exporter.EventType) func(exporter.Event) bool {
		return func(e exporter.Event) bool {
			return e.Type == typ && e.Namespace == "shop" && e.Pod == "web" && e.Container == "app" && e.Node == "node-1"
		}
	}
	log := filepath.Join(dir, "rootscan.log")
	waitUntil(t, "a finding of shop/web/app in rsyslog's file", time.Minute, func() bool {
		return len(rsyslogEvents(t, log, ofApp(exporter.EventFindingOpened))) > 0
	})
	if err := bed.RemovePod(ctx, pod); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "container.removed of shop/web/app in rsyslog's file", time.Minute, func() bool {
		return len(rsyslogEvents(t, log, ofApp(exporter.EventContainerRemoved))) > 0
	})
	if strings.Contains(d.stderr.String(), "level=ERROR") {
		t.Errorf("the daemon logged errors:\n%s", grepErrors(d.stderr.String()))
	}
}

// gtlsModule says whether rsyslog's GnuTLS driver (Debian's rsyslog-gnutls) is installed.
func gtlsModule() bool {
	m, _ := filepath.Glob("/usr/lib/*/rsyslog/lmnsd_gtls.so")
	return len(m) > 0
}

// startRsyslog runs rsyslogd in the foreground with the config in dir, and waits until it accepts connections on
// port; it is stopped when the test ends.
func startRsyslog(t *testing.T, dir, port string) {
	t.Helper()
	conf := filepath.Join(dir, "rsyslog.conf")
	if out, err := exec.Command("rsyslogd", "-N1", "-f", conf).CombinedOutput(); err != nil {
		t.Fatalf("rsyslogd -N1 (config check): %v\n%s", err, out)
	}
	var stderr lockedBuffer
	cmd := exec.Command("rsyslogd", "-n", "-f", conf, "-i", filepath.Join(dir, "rsyslogd.pid"))
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("rsyslogd output:\n%s", stderr.String())
		}
	})
	waitUntil(t, "rsyslogd listening", 30*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// rsyslogEvents reads the events rsyslog wrote, one JSON event per line, and returns those ok accepts.
func rsyslogEvents(t *testing.T, file string, ok func(exporter.Event) bool) []exporter.Event {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	// rsyslog may be writing a line as the file is read: only whole lines are events yet.
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	var out []exporter.Event
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(sc.Text()), "\ufeff")
		var e exporter.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("rsyslog wrote a line that is not an event: %v: %.200s", err, line)
		}
		if ok(e) {
			out = append(out, e)
		}
	}
	return out
}

// grepErrors returns the daemon's ERROR log lines.
func grepErrors(log string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "level=ERROR") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
