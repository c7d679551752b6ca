package scan

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"slices"
	"strings"

	rpmdb "github.com/knqyf263/go-rpmdb/pkg"
	"github.com/rootscan/rootscan/report"
)

// rpmFileTypeMask and rpmFileRegular pick the file type out of RPMTAG_FILEMODES (st_mode bits).
const (
	rpmFileTypeMask = 0o170000
	rpmFileRegular  = 0o100000
)

// rpmExcusedFlags are file flags whose files may be missing without a finding: %doc, %license and %readme files
// are left out by `rpm --excludedocs` and dnf's tsflags=nodocs (UBI and most minimal images set it), and
// %config(missingok) says so itself. rpm records such files as "not installed" in RPMTAG_FILESTATES, which go-rpmdb
// does not read; the flags and debExcusedDirs (for %lang files skipped by %_install_langs) stand in for it.
const rpmExcusedFlags = rpmdb.RPMFILE_DOC | rpmdb.RPMFILE_LICENSE | rpmdb.RPMFILE_README | rpmdb.RPMFILE_MISSINGOK

// rpmSkippedFlags are files never checked: %ghost files are not in the package payload (their digest is empty or
// stale), and %config files are meant to be edited, so, as the dpkg check leaves conffiles alone, an edited
// /etc/passwd is not an integrity finding.
const rpmSkippedFlags = rpmdb.RPMFILE_GHOST | rpmdb.RPMFILE_CONFIG

// rpmIntegrityAnalyzer holds the limits of a run; fields so tests can shrink them.
type rpmIntegrityAnalyzer struct {
	db          rpmAnalyzer // how databases are found, copied and parsed
	maxFileSize int64
	maxFiles    int
	maxBytes    int64
	maxFindings int
	maxErrors   int
}

// NewRPMIntegrity returns the analyzer that checks installed rpm packages' regular files against the digests rpm
// recorded for them, like `rpm -V` (its "5" and "missing" results): a patched library or a deleted CA bundle in a
// RHEL/UBI/SUSE image shows up without running rpm inside it. It checks the packages the rpm analyzer found (see
// Requires) and reads the database again for the file lists, which the package inventory does not keep.
//
// The digest algorithm is the package's (RPMTAG_FILEDIGESTALGO: SHA-256 on every distribution since RHEL 6, MD5
// for older packages and when the tag is absent). Not checked, unlike rpm -V: %config and %ghost files (see
// rpmSkippedFlags), symlink targets, modes and owners (rootscan reports content, not metadata). go-rpmdb does not
// read RPMTAG_FILEVERIFYFLAGS, so a file packaged with %verify(not md5) whose content changes after install by
// design (glibc's gconv-modules.cache on RHEL 7) is reported as changed.
//
// Cost: it reads every byte of every packaged regular file; the same per-root bounds as the dpkg check keep it
// finite.
func NewRPMIntegrity(opts ...AnalyzerOption) Analyzer {
	return &rpmIntegrityAnalyzer{
		db:          *newRPMAnalyzer(collectOptions(opts)),
		maxFileSize: debMaxHashedFileSize,
		maxFiles:    debMaxCheckedFiles,
		maxBytes:    debMaxHashedBytes,
		maxFindings: debMaxFindings,
		maxErrors:   dpkgMaxErrors,
	}
}

func (a *rpmIntegrityAnalyzer) Name() string { return "rpm-integrity" }

func (a *rpmIntegrityAnalyzer) Version() int { return 1 }

// Requires rpm: the packages checked are those it found (their Ecosystem is the finding's).
func (a *rpmIntegrityAnalyzer) Requires() []string { return []string{rpmName} }

func (a *rpmIntegrityAnalyzer) Paths() []string { return a.db.Paths() }

// rpmIntegrityRun is the state of one Analyze call.
type rpmIntegrityRun struct {
	a    *rpmIntegrityAnalyzer
	fsys FS
	integrityLog
	files int
	bytes int64
}

// Analyze checks the packages in out.Packages found by the rpm analyzer, in database order. Nothing is added to
// out when the context ends midway: a partly checked root must not look clean.
func (a *rpmIntegrityAnalyzer) Analyze(ctx context.Context, fsys FS, out *report.Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	want := map[osPackageKey]report.Package{}
	for _, p := range out.Packages {
		if p.FoundBy == a.db.Name() {
			want[osPackageKey{p.Name, p.Arch, p.Version}] = p
		}
	}
	if len(want) == 0 {
		return nil
	}
	r := newRpmIntegrityRun(a, fsys)
	done := map[osPackageKey]bool{}
	for _, dir := range rpmDirs {
		for _, f := range rpmDBFiles {
			name := dir + "/" + f
			infos, err := a.db.readDB(ctx, fsys, name)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				r.fail(name, err.Error())
				break
			}
			for _, info := range infos {
				pkg, ok := rpmPackage(info)
				k := osPackageKey{pkg.Name, pkg.Arch, pkg.Version}
				if !ok || done[k] {
					continue
				}
				p, ok := want[k]
				if !ok {
					continue
				}
				done[k] = true
				if err := r.checkPackage(ctx, p, info, name); err != nil {
					return err
				}
				if r.stopped() {
					r.fail("", fmt.Sprintf("%s: skipped all files of %d more packages", r.limitReached(), len(want)-len(done)))
					return r.flush(out)
				}
			}
			break
		}
	}
	return r.flush(out)
}

