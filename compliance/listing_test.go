package compliance

import (
	"context"
	"testing"

	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// An image evaluation seeded with the listing of the image's analysis walk gives its first containers, evaluated on
// their own roots, the same results as a full evaluation, with files() made from the listing and their changes
// instead of a walk.
func TestListingCollectorSameAsFull(t *testing.T) {
	e, f, _ := deltaImage(t)
	ie := e.NewImageEval()
	c := ie.ListingCollector()
	if c == nil {
		t.Fatal("no collector: the probes call files()")
	}
	if res := scan.Run(context.Background(), f.root, []scan.Analyzer{c}); len(res.Errors) != 0 {
		t.Fatalf("walk: %v", res.Errors)
	}
	ie.mu.Lock()
	listed := ie.listing != nil && len(ie.listing.entries) > 0
	ie.mu.Unlock()
	if !listed {
		t.Fatal("no listing kept")
	}
	if ie.ListingCollector() != nil {
		t.Error("a second collector for an image with a listing")
	}
	for seed := range uint64(40) {
		if seed > 0 {
			// The listing served one container and was dropped: the image's analysis collects it again.
			if ie.listing != nil {
				t.Fatal("listing kept after a container took it")
			}
			scan.Run(context.Background(), f.root, []scan.Analyzer{ie.ListingCollector()})
		}
		st := checkDelta(t, e, f, ie, seed+100, int(seed%6)+1, imageTarget(), nil)
		if st.Evaluated > 0 && st.Listed != 1 {
			t.Errorf("seed %d: %+v, files() walked the root instead of using the image's listing", seed, st)
		}
	}
}

// A walk with an error or past the engine's entry bound keeps no listing (files() would have walked differently).
func TestListingCollectorRefusesPartialWalks(t *testing.T) {
	e, f, _ := deltaImage(t)
	walked := func(c *ListingCollector) *ListingCollector {
		scan.Run(context.Background(), f.root, []scan.Analyzer{wantsOnly{c}})
		return c
	}
	ie := e.NewImageEval()
	c := walked(ie.ListingCollector())
	c.Analyze(context.Background(), nil, &report.Result{Errors: []report.FileError{{Analyzer: "walk", Path: "etc", Err: "permission denied"}}})
	if ie.listing != nil {
		t.Error("listing kept despite a walk error")
	}
	c = ie.ListingCollector()
	c.lim.MaxEntries = 3
	walked(c).Analyze(context.Background(), nil, &report.Result{})
	if ie.listing != nil {
		t.Error("listing kept past the entry bound")
	}
	walked(ie.ListingCollector()).Analyze(context.Background(), nil, &report.Result{})
	if ie.listing == nil {
		t.Error("no listing from a whole walk")
	}
}

// wantsOnly is a collector whose Analyze the test calls itself.
type wantsOnly struct{ *ListingCollector }

func (wantsOnly) Analyze(context.Context, scan.FS, *report.Result) error { return nil }
