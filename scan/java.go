package scan

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/rootscan/rootscan/report"
)

// Bounds of the Java analyzer. A jar is a zip: its central directory says how large each entry is, but a hostile
// archive may lie, and a small nested jar may deflate to gigabytes (a zip bomb). Every byte decompressed is read
// through a limit and counted against a per-archive budget, so one archive costs bounded time and memory.
const (
	// javaMaxArchive bounds a jar, war or ear on disk. It is read in place (io.ReaderAt), not into memory.
	javaMaxArchive = 512 << 20
	// javaMaxInMemory bounds an archive read into memory when the FS's files cannot be read at an offset.
	javaMaxInMemory = 64 << 20
	// javaMaxNested bounds one nested archive's uncompressed size; a compressed nested jar is held in memory while
	// it is read. Real libraries stay far below it (guava is 3 MiB).
	javaMaxNested = 64 << 20
	// javaMaxTotal bounds the bytes decompressed for one top-level archive, nested archives included.
	javaMaxTotal = 256 << 20
	// javaMaxEntries bounds the entries of one archive (a Spring Boot fat jar has a few thousand).
	javaMaxEntries = 100_000
	// javaMaxTotalEntries bounds the entries of one top-level archive and everything nested in it, so an archive
	// whose directory lists the same nested jar a hundred thousand times costs bounded time.
	javaMaxTotalEntries = 1_000_000
	// javaMaxDirBytes bounds one archive's central directory. It is what archive/zip keeps of each entry (name,
	// extra field, comment); a fat jar of 100,000 entries has about 10 MiB.
	javaMaxDirBytes = 16 << 20
	// javaMaxDirLive bounds the estimated memory of the directories open at once (an archive and those nested in it
	// that are being read), at javaZipEntryCost per entry plus the directory's bytes.
	javaMaxDirLive = 64 << 20
	// javaZipEntryCost is what archive/zip allocates per entry besides its name and extra field (a *zip.File).
	javaZipEntryCost = 224
	// javaMaxDepth bounds nesting: the archive on disk is depth 1; archives nested deeper than 3 are not opened.
	javaMaxDepth = 3
	// javaMaxPomProperties bounds one pom.properties (Maven writes three lines).
	javaMaxPomProperties = 64 << 10
)

// javaArchiveExts are the archives the analyzer opens: jars, web and enterprise archives, and Jenkins plugins.
var javaArchiveExts = []string{".jar", ".war", ".ear", ".jpi", ".hpi"}

// errJavaBudget marks an archive whose decompressed content exceeds javaMaxTotal; the rest of it is not read.
var errJavaBudget = errors.New("archive decompresses to more than the limit")

// javaAnalyzer lists Maven artifacts from the META-INF/maven/<group>/<artifact>/pom.properties files that Maven
// (and Gradle's maven-publish, and Debian's maven-repo-helper) put into every jar they build. A shaded jar carries one
// per bundled artifact, and every one is reported: the bundled code is as vulnerable as the artifact it came from.
// Archives nested in archives (Spring Boot's BOOT-INF/lib, a war's WEB-INF/lib, an ear's lib) are opened too, up to
// javaMaxDepth.
//
// An archive with no pom.properties at all (many Debian lib*-java jars, jars built by Ant or by hand) is named from
// its META-INF/MANIFEST.MF, else its file name (see javaIdentityOf), with Evidence EvidenceJarManifest or
// EvidenceFileName. Such a package's Name is the bare name the manifest or file gives ("org.objectweb.asm",
// "hamcrest"), never a guessed "group:artifact": it gets no PURL and is not looked up in OSV's Maven advisories.
type javaAnalyzer struct {
	maxArchive, maxInMemory, maxNested, maxTotal int64
	maxDirBytes, maxDirLive                      int64
	maxEntries, maxTotalEntries, maxDepth        int
}

// NewJava returns the analyzer for Java archives. Package.Name is "groupId:artifactId" (what OSV's Maven ecosystem
// and the maven PURL use) and Locations name the archive: "app/lib/x.jar" for a file, and for an archive inside
// another the outer path, "!", and the entry's name, as Java's jar: URLs do:
// "app/app.jar!BOOT-INF/lib/commons-lang3-3.12.0.jar".
func NewJava() Analyzer {
	return &javaAnalyzer{
		maxArchive: javaMaxArchive, maxInMemory: javaMaxInMemory, maxNested: javaMaxNested, maxTotal: javaMaxTotal,
		maxDirBytes: javaMaxDirBytes, maxDirLive: javaMaxDirLive,
		maxEntries: javaMaxEntries, maxTotalEntries: javaMaxTotalEntries, maxDepth: javaMaxDepth,
	}
}

