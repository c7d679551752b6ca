package scan

import (
	"debug/gosym"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"runtime/debug"
	"strings"

	"github.com/rootscan/rootscan/report"
)

// Bounds of the Go symbol reader. The largest real pclntabs (kubelet, terraform providers) are 30-60 MiB.
const (
	// goPclntabMax is the largest function table read; it is read whole.
	goPclntabMax = 256 << 20
	// goSearchBudget bounds the bytes read, in all, while searching for the function table and the module data
	// (data segments, relocations of position-independent programs).
	goSearchBudget = 512 << 20
	// goInlineMax bounds the inline tree read for one function (entries).
	goInlineMax = 1 << 16
	// goWorkMax bounds the pc-value pairs decoded and inline entries read for one program: functions of a hostile
	// table may all point at one long table or one large tree. helm (87 MB, 80,000 functions) needs half a million.
	goWorkMax = 1 << 24
)

// pclntab header magics (internal/abi): the layouts this reader knows.
const (
	goMagic118 = 0xfffffff0 // Go 1.18, 1.19
	goMagic120 = 0xfffffff1 // Go 1.20 and later
)

// Indexes the runtime gives its per-function tables (internal/abi).
const (
	goPcdataInlTreeIndex = 2
	goFuncdataInlTree    = 3
)

// errNoGoFuncTab says a program has no function table this reader knows (a toolchain before Go 1.18, or no Go
// code): reachability is then unknown, and that is not an error of the file.
var errNoGoFuncTab = errors.New("no Go 1.18+ function table")

// goFuncTab is a located pclntab: its bytes, the header fields used, and go:func.* (the base of funcdata offsets,
// from the runtime's moduledata).
type goFuncTab struct {
	x                        *goExe
	data                     []byte
	addr                     uint64
	magic                    uint32
	quantum                  uint32
	nfunc                    uint64
	funcname, pctab, pclntab uint64
	gofunc                   uint64
	// block caches the last piece of the image read outside the pclntab (inline trees before Go 1.26 live in
	// rodata, in function order, so one block serves many functions).
	block     []byte
	blockAddr uint64
	// work counts pc-value pairs decoded and inline entries read, against goWorkMax.
	work int
	// inlMax caches the largest index of each PCDATA_InlTreeIndex table, treeDone the entries of each inline tree
	// already read, so functions pointing at the same tables cost nothing more.
	inlMax   map[uint32]int32
	treeDone map[uint32]int32
}

var errGoWork = errors.New("Go function table exceeds its work budget")

// spend charges n units of work.
func (t *goFuncTab) spend(n int) error {
	if t.work += n; t.work > goWorkMax {
		return errGoWork
	}
	return nil
}

// readGoSymbols reads the names of every function compiled into a Go program, inlined ones included, the way
// govulncheck reads them (debug/gosym's names, the inline trees of FUNCDATA_InlTree), and returns them as keys
// with their packages and modules. It needs no symbol table: go:func.* comes from the runtime's moduledata, so a
// stripped program (-ldflags=-s -w) gives the same set as its unstripped build.
func readGoSymbols(x *goExe, bi *debug.BuildInfo) (*report.GoSymbols, error) {
	t, err := findGoFuncTab(x)
	if err != nil {
		return nil, err
	}
	keys := newGoKeys(bi)
	if err := t.names(keys.add); err != nil {
		return nil, err
	}
	return report.NewGoSymbols(keys.keys), nil
}

// names calls fn once with each distinct function name: every function's and every inlined call's.
func (t *goFuncTab) names(fn func(string)) error {
	seen := map[uint32]bool{}
	add := func(nameOff uint32) error {
		if seen[nameOff] {
			return nil
		}
		seen[nameOff] = true
		name, ok := t.name(nameOff)
		if !ok {
			return fmt.Errorf("function name offset %#x outside the name table", nameOff)
		}
		fn(name)
		return nil
	}
	for i := range t.nfunc {
		f, err := t.funcAt(i)
		if err != nil {
			return err
		}
		if err := add(f.nameOff); err != nil {
			return err
		}
		if err := t.inlined(f, add); err != nil {
			return err
		}
	}
	return nil
}

