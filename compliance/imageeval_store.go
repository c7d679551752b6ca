package compliance

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/rootscan/rootscan/report"
)

// storedEvalFormat is the version of an image evaluation's encoding (Encode): bump it when an encoding written before
// would decode wrong, even though no profile changed.
const storedEvalFormat = 1

// engineVersion names how the engine evaluates and records reads: bump it when a change to the evaluation, the
// resources or the read record can change a result or what it depends on, so that no evaluation stored by an older
// build is used.
const engineVersion = 1

// MaxStoredEvalBytes bounds an encoded image evaluation: the image's kept files() listing (maxKeptTreeBytes in memory,
// about as much encoded) and its controls' results and reads. A larger one is not stored, and a file past it is not
// read.
const MaxStoredEvalBytes = 32 << 20

// Fingerprint names what an evaluation's results depend on besides the files and facts it read: the engine's version,
// its limits, scopes and waivers, and every profile and control as loaded (names, versions, sources, checks). Two
// engines with the same fingerprint give the same result for the same reads, so an evaluation stored by one is used by
// the other (after a restart); a changed profile, waiver or engine makes every stored evaluation a miss.
func (e *Engine) Fingerprint() string {
	h := sha256.New()
	fmt.Fprintf(h, "engine %d format %d\n", engineVersion, storedEvalFormat)
	enc := json.NewEncoder(h)
	// Waivers are applied per container, not stored; they are in the key anyway, as a reload of them is one of the
	// engine's changes.
	_ = enc.Encode([]any{e.Limits, e.Scope, e.Waivers})
	for _, p := range e.Profiles {
		fmt.Fprintf(h, "profile %q %q %q %q %q %d\n", p.Name, p.Title, p.Version, p.Source, p.SHA256, len(p.Controls))
		for _, c := range p.Controls {
			_ = enc.Encode([]any{c.ID, c.Title, c.Impact, c.Tags, c.SkipMessage, exprSrc(c.OnlyIf), len(c.Checks), c.Code})
			for _, ch := range c.Checks {
				_ = enc.Encode([]any{ch.Desc, ch.Src})
			}
		}
	}
	for _, r := range e.Runners {
		fmt.Fprintf(h, "runner %T\n", r)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func exprSrc(x *Expr) string {
	if x == nil {
		return ""
	}
	return x.Src
}

// storedEval is the encoded form of an ImageEval. Controls are named by profile and control ID; reads as their kind's
// digit followed by the path.
type storedEval struct {
	Format int    `json:"format"`
	Engine string `json:"engine"` // Engine.Fingerprint
	Key    string `json:"key"`    // what the caller stored it under (the image's chain ID)
	// Facts are the targets' facts (config, security, mounts) the image and the shared controls were evaluated with,
	// stored once and named by index.
	Facts  []storedFacts  `json:"facts"`
	Image  *storedImage   `json:"image,omitempty"`
	Shared []storedShared `json:"shared,omitempty"`
}

type storedFacts struct {
	Config   *report.ImageConfig     `json:"config,omitempty"`
	Security *report.SecurityContext `json:"security,omitempty"`
	Mounts   []report.Mount          `json:"mounts,omitempty"`
}

type storedImage struct {
	Facts        int             `json:"facts"`
	OwnInventory bool            `json:"ownInventory,omitempty"`
	Controls     []storedControl `json:"controls"`
	Tree         *storedTree     `json:"tree,omitempty"`
}

type storedControl struct {
	Profile string               `json:"profile"`
	ID      string               `json:"id"`
	Result  report.ControlResult `json:"result"`
	Reads   []string             `json:"reads,omitempty"`
	Uses    uint8                `json:"uses,omitempty"` // the facts read
	// Facts and Volumes are a shared control's: the facts and volumes of the container it was evaluated on.
	Facts   int      `json:"facts,omitempty"`
	Volumes []string `json:"volumes,omitempty"`
}

type storedShared struct {
	Key      string          `json:"key"`
	Controls []storedControl `json:"controls"`
}

type storedTree struct {
	// Entries are path, size, mode, uid, gid and whether the FS gave owners, in walk order.
	Entries []storedEntry `json:"entries"`
	Deep    []string      `json:"deep,omitempty"`
}

type storedEntry struct {
	Path   string      `json:"p"`
	Size   int64       `json:"s,omitempty"`
	Mode   fs.FileMode `json:"m,omitempty"`
	UID    uint32      `json:"u,omitempty"`
	GID    uint32      `json:"g,omitempty"`
	HasIDs bool        `json:"i,omitempty"`
}

// Generation counts the changes to the evaluation (the image evaluated, containers' controls shared): a caller that
// stored it at one generation stores it again only after a change.
func (ie *ImageEval) Generation() uint64 {
	ie.mu.Lock()
	defer ie.mu.Unlock()
	return ie.gen
}

// Encode is the evaluation as bytes for Engine.DecodeImageEval, under key (the image's chain ID); nil when there is
// nothing to store yet or it is past MaxStoredEvalBytes.
func (ie *ImageEval) Encode(key string) ([]byte, error) {
	ie.mu.Lock()
	se := storedEval{Format: storedEvalFormat, Engine: ie.engine.Fingerprint(), Key: key}
	facts := func(t report.Target) int {
		f := storedFacts{Config: t.Config, Security: t.Security, Mounts: t.Mounts}
		for i, g := range se.Facts {
			if reflect.DeepEqual(f, g) {
				return i
			}
		}
		se.Facts = append(se.Facts, f)
		return len(se.Facts) - 1
	}
	if ie.imageDone {
		img := &storedImage{Facts: facts(ie.target), OwnInventory: ie.ownInventory}
		for _, p := range ie.engine.Profiles {
			for _, c := range p.Controls {
				if ic, ok := ie.controls[c]; ok {
					img.Controls = append(img.Controls, storeControl(p, c, ic))
				}
			}
		}
		img.Tree = storeTree(ie.tree)
		se.Image = img
	}
	for _, k := range slices.Sorted(maps.Keys(ie.shared)) {
		m := ie.shared[k]
		sh := storedShared{Key: k}
		for _, p := range ie.engine.Profiles {
			for _, c := range p.Controls {
				if s, ok := m[c]; ok {
					sc := storeControl(p, c, s.imageControl)
					sc.Facts, sc.Volumes = facts(s.target), s.volumes
					sh.Controls = append(sh.Controls, sc)
				}
			}
		}
		se.Shared = append(se.Shared, sh)
	}
	ie.mu.Unlock()
	if se.Image == nil && len(se.Shared) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(se)
	if err != nil {
		return nil, fmt.Errorf("encode image evaluation: %w", err)
	}
	if len(b) > MaxStoredEvalBytes {
		return nil, nil
	}
	return b, nil
}

func storeControl(p *Profile, c *Control, ic imageControl) storedControl {
	sc := storedControl{Profile: p.Name, ID: c.ID, Result: ic.result, Uses: uint8(ic.reads.facts)}
	sc.Reads = make([]string, len(ic.reads.reads))
	for i, r := range ic.reads.reads {
		sc.Reads[i] = fmt.Sprintf("%d%s", r.kind, r.path)
	}
	return sc
}

func storeTree(t *imageTree) *storedTree {
	if t == nil {
		return nil
	}
	st := &storedTree{Entries: make([]storedEntry, len(t.entries)), Deep: t.deep}
	for i, e := range t.entries {
		st.Entries[i] = storedEntry{Path: e.path, Size: e.size, Mode: e.mode, UID: e.uid, GID: e.gid, HasIDs: e.hasIDs}
	}
	return st
}

// errStale says a stored evaluation was made by another engine (profiles, waivers or rootscan changed) or for
// another key.
var errStale = errors.New("stored image evaluation is stale")

// IsStale says the error is DecodeImageEval's for an evaluation that was well formed but made for another engine or
// key: expected after an upgrade or a profile change, not damage.
func IsStale(err error) bool { return errors.Is(err, errStale) }

// DecodeImageEval is the evaluation Encode stored under key, for this engine. It trusts nothing in b: past
// MaxStoredEvalBytes, malformed, made by an engine with another fingerprint or under another key, naming a control
// the engine lacks, a read that is not a clean absolute path or a listing out of walk order, it is an error and the
// image is evaluated again.
func (e *Engine) DecodeImageEval(b []byte, key string) (*ImageEval, error) {
	if len(b) > MaxStoredEvalBytes {
		return nil, fmt.Errorf("stored image evaluation: %d bytes, past the bound of %d", len(b), MaxStoredEvalBytes)
	}
	var se storedEval
	if err := json.Unmarshal(b, &se); err != nil {
		return nil, fmt.Errorf("stored image evaluation: %w", err)
	}
	if se.Format != storedEvalFormat || se.Engine != e.Fingerprint() || se.Key != key {
		return nil, errStale
	}
	d := evalDecoder{e: e, facts: se.Facts, byID: map[[2]string]*Control{}}
	for _, p := range e.Profiles {
		for _, c := range p.Controls {
			d.byID[[2]string{p.Name, c.ID}] = c
		}
	}
	ie := e.NewImageEval()
	if se.Image != nil {
		if err := d.image(ie, se.Image); err != nil {
			return nil, fmt.Errorf("stored image evaluation: %w", err)
		}
	}
	for _, sh := range se.Shared {
		if sh.Key == "" || len(ie.shared) >= maxShared || ie.shared[sh.Key] != nil {
			return nil, fmt.Errorf("stored image evaluation: shared layer %q repeated, empty or past %d", sh.Key, maxShared)
		}
		m := map[*Control]sharedEval{}
		for _, sc := range sh.Controls {
			c, ic, err := d.control(sc)
			if err != nil {
				return nil, fmt.Errorf("stored image evaluation: %w", err)
			}
			t, err := d.target(sc.Facts)
			if err != nil {
				return nil, fmt.Errorf("stored image evaluation: %w", err)
			}
			for _, v := range sc.Volumes {
				if !cleanAbs(v) {
					return nil, fmt.Errorf("stored image evaluation: volume %q", v)
				}
			}
			m[c] = sharedEval{ic, sharedWith{sc.Volumes, t}}
		}
		if ie.shared == nil {
			ie.shared = map[string]map[*Control]sharedEval{}
		}
		ie.shared[sh.Key] = m
	}
	return ie, nil
}

type evalDecoder struct {
	e     *Engine
	facts []storedFacts
	byID  map[[2]string]*Control
}

func (d evalDecoder) image(ie *ImageEval, si *storedImage) error {
	t, err := d.target(si.Facts)
	if err != nil {
		return err
	}
	controls := make(map[*Control]imageControl, len(si.Controls))
	for _, sc := range si.Controls {
		c, ic, err := d.control(sc)
		if err != nil {
			return err
		}
		controls[c] = ic
	}
	// The image was evaluated with every control (evaluateImage): one missing means the file is not what Encode wrote.
	for _, p := range d.e.Profiles {
		for _, c := range p.Controls {
			if _, ok := controls[c]; !ok {
				return fmt.Errorf("control %s/%s missing", p.Name, c.ID)
			}
		}
	}
	tree, err := loadTree(si.Tree)
	if err != nil {
		return err
	}
	ie.imageDone, ie.target, ie.ownInventory, ie.controls, ie.tree = true, t, si.OwnInventory, controls, tree
	return nil
}

func (d evalDecoder) target(i int) (report.Target, error) {
	if i < 0 || i >= len(d.facts) {
		return report.Target{}, fmt.Errorf("facts %d of %d", i, len(d.facts))
	}
	f := d.facts[i]
	return report.Target{Config: f.Config, Security: f.Security, Mounts: f.Mounts}, nil
}

func (d evalDecoder) control(sc storedControl) (*Control, imageControl, error) {
	c := d.byID[[2]string{sc.Profile, sc.ID}]
	if c == nil {
		return nil, imageControl{}, fmt.Errorf("control %s/%s not in the profiles", sc.Profile, sc.ID)
	}
	if sc.Result.Profile != sc.Profile || sc.Result.ID != sc.ID {
		return nil, imageControl{}, fmt.Errorf("control %s/%s holds the result of %s/%s", sc.Profile, sc.ID, sc.Result.Profile, sc.Result.ID)
	}
	rs := readSet{reads: make([]read, len(sc.Reads)), facts: fact(sc.Uses)}
	for i, s := range sc.Reads {
		if len(s) < 2 || s[0] < '0' || s[0] > '0'+byte(readTree) || !cleanAbs(s[1:]) {
			return nil, imageControl{}, fmt.Errorf("control %s/%s: read %q", sc.Profile, sc.ID, s)
		}
		rs.reads[i] = read{readKind(s[0] - '0'), s[1:]}
	}
	return c, imageControl{result: sc.Result, reads: rs}, nil
}

// loadTree rebuilds a kept listing, which must be in walk order without repeats, as keepTree made it.
func loadTree(st *storedTree) (*imageTree, error) {
	if st == nil {
		return nil, nil
	}
	t := &imageTree{entries: make([]fileData, len(st.Entries)), deep: st.Deep}
	t.bytes = len(t.entries) * fileDataBytes
	for i, e := range st.Entries {
		if !cleanAbs(e.Path) || i > 0 && walkCompare(st.Entries[i-1].Path, e.Path) >= 0 {
			return nil, fmt.Errorf("listing entry %d %q out of walk order", i, e.Path)
		}
		t.entries[i] = fileData{path: e.Path, size: e.Size, mode: e.Mode, uid: e.UID, gid: e.GID, hasIDs: e.HasIDs}
		t.bytes += len(e.Path)
	}
	for _, p := range t.deep {
		if !cleanAbs(p) {
			return nil, fmt.Errorf("listing's deep directory %q", p)
		}
		t.bytes += len(p) + 16
	}
	if t.bytes > maxKeptTreeBytes {
		return nil, fmt.Errorf("listing of %d bytes, past %d", t.bytes, maxKeptTreeBytes)
	}
	return t, nil
}

// cleanAbs says p is a clean absolute path, as the engine records them.
func cleanAbs(p string) bool {
	return strings.HasPrefix(p, "/") && cleanPath(p) == p
}
