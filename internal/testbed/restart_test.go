package testbed

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Restart replaces the containerd process in place, as a node's containerd
// upgrade does: a running container keeps running (same process) and is still
// known to the CRI, the clients keep working, new containers can be started,
// and Stop still leaves nothing behind.
func TestRestart(t *testing.T) {
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := StartT(t, Options{})
	dir, sock, parent := c.Dir(), c.Address(), c.CgroupParent()
	pod, err := c.RunPod(ctx, PodSpec{Name: "survivor"})
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.RunContainer(ctx, pod, ContainerSpec{Name: "pause", Image: c.PauseImage().Name})
	if err != nil {
		t.Fatal(err)
	}
	pidBefore := containerPid(ctx, t, c, id)
	oldPid := c.current().cmd.Process.Pid

	if err := c.StopProcess(ctx); err != nil {
		t.Fatalf("StopProcess: %v", err)
	}
	if alive(oldPid) {
		t.Fatalf("containerd %d still runs after StopProcess", oldPid)
	}
	if !alive(pidBefore) {
		t.Fatalf("container process %d died with containerd: shims must outlive a containerd restart", pidBefore)
	}
	shortCtx, shortCancel := context.WithTimeout(ctx, time.Second)
	_, err = c.Runtime().Version(shortCtx, &runtimeapi.VersionRequest{})
	shortCancel()
	if err == nil {
		t.Fatal("the CRI answered while containerd was stopped")
	}
	if err := c.StopProcess(ctx); err == nil {
		t.Error("StopProcess on a stopped containerd succeeded")
	}

	t0 := time.Now()
	if err := c.StartProcess(ctx); err != nil {
		t.Fatalf("StartProcess: %v", err)
	}
	t.Logf("containerd %s back in %v", c.Version(), time.Since(t0))
	if c.current().cmd.Process.Pid == oldPid {
		t.Error("StartProcess did not start a new process")
	}
	if c.Address() != sock || c.Dir() != dir {
		t.Errorf("address or dir changed across the restart")
	}
	if got := containerPid(ctx, t, c, id); got != pidBefore {
		t.Errorf("container pid after restart %d, want %d (the same process)", got, pidBefore)
	}
	if _, err := c.Client().Version(ctx); err != nil {
		t.Errorf("containerd client after restart: %v", err)
	}
	id2, err := c.RunContainer(ctx, pod, ContainerSpec{Name: "after", Image: c.PauseImage().Name})
	if err != nil {
		t.Fatalf("run a container after the restart: %v", err)
	}
	containerPid(ctx, t, c, id2)

	// Restart in one call, with the new container running too.
	if err := c.Restart(ctx); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if got := containerPid(ctx, t, c, id); got != pidBefore {
		t.Errorf("container pid after the second restart %d, want %d", got, pidBefore)
	}
	oldPid = c.current().cmd.Process.Pid
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	assertGone(t, dir, sock, parent, oldPid)
}

// containerPid is the pid of a running container's process, from the CRI's
// verbose status; it fails t if the container does not run.
func containerPid(ctx context.Context, t *testing.T, c *Containerd, id string) int {
	t.Helper()
	st, err := c.Runtime().ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		t.Fatalf("status of %s: %v", id, err)
	}
	if st.Status.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("container %s is %v, want running", id, st.Status.State)
	}
	var info struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(st.Info["info"]), &info); err != nil || info.Pid == 0 {
		t.Fatalf("container %s: no pid in verbose info (%v)", id, err)
	}
	return info.Pid
}
