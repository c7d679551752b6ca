package cli

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootscan/rootscan/bpf"
	"github.com/rootscan/rootscan/exporter"
	"github.com/rootscan/rootscan/inuse"
	"github.com/rootscan/rootscan/node"
	"github.com/rootscan/rootscan/report"
)

// startEBPF loads the kernel programs as --ebpf says, registers their status metrics and, when they run, wires the
// runtime signals (exec drift, files in use) into the loop.
func (r *daemonRun) startEBPF(ctx context.Context, c *daemonConfig, reg prometheus.Registerer) error {
	mode, err := node.ParseEBPFMode(c.EBPF)
	if err != nil {
		return usageError{err.Error()}
	}
	ring := int64(c.EBPFRingBuffer)
	if ring <= 0 || ring > 1<<30 {
		return usageError{fmt.Sprintf("--ebpf-ring-buffer %s: want at most 1GiB", &c.EBPFRingBuffer)}
	}
	if err := bpf.CheckRingBufferBytes(uint32(ring)); err != nil {
		return usageError{fmt.Sprintf("--ebpf-ring-buffer %s: %v", &c.EBPFRingBuffer, err)}
	}
	mon, cgroupMount, st, err := node.OpenEBPF(ctx, mode, c.CgroupRoot, bpf.Options{RingBufferBytes: uint32(ring)})
	if err != nil {
		return err
	}
	metrics := exporter.NewRuntimeMetrics(c.NodeName)
	state := exporter.EBPFState{Available: st.Available, Reason: st.Reason}
	if mon != nil {
		state.Lost, state.Malformed = mon.Lost, mon.Malformed
	}
	if err := metrics.Register(reg); err != nil {
		if mon != nil {
			mon.Close()
		}
		return err
	}
	metrics.SetEBPF(state)
	switch {
	case mode == node.EBPFOff:
		r.log.Info("ebpf: off")
		return nil
	case mon == nil:
		r.log.Warn("ebpf: unavailable (" + st.Detail + "); scanning without runtime signals")
		return nil
	}
	r.log.Info("ebpf: loaded", "status", st.Reason, "detail", st.Detail)
	r.monitor = mon
	sink := &execDriftSink{p: &exporter.ExecDriftPublisher{Events: r.dispatch, Metrics: metrics, Log: r.log}}
	r.runtime = &node.Runtime{Monitor: mon, Sink: sink, CgroupMount: cgroupMount, ProcRoot: c.ProcRoot,
		MappingsSeen: mon.MapErr() == nil, OnDrift: r.loop.Nudge, OnUse: r.loop.InUseChanged, Upper: r.access.Roots,
		Discover: r.loop, Log: r.log}
	r.loop.Runtime = r.runtime
	// Findings are marked in use from the kernel's record; without eBPF they stay unknown (a /proc maps snapshot
	// would say "not in use" of whatever was loaded and unloaded between two checks).
	r.loop.InUse, r.loop.InUseOptions = r.runtime, inuse.Options{Analyzer: analyzerOptions(r.log)}
	state.Watched, state.Events, state.NewContainers = r.runtime.Len, r.runtime.Handled, r.runtime.NewContainers
	metrics.SetEBPF(state)
	return nil
}

// execDriftSink hands the node's exec drift to the exporter, whose event type mirrors it field for field.
type execDriftSink struct{ p *exporter.ExecDriftPublisher }

func (s *execDriftSink) ExecDrift(ctx context.Context, t report.Target, x node.ExecDrift, first bool) {
	s.p.Publish(ctx, t, exporter.ExecDrift(x), first)
}

func (s *execDriftSink) Forget(t report.Target) { s.p.Forget(t) }
