package compliance

import (
	"path"
	"slices"
	"strings"

	"github.com/rootscan/rootscan/report"
)

// readKind is what a control learned about a path, which decides what change to the path can alter its result.
type readKind uint8

const (
	// readEntry: the path's own entry, missing or not (existence, type, attributes, link target, content).
	readEntry readKind = iota
	// readDir: a resolution went through the path, a directory; it depends on the path still being one, not on
	// the directory's attributes (a container's upper dir holds a copy of /etc as soon as runc writes etc/hosts).
	readDir
	// readList: the names in the directory.
	readList
	// readTree: everything at or below the path, volumes included (glob's "**").
	readTree
)

// fact is a container fact a control read, besides its files.
type fact uint8

const (
	factConfig    fact = 1 << iota // the image config (user, env, entrypoint, ...)
	factSecurity                   // the security context
	factMounts                     // the mounts
	factInventory                  // the package inventory (packages())
	// factWalk: the walk of the whole root behind files(), which any change to the container's layer can alter
	// (entries, the entry bound, the directories left out for depth).
	factWalk
	// factProcess: the container's running process (os_env, mount, processes, kernel_parameter), its own per container.
	factProcess
)

type read struct {
	kind readKind
	path string
}

// readLog is what the current control read, in order; it is made a readSet when the control is done. A nil
// readLog records nothing (evaluations not for the image cache).
type readLog struct {
	reads []read
	facts fact
}

func (l *readLog) add(k readKind, p string) {
	if l != nil {
		l.reads = append(l.reads, read{k, p})
	}
}

func (l *readLog) addFact(f fact) {
	if l != nil {
		l.facts |= f
	}
}

// mark and since let a session memo (the parsed accounts) remember the reads that made it, to record them again for
// each later control that uses the memo.
func (l *readLog) mark() int {
	if l == nil {
		return 0
	}
	return len(l.reads)
}

func (l *readLog) since(m int) []read {
	if l == nil {
		return nil
	}
	return slices.Clone(l.reads[m:])
}

func (l *readLog) replay(rs []read) {
	if l != nil {
		l.reads = append(l.reads, rs...)
	}
}

// set is the log's compact form: sorted, without repeats.
func (l *readLog) set() readSet {
	rs := slices.Clone(l.reads)
	slices.SortFunc(rs, func(a, b read) int {
		if c := strings.Compare(a.path, b.path); c != 0 {
			return c
		}
		return int(a.kind) - int(b.kind)
	})
	return readSet{reads: slices.Compact(rs), facts: l.facts}
}

func (l *readLog) reset() {
	if l != nil {
		l.reads, l.facts = l.reads[:0], 0
	}
}

// readSet is everything one control read while it was evaluated on an image.
type readSet struct {
	reads []read // sorted by path
	facts fact
}

// The fact accessors are how a control reads the container's facts, so the read is recorded.

func (s *session) config() *report.ImageConfig {
	s.view.rec.addFact(factConfig)
	return s.tgt.Config
}

func (s *session) security() *report.SecurityContext {
	s.view.rec.addFact(factSecurity)
	return s.tgt.Security
}

func (s *session) mounts() []report.Mount {
	s.view.rec.addFact(factMounts)
	return s.tgt.Mounts
}

func (s *session) inventory() *report.Result {
	s.view.rec.addFact(factInventory)
	return s.res
}

// Delta is how a container's filesystem differs from its image's, as controls see it: from its upper dir and its
// volumes. Paths are absolute container paths.
type Delta struct {
	// Changed are paths whose own entry may differ but whose contents, if a directory, are the image's except for
	// what other paths name: a directory of the upper dir over the image's directory, and "/" (the root directory's
	// attributes come from the upper dir).
	Changed []string
	// Replaced are paths whose entry and everything below it may differ: files, links and whiteouts of the upper
	// dir, and its opaque directories.
	Replaced []string
	// Volumes are the mount points of the container's volumes, which replace what the image has there.
	Volumes []string
	// Unknown says the upper dir could not be read whole: every control is evaluated again.
	Unknown bool
	// InventoryChanged says the container's package inventory is not its image's.
	InventoryChanged bool
	// Fingerprint, when set, names the upper dir's contents as controls can see them (every entry's path, type,
	// permissions, owner, size, link target and file content, opacity): two containers of an image whose upper dirs
	// have the same Fingerprint have the same merged root. The controls evaluated again for one are then kept for
	// the other, where their reads do not reach either's volumes.
	Fingerprint string
}

// deltaIndex answers, for a Delta, whether a recorded read can see a change.
type deltaIndex struct {
	unknown   bool
	changed   map[string]bool // Changed
	replaced  map[string]bool // Replaced and Volumes
	parents   map[string]bool // the parents of every path of the delta
	under     map[string]bool // every path of the delta and all its ancestors
	walkTouch bool            // the upper dir changed something besides the root's attributes
}

func newDeltaIndex(d Delta) *deltaIndex {
	x := &deltaIndex{unknown: d.Unknown, changed: map[string]bool{}, replaced: map[string]bool{},
		parents: map[string]bool{}, under: map[string]bool{}}
	note := func(p string) {
		if p != "/" {
			x.parents[path.Dir(p)] = true
		}
		for q := p; ; q = path.Dir(q) {
			if x.under[q] {
				break
			}
			x.under[q] = true
			if q == "/" {
				break
			}
		}
	}
	for _, p := range d.Changed {
		p = cleanPath(p)
		x.changed[p] = true
		note(p)
		x.walkTouch = x.walkTouch || p != "/"
	}
	for _, p := range d.Replaced {
		p = cleanPath(p)
		x.replaced[p] = true
		note(p)
		x.walkTouch = true
	}
	for _, p := range d.Volumes {
		p = cleanPath(p)
		x.replaced[p] = true
		note(p)
		// The runtime makes the directories leading to a mount point: their entries may be new.
		for q := path.Dir(p); q != "/"; q = path.Dir(q) {
			x.changed[q] = true
			note(q)
		}
	}
	return x
}

// replacedAt says whether p or one of its ancestors was replaced.
func (x *deltaIndex) replacedAt(p string) bool {
	for q := p; ; q = path.Dir(q) {
		if x.replaced[q] {
			return true
		}
		if q == "/" {
			return false
		}
	}
}

// touches says whether the delta can change what a control with these reads saw.
func (x *deltaIndex) touches(rs readSet, factsDiffer fact) bool {
	if x.unknown || rs.facts&factsDiffer != 0 || rs.facts&factWalk != 0 && x.walkTouch {
		return true
	}
	for _, r := range rs.reads {
		if x.replacedAt(r.path) {
			return true
		}
		switch r.kind {
		case readEntry:
			if x.changed[r.path] {
				return true
			}
		case readList:
			if x.parents[r.path] {
				return true
			}
		case readTree:
			if x.under[r.path] {
				return true
			}
		}
	}
	return false
}
