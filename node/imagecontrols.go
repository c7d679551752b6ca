package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/rootscan/rootscan/compliance"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// ImageCheck is a RootCheck that splits its work like the analyzers do: once per image on the image's own layers,
// then per container only what the container's upper dir, volumes and facts can have changed. compliance.Checker is
// one; its results are the same as Check's on the merged root.
type ImageCheck interface {
	RootCheck
	// Fresh says whether an image evaluation is still the one to use (not made before a profile reload).
	Fresh(img *compliance.ImageEval) bool
	// NewImageEval makes an image's evaluation, filled by CheckDelta; nil when the check has nothing to evaluate.
	NewImageEval() *compliance.ImageEval
	// LoadImageEval decodes an evaluation ImageEval.Encode stored under chain, for the check's current profiles;
	// compliance.IsStale(err) when it was made for others.
	LoadImageEval(b []byte, chain string) (*compliance.ImageEval, error)
	// CheckDelta evaluates a container of img's image; image and merged mount the image's root and the container's
	// merged root, and are called only if needed.
	CheckDelta(ctx context.Context, img *compliance.ImageEval, image, merged func() (scan.FS, error), d compliance.Delta, rep *report.Report) (compliance.DeltaStats, error)
}

// imageEvals holds the image evaluations of the image checks, by chain ID and check, in memory and (with a store)
// on disk, so that neither a second container of an image nor a restart evaluates the image again; a profile reload
// does. Containers of one image that are checked together wait for one evaluation.
type imageEvals struct {
	store *evalStore // nil: memory only (the one-shot scanner, a daemon without a state dir)
	// observe, when set, is told where each image evaluation a container used came from (see Daemon.OnImageEval).
	observe func(source string)

	mu sync.Mutex
	m  map[imageEvalKey]*imageEvalEntry

	// pending are the evaluations changed since they were last stored, by key. One writer goroutine at a time
	// stores them, off the checks' path: each store is an fsync'd file (1.6 ms on the test machine's disk), and a
	// first node scan stores once per container layer whose controls it shares, which sat on that check's critical
	// path. A crash loses only what was pending: the store is a cache, and the image is evaluated again.
	pmu     sync.Mutex
	pending map[imageEvalKey]*compliance.ImageEval
	writing bool
	writer  sync.WaitGroup
}

type imageEvalKey struct {
	chain string
	check int // index in Daemon.Checks
}

type imageEvalEntry struct {
	mu    sync.Mutex // held while the image is evaluated or stored
	ie    *compliance.ImageEval
	saved uint64 // ie's Generation when it was last stored or loaded
	used  time.Time
}

// Where an image evaluation came from, the values of Daemon.OnImageEval's source.
const (
	EvalFromMemory = "memory"    // this daemon made or loaded it for an earlier container
	EvalFromDisk   = "disk"      // stored by an earlier run of the daemon
	EvalNew        = "evaluated" // none to use: the image's controls are evaluated (as its containers need them)
)

// get returns the fresh evaluation for key: the one in memory, else the stored one, else a new one from ic.
func (x *imageEvals) get(key imageEvalKey, ic ImageCheck) *compliance.ImageEval {
	x.mu.Lock()
	if x.m == nil {
		x.m = map[imageEvalKey]*imageEvalEntry{}
	}
	e, ok := x.m[key]
	if !ok {
		e = &imageEvalEntry{}
		x.m[key] = e
	}
	e.used = time.Now()
	x.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	source := EvalFromMemory
	if e.ie == nil || !ic.Fresh(e.ie) {
		source = EvalFromDisk
		if e.ie = x.store.load(key, ic); e.ie == nil || !ic.Fresh(e.ie) {
			source, e.ie = EvalNew, ic.NewImageEval()
		}
		if e.ie != nil {
			e.saved = e.ie.Generation()
		}
	}
	if e.ie != nil && x.observe != nil {
		x.observe(source)
	}
	return e.ie
}

// save queues the evaluations of chain for storing; the writer stores those that changed since they were last
// stored (the image evaluated, a container layer's controls shared).
func (x *imageEvals) save(chain string, evals []*compliance.ImageEval) {
	if x.store == nil {
		return
	}
	x.pmu.Lock()
	defer x.pmu.Unlock()
	for i, ie := range evals {
		if ie == nil {
			continue
		}
		if x.pending == nil {
			x.pending = map[imageEvalKey]*compliance.ImageEval{}
		}
		x.pending[imageEvalKey{chain, i}] = ie
	}
	if len(x.pending) > 0 && !x.writing {
		x.writing = true
		x.writer.Add(1)
		go x.writePending()
	}
}

// writePending stores what save queued until nothing is left.
func (x *imageEvals) writePending() {
	defer x.writer.Done()
	for {
		x.pmu.Lock()
		batch := x.pending
		x.pending = nil
		if len(batch) == 0 {
			x.writing = false
			x.pmu.Unlock()
			return
		}
		x.pmu.Unlock()
		for key, ie := range batch {
			x.write(key, ie)
		}
	}
}

