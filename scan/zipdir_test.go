package scan

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
)

// hugeDirectory is a zip of n central directory headers of one-byte names and nothing else, generated on read: the
// 11-million-entry directory of the issue is half a gigabyte that no test should hold.
type hugeDirectory struct{ n int64 }

const hugeHeaderLen = zipDirHeaderLen + 1

func (h hugeDirectory) size() int64 { return h.n*hugeHeaderLen + zipEndLen }

func (h hugeDirectory) header() []byte {
	b := make([]byte, hugeHeaderLen)
	binary.LittleEndian.PutUint32(b, zipSigDirHeader)
	binary.LittleEndian.PutUint16(b[28:], 1)
	b[zipDirHeaderLen] = 'a'
	return b
}

func (h hugeDirectory) end() []byte {
	b := make([]byte, zipEndLen)
	binary.LittleEndian.PutUint32(b, zipSigEnd)
	binary.LittleEndian.PutUint16(b[8:], uint16(h.n))
	binary.LittleEndian.PutUint16(b[10:], uint16(h.n))
	binary.LittleEndian.PutUint32(b[12:], uint32(h.n*hugeHeaderLen))
	return b
}

func (h hugeDirectory) ReadAt(p []byte, off int64) (int, error) {
	hdr, end := h.header(), h.end()
	dirLen := h.n * hugeHeaderLen
	for i := range p {
		o := off + int64(i)
		switch {
		case o >= h.size():
			return i, io.EOF
		case o >= dirLen:
			p[i] = end[o-dirLen]
		default:
			p[i] = hdr[o%hugeHeaderLen]
		}
	}
	return len(p), nil
}

// TestZipDirectoryHostileCount: a jar whose central directory holds 11 million headers is refused before
// archive/zip builds an entry for any of them, with a few MiB allocated (archive/zip alone would take gigabytes).
func TestZipDirectoryHostileCount(t *testing.T) {
	h := hugeDirectory{n: 11_000_000}
	// The generator is right: archive/zip accepts a small one and finds every entry.
	small := hugeDirectory{n: 1000}
	if zr, err := zip.NewReader(small, small.size()); err != nil || len(zr.File) != 1000 {
		t.Fatalf("generator: %v", err)
	}
	a := NewJava().(*javaAnalyzer)
	var errs []string
	w := &javaWalk{a: a, ctx: context.Background(), budget: a.maxTotal, entries: a.maxTotalEntries,
		fail: func(p string, err error) { errs = append(errs, err.Error()) }}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	err := w.archive(h, h.size(), "huge.jar", "huge.jar", 1)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, errZipDirectory) || !strings.Contains(err.Error(), "more than 100000 entries") {
		t.Errorf("err = %v", err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d KiB", alloc>>10)
	if alloc > 4<<20 {
		t.Errorf("allocated %d MiB for a refused directory", alloc>>20)
	}
}

// TestZipDirectoryBytes: few entries with long names are refused by the directory's bytes; the limits are those
// of the analyzer, and a directory just within them is read.
func TestZipDirectoryBytes(t *testing.T) {
	long := strings.Repeat("n", 60000)
	var entries []jarEntry
	for i := range 5 {
		entries = append(entries, jarEntry{name: long + string(rune('a'+i)), data: []byte("x")})
	}
	jar := buildJar(t, entries...)
	r := bytes.NewReader(jar)
	if _, err := zipDirectoryOf(r, r.Size(), 100, 200_000); !errors.Is(err, errZipDirectory) {
		t.Errorf("5 x 60 KB names under a 200 KB bound: err = %v", err)
	}
	d, err := zipDirectoryOf(r, r.Size(), 100, 400_000)
	if err != nil || d.entries != 5 || d.bytes < 300_000 {
		t.Errorf("under a 400 KB bound: %+v, %v", d, err)
	}
}

// TestZipDirectoryMatches: on real and built archives, including one with data before it (a self-extracting jar)
// and a zip64 one, zipDirectoryOf counts exactly the entries archive/zip finds.
func TestZipDirectoryMatches(t *testing.T) {
	inputs := map[string][]byte{
		"slf4j-simple": javaFixture(t, "slf4j-simple.jar"),
		"asm-tree":     javaFixture(t, "asm-tree-9.4.jar"),
		"built":        buildJar(t, pomEntry("a", "b", "1"), jarEntry{name: "x", data: []byte("y")}),
		"empty":        buildJar(t),
		"prepended":    append([]byte("#!/bin/sh\nexec java -jar \"$0\"\n"), buildJar(t, pomEntry("a", "b", "1"))...),
		"zip64":        zip64Jar(t),
	}
	for name, data := range inputs {
		r := bytes.NewReader(data)
		zr, err := zip.NewReader(r, r.Size())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		d, err := zipDirectoryOf(r, r.Size(), 1<<30, 1<<40)
		if err != nil || d.entries != len(zr.File) {
			t.Errorf("%s: counted %d entries (%v), archive/zip %d", name, d.entries, err, len(zr.File))
		}
	}
}

// zip64Jar is a small archive with a zip64 end record (archive/zip writes one when the entry count needs it, so
// the end record is patched to the zip64 markers).
func zip64Jar(t testing.TB) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range []string{"a", "b"} {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: n, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(n))
	}
	zw.Close()
	b := buf.Bytes()
	// Rewrite as zip64: locator and zip64 end record before the end record, whose fields become markers.
	end := b[len(b)-zipEndLen:]
	dirSize, dirOff := binary.LittleEndian.Uint32(end[12:]), binary.LittleEndian.Uint32(end[16:])
	head := append([]byte(nil), b[:len(b)-zipEndLen]...)
	rec := make([]byte, zipEnd64Len)
	binary.LittleEndian.PutUint32(rec, zipSigEnd64)
	binary.LittleEndian.PutUint64(rec[4:], zipEnd64Len-12)
	binary.LittleEndian.PutUint64(rec[24:], 2)
	binary.LittleEndian.PutUint64(rec[32:], 2)
	binary.LittleEndian.PutUint64(rec[40:], uint64(dirSize))
	binary.LittleEndian.PutUint64(rec[48:], uint64(dirOff))
	loc := make([]byte, zipEnd64LocLen)
	binary.LittleEndian.PutUint32(loc, zipSigEnd64Loc)
	binary.LittleEndian.PutUint64(loc[8:], uint64(len(head)))
	binary.LittleEndian.PutUint32(loc[16:], 1)
	newEnd := append([]byte(nil), end...)
	binary.LittleEndian.PutUint16(newEnd[8:], 0xffff)
	binary.LittleEndian.PutUint16(newEnd[10:], 0xffff)
	binary.LittleEndian.PutUint32(newEnd[12:], 0xffffffff)
	binary.LittleEndian.PutUint32(newEnd[16:], 0xffffffff)
	out := append(head, rec...)
	out = append(out, loc...)
	return append(out, newEnd...)
}

