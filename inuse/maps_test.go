package inuse

import (
	"slices"
	"strings"
	"testing"
)

// A listing as the kernel prints it (a sleep process run from a root at /tmp/r, plus the special mappings).
const mapsSample = `55d5c6a00000-55d5c6a02000 r--p 00000000 fd:01 1311 /tmp/r/usr/bin/sleep
55d5c6a02000-55d5c6a06000 r-xp 00002000 fd:01 1311 /tmp/r/usr/bin/sleep
55d5c6a06000-55d5c6a08000 r--p 00006000 fd:01 1311 /tmp/r/usr/bin/sleep
55d5c7fb6000-55d5c7fd7000 rw-p 00000000 00:00 0                          [heap]
7f1b5e228000-7f1b5e3bd000 r-xp 00028000 fd:01 2201 /tmp/r/usr/lib/x86_64-linux-gnu/libc.so.6
7f1b5e400000-7f1b5e401000 r-xp 00001000 fd:01 2299 /tmp/r/usr/lib/x86_64-linux-gnu/libold.so.1 (deleted)
7f1b5e500000-7f1b5e501000 r-xp 00001000 fd:01 2300 /tmp/r/opt/my app/lib x.so
7f1b5e600000-7f1b5e601000 r-xp 00000000 00:0e 77   anon_inode:[perf_event]
7f1b5e700000-7f1b5e701000 r-xp 00000000 00:00 0
7f1b5e800000-7f1b5e801000 r-xp 00001000 fd:01 2201 /tmp/r/usr/lib/x86_64-linux-gnu/libc.so.6
7ffd1c7f2000-7ffd1c7f4000 r-xp 00000000 00:00 0                          [vdso]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
`

func TestParseMaps(t *testing.T) {
	got, err := parseMapsAll(strings.NewReader(mapsSample))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/tmp/r/usr/bin/sleep", "/tmp/r/usr/lib/x86_64-linux-gnu/libc.so.6",
		"/tmp/r/usr/lib/x86_64-linux-gnu/libold.so.1", "/tmp/r/opt/my app/lib x.so"}
	if !slices.Equal(got, want) {
		t.Errorf("parseMaps = %q\nwant %q", got, want)
	}
	if got, want := trimRoot(append(got, "/tmp/rr/x", "/host/bin/sh"), "/tmp/r/"), []string{"/usr/bin/sleep",
		"/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libold.so.1", "/opt/my app/lib x.so"}; !slices.Equal(got, want) {
		t.Errorf("trimRoot = %q\nwant %q", got, want)
	}
	if got := trimRoot([]string{"/a"}, "/"); !slices.Equal(got, []string{"/a"}) {
		t.Errorf("trimRoot under / = %q", got)
	}
}

// A listing past the byte bound, or with an overlong line, is an error with what was read before; it never grows
// without bound.
func TestParseMapsBounds(t *testing.T) {
	line := "7f1b5e228000-7f1b5e3bd000 r-xp 00028000 fd:01 2201 /lib/x.so\n"
	long := strings.Repeat(line, mapsMaxBytes/len(line)+2)
	got, err := parseMapsAll(strings.NewReader(long))
	if err == nil || len(got) != 1 {
		t.Errorf("over the byte bound: %d paths, err %v", len(got), err)
	}
	got, err = parseMapsAll(strings.NewReader(line + "0-1 r-xp 0 0:0 1 /" + strings.Repeat("a", mapsMaxLine) + "\n"))
	if err == nil || len(got) != 1 {
		t.Errorf("overlong line: %d paths, err %v", len(got), err)
	}
}

func FuzzParseMaps(f *testing.F) {
	f.Add([]byte(mapsSample))
	f.Add([]byte("0-1 r-xp 0 0:0 1 /\n0-1 r-x 0 0:0 1 /a\n  0-1   r-xp 0 0:0 1     / (deleted)\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		paths, _ := parseMapsAll(strings.NewReader(string(b)))
		seen := map[string]bool{}
		for _, p := range paths {
			if !strings.HasPrefix(p, "/") || strings.Contains(p, "\n") || seen[p] {
				t.Fatalf("bad path %q in %q", p, paths)
			}
			seen[p] = true
			if !strings.Contains(string(b), p) {
				t.Fatalf("path %q not in the input", p)
			}
		}
	})
}
