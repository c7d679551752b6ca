package node

import (
	"context"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/rootscan/rootscan/inuse"
	"github.com/rootscan/rootscan/report"
)

// usedFiles is a FileUsage whose record the test grows.
type usedFiles struct {
	mu    sync.Mutex
	paths []string
	ok    bool
}

func (u *usedFiles) UsedFiles(string) ([]string, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.paths...), u.ok
}

// debRoot is a root with two dpkg packages, each owning one library, and a finding on each.
func debRoot(t *testing.T) (*inuse.Index, report.Report) {
	fsys := fstest.MapFS{
		"var/lib/dpkg/info/libssl3.list": {Data: []byte("/usr/lib/x86_64-linux-gnu/libssl.so.3\n")},
		"var/lib/dpkg/info/zlib1g.list":  {Data: []byte("/usr/lib/x86_64-linux-gnu/libz.so.1\n")},
	}
	res := &report.Result{}
	for _, name := range []string{"libssl3", "zlib1g"} {
		p := report.Package{Name: name, Version: "1", Ecosystem: report.EcosystemDebian, FoundBy: "dpkg", PURL: "pkg:deb/debian/" + name + "@1"}
		res.Packages = append(res.Packages, p)
		res.Vulnerabilities = append(res.Vulnerabilities, report.Vulnerability{ID: "V-" + name, Package: name, Version: "1",
			Ecosystem: p.Ecosystem, PURL: p.PURL})
	}
	x, errs := inuse.Build(context.Background(), fsys, res, inuse.Options{})
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	return x, report.Report{Target: report.Target{Kind: "container", ContainerID: "c1"}, Result: res}
}

func inUseOf(rep report.Report) map[string]report.InUse {
	out := map[string]report.InUse{}
	for _, v := range rep.Result.Vulnerabilities {
		out[v.Package] = v.InUse
	}
	return out
}

// A container's findings are marked from its image's index and the kernel's record; a file used later moves the
// verdict once, and marking again with nothing new changes nothing.
func TestDaemonMarksInUse(t *testing.T) {
	x, rep := debRoot(t)
	used := &usedFiles{paths: []string{"/usr/lib/x86_64-linux-gnu/libssl.so.3", "/usr/bin/sleep"}, ok: true}
	d := &Daemon{InUse: used}
	d.inUse.put("chain:a", "a", x)
	d.inUse.use("c1", "chain:a")

	d.markInUse(&rep)
	if got := inUseOf(rep); got["libssl3"] != report.InUseTrue || got["zlib1g"] != report.InUseFalse {
		t.Fatalf("marked %v, want libssl3 true and zlib1g false", got)
	}
	if _, moved := d.remarkInUse(rep); moved {
		t.Error("marking again with the same record moved a verdict")
	}
	used.mu.Lock()
	used.paths = append(used.paths, "/usr/lib/x86_64-linux-gnu/libz.so.1")
	used.mu.Unlock()
	again, moved := d.remarkInUse(rep)
	if !moved || inUseOf(again)["zlib1g"] != report.InUseTrue {
		t.Errorf("after libz was mapped: moved %v, %v", moved, inUseOf(again))
	}
	if inUseOf(rep)["zlib1g"] != report.InUseFalse {
		t.Error("marking again changed the report it was given (shared with the tracked state)")
	}

	// An incomplete record, or no index, says nothing either way.
	used.ok = false
	d.markInUse(&again)
	if got := inUseOf(again); got["libssl3"] != report.InUseUnknown || got["zlib1g"] != report.InUseUnknown {
		t.Errorf("incomplete record: %v, want unknown", got)
	}
	used.ok = true
	d.inUse.forget("c1")
	d.markInUse(&again)
	if got := inUseOf(again); got["libssl3"] != report.InUseUnknown {
		t.Errorf("no index: %v, want unknown", got)
	}
	(&Daemon{}).markInUse(&rep)
	if got := inUseOf(rep); got["libssl3"] != report.InUseUnknown {
		t.Errorf("without eBPF: %v, want unknown", got)
	}
}

// The kept indexes stay within their bound (the least recently used goes first), a container's own index goes with
// it, and a chain's goes once no container uses it.
func TestInUseIndexesBound(t *testing.T) {
	x, _ := debRoot(t) // two entries
	s := &inUseIndexes{max: 5}
	s.put("chain:a", "a", x)
	s.use("c1", "chain:a")
	s.put("chain:b", "b", x)
	s.use("c2", "chain:b")
	time.Sleep(time.Millisecond)
	if s.index("c1") == nil { // a is now the most recently used
		t.Fatal("chain a dropped early")
	}
	s.put("container:c3", "", x)
	s.use("c3", "container:c3")
	if s.index("c2") != nil || s.index("c1") == nil || s.index("c3") == nil || s.entries != 4 {
		t.Errorf("past the bound: c1 %v c2 %v c3 %v, %d entries; want chain b dropped, 4 entries",
			s.index("c1") != nil, s.index("c2") != nil, s.index("c3") != nil, s.entries)
	}
	s.use("c3", "chain:a") // c3's inventory is its image's again: its own index goes
	if s.has("container:c3") || s.entries != 2 {
		t.Errorf("own index kept after the container went back to its image's (%d entries)", s.entries)
	}
	s.forget("c3")
	s.prune(map[string]bool{"a": true}, 0)
	if !s.has("chain:a") {
		t.Error("prune dropped a chain a container uses")
	}
	s.prune(map[string]bool{}, 0)
	if s.has("chain:a") || s.entries != 0 {
		t.Errorf("prune kept an unused chain (%d entries)", s.entries)
	}
}

// A burst of new files in one container queues one check of it.
func TestInUseChangedDebounces(t *testing.T) {
	d := &Daemon{queue: newWorkQueue()}
	for range 50 {
		d.InUseChanged("c1")
	}
	deadline := time.Now().Add(10 * time.Second)
	for d.queue.len() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := d.queue.len(); n != 1 {
		t.Fatalf("%d checks queued, want 1", n)
	}
	d.inUse.mu.Lock()
	pending := len(d.inUse.pending)
	d.inUse.mu.Unlock()
	if pending != 0 {
		t.Error("container still pending after its check was queued")
	}
}
