package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/rootscan/rootscan/node"
	"golang.org/x/sys/unix"
)

// run runs the command line as main does.
func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = Run(context.Background(), "v9.9.9-test", args, &o, &e)
	return o.String(), e.String(), code
}

// Help speaks pflag's --flag spelling, and every command that does something has examples.
func TestHelpUsesDoubleDashFlags(t *testing.T) {
	goFlag := regexp.MustCompile(`(?m)^\s+-[a-z][a-z-]+\s`) // Go's flag package: "  -concurrency int"
	for _, cmd := range [][]string{{"scan"}, {"sbom"}, {"daemon"}, {"db", "import"}, {"db", "update"}, {"db", "status"}, {"profile", "check"}} {
		out, _, code := run(t, append(cmd, "--help")...)
		if code != exitOK {
			t.Fatalf("%v --help: exit %d", cmd, code)
		}
		if goFlag.MatchString(out) || !strings.Contains(out, "--help") {
			t.Errorf("%v --help does not use --flag spelling:\n%s", cmd, out)
		}
		if i := strings.Index(out, "Examples:\n  "); i < 0 || !strings.Contains(out[i:], "  rootscan "+cmd[0]) {
			t.Errorf("%v --help has no examples:\n%s", cmd, out)
		}
	}
	out, _, _ := run(t, "scan", "--help")
	for _, want := range []string{"--concurrency int", "-o, --output string", "-q, --quiet", "(env ROOTSCAN_CONCURRENCY)", "(env ROOTSCAN_RUNTIME_ENDPOINT, CONTAINER_RUNTIME_ENDPOINT)", "(env ROOTSCAN_DB)"} {
		if !strings.Contains(out, want) {
			t.Errorf("scan --help lacks %q", want)
		}
	}
	out, _, _ = run(t, "sbom", "--help")
	for _, want := range []string{"-f, --format string", "-o, --output string"} {
		if !strings.Contains(out, want) {
			t.Errorf("sbom --help lacks %q", want)
		}
	}
}

func TestExitCodesOfTheCommandLine(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{nil, exitFatal, "Available Commands:"},
		{[]string{"bogus"}, exitFatal, `unknown command "bogus"`},
		{[]string{"scan", "--bogus"}, exitFatal, "unknown flag: --bogus"},
		{[]string{"scan", "extra"}, exitFatal, "unexpected arguments: extra"},
		{[]string{"scan", "-o", "xml"}, exitFatal, `-o "xml": want table`},
		{[]string{"scan", "--severity", "SEVERE"}, exitFatal, `--severity "SEVERE": want CRITICAL`},
		{[]string{"sbom", "--dir", "/a", "--oci", "/b"}, exitFatal, "exactly one of --container, --dir and --oci"},
		{[]string{"db"}, exitFatal, "db: want import, update or status"},
		{[]string{"profile"}, exitFatal, "usage: rootscan profile check"},
		{[]string{"help"}, exitOK, ""},
		{[]string{"scan", "-h"}, exitOK, ""},
	} {
		_, stderr, code := run(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("rootscan %q: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, tc.code, tc.stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out, _, code := run(t, args...)
		if code != exitOK || !strings.HasPrefix(out, "rootscan v9.9.9-test ") || !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
			t.Errorf("rootscan %v: exit %d, %q", args, code, out)
		}
	}
}

func TestCompletionScripts(t *testing.T) {
	for shell, want := range map[string]string{"bash": "__start_rootscan", "zsh": "#compdef rootscan", "fish": "complete -c rootscan", "powershell": "Register-ArgumentCompleter"} {
		out, stderr, code := run(t, "completion", shell)
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("completion %s: exit %d, stderr %q, %d bytes without %q", shell, code, stderr, len(out), want)
		}
	}
	// Flags complete too: cobra's hidden __complete command answers the shells.
	out, _, _ := run(t, "__complete", "scan", "--concu")
	if !strings.Contains(out, "--concurrency") {
		t.Errorf("completion of scan --concu: %q", out)
	}
}