// stopped says a per-root bound is spent.
func (r *rpmIntegrityRun) stopped() bool { return r.files >= r.a.maxFiles || r.bytes >= r.a.maxBytes }

func (r *rpmIntegrityRun) limitReached() string {
	if r.files >= r.a.maxFiles {
		return fmt.Sprintf("file limit reached: checked %d files", r.files)
	}
	return fmt.Sprintf("byte limit reached: hashed %d bytes", r.bytes)
}

// checkPackage checks the regular files of one package; it stops early when a per-root bound is spent.
func (r *rpmIntegrityRun) checkPackage(ctx context.Context, p report.Package, info *rpmdb.PackageInfo, db string) error {
	// go-rpmdb checks dir indexes against the end of DirNames but not against 0: a negative one (the header stores
	// them as int32) panics in InstalledFiles. Found by FuzzRPMIntegrityFiles.
	for _, i := range info.DirIndexes {
		if i < 0 {
			r.fail(db, fmt.Sprintf("package %s: file list: negative directory index %d", p.Name, i))
			return nil
		}
	}
	files, err := info.InstalledFiles()
	if err != nil {
		r.fail(db, fmt.Sprintf("package %s: file list: %v", p.Name, err))
		return nil
	}
	algo, newHash := rpmDigest(info.DigestAlgorithm)
	if newHash == nil {
		r.fail(db, fmt.Sprintf("package %s: file digest algorithm %s (%d) not supported; files not checked", p.Name, info.DigestAlgorithm, info.DigestAlgorithm))
		return nil
	}
	files = slices.DeleteFunc(files, func(f rpmdb.FileInfo) bool {
		return f.Mode&rpmFileTypeMask != rpmFileRegular || f.Digest == "" || int32(f.Flags)&rpmSkippedFlags != 0
	})
	for j, f := range files {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("check files of %s: %w", p.Name, err)
		}
		if r.stopped() {
			r.fail("", fmt.Sprintf("%s: skipped %d more files of %s", r.limitReached(), len(files)-j, p.Name))
			return nil
		}
		name, ok := debRelPath(f.Path)
		if !ok {
			r.fail(db, fmt.Sprintf("package %s: invalid file path %q", p.Name, f.Path))
			continue
		}
		excused := int32(f.Flags)&rpmExcusedFlags != 0 || debExcused(name)
		r.check(p, name, strings.ToLower(f.Digest), algo, newHash, excused)
	}
	return nil
}

// check verifies one packaged regular file.
func (r *rpmIntegrityRun) check(p report.Package, name, want, algo string, newHash func() hash.Hash, excused bool) {
	finding := report.IntegrityFinding{Package: p.Name, Ecosystem: p.Ecosystem, Path: name, Algorithm: algo, Expected: want}
	r.files++
	fi, err := r.fsys.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if !excused {
			r.report(finding)
		}
		return
	case err != nil:
		r.fail(name, fmt.Sprintf("package %s: %v", p.Name, err))
		return
	case !fi.Mode().IsRegular():
		if !excused {
			finding.Found = debNotRegular
			r.report(finding)
		}
		return
	case fi.Size() > r.a.maxFileSize:
		r.fail(name, fmt.Sprintf("package %s: %d bytes, larger than the %d bytes hashed per file; not checked", p.Name, fi.Size(), r.a.maxFileSize))
		return
	}
	f, _, err := OpenRegular(r.fsys, name, r.a.maxFileSize)
	if err != nil {
		r.fail(name, fmt.Sprintf("package %s: %v", p.Name, err))
		return
	}
	defer f.Close()
	h := newHash()
	// The limit also stops a file that grows while it is hashed (a live upper dir).
	n, err := io.Copy(h, io.LimitReader(f, r.a.maxFileSize+1))
	r.bytes += n
	switch {
	case err != nil:
		r.fail(name, fmt.Sprintf("package %s: read: %v", p.Name, err))
	case n > r.a.maxFileSize:
		r.fail(name, fmt.Sprintf("package %s: grew past %d bytes while hashed; not checked", p.Name, r.a.maxFileSize))
	default:
		if sum := hex.EncodeToString(h.Sum(nil)); sum != want {
			finding.Found = sum
			r.report(finding)
		}
	}
}

// rpmDigest maps RPMTAG_FILEDIGESTALGO to a name and a hash; nil for algorithms Go's standard library lacks (MD2,
// RIPEMD-160, Tiger, HAVAL: never used for rpm file digests). 0 means the tag is absent, and rpm then uses MD5.
func rpmDigest(d rpmdb.DigestAlgorithm) (string, func() hash.Hash) {
	switch d {
	case 0, rpmdb.PGPHASHALGO_MD5:
		return "md5", md5.New
	case rpmdb.PGPHASHALGO_SHA1:
		return "sha1", sha1.New
	case rpmdb.PGPHASHALGO_SHA224:
		return "sha224", sha256.New224
	case rpmdb.PGPHASHALGO_SHA256:
		return "sha256", sha256.New
	case rpmdb.PGPHASHALGO_SHA384:
		return "sha384", sha512.New384
	case rpmdb.PGPHASHALGO_SHA512:
		return "sha512", sha512.New
	}
	return d.String(), nil
}

func newRpmIntegrityRun(a *rpmIntegrityAnalyzer, fsys FS) *rpmIntegrityRun {
	return &rpmIntegrityRun{a: a, fsys: fsys, integrityLog: integrityLog{cappedErrors: cappedErrors{analyzer: a.Name(), maxErrors: a.maxErrors}, maxFindings: a.maxFindings}}
}