func (a *javaAnalyzer) Name() string { return "java" }

func (a *javaAnalyzer) Version() int { return 1 }

func (a *javaAnalyzer) Requires() []string { return nil }

// Paths is empty: archives can be anywhere, Wants decides.
func (a *javaAnalyzer) Paths() []string { return nil }

// Wants decides from the name and the entry's type, never with a stat. Symlinks are skipped: Debian links every jar
// from /usr/share/maven-repo and a versioned name to one file in /usr/share/java, which the walk reaches itself, so
// following the links would only list the same jar three times (and a link out of the tree is never the image's).
func (a *javaAnalyzer) Wants(name string, d fs.DirEntry) bool {
	if d != nil && (d.IsDir() || d.Type()&fs.ModeSymlink != 0) {
		return false
	}
	return isJavaArchive(name)
}

func isJavaArchive(name string) bool {
	base := path.Base(name)
	for _, ext := range javaArchiveExts {
		if len(base) > len(ext) && strings.EqualFold(base[len(base)-len(ext):], ext) {
			return true
		}
	}
	return false
}

// AnalyzeFile reads one archive; a damaged or oversized one is reported and skipped.
func (a *javaAnalyzer) AnalyzeFile(ctx context.Context, fsys FS, name string, out *report.Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fail := func(p string, err error) {
		out.Errors = append(out.Errors, report.FileError{Analyzer: a.Name(), Path: p, Err: err.Error()})
	}
	f, fi, err := OpenRegular(fsys, name, a.maxArchive)
	if err != nil {
		fail(name, err)
		return nil
	}
	defer f.Close()
	ra, ok := f.(io.ReaderAt)
	size := fi.Size()
	if !ok {
		// Not seekable (an FS that only streams): read it whole, under a smaller bound.
		data, err := ReadFile(fsys, name, a.maxInMemory)
		if err != nil {
			fail(name, err)
			return nil
		}
		ra, size = bytes.NewReader(data), int64(len(data))
	}
	w := &javaWalk{a: a, ctx: ctx, budget: a.maxTotal, entries: a.maxTotalEntries, fail: fail}
	if err := w.archive(ra, size, name, path.Base(name), 1); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		fail(name, err)
	}
	for i := range w.pkgs {
		w.pkgs[i].FoundBy = a.Name()
	}
	out.Packages = append(out.Packages, w.pkgs...)
	return nil
}

// Analyze merges what AnalyzeFile found: the same artifact in two archives becomes one Package with both locations.
func (a *javaAnalyzer) Analyze(ctx context.Context, fsys FS, out *report.Result) error {
	mergePackages(out, a.Name())
	return nil
}

// javaWalk is the state of reading one top-level archive and what is nested in it.
type javaWalk struct {
	a       *javaAnalyzer
	ctx     context.Context
	budget  int64 // decompressed (or, for stored nested archives, read) bytes still allowed
	entries int   // archive entries still allowed
	dirLive int64 // estimated bytes of the central directories open now (see javaMaxDirLive)
	fail    func(path string, err error)
	pkgs    []report.Package
}

// archive reads the zip at loc, whose file name is base. An error means the archive as a whole could not be read;
// problems with single entries (a malformed pom.properties or manifest, a nested jar too large or corrupt) are
// reported through fail and skipped.
func (w *javaWalk) archive(ra io.ReaderAt, size int64, loc, base string, depth int) error {
	zr, release, err := w.open(ra, size)
	if err != nil {
		return err
	}
	defer release()
	var (
		hasPom   bool
		manifest *zip.File
	)
	for _, zf := range zr.File {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		if zf.FileInfo().IsDir() {
			continue
		}
		switch {
		case manifest == nil && strings.EqualFold(zf.Name, "META-INF/MANIFEST.MF"):
			// Java's JarFile finds the manifest case-insensitively, and uses the first.
			manifest = zf
		case isPomProperties(zf.Name):
			hasPom = true
			data, err := w.read(zf, javaMaxPomProperties)
			if errors.Is(err, errJavaBudget) {
				return err
			}
			if err == nil {
				var p report.Package
				if p, err = parsePomProperties(data); err == nil {
					p.Locations = []string{loc}
					w.pkgs = append(w.pkgs, p)
					continue
				}
			}
			w.fail(loc+"!"+zf.Name, err)
		case isJavaArchive(zf.Name) && depth < w.a.maxDepth:
			if err := w.nested(zf, ra, size, loc+"!"+zf.Name, depth+1); err != nil {
				if errors.Is(err, errJavaBudget) || w.ctx.Err() != nil {
					return err
				}
				w.fail(loc+"!"+zf.Name, err)
			}
		}
	}
	if hasPom {
		return nil
	}
	return w.fallback(manifest, loc, base)
}

