package node

import (
	"fmt"
	"testing"

	"github.com/containerd/containerd/v2/core/mount"
)

// The memo of snapshot facts never grows past its bound (removed containers' snapshots would otherwise pile up in
// a long-running daemon), and what was kept for a snapshot is what it gives back.
func TestSnapshotMemoBounded(t *testing.T) {
	var m snapshotMemo
	ms := []mount.Mount{{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=/a:/b", "upperdir=/u"}}}
	m.update("overlayfs/c0", func(f *snapshotFacts) { f.mounts = ms })
	m.update("overlayfs/c0", func(f *snapshotFacts) { f.parent, f.hasParent = "sha256:p", true })
	if f := m.get("overlayfs/c0"); len(f.mounts) != 1 || f.parent != "sha256:p" || !f.hasParent {
		t.Fatalf("kept %+v", f)
	}
	for i := 1; i <= 2*maxSnapshotMemo; i++ {
		m.update(fmt.Sprintf("overlayfs/c%d", i), func(f *snapshotFacts) { f.hasParent = true })
		if len(m.m) > maxSnapshotMemo {
			t.Fatalf("%d entries after %d snapshots, bound %d", len(m.m), i+1, maxSnapshotMemo)
		}
	}
	if f := m.get("overlayfs/c0"); f.hasParent || f.mounts != nil {
		t.Errorf("the first snapshot's facts survived two rounds of the bound: %+v", f)
	}
}