// write stores key's evaluation if it is still the one in use and changed since it was stored. It encodes under
// the entry's lock, and writes without it: a check of the image waits for an encoding, never for a disk.
func (x *imageEvals) write(key imageEvalKey, ie *compliance.ImageEval) {
	x.mu.Lock()
	e := x.m[key]
	x.mu.Unlock()
	if e == nil {
		return
	}
	e.mu.Lock()
	gen := ie.Generation()
	if e.ie != ie || gen == e.saved {
		e.mu.Unlock()
		return
	}
	b, err := ie.Encode(key.chain)
	e.mu.Unlock()
	if x.store.write(key, b, err) {
		e.mu.Lock()
		e.saved = max(e.saved, gen)
		e.mu.Unlock()
	}
}

// flush waits until everything queued is stored; the daemon calls it as it stops, after its last check.
func (x *imageEvals) flush() {
	x.writer.Wait()
}

// prune drops the evaluations of images no tracked container uses, after the image cache's grace period, in memory
// and on disk.
func (x *imageEvals) prune(keep map[string]bool, grace time.Duration) {
	cutoff := time.Now().Add(-grace)
	x.mu.Lock()
	for k, e := range x.m {
		if !keep[k.chain] && e.used.Before(cutoff) {
			delete(x.m, k)
		}
	}
	x.mu.Unlock()
	x.store.prune(keep, cutoff)
}

// imageChecks returns the image evaluations of the image checks, indexed like d.Checks: nil for checks that are not
// ImageChecks or have nothing to evaluate. They are filled as the image's containers are checked.
func (d *Daemon) imageChecks(chain string) []*compliance.ImageEval {
	out := make([]*compliance.ImageEval, len(d.Checks))
	for i, ch := range d.Checks {
		if ic, ok := ch.(ImageCheck); ok {
			out[i] = d.imageEvals.get(imageEvalKey{chain, i}, ic)
		}
	}
	return out
}

// checkMerged runs what needs the container's merged root: the analyzers when the upper dir touched the inventory,
// then the root checks (see runImageChecks). The root is mounted on first use and released before it returns; the
// error is only for failing to mount it.
func (d *Daemon) checkMerged(ctx context.Context, views *checkViews, rep *report.Report, evals []*compliance.ImageEval, upper scan.FS, st upperState, touched bool, log *slog.Logger) error {
	defer views.release(fsaccess.ViewContainer)
	var openErr error
	merged := func() (scan.FS, error) {
		root, err := views.get(ctx, fsaccess.ViewContainer)
		if err != nil {
			openErr = err
			return nil, err
		}
		rep.Target.Access = views.access
		if views.access == "proc-root" {
			// The running container's own mount namespace, volumes mounted in it: not the snapshot the image's
			// results and the delta describe, so the image checks evaluate it whole (runImageChecks).
			return nil, errLiveRoot
		}
		return root, nil
	}
	if touched {
		root, err := views.get(ctx, fsaccess.ViewContainer)
		if err != nil {
			return err
		}
		rep.Target.Access = views.access
		rep.Result = scan.Run(ctx, root, d.Analyzers)
		d.ownInUse(ctx, rep.Target.ContainerID, root, rep.Result)
	}
	image := func() (scan.FS, error) {
		root, err := views.get(ctx, fsaccess.ViewImage)
		if err != nil {
			log.Warn("image view for the image checks; evaluating on the container's root", "err", err)
		}
		return root, err
	}
	d.runImageChecks(ctx, views, image, merged, rep, evals, upper, st, touched, log)
	return openErr
}

// errLiveRoot says the merged root was reached through /proc/<pid>/root.
var errLiveRoot = errors.New("the merged root is the running container's /proc/<pid>/root")

// runImageChecks runs the root checks on rep.Result: an ImageCheck from its image's evaluation and the container's
// delta (upper dir st, read from upper; inventoryChanged when the analyzers ran again on the merged root), which
// mounts the merged root only if a control needs it, the others in full on the merged root.
func (d *Daemon) runImageChecks(ctx context.Context, views *checkViews, image, merged func() (scan.FS, error), rep *report.Report, evals []*compliance.ImageEval, upper scan.FS, st upperState, inventoryChanged bool, log *slog.Logger) {
	var delta *compliance.Delta
	for i, ch := range d.Checks {
		ic, ok := ch.(ImageCheck)
		var err error
		switch {
		case !ok || i >= len(evals) || evals[i] == nil:
			var root scan.FS
			if root, err = merged(); errors.Is(err, errLiveRoot) {
				root, err = views.get(ctx, fsaccess.ViewContainer)
			}
			if err == nil {
				err = ch.Check(ctx, root, rep)
			}
		default:
			if delta == nil {
				dl := upperDelta(upper, st)
				dl.InventoryChanged = inventoryChanged
				dl.Fingerprint = upperFingerprint(upper, st)
				delta = &dl
			}
			var ds compliance.DeltaStats
			ds, err = ic.CheckDelta(ctx, evals[i], image, merged, *delta, rep)
			if errors.Is(err, errLiveRoot) {
				var root scan.FS
				if root, err = views.get(ctx, fsaccess.ViewContainer); err == nil {
					err = ch.Check(ctx, root, rep)
				}
			}
			log.Debug("image checks applied", "kept", ds.Kept, "shared", ds.Shared, "evaluated", ds.Evaluated, "listed", ds.Listed)
		}
		if err != nil {
			log.Warn("root check failed", "err", err)
			rep.Result.Errors = append(rep.Result.Errors, report.FileError{Analyzer: "check", Err: err.Error()})
		}
	}
}

