package node

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rootscan/rootscan/bpf"
	"github.com/rootscan/rootscan/bpf/cgroupid"
	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/inuse"
	"github.com/rootscan/rootscan/report"
)

// KernelMonitor is the kernel side of the runtime signals; *bpf.Monitor is the real one.
type KernelMonitor interface {
	Watch(cgroupID uint64) error
	Unwatch(cgroupID uint64) error
	Events() <-chan bpf.Event
}

// ViewOpener opens one view of a container's filesystem; *ContainerRoots is the real one.
type ViewOpener interface {
	OpenView(ctx context.Context, c cri.Container, view fsaccess.View) (Root, error)
}

// ExecDriftSink publishes exec drift the moment it is seen (metrics and SIEM). First is set for the first execution
// of a file in a container, the one that deserves an alert; repeats carry the grown Count. Forget drops what the
// sink keeps of a container that is gone.
type ExecDriftSink interface {
	ExecDrift(ctx context.Context, t report.Target, x ExecDrift, first bool)
	Forget(t report.Target)
}

// Bounds on what the runtime keeps per container, whatever its processes do.
const (
	// DefaultMaxUsedFiles bounds UsedFiles' set per container; past it the set is incomplete and says so.
	DefaultMaxUsedFiles = 8192
	// maxDriftFiles bounds the distinct drifted executables remembered (and alerted on) per container: a container
	// that writes and runs a new file in a loop gets maxDriftFiles events, then only counts.
	maxDriftFiles = 256
	// evidenceQueue bounds the exec drift events waiting for their hash and user: hashing runs beside the event
	// loop so that a large binary cannot stall the ring buffer.
	evidenceQueue = 64
)

// Runtime turns the kernel's exec and mapping events into per-container signals: it keeps the kernel's watched set
// in step with the daemon's containers (Track, Forget), raises exec drift (a file from the container's upper layer,
// not from its image, executed) and records which files each container executed or mapped (UsedFiles).
type Runtime struct {
	Monitor KernelMonitor
	Sink    ExecDriftSink
	// CgroupMount is the cgroup v2 hierarchy the kernel's cgroup ids refer to (cgroupid.Mount).
	CgroupMount string
	// ProcRoot is the host's /proc (default "/proc"): container pids, parents' command lines, roots.
	ProcRoot string
	// MappingsSeen says the kernel reports executable mappings too; without them a used-file set lacks every shared
	// library and UsedFiles reports it incomplete.
	MappingsSeen bool
	// MaxUsedFiles bounds the used-file set per container (default DefaultMaxUsedFiles).
	MaxUsedFiles int
	// MaxHashBytes bounds the executable hashed for an exec drift (default 256 MiB); a larger file gets no hash.
	MaxHashBytes int64
	// OnDrift, when set, learns of each container with a new drifted executable (the daemon re-checks its upper dir).
	OnDrift func(containerID string)
	// OnUse, when set, learns of each file a watched container executes or maps for the first time (the daemon
	// marks its findings in use again). It is called once per new file, outside the runtime's lock.
	OnUse func(containerID string)
	// Upper, when set, opens a container's upper dir: where a drifted executable is hashed when /proc/<pid>/root is
	// out of reach (a pod without CAP_SYS_PTRACE).
	Upper ViewOpener
	// Discover, when set, is asked to find new containers when the kernel reports the first exec in a cgroup not
	// watched (newcgroups.go), at most once per DiscoverGap (default DefaultDiscoverGap).
	Discover    ContainerDiscoverer
	DiscoverGap time.Duration
	Log         *slog.Logger

	handled  atomic.Uint64
	mu       sync.Mutex
	byCgroup map[uint64]*runtimeContainer
	byID     map[string]*runtimeContainer
	// unwatched are the containers whose cgroup could not be watched, already logged.
	unwatched map[string]bool
	evidence  chan evidenceJob
	// pending are the cgroups whose first exec the kernel reported, not yet matched to a container.
	pending       map[uint64]*pendingCgroup
	discoverNow   chan struct{}
	newContainers atomic.Uint64
}

