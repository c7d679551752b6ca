package cli

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestParseScanFlagsDrift(t *testing.T) {
	f, err := parseScanFlags([]string{"--drift", "--container", "abc"})
	if err != nil || !f.drift {
		t.Fatalf("--drift --container: %+v, %v", f, err)
	}
	for _, args := range [][]string{{"--drift", "--dir", "/x"}, {"--drift", "--oci", "/x"}} {
		_, err := parseScanFlags(args)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--drift needs containers") {
			t.Errorf("%v: err = %v, want a usage error", args, err)
		}
	}
}

// parseScanFlags parses args as `rootscan scan` does, environment included, without running the scan.
func parseScanFlags(args []string) (*scanFlags, error) {
	f := &scanFlags{}
	fs := pflag.NewFlagSet("scan", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, usageError{err.Error()}
	}
	if err := applyEnv(fs); err != nil {
		return nil, err
	}
	return f, f.check()
}

// The /proc/<pid>/root fallback is off unless --proc-root-fallback (or the daemon's procRootFallback) asks for it;
// --proc-root alone only says where /proc is.
func TestProcRootFallbackIsOptIn(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"--proc-root", "/host/proc"}, ""},
		{[]string{"--proc-root-fallback"}, "/proc"},
		{[]string{"--proc-root-fallback", "--proc-root", "/host/proc"}, "/host/proc"},
	} {
		f, err := parseScanFlags(tc.args)
		if err != nil {
			t.Fatal(err)
		}
		if got := procRootIf(f.procRootFallback, f.procRoot); got != tc.want {
			t.Errorf("scan %q: ProcRoot %q, want %q", tc.args, got, tc.want)
		}
	}
	cfg := filepath.Join(t.TempDir(), "daemon.yaml")
	if err := os.WriteFile(cfg, []byte("procRoot: /host/proc\nprocRootFallback: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"--config", cfg}, "/host/proc"},
		{[]string{"--config", cfg, "--proc-root-fallback=false"}, ""},
	} {
		c := &daemonConfig{}
		fs := pflag.NewFlagSet("daemon", pflag.ContinueOnError)
		c.register(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if err := c.mergeFile(fs); err != nil {
			t.Fatal(err)
		}
		if got := procRootIf(c.ProcRootFallback, c.ProcRoot); got != tc.want {
			t.Errorf("daemon %q: ProcRoot %q, want %q", tc.args, got, tc.want)
		}
	}
}
