package scan

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/rootscan/rootscan/report"
)

// Testdata provenance: testdata/java holds jars, verbatim, of Debian 12 (bookworm) packages fetched with apt-get
// download and unpacked with dpkg-deb -x (/usr/share/java/*.jar): libcommons-lang3-java 3.12.0-2+deb12u1
// (commons-lang3.jar), libslf4j-java 1.7.32-1 (slf4j-api.jar, slf4j-simple.jar). Each carries one
// META-INF/maven/<group>/<artifact>/pom.properties.

// javaFixture returns a Debian jar from testdata.
func javaFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/java", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jarEntry is one file of an archive built by buildJar; stored entries are not compressed (as Spring Boot requires
// for BOOT-INF/lib).
type jarEntry struct {
	name  string
	data  []byte
	store bool
}

func buildJar(t testing.TB, entries ...jarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.store {
			h.Method = zip.Store
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func pomEntry(g, a, v string) jarEntry {
	return jarEntry{name: "META-INF/maven/" + g + "/" + a + "/pom.properties",
		data: []byte("#Created by Apache Maven\ngroupId=" + g + "\nartifactId=" + a + "\nversion=" + v + "\n")}
}

func javaFile(b []byte) *fstest.MapFile { return &fstest.MapFile{Data: b, Mode: 0o644} }

func TestJavaDebianJars(t *testing.T) {
	root := t.TempDir()
	for _, j := range []string{"commons-lang3.jar", "slf4j-api.jar", "slf4j-simple.jar"} {
		gobinWrite(t, root, "usr/share/java/"+j, javaFixture(t, j), 0o644)
	}
	// Debian's links to the same jar must not list it again.
	if err := os.MkdirAll(filepath.Join(root, "usr/share/maven-repo/org/slf4j/slf4j-api/1.7.32"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../java/slf4j-api.jar", filepath.Join(root, "usr/share/maven-repo/org/slf4j/slf4j-api/1.7.32/slf4j-api-1.7.32.jar")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("slf4j-api.jar", filepath.Join(root, "usr/share/java/slf4j-api-1.7.32.jar")); err != nil {
		t.Fatal(err)
	}
	res := Run(context.Background(), gobinOpen(t, root), []Analyzer{NewJava()})
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
	want := []string{
		"org.apache.commons:commons-lang3 3.12.0 usr/share/java/commons-lang3.jar",
		"org.slf4j:slf4j-api 1.7.32 usr/share/java/slf4j-api.jar",
		"org.slf4j:slf4j-simple 1.7.32 usr/share/java/slf4j-simple.jar",
	}
	if got := gobinLines(res.Packages); !reflect.DeepEqual(got, want) {
		t.Errorf("packages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	purls := map[string]string{
		"org.apache.commons:commons-lang3": "pkg:maven/org.apache.commons/commons-lang3@3.12.0",
		"org.slf4j:slf4j-api":              "pkg:maven/org.slf4j/slf4j-api@1.7.32",
		"org.slf4j:slf4j-simple":           "pkg:maven/org.slf4j/slf4j-simple@1.7.32",
	}
	for _, p := range res.Packages {
		if p.Ecosystem != report.EcosystemMaven || p.FoundBy != "java" || p.Arch != "" || p.Source != "" {
			t.Errorf("%s: %+v", p.Name, p)
		}
		if p.PURL != purls[p.Name] {
			t.Errorf("%s: purl %q, want %q", p.Name, p.PURL, purls[p.Name])
		}
	}
}

// TestJavaNested builds a Spring Boot fat jar around real jars, a war holding it, and a chain of archives deeper than
// the analyzer opens.
func TestJavaNested(t *testing.T) {
	lang3, api, simple := javaFixture(t, "commons-lang3.jar"), javaFixture(t, "slf4j-api.jar"), javaFixture(t, "slf4j-simple.jar")
	inner := buildJar(t, pomEntry("com.example", "inner", "0.1"))
	deep := buildJar(t, jarEntry{name: "inner.jar", data: inner})
	fat := buildJar(t,
		jarEntry{name: "META-INF/MANIFEST.MF", data: []byte("Manifest-Version: 1.0\nMain-Class: org.springframework.boot.loader.JarLauncher\n")},
		pomEntry("com.example", "app", "1.0.0"),
		jarEntry{name: "BOOT-INF/classes/com/example/App.class", data: []byte{0xca, 0xfe, 0xba, 0xbe}},
		jarEntry{name: "BOOT-INF/lib/", store: true},
		jarEntry{name: "BOOT-INF/lib/commons-lang3-3.12.0.jar", data: lang3, store: true},
		jarEntry{name: "BOOT-INF/lib/slf4j-api-1.7.32.jar", data: api},
		jarEntry{name: "BOOT-INF/lib/deep.jar", data: deep, store: true},
		// Not a Maven coordinate path: ignored.
		jarEntry{name: "META-INF/maven/pom.properties", data: []byte("groupId=x\nartifactId=y\nversion=1\n")},
	)
	war := buildJar(t,
		jarEntry{name: "WEB-INF/web.xml", data: []byte("<web-app/>")},
		jarEntry{name: "WEB-INF/lib/slf4j-simple-1.7.32.jar", data: simple},
		jarEntry{name: "WEB-INF/lib/app.jar", data: fat, store: true},
	)
	fsys := fstest.MapFS{
		"opt/app/app.jar":              javaFile(fat),
		"srv/shop.war":                 javaFile(war),
		"srv/notes.txt":                javaFile([]byte("not a jar")),
		"usr/share/java/slf4j-api.jar": javaFile(api),
	}
	res := Run(context.Background(), fsys, []Analyzer{NewJava()})
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
	want := []string{
		"com.example:app 1.0.0 opt/app/app.jar,srv/shop.war!WEB-INF/lib/app.jar",
		// Depth 3 inside app.jar; inside the war it would be depth 4, not opened.
		"com.example:inner 0.1 opt/app/app.jar!BOOT-INF/lib/deep.jar!inner.jar",
		"org.apache.commons:commons-lang3 3.12.0 opt/app/app.jar!BOOT-INF/lib/commons-lang3-3.12.0.jar," +
			"srv/shop.war!WEB-INF/lib/app.jar!BOOT-INF/lib/commons-lang3-3.12.0.jar",
		"org.slf4j:slf4j-api 1.7.32 opt/app/app.jar!BOOT-INF/lib/slf4j-api-1.7.32.jar," +
			"srv/shop.war!WEB-INF/lib/app.jar!BOOT-INF/lib/slf4j-api-1.7.32.jar,usr/share/java/slf4j-api.jar",
		"org.slf4j:slf4j-simple 1.7.32 srv/shop.war!WEB-INF/lib/slf4j-simple-1.7.32.jar",
	}
	if got := gobinLines(res.Packages); !reflect.DeepEqual(got, want) {
		t.Errorf("packages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// An FS whose files cannot be read at an offset gets the same answer (the archive is read into memory).
	res = Run(context.Background(), streamFS{fsys}, []Analyzer{NewJava()})
	if got := gobinLines(res.Packages); len(res.Errors) != 0 || !reflect.DeepEqual(got, want) {
		t.Errorf("stream FS: errors %v, packages:\n%s", res.Errors, strings.Join(got, "\n"))
	}
}

// streamFS hides io.ReaderAt from the files it opens.
type streamFS struct{ fstest.MapFS }

type streamFile struct{ fs.File }

func (s streamFS) Open(name string) (fs.File, error) {
	f, err := s.MapFS.Open(name)
	if err != nil {
		return nil, err
	}
	return streamFile{f}, nil
}

func TestJavaBadArchives(t *testing.T) {
	good := buildJar(t, pomEntry("org.example", "good", "2.0"))
	corruptNested := buildJar(t,
		pomEntry("org.example", "outer", "1.0"),
		jarEntry{name: "lib/broken.jar", data: []byte("PK\x03\x04 not really a zip")},
		jarEntry{name: "META-INF/maven/org.example/noversion/pom.properties", data: []byte("groupId=org.example\nartifactId=noversion\n")},
		jarEntry{name: "lib/good.jar", data: good},
	)
	fsys := fstest.MapFS{
		"app/corrupt.jar":   javaFile([]byte("this is not a zip file at all")),
		"app/truncated.jar": javaFile(good[:len(good)-10]),
		"app/outer.ear":     javaFile(corruptNested),
		"app/dir.jar":       &fstest.MapFile{Mode: fs.ModeDir | 0o755},
	}
	res := Run(context.Background(), fsys, []Analyzer{NewJava()})
	want := []string{
		"org.example:good 2.0 app/outer.ear!lib/good.jar",
		"org.example:outer 1.0 app/outer.ear",
	}
	if got := gobinLines(res.Packages); !reflect.DeepEqual(got, want) {
		t.Errorf("packages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantErr := map[string]string{
		"app/corrupt.jar":              "read zip: zip: not a valid zip file",
		"app/truncated.jar":            "read zip: zip: not a valid zip file",
		"app/outer.ear!lib/broken.jar": "read zip: zip: not a valid zip file",
		"app/outer.ear!META-INF/maven/org.example/noversion/pom.properties": `artifact org.example:noversion: invalid or missing version ""`,
	}
	gotErr := map[string]string{}
	for _, e := range res.Errors {
		if e.Analyzer != "java" {
			t.Errorf("error from %s: %+v", e.Analyzer, e)
		}
		gotErr[e.Path] = e.Err
	}
	if !reflect.DeepEqual(gotErr, wantErr) {
		t.Errorf("errors:\n%v\nwant:\n%v", gotErr, wantErr)
	}
}

var (
	bombOnce sync.Once
	bombData []byte // 1 GiB of zeros, deflated (about 1.3 MiB)
)

// gibZeros returns 1 GiB of zeros as a raw deflate stream.
func gibZeros(t testing.TB) []byte {
	bombOnce.Do(func() {
		var buf bytes.Buffer
		w, _ := flate.NewWriter(&buf, flate.BestSpeed)
		zero := make([]byte, 1<<20)
		for range 1024 {
			w.Write(zero)
		}
		w.Close()
		bombData = buf.Bytes()
	})
	return bombData
}

// bombJar is a jar with one entry that inflates to 1 GiB of zeros; its header claims declared bytes.
func bombJar(t testing.TB, name string, declared uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: name, Method: zip.Deflate, CompressedSize64: uint64(len(gibZeros(t))), UncompressedSize64: declared})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(gibZeros(t))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestJavaZipBomb: nested entries that inflate to 1 GiB are refused with an error for that entry, in bounded time
// and memory, whether their header says so or lies; the rest of the archive is still reported.
func TestJavaZipBomb(t *testing.T) {
	cases := []struct {
		name     string
		declared uint64
		wantErr  string
	}{
		{"honest", 1 << 30, "file exceeds size limit: 1073741824 > 67108864 bytes uncompressed"},
		// archive/zip itself stops reading past the declared size; the LimitReader would stop it at 64 MiB anyway.
		{"lying-small", 1000, "decompress: zip: not a valid zip file"},
		{"lying-just-below-limit", 60 << 20, "decompress: zip: not a valid zip file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			outer := buildJar(t,
				pomEntry("org.example", "victim", "1.0"),
				jarEntry{name: "BOOT-INF/lib/bomb.jar", data: bombJar(t, "lib/x.jar", c.declared), store: true},
				// The bomb as a nested archive itself, compressed, and as pom.properties.
				jarEntry{name: "BOOT-INF/lib/bomb2.jar", data: bombJar(t, "BOOT-INF/lib/zeros.jar", c.declared)},
			)
			var pomBomb []byte
			if c.name == "honest" {
				pomBomb = bombJar(t, "META-INF/maven/a/b/pom.properties", c.declared)
			}
			fsys := fstest.MapFS{"app.jar": javaFile(outer)}
			if pomBomb != nil {
				fsys["pom.jar"] = javaFile(pomBomb)
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			res := Run(context.Background(), fsys, []Analyzer{NewJava()})
			runtime.ReadMemStats(&after)
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("took %v", d)
			}
			// A lying header may make the analyzer allocate what it declares (at most 64 MiB per nested archive).
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("allocated %d MiB in %v", alloc>>20, time.Since(start))
			if alloc > 160<<20 {
				t.Errorf("allocated %d MiB", alloc>>20)
			}
			if got := gobinLines(res.Packages); !reflect.DeepEqual(got, []string{"org.example:victim 1.0 app.jar"}) {
				t.Errorf("packages %v", got)
			}
			wantErr := map[string]string{
				"app.jar!BOOT-INF/lib/bomb.jar!lib/x.jar":               c.wantErr,
				"app.jar!BOOT-INF/lib/bomb2.jar!BOOT-INF/lib/zeros.jar": c.wantErr,
			}
			if pomBomb != nil {
				wantErr["pom.jar!META-INF/maven/a/b/pom.properties"] = "file exceeds size limit: 1073741824 > 65536 bytes uncompressed"
			}
			gotErr := map[string]string{}
			for _, e := range res.Errors {
				gotErr[e.Path] = e.Err
			}
			if !reflect.DeepEqual(gotErr, wantErr) {
				t.Errorf("errors:\n%v\nwant:\n%v", gotErr, wantErr)
			}
		})
	}
}

// TestJavaBudget: one archive may not decompress more than the total budget, however its bytes are spread over
// nested entries, and what was found before the budget ran out is kept.
func TestJavaBudget(t *testing.T) {
	filler := bytes.Repeat([]byte("x"), 1<<20)
	entries := []jarEntry{pomEntry("org.example", "first", "1")}
	for _, n := range []string{"n0", "n1", "n2", "n3", "n4"} {
		// Each nested jar is a little over 1 MiB (its filler is stored) and a few KiB compressed in the outer jar.
		nested := buildJar(t, pomEntry("org.example", n, "1"), jarEntry{name: "data.bin", data: filler, store: true})
		entries = append(entries, jarEntry{name: "lib/" + n + ".jar", data: nested})
	}
	a := NewJava().(*javaAnalyzer)
	a.maxTotal = 3 << 20
	fsys := fstest.MapFS{"big.jar": javaFile(buildJar(t, entries...))}
	res := Run(context.Background(), fsys, []Analyzer{a})
	want := []string{"org.example:first 1 big.jar", "org.example:n0 1 big.jar!lib/n0.jar", "org.example:n1 1 big.jar!lib/n1.jar"}
	if got := gobinLines(res.Packages); !reflect.DeepEqual(got, want) {
		t.Errorf("packages %v", got)
	}
	wantErr := []report.FileError{{Analyzer: "java", Path: "big.jar", Err: "archive decompresses to more than the limit of 3145728 bytes"}}
	if !reflect.DeepEqual(res.Errors, wantErr) {
		t.Errorf("errors %+v", res.Errors)
	}
}

func TestJavaWants(t *testing.T) {
	a := NewJava().(FileAnalyzer)
	for name, want := range map[string]bool{
		"usr/share/java/guava.jar": true, "app/x.WAR": true, "x.ear": true, "var/jenkins/plugins/git.jpi": true,
		"p/git.hpi": true, ".jar": false, "x.jar.sha1": false, "x.zip": false, "jar": false, "lib/xjar": false,
	} {
		if got := a.Wants(name, nil); got != want {
			t.Errorf("Wants(%q) = %v", name, got)
		}
	}
	fsys := fstest.MapFS{"d.jar": &fstest.MapFile{Mode: fs.ModeDir}, "l.jar": &fstest.MapFile{Mode: fs.ModeSymlink, Data: []byte("x.jar")}}
	ents, _ := fsys.ReadDir(".")
	for _, d := range ents {
		if a.Wants(d.Name(), d) {
			t.Errorf("wants %s (%v)", d.Name(), d.Type())
		}
	}
}

func TestParsePomProperties(t *testing.T) {
	for in, want := range map[string]string{
		"groupId=a.b\nartifactId=c\nversion=1.0\n":                         "a.b:c 1.0",
		"# c\n! c\r\ngroupId = a\r\nartifactId: c\r\nversion  =2-SNAPSHOT": "a:c 2-SNAPSHOT",
		"groupId=a\nartifactId=c\n":                                        `error: artifact a:c: invalid or missing version ""`,
		"groupId=a b\nartifactId=c\nversion=1\n":                           `error: invalid or missing groupId "a b"`,
		"groupId=a\nartifactId=c/d\nversion=1\n":                           `error: invalid or missing artifactId "c/d"`,
		"groupId=a\nartifactId=c\nversion=1\x00\n":                         "error: binary content (NUL byte at offset 32)",
	} {
		p, err := parsePomProperties([]byte(in))
		got := p.Name + " " + p.Version
		if err != nil {
			got = "error: " + err.Error()
		}
		if got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

// FuzzJavaArchive: any bytes as a jar give no panic, bounded work, and only well-formed coordinates.
func FuzzJavaArchive(f *testing.F) {
	lang3 := javaFixture(f, "slf4j-simple.jar")
	f.Add(lang3)
	f.Add(buildJar(f, pomEntry("a", "b", "1"), jarEntry{name: "lib/x.jar", data: buildJar(f, pomEntry("c", "d", "2")), store: true}))
	f.Add([]byte("PK\x05\x06" + strings.Repeat("\x00", 18)))
	f.Add(javaFixture(f, "asm-tree-9.4.jar"))
	f.Add(buildJar(f, jarEntry{name: "META-INF/MANIFEST.MF", data: []byte(jdkManifest)}, jarEntry{name: "lib/x-1.0.jar", data: buildJar(f)}))
	f.Fuzz(func(t *testing.T, data []byte) {
		res := Run(context.Background(), fstest.MapFS{"a.jar": javaFile(data)}, []Analyzer{NewJava()})
		for _, p := range res.Packages {
			if len(p.Locations) == 0 || !validMavenToken(p.Version) {
				t.Errorf("bad package %+v", p)
			}
			if p.Evidence != report.EvidenceInstalled {
				// Named by a manifest or file name: never a coordinate, always a version that starts with a digit.
				if !validMavenToken(p.Name) || strings.Contains(p.Name, ":") || !usableJavaVersion(p.Version) || p.PURL != "" {
					t.Errorf("bad fallback package %+v", p)
				}
				continue
			}
			g, a, ok := strings.Cut(p.Name, ":")
			if !ok || !validMavenToken(g) || !validMavenToken(a) {
				t.Errorf("bad package %+v", p)
			}
		}
	})
}