// runtimeContainer is what the runtime knows of one watched container.
type runtimeContainer struct {
	id      string
	cgroup  uint64
	pid     int // the container's init process, whose root is the container's root
	ctr     cri.Container
	target  report.Target
	used    map[string]struct{}
	partial bool   // the used set hit its bound or lost a path
	lost0   uint64 // the kernel's drop count when the container was first watched
	drift   map[driftKey]*ExecDrift
}

// driftKey de-duplicates executions: the same path on the same inode is one drifted file, run Count times. A file
// replaced by another at the same path (new inode) is a new finding.
type driftKey struct {
	path  string
	inode uint64
}

type evidenceJob struct {
	target report.Target
	pids   []int
	x      ExecDrift
	key    driftKey
	rc     *runtimeContainer
}

func (r *Runtime) init() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID == nil {
		r.byID = map[string]*runtimeContainer{}
		r.byCgroup = map[uint64]*runtimeContainer{}
		r.unwatched = map[string]bool{}
		r.evidence = make(chan evidenceJob, evidenceQueue)
		r.pending = map[uint64]*pendingCgroup{}
		r.discoverNow = make(chan struct{}, 1)
	}
}

// Track starts watching a running container (and updates the identity of one already watched); a container that is
// not running is forgotten. The cgroup id comes from the container's pid (/proc/<pid>/cgroup, driver-independent)
// or, failing that, from its runtime spec's cgroupsPath (cgroupfs or systemd form).
func (r *Runtime) Track(c cri.Container, t report.Target) {
	r.init()
	if c.State != cri.StateRunning {
		r.Forget(c.ID)
		return
	}
	r.mu.Lock()
	if rc, ok := r.byID[c.ID]; ok {
		rc.target = t
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	cg, err := r.cgroupOf(c)
	if err == nil {
		err = r.Monitor.Watch(cg)
	}
	if err != nil {
		// Every check of the container tries again; the log says it once per container.
		r.mu.Lock()
		first := !r.unwatched[c.ID]
		r.unwatched[c.ID] = true
		r.mu.Unlock()
		if first {
			r.logger().Warn("runtime signals: container not watched", "container", c.ID, "name", c.DisplayName(), "err", err)
		}
		return
	}
	rc := &runtimeContainer{id: c.ID, cgroup: cg, pid: c.Pid, ctr: c, target: t, used: map[string]struct{}{}, drift: map[driftKey]*ExecDrift{}}
	if lost, ok := r.Monitor.(interface{ Lost() (uint64, error) }); ok {
		rc.lost0, _ = lost.Lost()
	}
	// What the running processes mapped before the kernel watched them. Out of reach (no host /proc, no
	// CAP_SYS_PTRACE) it is left out, as the processes that exited before the first look are.
	seed, err := inuse.NamespaceMaps(context.Background(), r.procRoot(), c.Pid)
	if err != nil {
		r.logger().Debug("runtime signals: running processes' mappings not read", "container", c.ID, "err", err)
	}
	r.mu.Lock()
	r.byID[c.ID], r.byCgroup[cg] = rc, rc
	r.noticed(cg, c.ID)
	for _, p := range seed {
		r.addPath(rc, p)
	}
	r.mu.Unlock()
	r.logger().Debug("runtime signals: watching container", "container", c.ID, "cgroup", cg, "running", len(seed))
}

func (r *Runtime) cgroupOf(c cri.Container) (uint64, error) {
	var errs []error
	if c.Pid > 0 {
		id, err := cgroupid.OfPID(r.procRoot(), r.CgroupMount, c.Pid)
		if err == nil {
			return id, nil
		}
		errs = append(errs, err)
	}
	if c.CgroupsPath != "" {
		id, err := cgroupid.OfPath(r.CgroupMount, c.CgroupsPath)
		if err == nil {
			return id, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return 0, errors.New("runtime reports neither pid nor cgroups path")
	}
	return 0, errors.Join(errs...)
}

// Forget stops watching a container (gone or stopped) and drops what was collected of it.
func (r *Runtime) Forget(id string) {
	r.init()
	r.mu.Lock()
	rc, ok := r.byID[id]
	if ok {
		delete(r.byID, id)
		delete(r.byCgroup, rc.cgroup)
	}
	delete(r.unwatched, id)
	r.mu.Unlock()
	if !ok {
		return
	}
	if err := r.Monitor.Unwatch(rc.cgroup); err != nil {
		r.logger().Warn("runtime signals: unwatch", "container", id, "err", err)
	}
	if r.Sink != nil {
		r.Sink.Forget(rc.target)
	}
}

// Watching says whether the kernel reports the container's processes.
func (r *Runtime) Watching(id string) bool {
	r.init()
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.byID[id]
	return ok
}

// Handled is the number of kernel events the runtime has taken since it started.
func (r *Runtime) Handled() uint64 { return r.handled.Load() }

// Len is the number of containers watched.
func (r *Runtime) Len() int {
	r.init()
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byID)
}

// UsedFiles returns the paths (inside the container's root) the container's processes executed or mapped
// executable, sorted: what its running processes had mapped when it was first watched (their /proc/<pid>/maps)
// and every execution and mapping since. ok is false when the set cannot be trusted as complete: the container is
// not watched, the set hit its bound, the kernel dropped events or does not report mappings. Processes that ran and
// exited between the container's start and the daemon's first look at it are not in the set.
func (r *Runtime) UsedFiles(containerID string) (paths []string, ok bool) {
	r.init()
	r.mu.Lock()
	defer r.mu.Unlock()
	rc, found := r.byID[containerID]
	if !found {
		return nil, false
	}
	paths = make([]string, 0, len(rc.used))
	for p := range rc.used {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	return paths, r.MappingsSeen && !rc.partial && !r.lostSince(rc.lost0)
}

// lostSince says whether the kernel dropped events since its drop count was n: drops are not per container, so any
// of them may have been one of this container's files.
func (r *Runtime) lostSince(n uint64) bool {
	lost, ok := r.Monitor.(interface{ Lost() (uint64, error) })
	if !ok {
		return false
	}
	now, err := lost.Lost()
	return err != nil || now > n
}

// ExecDrifts returns the drifted executables seen in a container, by path.
func (r *Runtime) ExecDrifts(containerID string) []ExecDrift {
	r.init()
	r.mu.Lock()
	defer r.mu.Unlock()
	rc, ok := r.byID[containerID]
	if !ok {
		return nil
	}
	out := make([]ExecDrift, 0, len(rc.drift))
	for _, x := range rc.drift {
		out = append(out, *x)
	}
	slices.SortFunc(out, func(a, b ExecDrift) int {
		return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Inode, b.Inode))
	})
	return out
}

