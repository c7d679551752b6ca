package node

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/fsaccess"
)

func TestUpperDir(t *testing.T) {
	overlay := func(opts ...string) []mount.Mount {
		return []mount.Mount{{Type: "overlay", Source: "overlay", Options: opts}}
	}
	for _, tc := range []struct {
		name   string
		mounts []mount.Mount
		want   string // "" = ErrUnsupportedMount
	}{
		{"active overlay", overlay("index=off", "workdir=/s/2/work", "upperdir=/s/2/fs", "lowerdir=/s/1/fs"), "/s/2/fs"},
		{"userxattr", overlay("userxattr", "upperdir=/s/9/fs", "lowerdir=/s/8/fs:/s/7/fs"), "/s/9/fs"},
		{"committed view", overlay("lowerdir=/s/2/fs:/s/1/fs"), ""},
		{"relative upper", overlay("upperdir=fs", "lowerdir=/s/1/fs"), ""},
		{"empty upper", overlay("upperdir=", "lowerdir=/s/1/fs"), ""},
		{"bind", []mount.Mount{{Type: "bind", Source: "/s/1/fs", Options: []string{"rbind", "rw"}}}, ""},
		{"two mounts", append(overlay("upperdir=/a"), overlay("upperdir=/b")...), ""},
		{"none", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := upperDir(tc.mounts)
			if tc.want == "" {
				if !errors.Is(err, fsaccess.ErrUnsupportedMount) {
					t.Fatalf("upperDir = %q, %v; want ErrUnsupportedMount", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("upperDir = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestProcRootFallback: an unsupported snapshot mount is read through /proc/<pid>/root only when ProcRoot is set
// (the CLI's --proc-root-fallback) and the container runs; otherwise the error says why not.
func TestProcRootFallback(t *testing.T) {
	unsupported := fmt.Errorf("%w: 2 mounts (want exactly 1)", fsaccess.ErrUnsupportedMount)
	running := cri.Container{ID: "c", Pid: os.Getpid(), State: cri.StateRunning}
	for _, tc := range []struct {
		name     string
		procRoot string
		c        cri.Container
		err      error
		want     string // "" when the fallback opens the root
	}{
		{"off", "", running, unsupported, "fallback is off (--proc-root-fallback"},
		{"on", "/proc", running, unsupported, ""},
		{"not running", "/proc", cri.Container{ID: "c", Pid: os.Getpid(), State: cri.StateExited}, unsupported, "the container is not running"},
		{"other error", "/proc", running, errors.New("snapshot gone"), "snapshot gone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &ContainerRoots{ProcRoot: tc.procRoot}
			root, access, err := r.procRootFallback(tc.c, tc.err)
			if tc.want == "" {
				if err != nil || access != "proc-root" {
					t.Fatalf("access %q, err %v; want the proc-root fallback", access, err)
				}
				root.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || root != nil {
				t.Errorf("err %v; want one saying %q", err, tc.want)
			}
		})
	}
}