// Bounds of upperFingerprint: an upper dir with more entries or file bytes than this gets none (its controls are
// evaluated on its own root), so fingerprinting never costs more than a small read.
const (
	maxFingerprintEntries = 1000
	maxFingerprintBytes   = 1 << 20
)

// upperFingerprint names an upper dir's contents as compliance controls see them: every entry's path, type,
// permissions, owner, size, device, link target and content, and a directory's opacity; not its times or inode
// numbers, which differ between two containers started from one pod template whose upper dirs hold the same
// runtime mount points. "" when the upper dir is past the bounds or an entry cannot be read.
func upperFingerprint(upper scan.FS, st upperState) string {
	if st.truncated || len(st.entries) > maxFingerprintEntries {
		return ""
	}
	h := sha256.New()
	xfs, _ := upper.(scan.XattrFS)
	budget := int64(maxFingerprintBytes)
	// The root directory first: its attributes are the container root's.
	for i := -1; i < len(st.entries); i++ {
		name, typ := ".", fs.ModeDir
		if i >= 0 {
			name, typ = st.path(i), st.entries[i].typ
		}
		fi, err := upper.Lstat(name)
		if err != nil {
			return ""
		}
		var uid, gid uint32
		var rdev uint64
		if s, ok := fsaccess.StatOf(fi); ok {
			uid, gid, rdev = s.Uid, s.Gid, s.Rdev
		}
		fmt.Fprintf(h, "%q %v %d %d %d %d\n", name, fi.Mode(), uid, gid, fi.Size(), rdev)
		switch {
		case typ.IsDir():
			if i >= 0 && (xfs == nil || replacesDir(xfs, name)) {
				fmt.Fprintf(h, "replaces\n")
			}
		case typ&fs.ModeSymlink != 0:
			target, err := upper.ReadLink(name)
			if err != nil {
				return ""
			}
			fmt.Fprintf(h, "-> %q\n", target)
		case typ.IsRegular():
			if budget -= fi.Size(); budget < 0 {
				return ""
			}
			b, err := scan.ReadFile(upper, name, fi.Size()+1)
			if err != nil || int64(len(b)) != fi.Size() {
				return ""
			}
			sum := sha256.Sum256(b)
			h.Write(sum[:])
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// overlayDirXattrs mark an upper dir directory whose contents are not the lower directory's plus the upper dir's own
// entries: opaque ("y": the lower directory is hidden) or redirected (a renamed directory, whose lower contents come
// from another path). trusted.* normally, user.* with the userxattr mount option.
var overlayDirXattrs = []struct{ name, value string }{
	{"trusted.overlay.opaque", "y"}, {"user.overlay.opaque", "y"},
	{"trusted.overlay.redirect", ""}, {"user.overlay.redirect", ""},
}

// maxDeltaBytes bounds the paths upperDelta spells out (about 40,000 upper-dir entries of 100-byte paths).
const maxDeltaBytes = 4 << 20

// upperDelta is how a container's root differs from its image's, from its upper dir: a file, link or whiteout
// replaces the path and all below it; a directory over the image's directory changes only its own attributes (its
// entries are listed themselves), unless it is opaque or redirected, or its xattrs cannot be read. The root
// directory's attributes always come from the upper dir.
//
// The delta holds every path in full, so it is made only when those paths fit maxDeltaBytes, counted on the compact
// upperState before any is built: past it (100,000 files under 4,000-byte paths would be 400 MB) the delta is
// Unknown and the controls are evaluated on the merged root, whose listing has its own byte bound.
func upperDelta(upper scan.FS, st upperState) compliance.Delta {
	d := compliance.Delta{Changed: []string{"/"}, Unknown: st.truncated}
	if st.pathBytes() > maxDeltaBytes {
		d.Unknown = true
		return d
	}
	xfs, _ := upper.(scan.XattrFS)
	for i, e := range st.entries {
		name := st.path(i)
		if e.typ.IsDir() && xfs != nil && !replacesDir(xfs, name) {
			d.Changed = append(d.Changed, "/"+name)
		} else {
			d.Replaced = append(d.Replaced, "/"+name)
		}
	}
	return d
}

// replacesDir says whether the upper dir's directory name hides or redirects the image's directory there; an
// attribute that cannot be read counts as set (only "no such attribute" and "not supported here" do not).
func replacesDir(xfs scan.XattrFS, name string) bool {
	for _, x := range overlayDirXattrs {
		v, err := xfs.Getxattr(name, x.name)
		switch {
		case err == nil && (x.value == "" || string(v) == x.value):
			return true
		case err != nil && !errors.Is(err, syscall.ENODATA) && !errors.Is(err, syscall.ENOTSUP):
			return true
		}
	}
	return false
}