// Run handles the kernel's events until ctx ends or the monitor closes.
func (r *Runtime) Run(ctx context.Context) {
	r.init()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.collectEvidence(ctx)
	}()
	if r.Discover != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.discoverLoop(ctx)
		}()
	}
	defer wg.Wait()
	events := r.Monitor.Events()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			r.handle(ctx, ev)
		}
	}
}

// handle records one event. Exec drift is decided from the kernel's verdict on the overlay inode (the file has an
// upper dentry: it was written or copied up after the container started), so nothing is stat'ed per event.
func (r *Runtime) handle(ctx context.Context, ev bpf.Event) {
	r.handled.Add(1)
	if ev.Kind == bpf.NewCgroup {
		r.newCgroup(ev)
		return
	}
	r.mu.Lock()
	rc, ok := r.byCgroup[ev.CgroupID]
	if !ok {
		r.mu.Unlock()
		return // unwatched since the kernel sent it
	}
	if r.addUsed(rc, ev) && r.OnUse != nil {
		defer r.OnUse(rc.id) // after every unlock below
	}
	if ev.Kind != bpf.Exec || !ev.Upper {
		r.mu.Unlock()
		return
	}
	key := driftKey{path: ev.Path, inode: ev.Inode}
	if x, ok := rc.drift[key]; ok || len(rc.drift) >= maxDriftFiles {
		rep := newExecDrift(ev, time.Now())
		if ok {
			x.Count++
			rep = *x
		}
		target := rc.target
		r.mu.Unlock()
		if r.Sink != nil {
			r.Sink.ExecDrift(ctx, target, rep, false)
		}
		return
	}
	x := newExecDrift(ev, time.Now())
	x.ParentCmdline = readCmdline(r.procRoot(), int(ev.PPID), ev.ParentComm)
	rc.drift[key] = &x
	job := evidenceJob{target: rc.target, pids: []int{int(ev.PID), rc.pid}, x: x, key: key, rc: rc}
	r.mu.Unlock()
	if r.OnDrift != nil {
		r.OnDrift(rc.id)
	}
	select {
	case r.evidence <- job:
	default:
		job.x.HashError = "evidence queue full; published without hash"
		r.publishFirst(ctx, job)
	}
}

