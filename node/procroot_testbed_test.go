package node

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rootscan/rootscan/fsaccess"
)

// The pid check holds for a real container: the init containerd started for it began between the container's
// creation and its recorded start, so the fallback opens its root; the same pid with the start of a container that
// ran an hour earlier (what a reused pid looks like) is refused.
func TestProcRootPidStartTestbed(t *testing.T) {
	r := startMountRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := r.client.Container(ctx, r.running.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.Pid <= 0 || c.StartedAt.IsZero() {
		t.Fatalf("container pid %d, started %v: the CRI gave no pid or start time", c.Pid, c.StartedAt)
	}
	root, err := openProcRoot("/proc", c, fsaccess.Options{NoXDev: true})
	if err != nil {
		t.Fatalf("fallback refused the container's own init: %v", err)
	}
	if _, err := root.Stat("etc/passwd"); err != nil {
		t.Errorf("read through the fallback: %v", err)
	}
	root.Close()
	c.CreatedAt, c.StartedAt = c.CreatedAt.Add(-time.Hour), c.StartedAt.Add(-time.Hour)
	if root, err := openProcRoot("/proc", c, fsaccess.Options{NoXDev: true}); err == nil || !strings.Contains(err.Error(), "reused") {
		if root != nil {
			root.Close()
		}
		t.Errorf("fallback for a pid that started an hour after the container: %v; want it refused", err)
	}
}