// open parses an archive's central directory after checking, in a fixed buffer, that its entries and bytes fit
// the bounds: archive/zip allocates for every header it finds, whatever the archive states. release gives the
// directory's estimated memory back to the walk's live budget.
func (w *javaWalk) open(ra io.ReaderAt, size int64) (zr *zip.Reader, release func(), err error) {
	dir, err := zipDirectoryOf(ra, size, w.a.maxEntries, w.a.maxDirBytes)
	if err != nil {
		return nil, nil, err
	}
	if w.entries -= dir.entries; w.entries < 0 {
		return nil, nil, fmt.Errorf("%w: more than %d entries in nested archives", errJavaBudget, w.a.maxTotalEntries)
	}
	cost := int64(dir.entries)*javaZipEntryCost + dir.bytes
	if w.dirLive+cost > w.a.maxDirLive {
		return nil, nil, fmt.Errorf("%w: directories of nested archives open at once exceed %d bytes", errZipDirectory, w.a.maxDirLive)
	}
	m := &meteredReaderAt{ra: ra, left: dir.bytes + zipNewReaderSlack, armed: true}
	zr, err = zip.NewReader(m, size)
	m.armed = false
	// Entry names with ".." or a leading "/" are refused for extraction (ErrInsecurePath) but harmless here: no entry
	// is ever written anywhere.
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, nil, fmt.Errorf("read zip: %w", err)
	}
	if len(zr.File) > w.a.maxEntries {
		return nil, nil, fmt.Errorf("%d entries, more than %d", len(zr.File), w.a.maxEntries)
	}
	w.dirLive += cost
	return zr, func() { w.dirLive -= cost }, nil
}

// fallback names an archive that has no pom.properties from its manifest and file name. A manifest that cannot be
// read is reported, and the file name still tried: it is evidence of its own.
func (w *javaWalk) fallback(manifest *zip.File, loc, base string) error {
	var attrs map[string]string
	if manifest != nil {
		data, truncated, err := w.readPrefix(manifest, javaMaxManifest)
		if errors.Is(err, errJavaBudget) {
			return err
		}
		if err == nil {
			attrs, err = parseManifestMain(data, truncated)
		}
		if err != nil {
			w.fail(loc+"!"+manifest.Name, err)
		}
	}
	id, ok := javaIdentityOf(attrs, base)
	if !ok {
		return nil
	}
	w.pkgs = append(w.pkgs, report.Package{Name: id.name, Version: id.version, Ecosystem: report.EcosystemMaven,
		Locations: []string{loc}, Evidence: id.evidence})
	return nil
}

// nested reads an archive inside an archive. A stored (uncompressed) entry, which Spring Boot requires for its
// BOOT-INF/lib, is read in place from the outer archive; a compressed one is decompressed into memory, bounded.
func (w *javaWalk) nested(zf *zip.File, outer io.ReaderAt, outerSize int64, loc string, depth int) error {
	if zf.Method == zip.Store && zf.CompressedSize64 == zf.UncompressedSize64 {
		off, err := zf.DataOffset()
		if err == nil && off >= 0 && zf.CompressedSize64 <= uint64(outerSize-off) {
			// Nothing is decompressed, but the bytes are still charged: a directory may list one nested jar many times.
			if w.budget -= int64(zf.CompressedSize64); w.budget < 0 {
				return fmt.Errorf("%w of %d bytes", errJavaBudget, w.a.maxTotal)
			}
			return w.archive(io.NewSectionReader(outer, off, int64(zf.CompressedSize64)), int64(zf.CompressedSize64), loc, path.Base(zf.Name), depth)
		}
	}
	data, err := w.read(zf, w.a.maxNested)
	if err != nil {
		return err
	}
	return w.archive(bytes.NewReader(data), int64(len(data)), loc, path.Base(zf.Name), depth)
}