// addUsed adds the event's file to the container's used set (bounded; a cut path cannot be matched to a package
// and makes the set incomplete); true when the file is new to the set.
func (r *Runtime) addUsed(rc *runtimeContainer, ev bpf.Event) bool {
	if ev.PathPartial || ev.Path == "" {
		rc.partial = true
		return false
	}
	return r.addPath(rc, ev.Path)
}

func (r *Runtime) addPath(rc *runtimeContainer, path string) bool {
	if _, ok := rc.used[path]; ok {
		return false
	}
	limit := r.MaxUsedFiles
	if limit <= 0 {
		limit = DefaultMaxUsedFiles
	}
	if len(rc.used) >= limit {
		rc.partial = true
		return false
	}
	rc.used[path] = struct{}{}
	return true
}

// collectEvidence hashes drifted executables and names their users, one at a time, then publishes them.
func (r *Runtime) collectEvidence(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case job := <-r.evidence:
			gatherEvidence(ctx, r.procRoot(), r.maxHashBytes(), job.pids, &job.x)
			if job.x.SHA256 == "" && r.Upper != nil {
				if err := hashInUpper(ctx, r.Upper, job.rc.ctr, r.maxHashBytes(), &job.x); err != nil {
					job.x.HashError = truncateString(job.x.HashError+"; "+err.Error(), 512)
				} else {
					job.x.HashError = ""
				}
			}
			r.publishFirst(ctx, job)
		}
	}
}

func (r *Runtime) publishFirst(ctx context.Context, job evidenceJob) {
	r.mu.Lock()
	if cur, ok := job.rc.drift[job.key]; ok {
		count := cur.Count
		*cur = job.x
		cur.Count = count
		job.x.Count = count
	}
	r.mu.Unlock()
	r.logger().Warn("exec drift: container executed a file its image does not have", "container", job.target.ContainerID,
		"name", job.target.Name(), "path", job.x.Path, "sha256", job.x.SHA256, "ppid", job.x.PPID, "parent", job.x.ParentName, "parentCmdline", job.x.ParentCmdline)
	if r.Sink != nil {
		r.Sink.ExecDrift(ctx, job.target, job.x, true)
	}
}

func (r *Runtime) procRoot() string {
	if r.ProcRoot == "" {
		return "/proc"
	}
	return r.ProcRoot
}

func (r *Runtime) maxHashBytes() int64 {
	if r.MaxHashBytes <= 0 {
		return 256 << 20
	}
	return r.MaxHashBytes
}

func (r *Runtime) logger() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}
