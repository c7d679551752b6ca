package node

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

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
	// The test process stands for the container's init: the container was created and started around when it was.
	self := selfStart(t)
	running := cri.Container{ID: "c", Pid: os.Getpid(), State: cri.StateRunning, CreatedAt: self.Add(-time.Second), StartedAt: self}
	// The same pid as a container started an hour before the process that holds the pid now: a reused pid.
	reused := running
	reused.CreatedAt, reused.StartedAt = self.Add(-time.Hour), self.Add(-time.Hour+time.Second)
	// A process older than the container it is said to be the init of.
	older := running
	older.CreatedAt, older.StartedAt = self.Add(time.Hour), self.Add(time.Hour)
	unknown := running
	unknown.StartedAt = time.Time{}
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
		{"reused pid", "/proc", reused, unsupported, "the pid was reused"},
		{"pid older than the container", "/proc", older, unsupported, "the pid was reused"},
		{"start unknown", "/proc", unknown, unsupported, "does not say when the container started"},
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

// selfStart is when the test process started, from its /proc/self/stat as the fallback reads it.
func selfStart(t *testing.T) time.Time {
	t.Helper()
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Skip("no /proc/self/stat:", err)
	}
	ticks, err := statStartTicks(b)
	if err != nil {
		t.Fatal(err)
	}
	boot, err := bootTime()
	if err != nil {
		t.Fatal(err)
	}
	return boot.Add(time.Duration(ticks) * (time.Second / userHZ))
}

func TestStatStartTicks(t *testing.T) {
	// Field 22 after a command name with spaces and parentheses, as a hostile process can name itself.
	rest := "S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 20 21"
	for _, tc := range []struct {
		stat string
		want uint64
		err  bool
	}{
		{"1234 (sleep) " + rest, 424242, false},
		{"1234 (a) b (c) d) " + rest, 424242, false},
		{"1234 (x) S 1 2", 0, true},
		{"1234 no name " + rest, 0, true},
		{"1234 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 -5", 0, true},
	} {
		got, err := statStartTicks([]byte(tc.stat))
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("statStartTicks(%q) = %d, %v; want %d (error %v)", tc.stat, got, err, tc.want, tc.err)
		}
	}
}
