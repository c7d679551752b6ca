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

	"github.com/rootscan/rootscan/report"
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
		var maven []report.Package
		for _, p := range doc.Reports[0].Result.Packages {
			if p.Ecosystem == report.EcosystemMaven {
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

// javaNoPomDebs are real Debian 12 packages whose jars carry no pom.properties (Debian builds them with Ant or
// javahelper, or repackages upstream jars), so the Java analyzer names them from META-INF/MANIFEST.MF or the file
// name. Each installs its jars once in /usr/share/java (or /usr/share/maven-repo) and links them under other names.
var javaNoPomDebs = []string{
	"libasm-java", "libhamcrest-java", "libjsr305-java", "libjaxp1.3-java", "libxml-commons-external-java",
	"libservlet-api-java",
}

// TestJavaWithoutPomPropertiesInRealRoot unpacks those packages into a directory and scans it as `rootscan scan
// --dir` does: each of the 15 regular jars is reported exactly once (the 51 symlinked .jar names add nothing), with
// the name and version its manifest or file name gives, its evidence, and no PURL; servlet-api.jar, which has a
// pom.properties, keeps its real coordinate and PURL.
func TestJavaWithoutPomPropertiesInRealRoot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root := t.TempDir()
	langUnpackDebs(t, ctx, root, javaNoPomDebs)
	const sj, mr = "usr/share/java/", "usr/share/maven-repo/"
	want := []string{
		// libasm-java 9.4-1: OSGi headers (Bundle-Version 9.4.0.SNAPSHOT is what the jars say of themselves), and
		// asm-all, which Debian assembles itself, with a bare manifest.
		"asm-all 9.4 file-name " + sj + "asm-all-9.4.jar",
		"org.objectweb.asm 9.4.0.SNAPSHOT jar-manifest " + sj + "asm-9.4.jar",
		"org.objectweb.asm.commons 9.4.0.SNAPSHOT jar-manifest " + sj + "asm-commons-9.4.jar",
		"org.objectweb.asm.tree 9.4.0.SNAPSHOT jar-manifest " + sj + "asm-tree-9.4.jar",
		"org.objectweb.asm.tree.analysis 9.4.0.SNAPSHOT jar-manifest " + sj + "asm-analysis-9.4.jar",
		"org.objectweb.asm.util 9.4.0.SNAPSHOT jar-manifest " + sj + "asm-util-9.4.jar",
		// libhamcrest-java 2.2-1.
		"hamcrest-integration 1.3.1-SNAPSHOT file-name " + sj + "hamcrest-integration-1.3.1-SNAPSHOT.jar",
		"org.hamcrest 2.2 jar-manifest " + sj + "hamcrest-2.2.jar",
		// libjsr305-java 0.1~+svn49-11: two builds, one kept in the maven-repo as a file of its own.
		"jsr305 0.1-SNAPSHOT file-name " + mr + "org/jsr-305/jsr305/0.1-SNAPSHOT/jsr305-0.1-SNAPSHOT.jar",
		"jsr305 0.1~+svn49 file-name " + sj + "jsr305-0.1~+svn49.jar",
		// libjaxp1.3-java 1.3.05-6: its manifest's versions are all in per-package sections, not the main one.
		"jaxp-api 1.3 file-name " + mr + "javax/xml/jaxp-api/1.3/jaxp-api-1.3.jar",
		// libxml-commons-external-java 1.4.01-5.
		"javax.xml 1.3 jar-manifest " + sj + "xml-apis-1.3.04.jar",
		"org.w3c.css.sac 1.4 jar-manifest " + sj + "xml-apis-ext-1.4.01.jar",
		"xml-apis 1.4.01 file-name " + sj + "xml-apis-1.4.01.jar",
		// libservlet-api-java 4.0.1-2 has a pom.properties.
		"javax.servlet:javax.servlet-api 4.0.1  " + sj + "servlet-api.jar",
	}
	slices.Sort(want)
	check := func(t *testing.T, ps []report.Package) {
		t.Helper()
		var got []string
		for _, p := range ps {
			if p.Ecosystem != report.EcosystemMaven {
				continue
			}
			got = append(got, p.Name+" "+p.Version+" "+string(p.Evidence)+" "+strings.Join(p.Locations, ","))
			wantPURL := ""
			if p.Evidence == report.EvidenceInstalled {
				wantPURL = "pkg:maven/" + strings.Replace(p.Name, ":", "/", 1) + "@" + p.Version
			}
			if p.PURL != wantPURL {
				t.Errorf("%s: purl %q, want %q", p.Name, p.PURL, wantPURL)
			}
		}
		slices.Sort(got)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("packages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	res := langScan(t, ctx, root, scan.NewJava())
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
	// langScan runs the analyzer alone; PURLs are filled by scan.Run, as the CLI does.
	check(t, res.Packages)

	t.Run("cli", func(t *testing.T) {
		if !javaInCLI {
			t.Skip("the Java analyzer is not wired into cmd/rootscan yet")
		}
		doc := decode(t, runRootscan(t, 2*time.Minute, "scan", "--dir", root, "-o", "json", "--no-baseline"))
		if len(doc.Reports) != 1 || doc.Reports[0].Result == nil {
			t.Fatalf("reports: %+v", doc.Reports)
		}
		check(t, doc.Reports[0].Result.Packages)
	})
}
