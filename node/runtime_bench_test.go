package node

import (
	"context"
	"strconv"
	"testing"

	"github.com/rootscan/rootscan/bpf"
	"github.com/rootscan/rootscan/report"
)

// BenchmarkRuntimeHandle is the daemon's own cost per kernel event, the user-space side of how many events per second
// it sustains before the ring buffer fills (BenchmarkEventDelivery in bpf/ is the kernel and reader side): a watched
// container mapping a stream of distinct libraries (its used-file set grows to its bound, then only counts) among
// executions of image binaries. Exec drift is not in the loop: it is rare by nature and hashed off the event loop.
func BenchmarkRuntimeHandle(b *testing.B) {
	r := &Runtime{MappingsSeen: true}
	r.init()
	rc := &runtimeContainer{id: "c", cgroup: 7, target: report.Target{ContainerID: "c"}, used: map[string]struct{}{},
		drift: map[driftKey]*ExecDrift{}}
	r.byID["c"], r.byCgroup[7] = rc, rc
	paths := make([]string, 2*DefaultMaxUsedFiles)
	for i := range paths {
		paths[i] = "/usr/lib/x86_64-linux-gnu/lib" + strconv.Itoa(i) + ".so.1"
	}
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		ev := bpf.Event{Kind: bpf.Map, CgroupID: 7, Path: paths[i%len(paths)], Overlay: true}
		if i%4 == 0 {
			ev = bpf.Event{Kind: bpf.Exec, CgroupID: 7, Path: "/usr/bin/true", Overlay: true}
		}
		r.handle(ctx, ev)
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
