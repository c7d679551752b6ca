package node

import (
	"context"
	"fmt"
	"log/slog"
	"sort"

	"github.com/rootscan/rootscan/compliance"
	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// checkByImage runs s.ImageCheck on a container whose merged root is open, with the evaluation of its image kept for
// the rest of the scan: a container whose upper dir and facts another container of its image already had costs no
// evaluation, and one with its own changes only the controls they touch. A container whose image layers cannot be
// told apart from its own (Views cannot split its snapshot) is checked in full.
func (s *Scanner) checkByImage(ctx context.Context, c cri.Container, root scan.FS, rep *report.Report, log *slog.Logger) {
	err := s.checkDelta(ctx, c, root, rep, log)
	if err != nil {
		log.Debug("image checks: checking the whole root", "err", err)
		err = s.ImageCheck.Check(ctx, root, rep)
	}
	if err != nil {
		log.Warn("root check failed", "err", err)
		rep.Result.Errors = append(rep.Result.Errors, report.FileError{Analyzer: "check", Err: err.Error()})
	}
}

// checkDelta is checkByImage's split evaluation; an error means nothing was evaluated.
func (s *Scanner) checkDelta(ctx context.Context, c cri.Container, root scan.FS, rep *report.Report, log *slog.Logger) error {
	chain, err := s.Views.ChainID(ctx, c)
	if err != nil {
		return fmt.Errorf("image layers: %w", err)
	}
	ie := s.imageEvals.get(imageEvalKey{chain: chain}, s.ImageCheck)
	if ie == nil {
		return nil // no profiles
	}
	upper, err := s.Views.OpenView(ctx, c, fsaccess.ViewUpper)
	if err != nil {
		return fmt.Errorf("open upper dir: %w", err)
	}
	defer closeRoot(log, upper)
	st, err := readUpper(ctx, upper)
	if err != nil {
		return fmt.Errorf("read upper dir: %w", err)
	}
	d := upperDelta(upper, st)
	// The inventory is the merged root's own, never the image's: packages() controls are evaluated again (or
	// shared, by containers with the same upper dir and so the same inventory).
	d.InventoryChanged = true
	d.Fingerprint = upperFingerprint(upper, st)
	var image Root
	defer func() {
		if image != nil {
			closeRoot(log, image)
		}
	}()
	openImage := func() (scan.FS, error) {
		var err error
		image, err = s.Views.OpenView(ctx, c, fsaccess.ViewImage)
		return image, err
	}
	merged := func() (scan.FS, error) { return root, nil }
	ds, err := s.ImageCheck.CheckDelta(ctx, ie, openImage, merged, d, rep)
	if err != nil {
		return err
	}
	log.Debug("image checks applied", "kept", ds.Kept, "shared", ds.Shared, "evaluated", ds.Evaluated)
	return nil
}

// byImage is the order to scan cs in: grouped by image, so that the containers of one image follow each other and
// the later ones find its evaluation made; the runtime's order otherwise.
func byImage(cs []cri.Container) []int {
	order := make([]int, len(cs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return cs[order[a]].ImageID < cs[order[b]].ImageID })
	return order
}

// imageCheckFor is the ImageCheck the scan uses for containers: only with Views to split them.
func (s *Scanner) imageCheckFor() ImageCheck {
	if s.Views == nil {
		return nil
	}
	return s.ImageCheck
}

var _ ImageCheck = (*compliance.Checker)(nil)