// read decompresses one entry of at most limit bytes, charging it to the archive's budget. The header's size is
// checked first (cheap), but the read itself is bounded too, because the header may lie.
func (w *javaWalk) read(zf *zip.File, limit int64) ([]byte, error) {
	if zf.UncompressedSize64 > uint64(limit) {
		return nil, fmt.Errorf("%w: %d > %d bytes uncompressed", ErrTooLarge, zf.UncompressedSize64, limit)
	}
	if zf.UncompressedSize64 > uint64(w.budget) {
		return nil, fmt.Errorf("%w of %d bytes", errJavaBudget, w.a.maxTotal)
	}
	// Charge the declared size before allocating it, so a directory of lying headers cannot allocate without end.
	size := int64(zf.UncompressedSize64)
	w.budget -= size
	rc, err := zf.Open()
	if err != nil {
		return nil, fmt.Errorf("open entry: %w", err)
	}
	defer rc.Close()
	// archive/zip fails an entry that inflates to more or less than its header says; reading one byte past the
	// declared size through a LimitReader bounds the read even without that check.
	lr := io.LimitReader(rc, size+1)
	buf := make([]byte, size)
	if _, err := io.ReadFull(lr, buf); err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	if n, err := lr.Read(make([]byte, 1)); n > 0 {
		return nil, fmt.Errorf("%w: inflates to more than the %d bytes its header says", ErrTooLarge, size)
	} else if err != nil && err != io.EOF {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	return buf, nil
}

// readPrefix decompresses at most limit bytes of one entry, charging what it reads to the archive's budget;
// truncated says the entry goes on. Unlike read, it accepts an entry larger than limit: a manifest's main section
// comes first, and a signed jar's per-class sections after it are not needed.
func (w *javaWalk) readPrefix(zf *zip.File, limit int64) (data []byte, truncated bool, err error) {
	if n := min(zf.UncompressedSize64, uint64(limit)); n > uint64(w.budget) {
		return nil, false, fmt.Errorf("%w of %d bytes", errJavaBudget, w.a.maxTotal)
	}
	rc, err := zf.Open()
	if err != nil {
		return nil, false, fmt.Errorf("open entry: %w", err)
	}
	defer rc.Close()
	data, err = io.ReadAll(io.LimitReader(rc, limit+1))
	w.budget -= int64(len(data))
	if err != nil {
		return nil, false, fmt.Errorf("decompress: %w", err)
	}
	if int64(len(data)) > limit {
		return data[:limit], true, nil
	}
	return data, false, nil
}

// isPomProperties matches META-INF/maven/<group>/<artifact>/pom.properties.
func isPomProperties(name string) bool {
	rest, ok := strings.CutPrefix(name, "META-INF/maven/")
	if !ok || !strings.HasSuffix(rest, "/pom.properties") {
		return false
	}
	return strings.Count(rest, "/") == 2
}

// parsePomProperties reads the groupId, artifactId and version Maven writes. It handles the subset of the Java
// properties format such files use ("key=value" or "key: value" lines, "#" and "!" comments); Maven writes no escapes
// or continuation lines into coordinates.
func parsePomProperties(data []byte) (report.Package, error) {
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return report.Package{}, fmt.Errorf("binary content (NUL byte at offset %d)", i)
	}
	props := map[string]string{}
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		s := strings.TrimSpace(string(line))
		if s == "" || s[0] == '#' || s[0] == '!' {
			continue
		}
		i := strings.IndexAny(s, "=:")
		if i < 0 {
			continue
		}
		props[strings.TrimSpace(s[:i])] = strings.TrimSpace(s[i+1:])
	}
	g, art, v := props["groupId"], props["artifactId"], props["version"]
	switch {
	case !validMavenToken(g):
		return report.Package{}, fmt.Errorf("invalid or missing groupId %q", g)
	case !validMavenToken(art):
		return report.Package{}, fmt.Errorf("invalid or missing artifactId %q", art)
	case !validMavenToken(v):
		return report.Package{}, fmt.Errorf("artifact %s:%s: invalid or missing version %q", g, art, v)
	}
	return report.Package{Name: g + ":" + art, Version: v, Ecosystem: report.EcosystemMaven}, nil
}

// validMavenToken accepts what Maven allows in coordinates: printable ASCII without whitespace, and none of the
// separators of a coordinate or a path (":", "/", "\").
func validMavenToken(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == ':' || c == '/' || c == '\\' {
			return false
		}
	}
	return true
}
