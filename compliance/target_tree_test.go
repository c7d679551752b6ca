package compliance

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/rootscan/rootscan/report"
)

// A search through Tree (InSpec's find) must not answer from a listing its byte bound cut short: past the cut it
// is an error naming where the listing stopped, while a subtree the walk finished before the cut still answers.
func TestTreeRefusesCutListing(t *testing.T) {
	files := map[string]string{"a/setuid": "x"}
	for i := range 40 {
		files[fmt.Sprintf("z/f%03d%s", i, strings.Repeat("f", 200))] = ""
	}
	f := newFixture(t, files)
	tg := NewTarget(context.Background(), f.root, report.Target{Kind: "dir"}, nil, nil, Limits{MaxTreeBytes: 4 << 10}, nil)
	if _, _, err := tg.Tree("/z"); err == nil || !strings.Contains(err.Error(), "stopped at its bound of 4096 bytes") {
		t.Errorf("Tree(/z) past the byte bound: %v, want an error naming the bound", err)
	}
	if _, _, err := tg.Tree("/"); err == nil {
		t.Errorf("Tree(/) past the byte bound: no error")
	}
	entries, _, err := tg.Tree("/a")
	if err != nil || len(entries) != 2 {
		t.Errorf("Tree(/a), listed before the cut: %d entries, %v; want /a and /a/setuid", len(entries), err)
	}
	whole := NewTarget(context.Background(), f.root, report.Target{Kind: "dir"}, nil, nil, Limits{}, nil)
	if entries, _, err := whole.Tree("/z"); err != nil || len(entries) != 41 {
		t.Errorf("Tree(/z) within the default bound: %d entries, %v", len(entries), err)
	}
}
