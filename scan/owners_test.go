package scan

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// WalkOwned hands out each listed file resolved through the root's links (bin -> usr/bin, lib -> /usr/lib), with the
// database entry that lists it: dpkg info lists, a distroless status.d entry, apk, rpm, and a diverted file at the
// place dpkg moved it to.
func TestWalkOwned(t *testing.T) {
	requireRootForDrift(t)
	root := openDriftRoot(t, unownedRoot(t))
	got := map[string][]Owner{}
	errs, complete := WalkOwned(context.Background(), root, func(p string, o Owner) bool {
		got[p] = append(got[p], o)
		return true
	})
	if len(errs) != 0 || !complete {
		t.Errorf("errors: %+v, complete %v", errs, complete)
	}
	for p, want := range map[string]Owner{
		"usr/bin/dash":  {Manager: "dpkg", Name: "dash", List: "var/lib/dpkg/info/dash.list"},
		"usr/bin/ls":    {Manager: "dpkg", Name: "coreutils", List: "var/lib/dpkg/info/coreutils.list"},
		"usr/bin/sleep": {Manager: "dpkg", Name: "coreutils", List: "var/lib/dpkg/info/coreutils.list"},
		// coreutils' /bin/sleep is diverted to /bin/sleep.distrib.
		"usr/bin/sleep.distrib":                         {Manager: "dpkg", Name: "coreutils", List: "var/lib/dpkg/info/coreutils.list"},
		"usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": {Manager: "dpkg", Name: "libc6", List: "var/lib/dpkg/status.d/libc6.md5sums", Entry: "var/lib/dpkg/status.d/libc6"},
		"usr/bin/busybox":                               {Manager: "apk", Name: "busybox", List: "lib/apk/db/installed"},
		"usr/bin/bash":                                  {Manager: "rpm", Name: "bash", Arch: "x86_64", List: "var/lib/rpm/rpmdb.sqlite"},
	} {
		if len(got[p]) == 0 || got[p][0] != want {
			t.Errorf("%s: owners %+v, want %+v first", p, got[p], want)
		}
	}
	// The lists' own spelling, through a link, is not handed out.
	for _, p := range []string{"bin/dash", "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"} {
		if len(got[p]) != 0 {
			t.Errorf("%s handed out unresolved: %+v", p, got[p])
		}
	}
	// Stopping is honoured at once.
	n := 0
	if _, complete := WalkOwned(context.Background(), root, func(string, Owner) bool { n++; return n < 3 }); n != 3 || complete {
		t.Errorf("walk went on after stop: %d calls, complete %v", n, complete)
	}
}

// Hostile lists: a path longer than PATH_MAX is not handed out, and lists naming more directories than the bound
// stop the walk with an error instead of growing the resolution cache.
func TestWalkOwnedBounds(t *testing.T) {
	long := "/" + strings.Repeat("d/", ownedMaxPath/2) + "x"
	var deep strings.Builder
	for i := range 200 {
		fmt.Fprintf(&deep, "/dir%d/sub/file\n", i)
	}
	fsys := fstest.MapFS{
		"var/lib/dpkg/info/a.list": {Data: []byte("/usr/bin/a\n" + long + "\n")},
		"var/lib/dpkg/info/b.list": {Data: []byte(deep.String())},
	}
	var got []string
	errs, complete := walkOwned(context.Background(), fsys, func(p string, o Owner) bool {
		got = append(got, o.Name+":"+p)
		return true
	}, 1000)
	if len(got) == 0 || got[0] != "a:usr/bin/a" || slices.ContainsFunc(got, func(s string) bool { return len(s) > ownedMaxPath }) {
		t.Errorf("handed out %d paths, first %q", len(got), got[:min(1, len(got))])
	}
	if len(got) > 60 || complete || len(errs) != 1 || !strings.Contains(errs[0].Err, "root too large") {
		t.Errorf("past the directory bound: %d paths, errors %+v", len(got), errs)
	}
}
