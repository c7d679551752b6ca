package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/fsaccess"
)

// checkViews are the views of one container that one check has opened. Each is opened (mounted, except the upper
// dir, which ContainerRoots reads in place) the first time a step of the check asks for it and then shared by the
// later steps (the image view read for the image cache is the one drift compares against), so a check opens each
// view at most once: every mount is a syscall, a mountinfo entry and a teardown, and a node starting many pods pays
// for each. close releases whatever is still open, on every path out of the check (errors and cancellation
// included).
type checkViews struct {
	d   *Daemon
	c   cri.Container
	log *slog.Logger
	// views is indexed by fsaccess.View; ViewContainer is the merged root from Daemon.Roots (which may fall back to
	// /proc/<pid>/root), the others come from Daemon.Views.
	views  [3]openedView
	access string // how the merged root was reached
}

// openedView is one view's state in a check: never asked for, open (root), failed (err, not retried within the
// check: the check fails or degrades the same way either way) or released early.
type openedView struct {
	asked    bool
	root     Root
	err      error
	released bool
}

func (d *Daemon) newCheckViews(c cri.Container, log *slog.Logger) *checkViews {
	return &checkViews{d: d, c: c, log: log}
}

// get returns the view, mounting it on first use.
func (v *checkViews) get(ctx context.Context, view fsaccess.View) (Root, error) {
	if int(view) < 0 || int(view) >= len(v.views) {
		return nil, fmt.Errorf("open %s: unknown view", view)
	}
	o := &v.views[view]
	if o.released {
		// A programming error, not a runtime one: a step asked again for a view an earlier step gave back.
		return nil, fmt.Errorf("open %s view: %w", view, errViewReleased)
	}
	if o.asked {
		return o.root, o.err
	}
	o.asked = true
	if view == fsaccess.ViewContainer {
		o.root, v.access, o.err = v.d.Roots.OpenContainer(ctx, v.c)
	} else {
		o.root, o.err = v.d.Views.OpenView(ctx, v.c, view)
	}
	if o.err != nil {
		o.root = nil
		return nil, o.err
	}
	// ContainerRoots reads the upper dir in place, and the /proc/<pid>/root fallback is no mount either.
	if view == fsaccess.ViewImage || (view == fsaccess.ViewContainer && v.access != "proc-root") {
		v.d.mounts.Add(1)
	}
	return o.root, nil
}

// errViewReleased is returned for a view asked for after the check gave it back.
var errViewReleased = errors.New("view already released in this check")

// release unmounts one view before the end of the check, when no later step needs it, so the check holds fewer
// mounts at once.
func (v *checkViews) release(view fsaccess.View) {
	o := &v.views[view]
	if o.root != nil {
		closeRoot(v.log, o.root)
		o.root = nil
	}
	o.asked, o.released = true, true
}

// close unmounts every view still mounted.
func (v *checkViews) close() {
	for i := range v.views {
		if v.views[i].root != nil {
			v.release(fsaccess.View(i))
		}
	}
}
