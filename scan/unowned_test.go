package scan

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/rootscan/rootscan/report"
)

// Testdata provenance: testdata/unowned/info/{dash,coreutils}.{list,md5sums} come from Debian 12's real packages
// dash_0.5.12-2_amd64.deb and coreutils_9.1-1_amd64.deb:
//
//	(echo /.; dpkg-deb --fsys-tarfile X.deb | tar -t | sed -e 's#^\./#/#' -e 's#/$##' | grep -v '^$') > X.list
//	dpkg-deb -e X.deb ctrl && cp ctrl/md5sums X.md5sums
//
// The .list files are byte-identical to the ones dpkg itself wrote on a Debian 12 host with the same versions
// installed (/var/lib/dpkg/info/dash.list, coreutils.list). They name /bin/dash and /bin/ls, while a merged-/usr root
// holds usr/bin/dash behind bin -> usr/bin: the case the analyzer must resolve.

// unownedRoot is a merged-/usr root: dpkg (full and distroless), apk and rpm databases, packaged executables under
// their listed and their real paths, and what no package owns.
func unownedRoot(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"bin":  "->usr/bin",
		"sbin": "->usr/sbin",
		"lib":  "->/usr/lib",
		// Owned: dash.list and coreutils.list say /bin/..., the files are in usr/bin.
		"usr/bin/dash":  "+x:\x7fELF dash",
		"usr/bin/ls":    "+x:\x7fELF ls",
		"usr/bin/mkdir": "+x:\x7fELF mkdir",
		// Owned through a diversion of coreutils' /bin/sleep.
		"usr/bin/sleep.distrib": "+x:\x7fELF sleep",
		// Owned by distroless's status.d/libc6.md5sums (lib/x86_64-linux-gnu/..., through lib -> /usr/lib).
		"usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": "+x:\x7fELF ld.so",
		// Owned by apk (F:bin R:busybox).
		"usr/bin/busybox": "+x:\x7fELF busybox",
		// Owned by Fedora 35's rpm database.
		"usr/bin/bash": "+x:\x7fELF bash",
		// Not owned.
		"usr/local/bin/curl":     "+x:\x7fELF curl, copied in",
		"usr/local/bin/run.sh":   "+x:#!/bin/sh\necho run\n",
		"usr/local/bin/data.bin": "+x:just data with an x bit",
		"usr/local/bin/empty":    "+x:",
		"usr/local/bin/link":     "->curl",
		"opt/app/server":         "\x7fELF without an x bit",
		"usr/share/doc/x/hidden": "+x:\x7fELF in the documentation tree",
		"var/lib/dpkg/diversions": "/bin/sleep\n/bin/sleep.distrib\nlocal-tool\n" +
			"/usr/bin/gone\n/usr/bin/gone.real\n:\n",
	}
	driftTree(t, root, files)
	copyTestdata := func(src, dst string) {
		b := testdata(t, src)
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(dst)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, dst), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"dash.list", "dash.md5sums", "coreutils.list", "coreutils.md5sums"} {
		copyTestdata("unowned/info/"+f, "var/lib/dpkg/info/"+f)
	}
	copyTestdata("dpkg/status.d/libc6.md5sums", "var/lib/dpkg/status.d/libc6.md5sums")
	copyTestdata("apk/installed", "usr/lib/apk/db/installed")
	if err := os.MkdirAll(filepath.Join(root, "var/lib/rpm"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "var/lib/rpm/rpmdb.sqlite"), gunzipTestdata(t, "rpm/fedora35.rpmdb.sqlite.gz"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestUnownedFiles(t *testing.T) {
	requireRootForDrift(t)
	root := openDriftRoot(t, unownedRoot(t))
	res := Run(context.Background(), root, []Analyzer{NewUnownedFiles()})
	if len(res.Errors) != 0 {
		t.Errorf("errors: %+v", res.Errors)
	}
	want := []report.File{
		{Path: "usr/local/bin/curl", Size: 20, SHA256: sha("\x7fELF curl, copied in"), Kind: KindELF},
		{Path: "usr/local/bin/run.sh", Size: 19, SHA256: sha("#!/bin/sh\necho run\n"), Kind: KindScript},
	}
	if !reflect.DeepEqual(res.Files, want) {
		t.Errorf("files:\n%+v\nwant:\n%+v", res.Files, want)
	}
}

// Without any package database every executable is unowned; with a small bound the result says it is cut.
func TestUnownedFilesBounds(t *testing.T) {
	requireRootForDrift(t)
	dir := unownedRoot(t)
	if err := os.RemoveAll(filepath.Join(dir, "var")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "usr/lib/apk")); err != nil {
		t.Fatal(err)
	}
	root := openDriftRoot(t, dir)
	res := Run(context.Background(), root, []Analyzer{NewUnownedFiles()})
	var got []string
	for _, f := range res.Files {
		got = append(got, f.Path+" "+f.Kind)
	}
	want := []string{"usr/bin/bash elf", "usr/bin/busybox elf", "usr/bin/dash elf", "usr/bin/ls elf", "usr/bin/mkdir elf",
		"usr/bin/sleep.distrib elf", "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 elf", "usr/local/bin/curl elf",
		"usr/local/bin/run.sh script"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("files %q\nwant %q", got, want)
	}

	a := NewUnownedFiles().(*unownedFiles)
	a.maxCandidates, a.maxHashes, a.maxHashSize = 4, 2, 11
	res = Run(context.Background(), root, []Analyzer{a})
	var errs []string
	for _, e := range res.Errors {
		errs = append(errs, e.Path+": "+e.Err)
	}
	wantErrs := []string{
		": root too large: more than 4 executables; the rest were not checked for an owner",
		"usr/bin/busybox: not hashed: 12 bytes is above the 11 byte limit",
		": more than 2 unowned executables: the rest are listed without a hash",
	}
	if !reflect.DeepEqual(errs, wantErrs) {
		t.Errorf("errors %q\nwant %q", errs, wantErrs)
	}
	if len(res.Files) != 4 || res.Files[0].SHA256 == "" || res.Files[1].SHA256 != "" || res.Files[2].SHA256 == "" || res.Files[3].SHA256 != "" {
		t.Errorf("bounded files: %+v", res.Files)
	}
}

// Listed directories resolve through the root's links like the kernel resolves them inside the root.
func TestUnownedResolveDir(t *testing.T) {
	fsys := fstest.MapFS{
		"usr/bin":        {Mode: 0o755 | os.ModeDir},
		"bin":            {Mode: os.ModeSymlink, Data: []byte("usr/bin")},
		"abs":            {Mode: os.ModeSymlink, Data: []byte("/usr/bin")},
		"up":             {Mode: os.ModeSymlink, Data: []byte("../../../usr")},
		"chain":          {Mode: os.ModeSymlink, Data: []byte("bin")},
		"loop1":          {Mode: os.ModeSymlink, Data: []byte("loop2")},
		"loop2":          {Mode: os.ModeSymlink, Data: []byte("loop1")},
		"usr/lib64":      {Mode: os.ModeSymlink, Data: []byte("lib")},
		"usr/lib":        {Mode: 0o755 | os.ModeDir},
		"opt/rel/target": {Mode: os.ModeSymlink, Data: []byte("../../usr/./lib64")},
	}
	s := newOwnership(fsys, nil)
	for in, want := range map[string]string{
		".": ".", "bin": "usr/bin", "abs": "usr/bin", "up/bin": "usr/bin", "chain": "usr/bin", "usr/bin": "usr/bin",
		"loop1": "loop1", "opt/rel/target": "usr/lib", "missing/dir": "missing/dir", "bin/sub": "usr/bin/sub",
	} {
		if got := s.resolveDir(in); got != want {
			t.Errorf("resolveDir(%q) = %q, want %q", in, got, want)
		}
	}
}

// Ownership lists are read from the image: hostile ones must not crash, hang or claim what they do not list.
func FuzzUnownedLists(f *testing.F) {
	f.Add(testdata(f, "unowned/info/dash.list"), testdata(f, "unowned/info/dash.md5sums"), testdata(f, "apk/installed"), []byte("/bin/sleep\n/bin/sleep.x\np\n"))
	f.Add([]byte("/.\n/bin\n/bin/dash\n"), []byte("x  bin/dash\n"), []byte("F:\nR:dash\nF:bin\nR:\n"), []byte("/a\n"))
	f.Fuzz(func(t *testing.T, list, sums, apk, diversions []byte) {
		fsys := fstest.MapFS{
			"bin":                                 {Mode: os.ModeSymlink, Data: []byte("usr/bin")},
			"usr/bin/dash":                        {Mode: 0o755, Data: []byte("\x7fELF")},
			"usr/bin/other":                       {Mode: 0o755, Data: []byte("#!/bin/sh")},
			"var/lib/dpkg/info/p.list":            {Data: list},
			"var/lib/dpkg/info/q.md5sums":         {Data: sums},
			"var/lib/dpkg/status.d/r.md5sums":     {Data: sums},
			"var/lib/dpkg/diversions":             {Data: diversions},
			"lib/apk/db/installed":                {Data: apk},
			"usr/share/doc/never/opened/anything": {Mode: 0o755, Data: []byte("\x7fELF")},
		}
		res := Run(context.Background(), fsys, []Analyzer{NewUnownedFiles()})
		for _, fl := range res.Files {
			if fl.Path != "usr/bin/dash" && fl.Path != "usr/bin/other" {
				t.Fatalf("listed %q", fl.Path)
			}
			if strings.Contains(string(list)+string(sums)+string(apk)+string(diversions), "other") {
				continue
			}
			if fl.Path == "usr/bin/other" && fl.Kind != KindScript {
				t.Fatalf("other: %+v", fl)
			}
		}
	})
}

// BenchmarkUnownedFiles: a merged-/usr root with 5,000 packaged executables spread over 50 dpkg .list files (each
// also listing 100 non-executable paths, as real lists do), and 10 unowned ones: the walk, the streaming strike-out
// through bin -> usr/bin, and hashing the 10 survivors (64 KiB each).
func BenchmarkUnownedFiles(b *testing.B) {
	requireRootForDrift(b)
	dir := b.TempDir()
	driftTree(b, dir, map[string]string{"bin": "->usr/bin", "var/lib/dpkg/info/": ""})
	if err := os.MkdirAll(filepath.Join(dir, "usr/bin"), 0o755); err != nil {
		b.Fatal(err)
	}
	for p := range 50 {
		var list strings.Builder
		list.WriteString("/.\n/bin\n")
		for i := range 100 {
			name := fmt.Sprintf("prog-%02d-%03d", p, i)
			if err := os.WriteFile(filepath.Join(dir, "usr/bin", name), []byte("\x7fELF"), 0o755); err != nil {
				b.Fatal(err)
			}
			fmt.Fprintf(&list, "/bin/%s\n/usr/share/doc/pkg%02d/file%03d\n", name, p, i)
		}
		if err := os.WriteFile(filepath.Join(dir, "var/lib/dpkg/info", fmt.Sprintf("pkg%02d.list", p)), []byte(list.String()), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	big := make([]byte, 64<<10)
	copy(big, "\x7fELF")
	for i := range 10 {
		if err := os.WriteFile(filepath.Join(dir, "usr/bin", fmt.Sprintf("zz-unowned-%d", i)), big, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	root := openDriftRoot(b, dir)
	analyzers := []Analyzer{NewUnownedFiles()}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res := Run(context.Background(), root, analyzers)
		if len(res.Files) != 10 || len(res.Errors) != 0 {
			b.Fatalf("%d files, errors %v", len(res.Files), res.Errors)
		}
	}
}

// The allocation-free line filter (mayOwn) must never drop a line the full parse would strike a candidate with:
// both paths run on the same candidates, diversions and line, and must own the same set.
func FuzzOwnershipMayOwn(f *testing.F) {
	f.Add([]byte("/bin/dash"), false, "usr/bin/dash", "/bin/sleep\n/bin/sleep.distrib\np\n")
	f.Add([]byte("0123456789abcdef0123456789abcdef  bin/dash"), true, "usr/bin/dash", "")
	f.Add([]byte("\\0123456789abcdef0123456789abcdef  bin/da\\\\sh"), true, "usr/bin/da\\sh", "")
	f.Add([]byte("0123456789abcdef0123456789abcdef *dash"), true, "dash", "")
	f.Add([]byte("./usr/bin/sleep"), false, "usr/bin/sleep.distrib", "/usr/bin/sleep\n/usr/bin/sleep.distrib\np\n")
	f.Add([]byte("/"), false, "x", "")
	f.Fuzz(func(t *testing.T, line []byte, md5sums bool, cand, diversions string) {
		if strings.ContainsAny(string(line), "\n") {
			return // the scanner hands over single lines
		}
		fsys := fstest.MapFS{
			"bin":                     {Mode: os.ModeSymlink, Data: []byte("usr/bin")},
			"var/lib/dpkg/diversions": {Data: []byte(diversions)},
		}
		cands := []report.File{{Path: "usr/bin/dash"}, {Path: "usr/bin/sleep.distrib"}, {Path: "dash"}, {Path: cand}}
		full, fast := newOwnership(fsys, cands), newOwnership(fsys, cands)
		full.readDiversions()
		fast.readDiversions()
		if md5sums {
			if e := parseMD5sums(line); len(e.Entries) == 1 {
				full.own(e.Entries[0].Path)
			}
		} else if p, ok := debRelPath(string(line)); ok {
			full.own(p)
		}
		if md5sums {
			fast.sumLine(line)
		} else {
			fast.listLine(line)
		}
		if !reflect.DeepEqual(full.owned, fast.owned) {
			t.Fatalf("line %q (md5sums %v), candidate %q: full parse owns %v, filtered %v", line, md5sums, cand, full.owned, fast.owned)
		}
	})
}

// TestUnownedHashBudget: 16 sparse 256 MiB files with an ELF header (the 25 seconds of hashing) are listed
// unhashed and say why; hard links to one program are hashed once and share the sum; the per-scan byte budget
// leaves the rest unhashed, once reported.
func TestUnownedHashBudget(t *testing.T) {
	dir := t.TempDir()
	driftTree(t, dir, map[string]string{
		"usr/local/bin/a": "+x:\x7fELF twenty bytes...",
		"usr/local/bin/b": "+x:\x7fELF another twenty b",
	})
	for _, l := range []string{"usr/local/bin/a-link1", "usr/local/bin/a-link2"} {
		if err := os.Link(filepath.Join(dir, "usr/local/bin/a"), filepath.Join(dir, l)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 16 {
		p := filepath.Join(dir, "opt/sparse", fmt.Sprint(i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("\x7fELF"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, 256<<20); err != nil {
			t.Fatal(err)
		}
	}
	root := openDriftRoot(t, dir)
	a := NewUnownedFiles().(*unownedFiles)
	a.maxHashBytes = 30 // a and its links (one inode, 20 bytes), not b
	res := Run(context.Background(), root, []Analyzer{a})
	sums := map[string]string{}
	for _, f := range res.Files {
		sums[f.Path] = f.SHA256
	}
	want := sha("\x7fELF twenty bytes...")
	for _, p := range []string{"usr/local/bin/a", "usr/local/bin/a-link1", "usr/local/bin/a-link2"} {
		if sums[p] != want {
			t.Errorf("%s: sum %q", p, sums[p])
		}
	}
	if len(res.Files) != 20 || sums["usr/local/bin/b"] != "" || sums["opt/sparse/3"] != "" {
		t.Errorf("files %+v", res.Files)
	}
	sparse, budget := 0, 0
	for _, e := range res.Errors {
		switch {
		case strings.HasPrefix(e.Path, "opt/sparse/") && strings.Contains(e.Err, "not hashed: sparse file of 268435456 bytes"):
			sparse++
		case e.Path == "" && strings.Contains(e.Err, "hashing budget"):
			budget++
		default:
			t.Errorf("error %+v", e)
		}
	}
	if sparse != 16 || budget != 1 {
		t.Errorf("%d sparse and %d budget errors", sparse, budget)
	}
}
