package scan

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"testing"

	"github.com/rootscan/rootscan/report"
)

// synthFunc is one function of a synthetic Go 1.20+ function table: its name and the names inlined into it.
type synthFunc struct {
	name    string
	inlined []string
}

const synthBase = 0x400000

// synthGoImage lays out, at synthBase, what the linker writes for a Go 1.20+ program as far as the symbol reader
// looks: go:func.* with the inline trees, the pclntab (header, funcnametab, pctab, functab and _func records) and
// the moduledata pointing at it. It returns the image and the pclntab's address.
func synthGoImage(funcs []synthFunc) ([]byte, uint64) {
	le := binary.LittleEndian
	var names bytes.Buffer
	nameOff := map[string]uint32{}
	name := func(n string) uint32 {
		if off, ok := nameOff[n]; ok {
			return off
		}
		nameOff[n] = uint32(names.Len())
		names.WriteString(n)
		names.WriteByte(0)
		return nameOff[n]
	}
	// go:func.*: the inline trees, at the start of the image.
	var gofunc bytes.Buffer
	pctab := []byte{0}
	type rec struct{ name, inlTable, inlTree uint32 }
	var recs []rec
	for _, f := range funcs {
		r := rec{name: name(f.name), inlTree: ^uint32(0)}
		if len(f.inlined) > 0 {
			r.inlTree = uint32(gofunc.Len())
			for _, in := range f.inlined {
				e := make([]byte, 16)
				le.PutUint32(e[4:], name(in))
				gofunc.Write(e)
			}
			// The index table: from -1, one step of +1 (zig-zag 2) per entry over 4 bytes of code, then the end.
			r.inlTable = uint32(len(pctab))
			for range f.inlined {
				pctab = append(pctab, 2, 4)
			}
			pctab = append(pctab, 0)
		}
		recs = append(recs, r)
	}
	img := append([]byte(nil), gofunc.Bytes()...)
	for len(img)%16 != 0 {
		img = append(img, 0)
	}
	pcln := uint64(len(img))
	const hdr = 8 + 8*8
	funcnameOff := uint64(hdr)
	pctabOff := funcnameOff + uint64(names.Len())
	pclnOff := pctabOff + uint64(len(pctab))
	var t []byte
	t = le.AppendUint32(t, goMagic120)
	t = append(t, 0, 0, 1, 8)
	for _, w := range []uint64{uint64(len(funcs)), 0, synthBase, funcnameOff, 0, 0, pctabOff, pclnOff} {
		t = le.AppendUint64(t, w)
	}
	t = append(t, names.Bytes()...)
	t = append(t, pctab...)
	ftabSize := 8 * (len(funcs) + 1)
	var fns []byte
	for i, r := range recs {
		t = le.AppendUint32(t, uint32(i))
		t = le.AppendUint32(t, uint32(ftabSize+len(fns)))
		f := make([]byte, 11*4)
		le.PutUint32(f[4:], r.name)
		le.PutUint32(f[7*4:], 3) // npcdata
		f[10*4+3] = 4            // nfuncdata
		f = le.AppendUint32(f, 0)
		f = le.AppendUint32(f, 0)
		f = le.AppendUint32(f, r.inlTable)
		for range 3 {
			f = le.AppendUint32(f, ^uint32(0))
		}
		f = le.AppendUint32(f, r.inlTree)
		fns = append(fns, f...)
	}
	t = le.AppendUint32(t, uint32(len(funcs)))
	t = le.AppendUint32(t, 0)
	t = append(t, fns...)
	img = append(img, t...)
	for len(img)%8 != 0 {
		img = append(img, 0)
	}
	addr := synthBase + pcln
	md := make([]uint64, 41)
	md[0] = addr
	slice := func(i int, off, n uint64) { md[i], md[i+1], md[i+2] = addr+off, n, n }
	slice(1, funcnameOff, uint64(names.Len()))
	slice(4, pclnOff, 0)
	slice(7, pclnOff, 0)
	slice(10, pctabOff, uint64(len(pctab)))
	slice(13, pclnOff, uint64(len(t))-pclnOff)
	md[40] = synthBase
	for _, w := range md {
		img = le.AppendUint64(img, w)
	}
	return img, addr
}

// synthExe describes an image without section headers: the reader has to find the table and the moduledata.
func synthExe(img []byte) *goExe {
	seg := goSeg{addr: synthBase, size: uint64(len(img))}
	return &goExe{r: bytes.NewReader(img), order: binary.LittleEndian, ptr: 8,
		segs: []goSeg{seg}, rodata: []goSeg{seg}, data: []goSeg{seg}}
}

