package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/fsaccess"
)

// A container's upper dir stays open from one check to the next (a check's Close leaves it open), every check sees
// what the container wrote since, and Forget and Close let go of it.
func TestUpperDirKeptOpenBetweenChecks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	mounts := []mount.Mount{{Type: "overlay", Source: "overlay", Options: []string{"upperdir=" + dir, "lowerdir=/nonexistent"}}}
	r := &ContainerRoots{}
	c := cri.Container{ID: "c1"}
	open := func() Root {
		t.Helper()
		root, err := r.openUpper(ctx, c, mounts)
		if err != nil {
			t.Fatal(err)
		}
		return root
	}
	first := open()
	st1, err := readUpper(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil { // the check's release
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	second := open()
	if second.(keptRoot).Root != first.(keptRoot).Root {
		t.Fatal("the second check opened the upper dir again")
	}
	st2, err := readUpper(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	if st1.digest == st2.digest || len(st2.entries) != 2 {
		t.Fatalf("the kept upper dir does not show the new file: %d entries, digest changed %v", len(st2.entries), st1.digest != st2.digest)
	}

	r.Forget(c.ID)
	if _, err := second.Lstat("a"); err == nil {
		t.Fatal("the upper dir is still open after Forget")
	}
	if third := open(); third.(keptRoot).Root == second.(keptRoot).Root {
		t.Fatal("Forget kept the old descriptor")
	}
	kept := r.uppers.m[c.ID]
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := kept.Lstat("a"); err == nil {
		t.Fatal("the upper dir is still open after Close")
	}
}

// The daemon tells its Views when a container is gone, so the upper dir kept open for it is closed.
func TestDaemonForgetsViewsOfGoneContainers(t *testing.T) {
	c := cri.Container{ID: "c1", PodNamespace: "apps", PodName: "web", State: cri.StateRunning}
	rt := &goneRuntime{lists: [][]cri.Container{{c}, {}}, forgot: make(chan string, 1)}
	d := &Daemon{Containers: rt, Events: rt, Roots: rt, Views: rt, Publisher: nopPublisher{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	select {
	case id := <-rt.forgot:
		if id != c.ID {
			t.Errorf("Forget(%q), want %q", id, c.ID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon never told its Views that the container is gone")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// goneRuntime lists a container once, then not again; its views cannot be read.
type goneRuntime struct {
	mu     sync.Mutex
	lists  [][]cri.Container
	forgot chan string
}

func (r *goneRuntime) List(context.Context, cri.Filter) ([]cri.Container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.lists[0]
	if len(r.lists) > 1 {
		r.lists = r.lists[1:]
	}
	return l, nil
}

func (r *goneRuntime) Container(_ context.Context, id string) (cri.Container, error) {
	return cri.Container{}, fmt.Errorf("container %s: %w", id, cri.ErrNotFound)
}

func (r *goneRuntime) Watch(ctx context.Context, _ func(string), resync func()) error {
	resync()
	time.Sleep(500 * time.Millisecond) // the first list's check fails and is tracked; the second list lacks it
	resync()
	<-ctx.Done()
	return nil
}

func (r *goneRuntime) OpenContainer(context.Context, cri.Container) (Root, string, error) {
	return nil, "", errors.New("not readable")
}

func (r *goneRuntime) ChainID(context.Context, cri.Container) (string, error) {
	return "", errors.New("no layers")
}

func (r *goneRuntime) OpenView(context.Context, cri.Container, fsaccess.View) (Root, error) {
	return nil, errors.New("not readable")
}

func (r *goneRuntime) Forget(id string) {
	select {
	case r.forgot <- id:
	default: // told once already: the test reads the first
	}
}
