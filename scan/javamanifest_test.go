package scan

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/rootscan/rootscan/report"
)

// More testdata/java provenance: asm-tree-9.4.jar (libasm-java 9.4-1), jsr305-0.1~+svn49.jar (libjsr305-java
// 0.1~+svn49-11), hamcrest-integration-1.3.1-SNAPSHOT.jar (libhamcrest-java 2.2-1) and xml-apis-ext-1.4.01.jar
// (libxml-commons-external-java 1.4.01-5), all Debian 12, verbatim from /usr/share/java. None carries a
// pom.properties: asm-tree has OSGi headers, xml-apis-ext OSGi headers in its main section and per-package sections
// after it, jsr305 and hamcrest-integration a manifest with nothing but Manifest-Version (and Created-By).

// jdkManifest is, byte for byte, the META-INF/MANIFEST.MF that OpenJDK 17's `jar --create --manifest` wrote for a
// hand-written manifest: CRLF line ends, the Bundle-SymbolicName wrapped at 72 bytes, Created-By added, and a
// per-entry section whose Implementation-Version must not be taken for the jar's.
const jdkManifest = "Manifest-Version: 1.0\r\n" +
	"Bundle-SymbolicName: com.example.a.very.long.symbolic.name.that.goes.pas\r\n" +
	" t.seventy.two.bytes.widget;singleton:=true\r\n" +
	"Bundle-Version: 2.5.1\r\n" +
	"Implementation-Title: Example Widget\r\n" +
	"Implementation-Version: 2.5.1-b7\r\n" +
	"Created-By: 17.0.15 (Debian)\r\n" +
	"\r\n" +
	"Name: com/example/\r\n" +
	"Implementation-Version: 9.9.9\r\n" +
	"\r\n"

// TestJavaWithoutPomProperties scans real Debian jars that carry no pom.properties, laid out as Debian installs them:
// the versioned file in /usr/share/java, an unversioned symlink beside it, and links from /usr/share/maven-repo.
// Each jar is reported once, named by its manifest or else its file name, with no PURL.
func TestJavaWithoutPomProperties(t *testing.T) {
	root := t.TempDir()
	jars := []string{"asm-tree-9.4.jar", "jsr305-0.1~+svn49.jar", "hamcrest-integration-1.3.1-SNAPSHOT.jar", "xml-apis-ext-1.4.01.jar", "commons-lang3.jar"}
	for _, j := range jars {
		gobinWrite(t, root, "usr/share/java/"+j, javaFixture(t, j), 0o644)
	}
	link := func(target, name string) {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	link("asm-tree-9.4.jar", "usr/share/java/asm-tree.jar")
	link("jsr305-0.1~+svn49.jar", "usr/share/java/jsr305.jar")
	link("xml-apis-ext-1.4.01.jar", "usr/share/java/xml-commons-external-1.4.01.jar")
	link("../../../../../../java/asm-tree-9.4.jar", "usr/share/maven-repo/org/ow2/asm/asm-tree/9.4/asm-tree-9.4.jar")
	link("../../../../../../java/asm-tree-9.4.jar", "usr/share/maven-repo/org/ow2/asm/asm-tree/debian/asm-tree-debian.jar")
	// An unversioned jar with nothing in its manifest says nothing: not reported.
	gobinWrite(t, root, "usr/share/java/bare.jar", buildJar(t, jarEntry{name: "META-INF/MANIFEST.MF", data: []byte("Manifest-Version: 1.0\n")}), 0o644)
	// The JDK's jar tool's manifest.
	gobinWrite(t, root, "opt/widget/widget.jar", buildJar(t,
		jarEntry{name: "META-INF/", store: true},
		jarEntry{name: "META-INF/MANIFEST.MF", data: []byte(jdkManifest)},
		jarEntry{name: "com/example/Widget.class", data: []byte{0xca, 0xfe, 0xba, 0xbe}},
	), 0o644)

	res := Run(context.Background(), gobinOpen(t, root), []Analyzer{NewJava()})
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
	want := []string{
		"com.example.a.very.long.symbolic.name.that.goes.past.seventy.two.bytes.widget 2.5.1 jar-manifest opt/widget/widget.jar",
		"hamcrest-integration 1.3.1-SNAPSHOT file-name usr/share/java/hamcrest-integration-1.3.1-SNAPSHOT.jar",
		"jsr305 0.1~+svn49 file-name usr/share/java/jsr305-0.1~+svn49.jar",
		"org.apache.commons:commons-lang3 3.12.0  usr/share/java/commons-lang3.jar",
		"org.objectweb.asm.tree 9.4.0.SNAPSHOT jar-manifest usr/share/java/asm-tree-9.4.jar",
		"org.w3c.css.sac 1.4 jar-manifest usr/share/java/xml-apis-ext-1.4.01.jar",
	}
	if got := javaEvidenceLines(res.Packages); !reflect.DeepEqual(got, want) {
		t.Errorf("packages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, p := range res.Packages {
		wantPURL := ""
		if p.Name == "org.apache.commons:commons-lang3" {
			wantPURL = "pkg:maven/org.apache.commons/commons-lang3@3.12.0"
		}
		if p.PURL != wantPURL || p.Ecosystem != report.EcosystemMaven || p.FoundBy != "java" {
			t.Errorf("%s: purl %q ecosystem %q foundBy %q", p.Name, p.PURL, p.Ecosystem, p.FoundBy)
		}
	}
}

// javaEvidenceLines renders packages as "name version evidence location,location".
func javaEvidenceLines(ps []report.Package) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name+" "+p.Version+" "+string(p.Evidence)+" "+strings.Join(p.Locations, ","))
	}
	return out
}

