package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rootscan/rootscan/bpf"
	"github.com/rootscan/rootscan/bpf/bpftest"
	"github.com/rootscan/rootscan/bpf/cgroupid"
	"github.com/rootscan/rootscan/node"
	"github.com/rootscan/rootscan/report"
)

// TestRuntimeUsedFiles runs node.Runtime on the real programs and a test bed container tracked from its CRI
// status: the files the container's processes execute and the libraries they map make up its used-file set (libgmp,
// which nothing run loads, does not), the binary it copies and runs is an exec drift with the hash of the copied
// file (from the upper dir, the host's /proc out of reach), and Forget unwatches it.
func TestRuntimeUsedFiles(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bed, id := shellContainer(t, ctx, "inuse")
	acc, err := node.Dial(ctx, node.AccessOptions{RuntimeEndpoint: bed.Address(), MountDir: filepath.Join(t.TempDir(), "mounts")})
	if err != nil {
		t.Fatal(err)
	}
	defer acc.Close()
	c, err := acc.Client.Container(ctx, id)
	if err != nil {
		t.Fatal(err)
	}

	bpftest.EnsureTracefs(t)
	m, err := bpf.Open(ctx, bpf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	mnt, err := cgroupid.Mount()
	if err != nil {
		t.Fatal(err)
	}
	// As a pod without the node's /proc (or without CAP_SYS_PTRACE to enter /proc/<pid>/root) sees it: the cgroup id
	// comes from the runtime spec's cgroupsPath and the drifted binary is hashed in the container's upper dir.
	r := &node.Runtime{Monitor: m, CgroupMount: mnt, MappingsSeen: m.MapErr() == nil, ProcRoot: t.TempDir(), Upper: acc.Roots}
	stop := runRuntime(ctx, r)
	defer stop()
	r.Track(c, report.Target{Kind: "container", ContainerID: id})
	if !r.Watching(id) {
		t.Fatal("container not watched after Track")
	}

	script := "set -e; mkdir -p /usr/local/bin; cp /bin/true /usr/local/bin/dropped; /usr/local/bin/dropped; exec /bin/uname"
	if stdout, stderr, code, err := bed.ExecSync(ctx, id, []string{"/bin/sh", "-c", script}); err != nil || code != 0 {
		t.Fatalf("exec: exit %d, %v\n%s%s", code, err, stdout, stderr)
	}
	var used []string
	waitUntil(t, "uname in the used-file set", 10*time.Second, func() bool {
		used, _ = r.UsedFiles(id)
		return slices.Contains(used, "/usr/bin/uname") || slices.Contains(used, "/bin/uname")
	})
	base := map[string]bool{}
	for _, p := range used {
		base[filepath.Base(p)] = true
	}
	has := func(prefix string) bool {
		for b := range base {
			if b == prefix || strings.HasPrefix(b, prefix+".") {
				return true
			}
		}
		return false
	}
	for _, want := range []string{"dash", "cp", "dropped", "libc.so.6", "libacl.so.1"} {
		if !has(want) {
			t.Errorf("%s not in the used-file set %v", want, used)
		}
	}
	if has("libgmp.so.10") {
		t.Errorf("libgmp, which nothing run loads, in the used-file set %v", used)
	}
	if _, ok := r.UsedFiles(id); !ok {
		t.Error("UsedFiles says the set is incomplete")
	}

	trueBin, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(c.Pid), "root/bin/true"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(trueBin)
	var drifts []node.ExecDrift
	waitUntil(t, "the exec drift's hash", 10*time.Second, func() bool {
		drifts = r.ExecDrifts(id)
		return len(drifts) == 1 && (drifts[0].SHA256 != "" || drifts[0].HashError != "")
	})
	if x := drifts[0]; x.Path != "/usr/local/bin/dropped" || x.SHA256 != hex.EncodeToString(sum[:]) || x.Count != 1 {
		t.Errorf("exec drift %+v, want /usr/local/bin/dropped with the hash of /bin/true", x)
	}

	r.Forget(id)
	if r.Watching(id) {
		t.Error("still watched after Forget")
	}
	if _, ok := r.UsedFiles(id); ok {
		t.Error("UsedFiles of a forgotten container says ok")
	}
	if n, err := m.Lost(); err != nil || n != 0 {
		t.Errorf("Lost() = %d, %v", n, err)
	}

	// Watched again, with the host's /proc: what the container's running processes (sleep, its init) have mapped
	// executable counts from the start, before any new event.
	stop()
	r2 := &node.Runtime{Monitor: m, CgroupMount: mnt, MappingsSeen: m.MapErr() == nil, ProcRoot: "/proc"}
	defer runRuntime(ctx, r2)()
	r2.Track(c, report.Target{Kind: "container", ContainerID: id})
	used, ok := r2.UsedFiles(id)
	if !ok || !slices.ContainsFunc(used, func(p string) bool { return p == "/bin/sleep" || p == "/usr/bin/sleep" }) ||
		!slices.ContainsFunc(used, func(p string) bool { return strings.Contains(filepath.Base(p), "libc") }) {
		t.Errorf("used files of the running container when first watched: %v, %v; want sleep and libc", used, ok)
	}
}

// runRuntime runs r until the returned stop is called (once or more); stop waits for Run to return.
func runRuntime(ctx context.Context, r *node.Runtime) (stop func()) {
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.Run(rctx); close(done) }()
	return func() { cancel(); <-done }
}
