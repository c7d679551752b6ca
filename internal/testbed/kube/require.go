package kube

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/rootscan/rootscan/internal/testbed"
)

// Available reports why a cluster cannot run here (nil if it can): what the
// test bed's containerd needs, the binaries, and iproute2 for the bridge.
func Available(opts Options) error {
	if err := testbed.Available(opts.Containerd); err != nil {
		return err
	}
	if _, err := resolveBinDir(opts.BinDir); err != nil {
		return err
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("iproute2's ip command is needed for the pod bridge")
	}
	return nil
}

// Require skips t when a cluster cannot run here, or with -short; with
// ROOTSCAN_INTEGRATION=require it fails t instead, as the test bed does.
func Require(t testing.TB, opts Options) {
	t.Helper()
	if testing.Short() {
		t.Skip("kube testbed: skipped in -short mode")
	}
	why := Available(opts)
	if why == nil {
		return
	}
	if os.Getenv(testbed.EnvIntegration) == "require" {
		t.Fatalf("kube testbed: %v (%s=require: integration tests must run)", why, testbed.EnvIntegration)
	}
	t.Skipf("kube testbed: %v (set %s=require to fail instead)", why, testbed.EnvIntegration)
}

// StartT is Require and Start for tests: the cluster stops when the test
// ends, and the components' logs are logged if it failed.
func StartT(t testing.TB, opts Options) *Cluster {
	t.Helper()
	Require(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("start kube testbed: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kube testbed logs:%s", c.LogTails(6144))
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stop kube testbed: %v", err)
		}
	})
	return c
}
