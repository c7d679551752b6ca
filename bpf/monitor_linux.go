package bpf

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"

	execbpf "github.com/rootscan/rootscan/bpf/exec"
	mmapbpf "github.com/rootscan/rootscan/bpf/mmap"
)

var errMappingsOff = errors.New("ebpf: executable mappings not watched (NoMappings)")

// Monitor is a loaded and attached set of programs.
type Monitor struct {
	exec      execbpf.ExecObjects
	mmap      *mmapbpf.MmapObjects
	mmapErr   error
	links     []link.Link
	reader    *ringbuf.Reader
	events    chan Event
	malformed atomic.Uint64
	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Open loads and attaches the exec program (required) and the executable-mapping program (a syscall tracepoint
// that needs tracefs; when it cannot attach, the Monitor runs without it and MapErr says why). It fails with an
// *UnavailableError when the kernel or the process's privileges do not allow eBPF. The Monitor closes itself when
// ctx ends.
func Open(ctx context.Context, opts Options) (*Monitor, error) {
	if n := opts.RingBufferBytes; n != 0 {
		if err := CheckRingBufferBytes(n); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return nil, &UnavailableError{Reason: "no kernel BTF", Err: err}
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, unavailable("raising RLIMIT_MEMLOCK", err)
	}
	m := &Monitor{events: make(chan Event, orDefault(opts.Buffer, 1024)), done: make(chan struct{})}
	if err := m.loadExec(opts); err != nil {
		return nil, err
	}
	if opts.NoMappings {
		m.mmapErr = errMappingsOff
	} else if err := m.loadMmap(); err != nil {
		m.mmapErr = err
	}
	reader, err := ringbuf.NewReader(m.exec.Events)
	if err != nil {
		closeLinks(m.links)
		m.closeObjects()
		return nil, unavailable("opening the ring buffer", err)
	}
	m.reader = reader
	m.wg.Add(1)
	go m.read()
	go func() {
		select {
		case <-ctx.Done():
			_ = m.Close()
		case <-m.done:
		}
	}()
	return m, nil
}

func orDefault[T ~int | ~uint32](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

func (m *Monitor) loadExec(opts Options) error {
	spec, err := execbpf.LoadExec()
	if err != nil {
		return fmt.Errorf("ebpf: reading the exec program: %w", err)
	}
	spec.Maps["events"].MaxEntries = orDefault(opts.RingBufferBytes, DefaultRingBufferBytes)
	if err := spec.LoadAndAssign(&m.exec, nil); err != nil {
		return unavailable("loading the exec program", err)
	}
	l, err := link.AttachTracing(link.TracingOptions{Program: m.exec.RootscanExec, AttachType: ebpf.AttachTraceRawTp})
	if err != nil {
		_ = m.exec.Close()
		return unavailable("attaching to tracepoint sched_process_exec", err)
	}
	m.links = append(m.links, l)
	return nil
}

// loadMmap loads the mmap program on the exec program's maps (one watched set, one ring buffer, one drop counter).
func (m *Monitor) loadMmap() error {
	spec, err := mmapbpf.LoadMmap()
	if err != nil {
		return fmt.Errorf("ebpf: reading the mmap program: %w", err)
	}
	// The replacement must match the spec it replaces: the ring buffer's size is the exec program's.
	spec.Maps["events"].MaxEntries = m.exec.Events.MaxEntries()
	var objs mmapbpf.MmapObjects
	err = spec.LoadAndAssign(&objs, &ebpf.CollectionOptions{MapReplacements: map[string]*ebpf.Map{
		"watched": m.exec.Watched, "events": m.exec.Events, "lost": m.exec.Lost,
	}})
	if err != nil {
		return unavailable("loading the mmap program", err)
	}
	l, err := link.Tracepoint("syscalls", "sys_enter_mmap", objs.RootscanMmap, nil)
	if err != nil {
		_ = objs.Close()
		doing := "attaching to tracepoint syscalls/sys_enter_mmap"
		if errors.Is(err, os.ErrNotExist) {
			doing += ": tracefs not mounted at /sys/kernel/tracing"
		}
		return unavailable(doing, err)
	}
	m.links = append(m.links, l)
	m.mmap = &objs
	return nil
}

func unavailable(doing string, err error) error {
	switch {
	case errors.Is(err, os.ErrPermission):
		doing += ": permission denied, needs CAP_BPF and CAP_PERFMON (and, for tracefs, uid 0 or CAP_DAC_READ_SEARCH)"
	case errors.Is(err, ebpf.ErrNotSupported):
		doing += ": not supported by this kernel"
	}
	return &UnavailableError{Reason: doing, Err: err}
}

func (m *Monitor) read() {
	defer m.wg.Done()
	defer close(m.events)
	var rec ringbuf.Record
	for {
		if err := m.reader.ReadInto(&rec); err != nil {
			if errors.Is(err, ringbuf.ErrClosed) {
				return
			}
			m.malformed.Add(1)
			continue
		}
		ev, err := Decode(rec.RawSample)
		if err != nil {
			m.malformed.Add(1)
			continue
		}
		select {
		case m.events <- ev:
		case <-m.done:
			return
		}
	}
}

// Events delivers decoded events until the Monitor closes, then is closed.
func (m *Monitor) Events() <-chan Event { return m.events }

// MapErr is nil when executable mappings are reported, else why not (tracefs not mounted, NoMappings, ...).
func (m *Monitor) MapErr() error { return m.mmapErr }

// Watch makes the kernel report processes whose cgroup v2 id is cgroupID.
func (m *Monitor) Watch(cgroupID uint64) error {
	if err := m.exec.Watched.Put(cgroupID, uint8(1)); err != nil {
		return fmt.Errorf("ebpf: watching cgroup %d: %w", cgroupID, err)
	}
	return nil
}

// Unwatch stops reporting cgroupID, and marks it seen so that its later executions raise no NewCgroup event
// either: the caller knows it already. Its entries in the kernel's de-duplication maps age out (LRU); cgroup ids
// are not reused, so they cannot hide a later container's mappings.
func (m *Monitor) Unwatch(cgroupID uint64) error {
	if err := m.exec.SeenCgroups.Put(cgroupID, uint8(1)); err != nil {
		return fmt.Errorf("ebpf: marking cgroup %d seen: %w", cgroupID, err)
	}
	if err := m.exec.Watched.Delete(cgroupID); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("ebpf: unwatching cgroup %d: %w", cgroupID, err)
	}
	return nil
}

// Lost is the number of events the kernel dropped because the ring buffer was full, since Open.
func (m *Monitor) Lost() (uint64, error) {
	var perCPU []uint64
	if err := m.exec.Lost.Lookup(uint32(0), &perCPU); err != nil {
		return 0, fmt.Errorf("ebpf: reading the drop counter: %w", err)
	}
	var n uint64
	for _, v := range perCPU {
		n += v
	}
	return n, nil
}

// Malformed is the number of ring buffer records that did not decode (a bug, not an attack: only our programs
// write the ring buffer).
func (m *Monitor) Malformed() uint64 { return m.malformed.Load() }

// Close detaches and unloads everything and closes Events. It is safe to call more than once.
func (m *Monitor) Close() error {
	m.closeOnce.Do(func() {
		close(m.done)
		closeLinks(m.links)
		m.closeErr = m.reader.Close()
		m.wg.Wait()
		m.closeObjects()
	})
	return m.closeErr
}

func (m *Monitor) closeObjects() {
	if m.mmap != nil {
		_ = m.mmap.Close()
	}
	_ = m.exec.Close()
}

func closeLinks(links []link.Link) {
	for _, l := range links {
		_ = l.Close()
	}
}