// TestJavaFallbackNested: nested archives without pom.properties are named by their own manifest or entry name, an
// archive with a pom.properties (even a broken one) is never named by its manifest, and a manifest that cannot be
// read is reported while the file name still counts.
func TestJavaFallbackNested(t *testing.T) {
	asmTree := javaFixture(t, "asm-tree-9.4.jar")
	fat := buildJar(t,
		jarEntry{name: "META-INF/MANIFEST.MF", data: []byte("Manifest-Version: 1.0\nImplementation-Title: shop\nImplementation-Version: 3.1.4\n")},
		jarEntry{name: "BOOT-INF/lib/asm-tree-9.4.jar", data: asmTree, store: true},
		jarEntry{name: "BOOT-INF/lib/gson-2.10.1.jar", data: buildJar(t, jarEntry{name: "com/google/gson/Gson.class", data: []byte{0xca}})},
		jarEntry{name: "BOOT-INF/lib/tool_1.2.jar", data: buildJar(t, jarEntry{name: "META-INF/MANIFEST.MF", data: []byte("Manifest-Version: 1.0\nbroken line\n")})},
		jarEntry{name: "BOOT-INF/lib/app-1.0.jar", data: buildJar(t,
			jarEntry{name: "META-INF/MANIFEST.MF", data: []byte("Implementation-Title: wrong\nImplementation-Version: 6.6.6\n")},
			jarEntry{name: "META-INF/maven/com.example/app/pom.properties", data: []byte("groupId=com.example\n")})},
	)
	res := Run(context.Background(), fstest.MapFS{"srv/shop.jar": javaFile(fat)}, []Analyzer{NewJava()})
	want := []string{
		"gson 2.10.1 file-name srv/shop.jar!BOOT-INF/lib/gson-2.10.1.jar",
		"org.objectweb.asm.tree 9.4.0.SNAPSHOT jar-manifest srv/shop.jar!BOOT-INF/lib/asm-tree-9.4.jar",
		"shop 3.1.4 jar-manifest srv/shop.jar",
		"tool 1.2 file-name srv/shop.jar!BOOT-INF/lib/tool_1.2.jar",
	}
	if got := javaEvidenceLines(res.Packages); !reflect.DeepEqual(got, want) {
		t.Errorf("packages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantErr := map[string]string{
		"srv/shop.jar!BOOT-INF/lib/tool_1.2.jar!META-INF/MANIFEST.MF":                         `line 2: invalid header "broken line"`,
		"srv/shop.jar!BOOT-INF/lib/app-1.0.jar!META-INF/maven/com.example/app/pom.properties": `invalid or missing artifactId ""`,
	}
	gotErr := map[string]string{}
	for _, e := range res.Errors {
		gotErr[e.Path] = e.Err
	}
	if !reflect.DeepEqual(gotErr, wantErr) {
		t.Errorf("errors:\n%v\nwant:\n%v", gotErr, wantErr)
	}
}

// TestJavaManifestBounds: a manifest whose main section does not end within the limit is an error for that file,
// read no further than the limit; a signed jar's long manifest whose main section is short is fine.
func TestJavaManifestBounds(t *testing.T) {
	huge := "Manifest-Version: 1.0\nImplementation-Title: x\nImplementation-Version: 1\nX-Filler: " +
		strings.Repeat("a", javaMaxManifest) + "\n"
	var signed strings.Builder
	signed.WriteString("Manifest-Version: 1.0\r\nImplementation-Title: signed\r\nImplementation-Version: 4.2\r\n\r\n")
	for i := 0; signed.Len() < 3*javaMaxManifest; i++ {
		signed.WriteString("Name: org/example/C" + strings.Repeat("x", i%50) + ".class\r\nSHA-256-Digest: 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\r\n\r\n")
	}
	fsys := fstest.MapFS{
		"huge-1.0.jar":    javaFile(buildJar(t, jarEntry{name: "META-INF/MANIFEST.MF", data: []byte(huge)})),
		"signed.jar":      javaFile(buildJar(t, jarEntry{name: "META-INF/MANIFEST.MF", data: []byte(signed.String())})),
		"nul-2.0.jar":     javaFile(buildJar(t, jarEntry{name: "meta-inf/manifest.mf", data: []byte("Implementation-Title: a\x00\n")})),
		"cont-3.0.jar":    javaFile(buildJar(t, jarEntry{name: "META-INF/MANIFEST.MF", data: []byte(" leading continuation\n")})),
		"nocolon-4.jar":   javaFile(buildJar(t, jarEntry{name: "META-INF/MANIFEST.MF", data: []byte("Manifest-Version 1.0\n")})),
		"badname-5.jar":   javaFile(buildJar(t, jarEntry{name: "META-INF/MANIFEST.MF", data: []byte("Bad Name: 1.0\n")})),
		"manifest.jar":    javaFile(buildJar(t, jarEntry{name: "META-INF/MANIFEST.MF", data: []byte("Implementation-Title: x\nImplementation-Version: 1\nX: " + strings.Repeat("b", javaMaxManifest-60) + "\r")})),
		"placeholder.jar": javaFile(buildJar(t, jarEntry{name: "META-INF/MANIFEST.MF", data: []byte("Implementation-Title: ${project.artifactId}\nImplementation-Version: ${project.version}\n")})),
	}
	res := Run(context.Background(), fsys, []Analyzer{NewJava()})
	want := []string{
		"badname 5 file-name badname-5.jar",
		"cont 3.0 file-name cont-3.0.jar",
		"huge 1.0 file-name huge-1.0.jar",
		"nocolon 4 file-name nocolon-4.jar",
		"nul 2.0 file-name nul-2.0.jar",
		"signed 4.2 jar-manifest signed.jar",
		"x 1 jar-manifest manifest.jar",
	}
	if got := javaEvidenceLines(res.Packages); !reflect.DeepEqual(got, want) {
		t.Errorf("packages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantErr := map[string]string{
		"huge-1.0.jar!META-INF/MANIFEST.MF":  "manifest main section longer than the limit of 1048576 bytes",
		"nul-2.0.jar!meta-inf/manifest.mf":   "binary content (NUL byte at offset 23)",
		"cont-3.0.jar!META-INF/MANIFEST.MF":  "line 1: continuation line without a header",
		"nocolon-4.jar!META-INF/MANIFEST.MF": `line 1: invalid header "Manifest-Version 1.0"`,
		"badname-5.jar!META-INF/MANIFEST.MF": `line 1: invalid header "Bad Name: 1.0"`,
	}
	gotErr := map[string]string{}
	for _, e := range res.Errors {
		gotErr[e.Path] = e.Err
	}
	if !reflect.DeepEqual(gotErr, wantErr) {
		t.Errorf("errors:\n%v\nwant:\n%v", gotErr, wantErr)
	}
}

func TestParseManifestMain(t *testing.T) {
	for _, c := range []struct {
		in        string
		truncated bool
		want      map[string]string
		err       string
	}{
		{in: jdkManifest, want: map[string]string{
			"manifest-version":       "1.0",
			"bundle-symbolicname":    "com.example.a.very.long.symbolic.name.that.goes.past.seventy.two.bytes.widget;singleton:=true",
			"bundle-version":         "2.5.1",
			"implementation-title":   "Example Widget",
			"implementation-version": "2.5.1-b7",
			"created-by":             "17.0.15 (Debian)",
		}},
		// LF and lone CR line ends, a repeated header (the last wins), no space after the colon, a BOM, no final newline.
		{in: "\ufeffA: 1\rB:2\nb: 3\n C\na: x", want: map[string]string{"a": "x", "b": "3C"}},
		{in: "", want: map[string]string{}},
		{in: "\n\nA: 1", want: map[string]string{}},
		{in: "A: 1\n", truncated: true, err: "manifest main section longer than the limit of 1048576 bytes"},
		{in: "A: 1\r", truncated: true, err: "manifest main section longer than the limit of 1048576 bytes"},
		{in: "A: 1\n\nrest", truncated: true, want: map[string]string{"a": "1"}},
		{in: "A: 1\n" + strings.Repeat("x", 71) + ": 2\n", err: `line 2: invalid header "` + strings.Repeat("x", 71) + `: 2"`},
		{in: ": 1\n", err: `line 1: invalid header ": 1"`},
	} {
		got, err := parseManifestMain([]byte(c.in), c.truncated)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestJavaIdentityOf(t *testing.T) {
	for _, c := range []struct {
		attrs map[string]string
		base  string
		want  string
	}{
		// The symbolic name's directives go; Bundle-* comes before Implementation-*.
		{map[string]string{"bundle-symbolicname": "org.example.core; singleton:=true", "bundle-version": "1.2.0.v2020", "implementation-title": "core", "implementation-version": "1.2"}, "core.jar", "org.example.core 1.2.0.v2020 jar-manifest"},
		// A title with spaces is prose: the next pair.
		{map[string]string{"implementation-title": "Apache Commons Lang", "implementation-version": "3.1", "specification-title": "lang", "specification-version": "3"}, "x.jar", "lang 3 jar-manifest"},
		// A version without a usable name in its pair: the first usable name, here Automatic-Module-Name.
		{map[string]string{"implementation-title": "Apache Commons Lang", "implementation-version": "3.1", "automatic-module-name": "org.apache.commons.lang3"}, "x.jar", "org.apache.commons.lang3 3.1 jar-manifest"},
		// ... or the file name's name part, with the manifest's version.
		{map[string]string{"implementation-title": "JSR 305", "implementation-version": "3.0.2"}, "jsr305-0.1.jar", "jsr305 3.0.2 jar-manifest"},
		{map[string]string{"implementation-title": "Java Runtime Environment", "implementation-version": "17.0.15"}, "jrt-fs.jar", "jrt-fs 17.0.15 jar-manifest"},
		// Unusable versions fall back to the file name.
		{map[string]string{"implementation-title": "x", "implementation-version": "${project.version}"}, "x-1.0.jar", "x 1.0 file-name"},
		{map[string]string{"bundle-symbolicname": "x", "bundle-version": "unspecified"}, "x_2.jar", "x 2 file-name"},
		{map[string]string{"implementation-title": "x", "implementation-version": "1.0 (build 5)"}, "x.jar", ""},
		// A manifest cannot forge a coordinate.
		{map[string]string{"implementation-title": "org.apache.commons:commons-text", "implementation-version": "1.9"}, "t.jar", "t 1.9 jar-manifest"},
		{nil, "asm-all-9.4.jar", "asm-all 9.4 file-name"},
		{nil, "asm.jar", ""},
		{nil, "9.4.jar", ""},
		{nil, "-1.0.jar", ""},
		{nil, "log4j-1.2-api-2.17.jar", "log4j 1.2-api-2.17 file-name"},
		{nil, "foo-bar.war", ""},
		{nil, "foo-1.0 beta.jar", ""},
	} {
		id, ok := javaIdentityOf(c.attrs, c.base)
		got := ""
		if ok {
			got = id.name + " " + id.version + " " + string(id.evidence)
		}
		if got != c.want {
			t.Errorf("%v %s: got %q, want %q", c.attrs, c.base, got, c.want)
		}
	}
}

// FuzzParseManifestMain: any bytes give a result or an error, never a panic, and every header name is lower case.
func FuzzParseManifestMain(f *testing.F) {
	f.Add([]byte(jdkManifest), false)
	f.Add([]byte("A: 1\r\n b\r\n\r\nName: x\r\n"), true)
	f.Add([]byte(" x\n"), false)
	f.Add([]byte("Implementation-Title: a\x00"), false)
	f.Fuzz(func(t *testing.T, data []byte, truncated bool) {
		attrs, err := parseManifestMain(data, truncated)
		if err != nil {
			return
		}
		for k, v := range attrs {
			if k != strings.ToLower(k) || !validManifestName([]byte(k)) || len(v) > len(data) {
				t.Errorf("bad attribute %q: %q", k, v)
			}
		}
		if id, ok := javaIdentityOf(attrs, "a-1.jar"); ok && (strings.Contains(id.name, ":") || !usableJavaVersion(id.version)) {
			t.Errorf("bad identity %+v", id)
		}
		if bytes.Contains(data, []byte{0}) {
			t.Errorf("NUL accepted")
		}
	})
}

// BenchmarkJavaFallback scans the real Debian jars without pom.properties (manifest and file-name paths): the
// fallback reads one more entry per such jar, the manifest's main section only.
func BenchmarkJavaFallback(b *testing.B) {
	fsys := fstest.MapFS{}
	for _, j := range []string{"asm-tree-9.4.jar", "jsr305-0.1~+svn49.jar", "hamcrest-integration-1.3.1-SNAPSHOT.jar", "xml-apis-ext-1.4.01.jar"} {
		fsys["usr/share/java/"+j] = javaFile(javaFixture(b, j))
	}
	b.ReportAllocs()
	for b.Loop() {
		if res := Run(context.Background(), fsys, []Analyzer{NewJava()}); len(res.Packages) != 4 {
			b.Fatalf("packages %v", res.Packages)
		}
	}
}