// FuzzZipDirectory: zipDirectoryOf never counts fewer entries than archive/zip builds, so its bound holds for
// whatever archive/zip accepts.
func FuzzZipDirectory(f *testing.F) {
	f.Add(javaFixture(f, "slf4j-simple.jar"))
	f.Add(buildJar(f, pomEntry("a", "b", "1")))
	f.Add(zip64Jar(f))
	f.Add(append([]byte("prefix"), buildJar(f, jarEntry{name: "x", data: []byte("y")})...))
	small := hugeDirectory{n: 3}
	b := make([]byte, small.size())
	small.ReadAt(b, 0)
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		d, err := zipDirectoryOf(r, r.Size(), 1<<30, 1<<40)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := zip.NewReader(r, r.Size())
		if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
			return
		}
		if len(zr.File) > d.entries {
			t.Errorf("counted %d entries, archive/zip built %d", d.entries, len(zr.File))
		}
	})
}

// TestZipDirectoryNested: a nested jar with a hostile directory is refused by the same check, on its own: the outer
// archive's package is still reported, and the refusal names the nested path.
func TestZipDirectoryNested(t *testing.T) {
	h := hugeDirectory{n: 150_000}
	inner := make([]byte, h.size())
	h.ReadAt(inner, 0)
	outer := buildJar(t, pomEntry("org.example", "outer", "1.0"), jarEntry{name: "BOOT-INF/lib/huge.jar", data: inner, store: true})
	fsys := fstest.MapFS{"app.jar": javaFile(outer)}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res := Run(context.Background(), fsys, []Analyzer{NewJava()})
	runtime.ReadMemStats(&after)
	if got := gobinLines(res.Packages); !reflect.DeepEqual(got, []string{"org.example:outer 1.0 app.jar"}) {
		t.Errorf("packages %v", got)
	}
	if len(res.Errors) != 1 || res.Errors[0].Path != "app.jar!BOOT-INF/lib/huge.jar" || !strings.Contains(res.Errors[0].Err, "more than 100000 entries") {
		t.Errorf("errors %+v", res.Errors)
	}
	// archive/zip would build 150,000 entries (about 30 MiB); the check reads the directory through a small buffer.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("allocated %d MiB", alloc>>20)
	}
}
