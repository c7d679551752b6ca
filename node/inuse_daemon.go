package node

import (
	"cmp"
	"context"
	"sync"
	"time"

	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/inuse"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// FileUsage says which files a container's processes executed or mapped executable since it was watched
// (container-absolute paths); ok is false when that record is missing or incomplete. *Runtime is the real one.
type FileUsage interface {
	UsedFiles(containerID string) (paths []string, ok bool)
}

const (
	// inUseDelay gathers a container's newly used files before its findings are marked again: a process starting
	// maps a few dozen libraries within milliseconds, and one re-check covers them all.
	inUseDelay = time.Second
	// maxInUseEntries bounds the owned paths of every Index the daemon keeps (about 16 bytes each: 64 MiB). A
	// typical image has 5,000 to 30,000; past the bound the least recently used Index is dropped and rebuilt, from
	// a mount of its image, when a running container needs it.
	maxInUseEntries = 1 << 22
)

// inUseIndexes keeps the in-use Index of each image chain (built while the image view was mounted, so a cache hit
// mounts nothing) and of each container whose own inventory differs from its image's, and the containers waiting
// to be marked again.
type inUseIndexes struct {
	mu      sync.Mutex
	byKey   map[string]*keptIndex // "chain:<chain ID>" or "container:<ID>"
	of      map[string]string     // container ID -> its index key
	entries int
	max     int // bound on entries; 0 means maxInUseEntries
	pending map[string]bool
}

type keptIndex struct {
	x     *inuse.Index
	chain string // "" for a container's own
	used  time.Time
}

func (s *inUseIndexes) init() {
	if s.byKey == nil {
		s.byKey, s.of, s.pending = map[string]*keptIndex{}, map[string]string{}, map[string]bool{}
	}
}

// put keeps x under key for container id (a chain's index may serve many) and drops the least recently used
// indexes past maxInUseEntries.
func (s *inUseIndexes) put(key, chain string, x *inuse.Index) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	if old, ok := s.byKey[key]; ok {
		s.entries -= old.x.Len()
	}
	s.byKey[key] = &keptIndex{x: x, chain: chain, used: time.Now()}
	s.entries += x.Len()
	for s.entries > cmp.Or(s.max, maxInUseEntries) && len(s.byKey) > 1 {
		var oldest string
		for k, e := range s.byKey {
			if k != key && (oldest == "" || e.used.Before(s.byKey[oldest].used)) {
				oldest = k
			}
		}
		s.entries -= s.byKey[oldest].x.Len()
		delete(s.byKey, oldest)
	}
}

// use ties container id to the index kept under key, dropping the container's own index when it is another.
func (s *inUseIndexes) use(id, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	if own := "container:" + id; key != own {
		if e, ok := s.byKey[own]; ok {
			s.entries -= e.x.Len()
			delete(s.byKey, own)
		}
	}
	s.of[id] = key
}

func (s *inUseIndexes) has(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.byKey[key]
	return ok
}

// index returns the Index that container id's findings are marked with; nil when there is none (yet, or dropped).
func (s *inUseIndexes) index(id string) *inuse.Index {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byKey[s.of[id]]
	if !ok {
		return nil
	}
	e.used = time.Now()
	return e.x
}

// forget drops what is kept of a container that is gone.
func (s *inUseIndexes) forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.byKey["container:"+id]; ok {
		s.entries -= e.x.Len()
		delete(s.byKey, "container:"+id)
	}
	delete(s.of, id)
}

// prune drops the chains' indexes no container in keep uses and none used within grace, as the image cache drops
// their analyses.
func (s *inUseIndexes) prune(keep map[string]bool, grace time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cutoff := time.Now().Add(-grace)
	for k, e := range s.byKey {
		if e.chain != "" && !keep[e.chain] && e.used.Before(cutoff) {
			s.entries -= e.x.Len()
			delete(s.byKey, k)
		}
	}
}