// findGoFuncTab locates and reads the pclntab and go:func.*.
func findGoFuncTab(x *goExe) (*goFuncTab, error) {
	var cands []uint64
	if x.pclntabOK {
		cands = append(cands, x.pclntab.addr)
	} else {
		for _, m := range []uint32{goMagic120, goMagic118} {
			pat := make([]byte, 4)
			x.order.PutUint32(pat, m)
			pat = append(pat, 0, 0)
			err := x.scan(x.rodata, pat, 4, func(a uint64) bool {
				cands = append(cands, a)
				return len(cands) < 64
			})
			if err != nil {
				return nil, err
			}
		}
	}
	var firstErr error
	for _, a := range cands {
		t, err := x.funcTabAt(a)
		if err == nil {
			return t, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = errNoGoFuncTab
	}
	return nil, firstErr
}

// funcTabAt reads the pclntab whose header is at addr once the moduledata that points at it is found.
func (x *goExe) funcTabAt(addr uint64) (*goFuncTab, error) {
	hsize := uint64(8 + 8*x.ptr)
	h, err := x.read(addr, hsize)
	if err != nil {
		return nil, err
	}
	t := &goFuncTab{x: x, addr: addr, magic: x.order.Uint32(h), quantum: uint32(h[6]),
		inlMax: map[uint32]int32{}, treeDone: map[uint32]int32{}}
	if t.magic != goMagic118 && t.magic != goMagic120 {
		return nil, errNoGoFuncTab
	}
	if h[4] != 0 || h[5] != 0 || int(h[7]) != x.ptr || (t.quantum != 1 && t.quantum != 2 && t.quantum != 4) {
		return nil, errors.New("malformed Go function table header")
	}
	w := func(i int) uint64 { return x.word(h[8:], i) }
	t.nfunc, t.funcname, t.pctab, t.pclntab = w(0), w(3), w(6), w(7)
	md, err := x.moduledata(addr, addr+t.funcname)
	if err != nil {
		return nil, err
	}
	// moduledata: pcHeader, six slices, findfunctab, minpc, maxpc, ten section bounds, [covctrs, ecovctrs since
	// Go 1.20], end, gcdata, gcbss, types, etypes, rodata, gofunc.
	gofuncIdx := 38
	if t.magic == goMagic120 {
		gofuncIdx = 40
	}
	t.gofunc = md[gofuncIdx]
	size := x.pclntab.size
	if !x.pclntabOK {
		// The table ends where the last of its parts does: funcnametab, cutab (uint32s), filetab, pctab, pclntable.
		var end uint64
		for i, scale := range []uint64{1, 4, 1, 1, 1} {
			p, n := md[1+3*i], md[2+3*i]
			if p < addr || n > goPclntabMax {
				return nil, errors.New("Go module data: a function table slice lies outside the table")
			}
			end = max(end, p+n*scale)
		}
		size = end - addr
	}
	if size > goPclntabMax {
		return nil, fmt.Errorf("Go function table of %d bytes exceeds %d", size, uint64(goPclntabMax))
	}
	if t.nfunc > size/8 || t.funcname > size || t.pctab > size || t.pclntab > size {
		return nil, errors.New("Go function table header does not fit its table")
	}
	if t.data, err = x.read(addr, size); err != nil {
		return nil, err
	}
	return t, nil
}

// moduledata finds the runtime's moduledata: the data word pointing at the pclntab followed by the funcnametab
// slice's pointer. It returns its first 41 words.
func (x *goExe) moduledata(pclntab, funcnametab uint64) ([]uint64, error) {
	const n = 41
	if x.relaOK {
		return x.relocatedModuledata(pclntab, funcnametab, n)
	}
	pat := make([]byte, 2*x.ptr)
	if x.ptr == 4 {
		x.order.PutUint32(pat, uint32(pclntab))
		x.order.PutUint32(pat[4:], uint32(funcnametab))
	} else {
		x.order.PutUint64(pat, pclntab)
		x.order.PutUint64(pat[8:], funcnametab)
	}
	var md []uint64
	var rerr error
	err := x.scan(x.data, pat, uint64(x.ptr), func(a uint64) bool {
		b, err := x.read(a, uint64(n*x.ptr))
		if err != nil {
			rerr = err
			return true
		}
		md = make([]uint64, n)
		for i := range md {
			md[i] = x.word(b, i)
		}
		return false
	})
	if err != nil {
		return nil, err
	}
	if md == nil {
		if rerr != nil {
			return nil, rerr
		}
		return nil, errors.New("no Go module data points at the function table")
	}
	return md, nil
}

// relocatedModuledata is moduledata for a position-independent program: its pointers are relocation addends.
// One pass finds the relocated word holding the pclntab's address, a second collects the words after it.
func (x *goExe) relocatedModuledata(pclntab, funcnametab uint64, n int) ([]uint64, error) {
	var at []uint64
	err := x.eachRelative(func(off, addend uint64) bool {
		if addend == pclntab {
			at = append(at, off)
		}
		return len(at) < 16
	})
	if err != nil {
		return nil, err
	}
	for _, a := range at {
		md := make([]uint64, n)
		b, err := x.read(a, uint64(n*8))
		if err != nil {
			continue
		}
		for i := range md {
			md[i] = x.word(b, i)
		}
		err = x.eachRelative(func(off, addend uint64) bool {
			if off >= a && off < a+uint64(8*n) && (off-a)%8 == 0 {
				md[(off-a)/8] = addend
			}
			return true
		})
		if err != nil {
			return nil, err
		}
		if md[0] == pclntab && md[1] == funcnametab {
			return md, nil
		}
	}
	return nil, errors.New("no relocated Go module data points at the function table")
}

// eachRelative calls fn with the target and addend of every R_*_RELATIVE entry of the RELA table (read in
// bounded chunks; the table's size counts against the search budget, once per pass).
func (x *goExe) eachRelative(fn func(off, addend uint64) bool) error {
	if err := x.charge(x.rela.size); err != nil {
		return err
	}
	const ent = 24
	buf := make([]byte, ent*4096)
	for pos := uint64(0); pos+ent <= x.rela.size; {
		n := min(uint64(len(buf)), (x.rela.size-pos)/ent*ent)
		b := buf[:n]
		if _, err := x.r.ReadAt(b, x.rela.off+int64(pos)); err != nil {
			return fmt.Errorf("read relocations: %w", err)
		}
		for i := 0; i+ent <= len(b); i += ent {
			if uint32(x.order.Uint64(b[i+8:])) == x.relative && !fn(x.order.Uint64(b[i:]), x.order.Uint64(b[i+16:])) {
				return nil
			}
		}
		pos += n
	}
	return nil
}

// goFunc is what the reader uses of a runtime _func record.
type goFunc struct {
	nameOff uint32
	// inlIndex is the offset of the PCDATA_InlTreeIndex table in pctab (present when hasInl); inlTree the
	// FUNCDATA_InlTree offset from go:func.* (^0: none).
	inlIndex uint32
	hasInl   bool
	inlTree  uint32
}

func (t *goFuncTab) u32(off uint64) (uint32, bool) {
	if off > uint64(len(t.data)) || uint64(len(t.data))-off < 4 {
		return 0, false
	}
	return t.x.order.Uint32(t.data[off:]), true
}

// funcAt decodes function i: functab[i] = {entryoff, funcoff}, the _func at pclntable+funcoff.
func (t *goFuncTab) funcAt(i uint64) (goFunc, error) {
	bad := fmt.Errorf("Go function table entry %d is outside the table", i)
	funcoff, ok := t.u32(t.pclntab + 8*i + 4)
	if !ok {
		return goFunc{}, bad
	}
	base := t.pclntab + uint64(funcoff)
	var f goFunc
	if f.nameOff, ok = t.u32(base + 4); !ok {
		return goFunc{}, bad
	}
	npcdata, ok := t.u32(base + 7*4)
	if !ok {
		return goFunc{}, bad
	}
	flagsWord := uint64(9) // funcID, flag, pad, nfuncdata; Go 1.20 added startLine before them
	if t.magic == goMagic120 {
		flagsWord = 10
	}
	if base+4*flagsWord+4 > uint64(len(t.data)) {
		return goFunc{}, bad
	}
	nfuncdata := uint32(t.data[base+4*flagsWord+3])
	tables := base + 4*flagsWord + 4
	if npcdata > goPcdataInlTreeIndex {
		if f.inlIndex, ok = t.u32(tables + 4*goPcdataInlTreeIndex); !ok {
			return goFunc{}, bad
		}
		f.hasInl = true
	}
	f.inlTree = ^uint32(0)
	if nfuncdata > goFuncdataInlTree {
		if f.inlTree, ok = t.u32(tables + 4*uint64(npcdata) + 4*goFuncdataInlTree); !ok {
			return goFunc{}, bad
		}
	}
	return f, nil
}

// inlined calls add with the name offset of every entry of f's inline tree. As in govulncheck, the tree's
// length is one more than the largest index its PCDATA_InlTreeIndex table takes.
func (t *goFuncTab) inlined(f goFunc, add func(nameOff uint32) error) error {
	if !f.hasInl || f.inlTree == ^uint32(0) {
		return nil
	}
	maxIdx, ok := t.inlMax[f.inlIndex]
	if !ok {
		var err error
		if maxIdx, err = t.maxInlIndex(f.inlIndex); err != nil {
			return err
		}
		t.inlMax[f.inlIndex] = maxIdx
	}
	count := maxIdx + 1
	if count <= t.treeDone[f.inlTree] { // nothing new: real programs never share trees, hostile ones may
		return nil
	}
	t.treeDone[f.inlTree] = count
	if count > goInlineMax {
		return fmt.Errorf("inline tree of %d entries exceeds %d", count, goInlineMax)
	}
	if err := t.spend(int(count)); err != nil {
		return err
	}
	size, nameAt := uint64(20), uint64(12) // Go 1.18, 1.19: parent, funcID, _, file, line, func_, parentPc
	if t.magic == goMagic120 {
		size, nameAt = 16, 4 // funcID, _, nameOff, parentPc, startLine
	}
	b, err := t.image(t.gofunc+uint64(f.inlTree), size*uint64(count))
	if err != nil {
		return fmt.Errorf("inline tree: %w", err)
	}
	for i := range uint64(count) {
		if err := add(t.x.order.Uint32(b[i*size+nameAt:])); err != nil {
			return err
		}
	}
	return nil
}

// maxInlIndex decodes a pc-value table (zig-zag value deltas and pc deltas as varints, ending at a zero value
// delta after the first pair) and returns its largest value, -1 when it has none above the initial -1.
func (t *goFuncTab) maxInlIndex(off uint32) (int32, error) {
	if uint64(off) > uint64(len(t.data))-min(t.pctab, uint64(len(t.data))) {
		return 0, errors.New("pc-value table outside the table")
	}
	p := t.data[t.pctab+uint64(off):]
	val, maxVal := int32(-1), int32(-1)
	var pc uint64
	for {
		uv, n := binary.Uvarint(p)
		if n <= 0 {
			return 0, errors.New("pc-value table runs off the table")
		}
		p = p[n:]
		if uv == 0 && pc != 0 { // the table ends at a zero value delta after its first pair
			return maxVal, nil
		}
		d := int32(uv >> 1)
		if uv&1 != 0 {
			d = ^d
		}
		pcd, n := binary.Uvarint(p)
		if n <= 0 {
			return 0, errors.New("pc-value table runs off the table")
		}
		p = p[n:]
		pc += pcd * uint64(t.quantum)
		val += d
		if err := t.spend(1); err != nil {
			return 0, err
		}
		maxVal = max(maxVal, val)
	}
}

// image returns n bytes of the memory image at addr: from the pclntab when they lie in it (go:func.* is part of
// it since Go 1.26), else from the file through a one-block cache.
func (t *goFuncTab) image(addr, n uint64) ([]byte, error) {
	if addr >= t.addr && addr-t.addr <= uint64(len(t.data)) && uint64(len(t.data))-(addr-t.addr) >= n {
		return t.data[addr-t.addr:][:n], nil
	}
	if addr >= t.blockAddr && addr-t.blockAddr <= uint64(len(t.block)) && uint64(len(t.block))-(addr-t.blockAddr) >= n {
		return t.block[addr-t.blockAddr:][:n], nil
	}
	const block = 64 << 10
	if n <= block {
		for _, s := range t.x.segs {
			if s.contains(addr, n) {
				l := min(uint64(block), s.size-(addr-s.addr))
				b, err := t.x.read(addr, l)
				if err != nil {
					return nil, err
				}
				t.block, t.blockAddr = b, addr
				return b[:n], nil
			}
		}
	}
	return t.x.read(addr, n)
}

// name returns the NUL-terminated name at off in funcnametab.
func (t *goFuncTab) name(off uint32) (string, bool) {
	start := t.funcname + uint64(off)
	if start >= uint64(len(t.data)) {
		return "", false
	}
	b := t.data[start:]
	const maxName = 64 << 10
	end := min(len(b), maxName)
	for i, c := range b[:end] {
		if c == 0 {
			return string(b[:i]), true
		}
	}
	return "", false
}

// goKeys turns function names into GoSymbols keys: the function, its package, and the package's module.
type goKeys struct {
	mainPkg string
	modules []string          // the program's module paths (as built: before replacement), longest first
	report  []string          // the name each module is reported under (the replacement's path when replaced)
	pkgs    map[string]string // packages seen, with their alias under a replacement module ("" for none)
	keys    []uint64
}

func newGoKeys(bi *debug.BuildInfo) *goKeys {
	k := &goKeys{mainPkg: bi.Path, pkgs: map[string]string{}}
	mods := []*debug.Module{&bi.Main}
	mods = append(mods, bi.Deps...)
	for _, m := range mods {
		if m == nil || m.Path == "" {
			continue
		}
		p, _ := goModule(m)
		k.modules = append(k.modules, m.Path)
		k.report = append(k.report, p)
	}
	return k
}

// add adds one function name, split the way govulncheck splits it (debug/gosym's package, receiver and base
// name; pointer receivers without "(*)"; the package path unescaped; "main" as the main package's path).
func (k *goKeys) add(name string) {
	s := gosym.Sym{Name: name}
	sym := s.BaseName()
	if r := s.ReceiverName(); r != "" {
		sym = strings.Trim(r, "(*)") + "." + sym
	}
	pkg := s.PackageName()
	if pkg != "" {
		var err error
		if pkg, err = url.PathUnescape(pkg); err != nil {
			return
		}
	}
	if pkg == "main" && k.mainPkg != "" {
		pkg = k.mainPkg
	}
	alias, seen := k.pkgs[pkg]
	if !seen {
		var mod string
		mod, alias = k.module(pkg)
		k.pkgs[pkg] = alias
		k.keys = append(k.keys, report.GoPackageKey(pkg))
		if alias != "" {
			k.keys = append(k.keys, report.GoPackageKey(alias))
		}
		if mod != "" {
			k.keys = append(k.keys, report.GoModuleKey(mod))
		}
	}
	k.keys = append(k.keys, report.GoSymbolKey(pkg, sym))
	if alias != "" {
		k.keys = append(k.keys, report.GoSymbolKey(alias, sym))
	}
}

// module is the module a package belongs to as govulncheck attributes it: the standard library for paths whose
// first element has no dot, else the module whose path is the longest prefix of the package's. A package of a
// module replaced by another module also has an alias, its path under the replacement, which is how that module's
// advisories name it (govulncheck rewrites the path the same way).
func (k *goKeys) module(pkg string) (mod, alias string) {
	if pkg == "" {
		return "", ""
	}
	first, _, _ := strings.Cut(pkg, "/")
	if !strings.Contains(first, ".") {
		return goStdlib, ""
	}
	best := -1
	for i, m := range k.modules {
		if strings.HasPrefix(pkg, m) && (best < 0 || len(m) > len(k.modules[best])) {
			best = i
		}
	}
	if best < 0 {
		return "", ""
	}
	if k.report[best] != k.modules[best] {
		alias = k.report[best] + pkg[len(k.modules[best]):]
	}
	return k.report[best], alias
}