// The environment sets common flags (ROOTSCAN_<FLAG>, and the older names); the command line wins over it.
func TestEnvironmentSetsFlags(t *testing.T) {
	t.Setenv("ROOTSCAN_CONCURRENCY", "7")
	t.Setenv("NODE_NAME", "legacy-node")
	t.Setenv("ROOTSCAN_DB", "/env/db")
	t.Setenv("CONTAINER_RUNTIME_ENDPOINT", "unix:///legacy.sock")
	t.Setenv("ROOTSCAN_RUNTIME_ENDPOINT", "unix:///new.sock")
	f, err := parseScanFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.concurrency != 7 || f.nodeName != "legacy-node" || f.dbDir != "/env/db" || f.endpoint != "unix:///new.sock" {
		t.Errorf("from the environment: concurrency %d, node %q, db %q, endpoint %q", f.concurrency, f.nodeName, f.dbDir, f.endpoint)
	}
	t.Setenv("ROOTSCAN_NODE_NAME", "new-node")
	f, err = parseScanFlags([]string{"--concurrency", "3", "--db=/flag/db"})
	if err != nil {
		t.Fatal(err)
	}
	if f.concurrency != 3 || f.dbDir != "/flag/db" || f.nodeName != "new-node" {
		t.Errorf("flags over the environment: concurrency %d, db %q, node %q", f.concurrency, f.dbDir, f.nodeName)
	}
	t.Setenv("ROOTSCAN_CONCURRENCY", "many")
	_, err = parseScanFlags(nil)
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "ROOTSCAN_CONCURRENCY") {
		t.Errorf("a bad value in the environment: %v, want a usage error naming the variable", err)
	}
	if _, stderr, code := run(t, "scan", "--dir", t.TempDir()); code != exitFatal || !strings.Contains(stderr, "ROOTSCAN_CONCURRENCY") {
		t.Errorf("rootscan scan with ROOTSCAN_CONCURRENCY=many: exit %d, %q", code, stderr)
	}
}

// Scripts written for Go's flag package keep working: -concurrency 3, -db=DIR, --o json.
func TestGoFlagSpellingsStillWork(t *testing.T) {
	root := (&app{stdout: io.Discard, stderr: io.Discard}).rootCommand()
	got := longFlagsCompat(root, []string{"scan", "-concurrency", "3", "-db=/x", "-o", "json", "-q", "--", "-dir"})
	want := []string{"scan", "--concurrency", "3", "--db=/x", "-o", "json", "-q", "--", "-dir"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("longFlagsCompat = %q, want %q", got, want)
	}
	f, err := parseScanFlags([]string{"--o", "json"})
	if err != nil || f.output != "json" {
		t.Errorf("--o json: %v, output %q", err, f.output)
	}
	dir := t.TempDir()
	out, stderr, code := run(t, "scan", "-dir", dir, "-o", "json", "-no-baseline", "-db", filepath.Join(dir, "nodb"))
	if code != exitOK || !strings.Contains(out, `"kind": "dir"`) {
		t.Errorf("scan -dir: exit %d, stderr %q, stdout %.200q", code, stderr, out)
	}
}

