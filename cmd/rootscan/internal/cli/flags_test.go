package cli

import (
	"errors"
	"io"
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