// InUseChanged is told that a watched container used a file for the first time (Runtime.OnUse). Within inUseDelay
// the container is checked again, and its findings, marked anew, are published when a verdict moved: the in_use
// metric label and the finding.in_use event follow the kernel within about a second, not the next resync.
func (d *Daemon) InUseChanged(id string) {
	s := &d.inUse
	s.mu.Lock()
	s.init()
	if s.pending[id] {
		s.mu.Unlock()
		return
	}
	s.pending[id] = true
	s.mu.Unlock()
	time.AfterFunc(inUseDelay, func() {
		s.mu.Lock()
		delete(s.pending, id)
		s.mu.Unlock()
		d.Nudge(id)
	})
}

// imageInUse makes sure the image chain's Index exists and marks container c with it. The Index is built from the
// image view: already mounted on a cache miss; on a hit (after a restart, or once the bound dropped it) it is
// mounted only for a running container, the only kind whose files can be in use.
func (d *Daemon) imageInUse(ctx context.Context, views *checkViews, c cri.Container, chain string, image *report.Result) []report.FileError {
	if d.InUse == nil {
		return nil
	}
	key := "chain:" + chain
	d.inUse.use(c.ID, key)
	mounted := views.views[fsaccess.ViewImage].root != nil
	if d.inUse.has(key) || (c.State != cri.StateRunning && !mounted) {
		return nil
	}
	root, err := views.get(ctx, fsaccess.ViewImage)
	if err != nil {
		return []report.FileError{{Analyzer: "in-use", Err: "open image layers: " + err.Error()}}
	}
	x, errs := inuse.Build(ctx, root, image, d.InUseOptions)
	if ctx.Err() == nil {
		d.inUse.put(key, chain, x)
	}
	return errs
}

// ownInUse indexes a container whose inventory was read from its merged root (its upper dir changed the packages,
// or its snapshot cannot be split into image and upper views), with that root mounted.
func (d *Daemon) ownInUse(ctx context.Context, id string, root scan.FS, res *report.Result) {
	if d.InUse == nil {
		return
	}
	x, errs := inuse.Build(ctx, root, res, d.InUseOptions)
	res.Errors = append(res.Errors, errs...)
	if ctx.Err() == nil {
		d.inUse.put("container:"+id, "", x)
		d.inUse.use(id, "container:"+id)
	}
}

// needsInUseIndex says a running container's findings cannot be marked for want of its Index (dropped by the
// bound): an unchanged container is then checked in full, which builds it again.
func (d *Daemon) needsInUseIndex(c cri.Container) bool {
	return d.InUse != nil && c.State == cri.StateRunning && d.inUse.index(c.ID) == nil
}

// markInUse sets every finding's InUse from the kernel's record of the container and its Index; without eBPF, or
// before the container is watched, every finding is unknown.
func (d *Daemon) markInUse(rep *report.Report) {
	if rep.Result == nil {
		return
	}
	if d.InUse == nil {
		inuse.Mark(rep.Result, nil, nil, false)
		return
	}
	x := d.inUse.index(rep.Target.ContainerID)
	used, ok := d.InUse.UsedFiles(rep.Target.ContainerID)
	inuse.Mark(rep.Result, x, used, ok && x != nil)
}

// remarkInUse marks an unchanged container's findings again; it returns the report to publish when a verdict
// moved (a package came into use since the last check).
func (d *Daemon) remarkInUse(rep report.Report) (report.Report, bool) {
	if d.InUse == nil || rep.Result == nil || len(rep.Result.Vulnerabilities) == 0 {
		return rep, false
	}
	old := rep.Result.Vulnerabilities
	res := *rep.Result
	res.Vulnerabilities = append([]report.Vulnerability(nil), old...)
	rep.Result = &res
	d.markInUse(&rep)
	for i, v := range res.Vulnerabilities {
		if v.InUse != old[i].InUse {
			d.store(rep, nil)
			return rep, true
		}
	}
	return rep, false
}
