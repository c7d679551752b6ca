package cli

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/rootscan/rootscan/report"
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

func TestWriteDrift(t *testing.T) {
	var b bytes.Buffer
	writeDrift(&b, []report.DriftEntry{
		{Path: "etc/issue", Change: report.DriftChanged, Type: "file"},
		{Path: "tmp/x", Change: report.DriftAdded, Type: "file", Executable: true, SHA256: "ab12"},
		{Path: "usr/bin/gone", Change: report.DriftDeleted, Type: "file", Executable: true},
		{Path: "usr/local/bin/big", Change: report.DriftAdded, Type: "file", Executable: true},
	})
	want := "  drift: 2 added, 1 changed, 1 deleted\n" +
		"  drift: added executable tmp/x (sha256 ab12)\n" +
		"  drift: added executable usr/local/bin/big (sha256 -)\n"
	if b.String() != want {
		t.Errorf("writeDrift:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	writeDrift(&b, nil)
	if b.Len() != 0 {
		t.Errorf("no drift printed %q", b.String())
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
