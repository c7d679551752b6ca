package integration

import (
	"archive/zip"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rootscan/rootscan/scan"
)

// javaInCLI says whether cmd/rootscan runs the Java analyzer; the lead flips it when adding scan.NewJava to
// scan.DefaultAnalyzers.
const javaInCLI = true

// javaDebs are real Debian 12 packages whose /usr/share/java jars carry META-INF/maven/.../pom.properties (Debian's
// maven-repo-helper keeps them), with the Maven coordinates each must be reported under.
var javaDebs = []string{
	"libcommons-lang3-java", "libcommons-io-java", "libguava-java", "libjackson2-core-java", "libslf4j-java",
}

// TestJavaArchivesInRealRoot unpacks real Debian jars into a directory, adds a Spring Boot style fat jar and a war
// built from those same jars, and scans it through the confined root, as `rootscan scan --dir` does. Debian's
// /usr/share/maven-repo and versioned symlinks point at the same jars and must not add locations.
func TestJavaArchivesInRealRoot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root := t.TempDir()
	langUnpackDebs(t, ctx, root, javaDebs)
	jar := func(name string) string { return filepath.Join(root, "usr/share/java", name) }
	javaWriteArchive(t, filepath.Join(root, "app/app.jar"), []javaEntry{
		{name: "META-INF/MANIFEST.MF", data: []byte("Manifest-Version: 1.0\nMain-Class: org.springframework.boot.loader.JarLauncher\n")},
		{name: "META-INF/maven/com.example/app/pom.properties", data: []byte("groupId=com.example\nartifactId=app\nversion=1.0.0\n")},
		{name: "BOOT-INF/lib/guava-31.1-jre.jar", file: jar("guava.jar"), store: true},
		{name: "BOOT-INF/lib/slf4j-api-1.7.32.jar", file: jar("slf4j-api.jar"), store: true},
	})
	javaWriteArchive(t, filepath.Join(root, "srv/webapps/shop.war"), []javaEntry{
		{name: "WEB-INF/web.xml", data: []byte("<web-app/>")},
		{name: "WEB-INF/lib/commons-io-2.11.0.jar", file: jar("commons-io.jar")},
		{name: "WEB-INF/lib/jackson-core-2.14.1.jar", file: jar("jackson-core.jar")},
	})

	const sj = "usr/share/java/"
	want := []string{
		"Maven com.example:app 1.0.0 app/app.jar",
		"Maven com.fasterxml.jackson.core:jackson-core 2.14.1 srv/webapps/shop.war!WEB-INF/lib/jackson-core-2.14.1.jar," + sj + "jackson-core.jar",
		"Maven com.google.guava:guava 31.1-jre app/app.jar!BOOT-INF/lib/guava-31.1-jre.jar," + sj + "guava.jar",
		"Maven commons-io:commons-io 2.11.0 srv/webapps/shop.war!WEB-INF/lib/commons-io-2.11.0.jar," + sj + "commons-io.jar",
		"Maven org.apache.commons:commons-lang3 3.12.0 " + sj + "commons-lang3.jar",
		"Maven org.slf4j:slf4j-api 1.7.32 app/app.jar!BOOT-INF/lib/slf4j-api-1.7.32.jar," + sj + "slf4j-api.jar",
	}
	for _, a := range []string{"jcl-over-slf4j", "jul-to-slf4j", "log4j-over-slf4j", "slf4j-jcl", "slf4j-jdk14",
		"slf4j-log4j12", "slf4j-migrator", "slf4j-nop", "slf4j-simple"} {
		want = append(want, "Maven org.slf4j:"+a+" 1.7.32 "+sj+a+".jar")
	}
	slices.Sort(want)

	res := langScan(t, ctx, root, scan.NewJava())
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
	if got := langLines(res.Packages); !reflect.DeepEqual(got, want) {
		t.Errorf("packages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, p := range res.Packages {
		if p.Name == "org.apache.commons:commons-lang3" && p.PURL != "pkg:maven/org.apache.commons/commons-lang3@3.12.0" {
			t.Errorf("purl %q", p.PURL)
		}
	}

	t.Run("cli", func(t *testing.T) {
		if !javaInCLI {
			t.Skip("the Java analyzer is not wired into cmd/rootscan yet")
		}
		res := runRootscan(t, 2*time.Minute, "scan", "--dir", root, "-o", "json")
		doc := decode(t, res)
		if len(doc.Reports) != 1 || doc.Reports[0].Result == nil {
			t.Fatalf("reports: %+v", doc.Reports)
		}
		var maven []scan.Package
		for _, p := range doc.Reports[0].Result.Packages {
			if p.Ecosystem == scan.EcosystemMaven {
				maven = append(maven, p)
			}
		}
		if got := langLines(maven); !reflect.DeepEqual(got, want) {
			t.Errorf("CLI packages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

// javaEntry is one file of an archive javaWriteArchive builds: data, or the content of a file on disk.
type javaEntry struct {
	name  string
	data  []byte
	file  string
	store bool
}

func javaWriteArchive(t *testing.T, dst string, entries []javaEntry) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	for _, e := range entries {
		data := e.data
		if e.file != "" {
			if data, err = os.ReadFile(e.file); err != nil {
				t.Fatal(err)
			}
		}
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.store {
			h.Method = zip.Store
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}
