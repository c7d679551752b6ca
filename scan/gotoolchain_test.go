package scan

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strings"
	"testing"
)

// TestGoToolchainProgram: the Go distribution's own gofmt (a real binary of the toolchain running the test) is
// reported as "stdlib" and as "toolchain" at its Go version, so the toolchain's advisories match it; an ordinary
// program is "stdlib" only.
func TestGoToolchainProgram(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go tool not found: %v", err)
	}
	out, err := exec.Command(goBin, "env", "GOROOT", "GOVERSION").Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out))
	gofmt, err := os.ReadFile(filepath.Join(f[0], "bin", "gofmt"))
	if err != nil {
		t.Skipf("no gofmt in GOROOT: %v", err)
	}
	v := strings.TrimPrefix(f[1], "go")
	root := t.TempDir()
	gobinWrite(t, root, "usr/local/go/bin/gofmt", gofmt, 0o755)
	gobinWrite(t, root, "usr/bin/app", goBinFixtures(t)["plain"], 0o755)
	res := Run(context.Background(), gobinOpen(t, root), []Analyzer{goOnlyBinary()})
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
	var got []string
	for _, p := range res.Packages {
		if p.Name == goStdlib || p.Name == goToolchain {
			got = append(got, p.Name+" "+p.Version+" "+strings.Join(p.Locations, ","))
		}
	}
	want := []string{"stdlib " + v + " usr/bin/app,usr/local/go/bin/gofmt", "toolchain " + v + " usr/local/go/bin/gofmt"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestGoToolchainProgramDecision(t *testing.T) {
	for _, c := range []struct {
		bi   debug.BuildInfo
		want bool
	}{
		{debug.BuildInfo{Path: "cmd/go"}, true},
		{debug.BuildInfo{Path: "cmd/compile", Main: debug.Module{Path: "cmd"}}, true},
		{debug.BuildInfo{Path: "github.com/junegunn/fzf"}, false},
		// A module's own "cmd/" directory is not the toolchain: its package path carries the module path.
		{debug.BuildInfo{Path: "example.com/app/cmd/server", Main: debug.Module{Path: "example.com/app"}}, false},
		{debug.BuildInfo{Path: "cmd/tool", Main: debug.Module{Path: "example.com/evil"}}, false},
	} {
		if got := goToolchainProgram(&c.bi); got != c.want {
			t.Errorf("goToolchainProgram(%s, main %q) = %v, want %v", c.bi.Path, c.bi.Main.Path, got, c.want)
		}
	}
}