// The daemon's precedence: command line, then --config file, then environment, then the default.
func TestDaemonConfigPrecedence(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "daemon.yaml")
	if err := os.WriteFile(cfg, []byte("nodeName: file-node\nworkers: 5\nsinks: [stdout]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NODE_NAME", "env-node")
	t.Setenv("ROOTSCAN_LISTEN", ":7777")
	parse := func(args ...string) *daemonConfig {
		c := &daemonConfig{}
		fs := pflag.NewFlagSet("daemon", pflag.ContinueOnError)
		c.register(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if err := applyEnv(fs); err != nil {
			t.Fatal(err)
		}
		if err := c.mergeFile(fs); err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := parse("--config", cfg)
	if c.NodeName != "file-node" || c.Workers != 5 || c.Listen != ":7777" || len(c.Sinks) != 1 {
		t.Errorf("file over env: node %q, workers %d, listen %q, sinks %q", c.NodeName, c.Workers, c.Listen, c.Sinks)
	}
	c = parse("--config", cfg, "--node-name", "flag-node", "--workers", "1", "--sink", "file:/x", "--sink", "stdout")
	if c.NodeName != "flag-node" || c.Workers != 1 || len(c.Sinks) != 2 {
		t.Errorf("flags over file: node %q, workers %d, sinks %q", c.NodeName, c.Workers, c.Sinks)
	}
	if c = parse(); c.NodeName != "env-node" {
		t.Errorf("env without file: node %q", c.NodeName)
	}
}

// The daemon knows its own pod from the downward API's variables (POD_*, or ROOTSCAN_POD_* first) and leaves it
// out, unless --scan-self, or unless half of its name is missing.
func TestDaemonSelfFromDownwardAPI(t *testing.T) {
	parse := func(args ...string) *daemonConfig {
		c := &daemonConfig{}
		fs := pflag.NewFlagSet("daemon", pflag.ContinueOnError)
		c.register(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if err := applyEnv(fs); err != nil {
			t.Fatal(err)
		}
		if err := c.mergeFile(fs); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if got := parse().self(); got != (node.PodRef{}) {
		t.Errorf("no pod variables: self %+v", got)
	}
	t.Setenv("POD_NAMESPACE", "rootscan")
	t.Setenv("POD_NAME", "rootscan-x7k2p")
	if got, want := parse().self(), (node.PodRef{Namespace: "rootscan", Name: "rootscan-x7k2p"}); got != want {
		t.Errorf("downward API: self %+v, want %+v", got, want)
	}
	t.Setenv("ROOTSCAN_POD_NAME", "rootscan-new")
	if got := parse().self(); got.Name != "rootscan-new" || got.Namespace != "rootscan" {
		t.Errorf("ROOTSCAN_POD_NAME first: self %+v", got)
	}
	if got := parse("--scan-self").self(); got != (node.PodRef{}) {
		t.Errorf("--scan-self: self %+v", got)
	}
	t.Setenv("POD_NAMESPACE", "")
	if got := parse().self(); got != (node.PodRef{}) {
		t.Errorf("no namespace: self %+v", got)
	}
}

// No progress line unless stderr is a terminal and --quiet is off.
func TestProgressOnlyOnATerminal(t *testing.T) {
	if p := newProgressLine(&bytes.Buffer{}, false); p != nil {
		t.Error("progress on a buffer")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if p := newProgressLine(w, false); p != nil {
		t.Error("progress on a pipe")
	}
	tty := openPTY(t)
	if p := newProgressLine(tty, true); p != nil {
		t.Error("progress with --quiet")
	}
	p := newProgressLine(tty, false)
	if p == nil {
		t.Fatal("no progress on a terminal")
	}
	p.close()
	// A scan run the way main runs it, with stderr a pipe: stderr holds no carriage return.
	_, stderr, code := run(t, "scan", "--dir", t.TempDir(), "--no-baseline", "--db", t.TempDir())
	if code != exitOK || strings.ContainsAny(stderr, "\r\033") {
		t.Errorf("scan with stderr not a terminal: exit %d, stderr %q", code, stderr)
	}
}

// The line names the count and the current target, redraws in place and is cleared at the end.
func TestProgressLine(t *testing.T) {
	var b syncBuffer
	p := startProgress(&b, 0, time.Millisecond)
	p.update(0, 3, "shop/web-0/app")
	p.update(1, 3, "")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(b.String(), "\rscanning 1/3 containers: shop/web-0/app\033[K") && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // twenty ticks with nothing new: nothing redrawn
	if n := strings.Count(b.String(), "\r"); n != 1 {
		t.Errorf("an unchanged line was drawn %d times: %q", n, b.String())
	}
	p.update(1, 3, "shop/"+strings.Repeat("x", 100)+"/db")
	for !strings.Contains(b.String(), "xx/db\033[K") && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	p.close()
	out := b.String()
	last := out[strings.LastIndex(out[:len(out)-4], "\r")+1 : len(out)-len("\033[K\r\033[K")]
	if !strings.Contains(out, "\rscanning 1/3 containers: shop/web-0/app\033[K") || !strings.HasSuffix(out, "\r\033[K") ||
		len([]rune(last)) > progressWidth || !strings.HasPrefix(last, "scanning 1/3 containers: …x") {
		t.Errorf("progress output %q (last line %q)", out, last)
	}
	// A scan that ends before the delay draws nothing.
	var quick syncBuffer
	p = startProgress(&quick, time.Hour, time.Millisecond)
	p.update(1, 1, "dir /x")
	p.close()
	if quick.String() != "" {
		t.Errorf("quick scan drew %q", quick.String())
	}
}

// openPTY opens a pseudo-terminal's follower side, a real terminal for isatty.
func openPTY(t *testing.T) *os.File {
	t.Helper()
	leader, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { leader.Close() })
	if err := unix.IoctlSetPointerInt(int(leader.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(leader.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	return tty
}

// syncBuffer is a bytes.Buffer the progress goroutine and the test can share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