func TestReadGoSymbolsSynthetic(t *testing.T) {
	funcs := []synthFunc{
		{name: "main.main", inlined: []string{"golang.org/x/text/language.Parse", "net/http.(*Server).Serve"}},
		{name: "gopkg.in/yaml%2ev2.Unmarshal"},
		{name: "net/http.(*Client).Do", inlined: []string{"golang.org/x/text/language.Parse"}},
		{name: "example.com/lib/v2/sub.Generic[go.shape.int].Method"},
	}
	img, addr := synthGoImage(funcs)
	x := synthExe(img)
	tab, err := findGoFuncTab(x)
	if err != nil {
		t.Fatal(err)
	}
	if tab.addr != addr || tab.gofunc != synthBase {
		t.Fatalf("found the table at %#x, go:func.* at %#x; want %#x, %#x", tab.addr, tab.gofunc, addr, synthBase)
	}
	var got []string
	if err := tab.names(func(n string) { got = append(got, n) }); err != nil {
		t.Fatal(err)
	}
	want := []string{"main.main", "golang.org/x/text/language.Parse", "net/http.(*Server).Serve",
		"gopkg.in/yaml%2ev2.Unmarshal", "net/http.(*Client).Do", "example.com/lib/v2/sub.Generic[go.shape.int].Method"}
	if !slices.Equal(got, want) {
		t.Fatalf("names %q, want %q", got, want)
	}
	bi := &debug.BuildInfo{Path: "example.com/cmd/tool", Main: debug.Module{Path: "example.com/cmd"},
		Deps: []*debug.Module{{Path: "golang.org/x/text", Version: "v0.3.7"}, {Path: "gopkg.in/yaml.v2", Version: "v2.4.0"},
			{Path: "example.com/lib", Version: "v1.0.0"}, {Path: "example.com/lib/v2", Version: "v2.0.0",
				Replace: &debug.Module{Path: "example.com/fork/v2", Version: "v2.0.1"}}}}
	syms, err := readGoSymbols(x, bi)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		key  uint64
		what string
		want bool
	}{
		{report.GoSymbolKey("example.com/cmd/tool", "main"), "main.main under the main package's path", true},
		{report.GoSymbolKey("main", "main"), `"main" itself`, false},
		{report.GoSymbolKey("golang.org/x/text/language", "Parse"), "an inlined function", true},
		{report.GoSymbolKey("net/http", "Server.Serve"), "an inlined method, pointer receiver without (*)", true},
		{report.GoSymbolKey("net/http", "Client.Do"), "a method", true},
		{report.GoSymbolKey("net/http", "Client.Get"), "a method not compiled in", false},
		{report.GoSymbolKey("gopkg.in/yaml.v2", "Unmarshal"), "an escaped package path", true},
		// debug/gosym splits an instantiated method oddly (receiver "Generic[go.shape.int]", base name
		// "go.shape.int].Method"); govulncheck splits with the same code, so its verdicts are kept, oddity included.
		{report.GoSymbolKey("example.com/lib/v2/sub", "Generic[go.shape.int].go.shape.int].Method"), "a generic method", true},
		{report.GoPackageKey("net/http"), "a package", true},
		{report.GoPackageKey("net/url"), "a package not compiled in", false},
		{report.GoModuleKey("stdlib"), "the standard library", true},
		{report.GoModuleKey("golang.org/x/text"), "a module", true},
		{report.GoModuleKey("example.com/fork/v2"), "a replaced module, under its replacement (longest prefix)", true},
		{report.GoSymbolKey("example.com/fork/v2/sub", "Generic[go.shape.int].go.shape.int].Method"), "a replaced module's function under the replacement's path", true},
		{report.GoPackageKey("example.com/fork/v2/sub"), "a replaced module's package under the replacement's path", true},
		{report.GoModuleKey("example.com/lib"), "a module whose path is a shorter prefix", false},
		{report.GoModuleKey("example.com/cmd"), "the main module (its package main)", true},
	} {
		if got := syms.Has(c.key); got != c.want {
			t.Errorf("%s: present %v, want %v", c.what, got, c.want)
		}
	}
}

// TestReadGoSymbolsBounds: damaged tables are errors, never panics or reads past the image, and a program
// without a Go 1.18+ table is "no table", not an error.
func TestReadGoSymbolsBounds(t *testing.T) {
	img, _ := synthGoImage([]synthFunc{{name: "main.main", inlined: []string{"a.b"}}})
	if _, err := findGoFuncTab(synthExe(make([]byte, 4096))); err != errNoGoFuncTab {
		t.Errorf("no table: %v, want errNoGoFuncTab", err)
	}
	old := bytes.Clone(img)
	i := bytes.Index(old, []byte{0xf1, 0xff, 0xff, 0xff})
	old[i] = 0xfa // Go 1.16's magic
	if _, err := findGoFuncTab(synthExe(old)); err != errNoGoFuncTab {
		t.Errorf("Go 1.16 table: %v, want errNoGoFuncTab", err)
	}
	// Many functions with large inline trees cost work, up to the budget.
	large := make([]synthFunc, 300)
	for i := range large {
		large[i] = synthFunc{name: fmt.Sprintf("p.f%d", i), inlined: make([]string, 1000)}
		for j := range large[i].inlined {
			large[i].inlined[j] = "q.g"
		}
	}
	big, _ := synthGoImage(large)
	tab, err := findGoFuncTab(synthExe(big))
	if err != nil {
		t.Fatal(err)
	}
	tab.work = goWorkMax - 1000*300*2 + 1 // the 300 trees and index tables overrun it by one
	if err := tab.names(func(string) {}); !errors.Is(err, errGoWork) {
		t.Errorf("work budget: %v, want errGoWork", err)
	}
	for cut := 0; cut < len(img); cut += 7 {
		_, _ = readGoSymbols(synthExe(img[:cut]), &debug.BuildInfo{})
	}
}

func FuzzReadGoSymbols(f *testing.F) {
	img, _ := synthGoImage([]synthFunc{{name: "main.main", inlined: []string{"net/http.(*Server).Serve"}}, {name: "x.y"}})
	f.Add(img)
	f.Fuzz(func(t *testing.T, data []byte) {
		syms, err := readGoSymbols(synthExe(data), &debug.BuildInfo{Path: "p"})
		if err == nil && syms == nil {
			t.Fatal("no error and no symbols")
		}
	})
}
