package scan

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	rpmdb "github.com/knqyf263/go-rpmdb/pkg"
	"github.com/knqyf263/go-rpmdb/pkg/bdb"
	"github.com/rootscan/rootscan/report"

	// go-rpmdb opens sqlite databases through database/sql with the driver name "sqlite" but leaves registering a
	// driver to its user. modernc.org/sqlite is pure Go (the binary is built with CGO_ENABLED=0) and registers
	// exactly that name.
	_ "modernc.org/sqlite"
)

// rpmDirs are where rpm keeps its database: var/lib/rpm up to RHEL 9 and SUSE 15, usr/lib/sysimage/rpm on Fedora 36+
// and openSUSE Tumbleweed (which leave var/lib/rpm as a link to it).
var rpmDirs = []string{"var/lib/rpm", "usr/lib/sysimage/rpm"}

// rpmDBFiles are the database formats in the order rpm itself prefers them: sqlite (RHEL 9, Fedora 33+), ndb (SUSE),
// Berkeley DB (RHEL 7/8, Amazon Linux 2). A directory's first existing file is read; a stale older-format file left
// behind by a migration (rpmdb --rebuilddb) is ignored, since rpm ignores it too.
var rpmDBFiles = []string{"rpmdb.sqlite", "Packages.db", "Packages"}

const (
	// rpmMaxDBSize bounds one database file. A RHEL server with 1500 packages has a 100-200 MiB Berkeley DB
	// (mostly file lists and free pages); 512 MiB leaves room while refusing a hostile multi-GiB file.
	rpmMaxDBSize = 512 << 20
	// rpmMaxDBData bounds the bytes of one database that are not zero, which is what its private copy costs on
	// disk: runs of zeros (free pages, a sparse file's holes) are not written but left as holes in the copy. The
	// pod's /tmp is a small emptyDir, and two workers may copy at once.
	rpmMaxDBData = 96 << 20
	// rpmParseTimeout bounds the parse of one database. go-rpmdb takes no context; a damaged Berkeley DB whose page
	// links form a loop must not stall the scan of the whole node.
	rpmParseTimeout = 2 * time.Minute
)

// rpmAnalyzer lists rpm packages. Limits are fields so tests can shrink them.
type rpmAnalyzer struct {
	maxSize int64
	maxData int64 // non-zero bytes of one copy; 0 means rpmMaxDBData
	timeout time.Duration
	// tempDir is where databases are copied; empty means os.TempDir().
	tempDir string
	// parser parses the private copy; nil means InProcessRPM with timeout.
	parser RPMParser
}

// NewRPM returns the analyzer for rpm packages (RHEL and its rebuilds, Fedora, SUSE, Amazon Linux, Azure Linux).
func NewRPM(opts ...AnalyzerOption) Analyzer {
	return newRPMAnalyzer(collectOptions(opts))
}

func newRPMAnalyzer(o analyzerOptions) *rpmAnalyzer {
	return &rpmAnalyzer{maxSize: rpmMaxDBSize, timeout: rpmParseTimeout, parser: o.rpm}
}

// rpmName is the rpm analyzer's name, which the analyzers that read rpm packages require.
const rpmName = "rpm"

func (a *rpmAnalyzer) Name() string { return rpmName }

func (a *rpmAnalyzer) Version() int { return 1 }

// Requires os-release: the ecosystem (Red Hat, AlmaLinux, SUSE, ...) comes from Result.OS, since the same database
// format is used by distributions with different advisories.
func (a *rpmAnalyzer) Requires() []string { return []string{osReleaseName} }

func (a *rpmAnalyzer) Paths() []string {
	var ps []string
	for _, d := range rpmDirs {
		for _, f := range rpmDBFiles {
			ps = append(ps, d+"/"+f)
		}
	}
	return ps
}

// Analyze reads the database of each rpm directory. When var/lib/rpm links to usr/lib/sysimage/rpm both name the
// same database: its packages are reported once, with both locations.
func (a *rpmAnalyzer) Analyze(ctx context.Context, fsys FS, out *report.Result) error {
	eco := rpmEcosystem(out.OS)
	var pkgs osPackages
	var errs []report.FileError
	for _, dir := range rpmDirs {
		for _, f := range rpmDBFiles {
			if err := ctx.Err(); err != nil {
				return err
			}
			p := dir + "/" + f
			infos, err := a.readDB(ctx, fsys, p)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				errs = append(errs, report.FileError{Analyzer: a.Name(), Path: p, Err: err.Error()})
				break
			}
			for _, info := range infos {
				pkg, ok := rpmPackage(info)
				if !ok {
					continue
				}
				pkg.Ecosystem, pkg.FoundBy = eco, a.Name()
				pkgs.add(pkg, p)
			}
			break
		}
	}
	out.Packages = append(out.Packages, pkgs.sorted()...)
	out.Errors = append(out.Errors, errs...)
	return nil
}

// readDB copies one database out of the root and parses it. fs.ErrNotExist means there is no such file.
//
// This is the only place package scan writes to disk. go-rpmdb opens databases by path (Berkeley DB and ndb seek
// in the file, and sqlite needs a real file for its pager), while the root is only reachable through fsys, whose
// reads are confined to the root. Handing go-rpmdb a path inside the root would bypass that confinement (a
// var/lib/rpm link to /etc/shadow on the host); so the file is copied, bounded, through fsys into a private temp
// file (0600, in a 0700 dir under os.TempDir()), parsed, and removed with its dir before readDB returns. The parser
// sees only that copy: an RPMSubprocess child never gets a path inside the root.
//
// The copy is sparse (see sparseCopy): it costs the disk the database's non-zero bytes, at most rpmMaxDBData. It
// is not read in place through the root's descriptor (/proc/self/fd/N) instead because go-rpmdb takes a plain
// path, and rpm keeps rpmdb.sqlite in WAL mode: SQLite then creates -shm and -wal files beside the database to
// read it, which it cannot do beside a descriptor path or in a read-only root, unless told the file is immutable
// through a URI that go-rpmdb's Open (os.Open, then sql.Open, of the same string) does not accept.
func (a *rpmAnalyzer) readDB(ctx context.Context, fsys FS, name string) ([]*rpmdb.PackageInfo, error) {
	f, _, err := OpenRegular(fsys, name, a.maxSize)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	// A private 0700 directory, removed whole afterwards: sqlite adds -wal/-shm/-journal files beside the database
	// (and leaves them when it fails on a damaged file), so removing the copy alone is not enough.
	dir, err := os.MkdirTemp(a.tempDir, "rootscan-rpmdb-*")
	if err != nil {
		// Not %w: a missing TMPDIR is ENOENT too, and the caller takes fs.ErrNotExist for "no such database".
		return nil, fmt.Errorf("create temp dir: %v", err)
	}
	defer os.RemoveAll(dir)
	tmp, err := os.OpenFile(filepath.Join(dir, "rpmdb"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create temp copy: %v", err)
	}
	// Emptied before it is removed: go-rpmdb leaves a descriptor of the copy open (rpmdb.Open tries ndb.Open first,
	// which returns "not ndb" without closing its file, on every Berkeley DB), and a removed file whose descriptor is
	// open keeps its disk blocks until the garbage collector closes it. With its data gone, such a descriptor pins
	// an empty inode only, and a damaged database that go-rpmdb is still reading after the deadline meets its end.
	defer os.Truncate(tmp.Name(), 0)
	// The file is created 0600; the Chmod enforces it against an odd umask.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("chmod temp copy: %w", err)
	}
	maxData := a.maxData
	if maxData <= 0 {
		maxData = rpmMaxDBData
	}
	n, err := sparseCopy(tmp, io.LimitReader(ctxReader{ctx, f}, a.maxSize+1), maxData)
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("copy: %w", err)
	}
	if n > a.maxSize {
		return nil, fmt.Errorf("%w: grew past %d bytes while read", ErrTooLarge, a.maxSize)
	}
	parser := a.parser
	if parser == nil {
		parser = InProcessRPM{Timeout: a.timeout}
	}
	return parser.ParseRPMDB(ctx, tmp.Name())
}

// parseRPMDB runs go-rpmdb on a file with a deadline and turns a panic into an error. It runs go-rpmdb in its own
// goroutine because go-rpmdb takes no context: when the deadline or ctx ends first, the goroutine is abandoned (it
// holds only the temp file and its memory until it ends).
//
// recover() only covers this goroutine, but go-rpmdb reads Berkeley DB and ndb files in goroutines of its own, where
// a panic ends the whole process, and it trusts offsets and lengths from the file (fuzzing found an out-of-range
// slice in bdb.HashPageValueIndexes; overflow-page chains can loop forever, ndb blob lengths allocate up to 4 GiB).
// rpmPreflight therefore walks the same structures first, here, with bounds checks, and go-rpmdb only sees files
// whose every offset it will follow is inside the file. preflight is false only in tests of the child process, which
// must see go-rpmdb fail the way a file the preflight misses would make it fail.
func parseRPMDB(ctx context.Context, path string, timeout time.Duration, preflight bool) ([]*rpmdb.PackageInfo, error) {
	type result struct {
		pkgs []*rpmdb.PackageInfo
		err  error
	}
	deadline := time.Now().Add(timeout)
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			if p := recover(); p != nil {
				r = result{err: fmt.Errorf("parse rpm database: panic: %v", p)}
			}
			done <- r
		}()
		if preflight {
			if err := rpmPreflight(ctx, path, deadline); err != nil {
				r.err = err
				return
			}
		}
		db, err := rpmdb.Open(path)
		if err != nil {
			r.err = fmt.Errorf("open rpm database: %w", err)
			return
		}
		defer db.Close()
		r.pkgs, r.err = db.ListPackages()
		if r.err != nil {
			r.err = fmt.Errorf("list packages: %w", r.err)
		}
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r := <-done:
		return r.pkgs, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timer.C:
		return nil, fmt.Errorf("%w (%v)", errRPMTimeout, timeout)
	}
}

// rpmPackage turns a go-rpmdb record into a Package. gpg-pubkey records are the keys rpm trusts, not software,
// and are left out, as rpm -qa users expect from SBOM tools.
func rpmPackage(info *rpmdb.PackageInfo) (report.Package, bool) {
	if info == nil || info.Name == "" || info.Name == "gpg-pubkey" || info.Version == "" {
		return report.Package{}, false
	}
	epoch := ""
	if e := info.EpochNum(); e > 0 {
		epoch = strconv.Itoa(e) + ":"
	}
	vr := info.Version
	if info.Release != "" {
		vr += "-" + info.Release
	}
	pkg := report.Package{Name: info.Name, Version: epoch + vr, Arch: info.Arch}
	// Advisories are keyed by source rpm; its epoch is the binary's (rpm builds all binaries of a source with it).
	if src, srcVR, ok := parseSourceRPM(info.SourceRpm); ok {
		pkg.Source, pkg.SourceVersion = src, epoch+srcVR
	}
	return pkg, true
}

// parseSourceRPM splits "name-version-release.src.rpm" (name may contain dashes; version and release may not).
func parseSourceRPM(s string) (name, versionRelease string, ok bool) {
	base, found := strings.CutSuffix(s, ".src.rpm")
	if !found {
		if base, found = strings.CutSuffix(s, ".nosrc.rpm"); !found {
			return "", "", false
		}
	}
	r := strings.LastIndexByte(base, '-')
	if r <= 0 {
		return "", "", false
	}
	v := strings.LastIndexByte(base[:r], '-')
	if v <= 0 || v+1 == r || r+1 == len(base) {
		return "", "", false
	}
	return base[:v], base[v+1:], true
}

// rpmEcosystem names the OSV ecosystem for an rpm root from its os-release ID. Distributions OSV has no ecosystem
// for (CentOS, Fedora, Amazon Linux, Oracle Linux, Photon OS) get "RPM", so they are not matched against another
// distribution's advisories by mistake.
func rpmEcosystem(os *report.OS) string {
	if os == nil {
		return "RPM"
	}
	switch id := os.ID; {
	case id == "rhel":
		return report.EcosystemRedHat
	case id == "almalinux":
		return "AlmaLinux"
	case id == "rocky":
		return "Rocky Linux"
	case id == "sles" || id == "sled" || id == "sles_sap" || id == "sle-micro" || id == "sl-micro":
		return "SUSE"
	case id == "opensuse" || strings.HasPrefix(id, "opensuse-"):
		return "openSUSE"
	case id == "mageia":
		return "Mageia"
	case id == "openEuler" || id == "openeuler":
		return "openEuler"
	case id == "azurelinux" || id == "mariner":
		return "Azure Linux"
	}
	return "RPM"
}

// sparseCopyBlock is the unit sparseCopy writes or skips; sqlite's default page is 4 KiB.
const sparseCopyBlock = 4096

// sparseCopy copies r to w, leaving blocks of zeros as holes (a seek past them, and a final Truncate), and fails
// once more than maxData bytes would be written: a database's private copy costs the disk its non-zero bytes, not
// the size the file states. It returns the bytes read.
func sparseCopy(w *os.File, r io.Reader, maxData int64) (int64, error) {
	buf := make([]byte, 64<<10)
	var read, written int64
	for {
		n, err := io.ReadFull(r, buf)
		for off := 0; off < n; off += sparseCopyBlock {
			blk := buf[off:min(off+sparseCopyBlock, n)]
			if allZero(blk) {
				if _, serr := w.Seek(int64(len(blk)), io.SeekCurrent); serr != nil {
					return read, serr
				}
				continue
			}
			if written += int64(len(blk)); written > maxData {
				return read, fmt.Errorf("%w: more than %d bytes that are not zero", ErrTooLarge, maxData)
			}
			if _, werr := w.Write(blk); werr != nil {
				return read, werr
			}
		}
		read += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return read, w.Truncate(read)
		}
		if err != nil {
			return read, err
		}
	}
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.NativeEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// ctxReader stops a long copy when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Berkeley DB and ndb layout constants go-rpmdb keeps unexported.
var bdbValidPageSizes = map[uint32]bool{512: true, 1024: true, 2048: true, 4096: true, 8192: true, 16384: true, 32768: true, 65536: true}

const (
	ndbHeaderMagic   = 'R' | 'p'<<8 | 'm'<<16 | 'P'<<24
	ndbSlotMagic     = 'S' | 'l'<<8 | 'o'<<16 | 't'<<24
	ndbBlobMagic     = 'B' | 'l'<<8 | 'b'<<16 | 'S'<<24
	ndbSlotsPerPage  = 4096 / 16
	ndbHeaderSize    = 32
	ndbBlobHeaderLen = 16
)

// errRPMTimeout is the deadline of one database passing, in the check or in go-rpmdb.
var errRPMTimeout = errors.New("parse rpm database: gave up after the time limit")

// errRPMDamaged marks a database the preflight refused; go-rpmdb is not run on it.
var errRPMDamaged = errors.New("damaged rpm database")

// errRPMFormat is a file in none of the three formats, which the preflight refuses too: go-rpmdb's Open would
// refuse it after opening it, and it does not close the file it opened when it refuses one.
var errRPMFormat = errors.New("not an rpm database: no sqlite, ndb or Berkeley DB hash header")

// rpmPreflight checks a Berkeley DB or ndb file the way go-rpmdb will read it and refuses any file that would make
// go-rpmdb index out of range, loop, or allocate beyond the file's size, in each format checking every package
// header's declared sizes against its length (rpmHeaderFits). Pages of sqlite files are left to SQLite, which is
// built to read hostile files. It also refuses every file go-rpmdb's Open or first query would refuse (no known
// format, a header it rejects, no Packages table): go-rpmdb leaves the file it opened open when Open fails, and
// when its sqlite query fails its reader goroutine blocks forever on a second error nobody receives.
func rpmPreflight(ctx context.Context, path string, deadline time.Time) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open rpm database: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat rpm database: %w", err)
	}
	head := make([]byte, 512)
	n, _ := f.ReadAt(head, 0)
	head = head[:n]
	c := rpmCheck{ctx: ctx, deadline: deadline, f: f, size: fi.Size()}
	switch {
	case bytes.HasPrefix(head, []byte("SQLite format 3\x00")):
		err = c.sqlite(path)
	case len(head) >= ndbHeaderSize && binary.LittleEndian.Uint32(head) == ndbHeaderMagic:
		err = c.ndb(head)
	case len(head) == 512:
		md, perr := bdb.ParseHashMetadataPage(head)
		if perr != nil {
			return fmt.Errorf("%w: %w", errRPMFormat, perr)
		}
		err = c.bdb(md)
	default:
		return errRPMFormat
	}
	if err != nil && !errors.Is(err, errRPMTimeout) && ctx.Err() == nil {
		return fmt.Errorf("%w: %w", errRPMDamaged, err)
	}
	return err
}

// rpmCheck walks one database file.
type rpmCheck struct {
	ctx      context.Context
	deadline time.Time
	f        *os.File
	size     int64
	steps    int
}

// tick lets a long walk notice the context and the deadline without a syscall per step.
func (c *rpmCheck) tick() error {
	c.steps++
	if c.steps%1024 != 0 {
		return nil
	}
	if err := c.ctx.Err(); err != nil {
		return err
	}
	if time.Now().After(c.deadline) {
		return errRPMTimeout
	}
	return nil
}

func (c *rpmCheck) page(buf []byte, off int64) error {
	if off < 0 || off+int64(len(buf)) > c.size {
		return fmt.Errorf("page at offset %d beyond the end of the file", off)
	}
	_, err := c.f.ReadAt(buf, off)
	return err
}

// bdb mirrors bdb.(*BerkeleyDB).Read and bdb.HashPageValueContent.
func (c *rpmCheck) bdb(md *bdb.HashMetadataPage) error {
	ps := md.PageSize
	if !bdbValidPageSizes[ps] {
		return fmt.Errorf("page size %d", ps)
	}
	order := binary.ByteOrder(binary.LittleEndian)
	if md.Swapped {
		order = binary.BigEndian
	}
	pages := c.size / int64(ps)
	// Every value is copied out of its overflow pages; in a sound file each page belongs to one value, so the
	// values together are smaller than the file. A file whose values share pages is refused before go-rpmdb
	// spends time and memory on it.
	var total int64
	buf := make([]byte, ps)
	ovf := make([]byte, ps)
	for pageNum := int64(0); pageNum <= int64(md.LastPageNo); pageNum++ {
		if err := c.tick(); err != nil {
			return err
		}
		if (pageNum+1)*int64(ps) > c.size {
			return nil // go-rpmdb stops here with a read error, which it reports
		}
		if err := c.page(buf, pageNum*int64(ps)); err != nil {
			return err
		}
		hp, err := bdb.ParseHashPage(buf, md.Swapped)
		if err != nil {
			return nil
		}
		if hp.PageType != bdb.HashUnsortedPageType && hp.PageType != bdb.HashPageType {
			continue
		}
		if hp.NumEntries%2 != 0 {
			return nil // go-rpmdb reports it
		}
		idxSize := int(uint16(hp.NumEntries * bdb.HashIndexEntrySize)) // go-rpmdb computes it in uint16
		// go-rpmdb adds the header size in uint16 too: a sum past 65535 wraps and its slice bounds invert.
		if bdb.PageHeaderSize+idxSize > len(buf) || bdb.PageHeaderSize+idxSize > 0xffff {
			return fmt.Errorf("page %d: %d index entries do not fit the page", pageNum, hp.NumEntries)
		}
		idx := buf[bdb.PageHeaderSize : bdb.PageHeaderSize+idxSize]
		for i := bdb.HashIndexEntrySize; i+2 <= len(idx); i += 2 * bdb.HashIndexEntrySize {
			v := int(order.Uint16(idx[i:]))
			if v >= len(buf) {
				return fmt.Errorf("page %d: value offset %d outside the page", pageNum, v)
			}
			if buf[v] != bdb.HashOffIndexPageType {
				continue
			}
			if v+bdb.HashOffPageSize > len(buf) || uint16(v+bdb.HashOffPageSize) < uint16(v) {
				return fmt.Errorf("page %d: value entry at %d crosses the page end", pageNum, v)
			}
			e, err := bdb.ParseHashOffPageEntry(buf[v:v+bdb.HashOffPageSize], md.Swapped)
			if err != nil {
				return nil
			}
			steps, valueLen := int64(0), int64(0)
			var prefix []byte
			for cur := e.PageNo; cur != 0; {
				if err := c.tick(); err != nil {
					return err
				}
				steps++
				if steps > pages {
					return fmt.Errorf("page %d: overflow chain loops", pageNum)
				}
				off := int64(ps * cur) // go-rpmdb computes it in uint32
				if off+int64(ps) > c.size {
					return nil // a read error go-rpmdb reports
				}
				if err := c.page(ovf, off); err != nil {
					return err
				}
				op, err := bdb.ParseHashPage(ovf, md.Swapped)
				if err != nil {
					return nil
				}
				if op.PageType != bdb.OverflowPageType {
					// go-rpmdb would retry the same page forever.
					return fmt.Errorf("page %d: overflow chain reaches page %d, which is no overflow page", pageNum, cur)
				}
				n := len(ovf) - bdb.PageHeaderSize
				if op.NextPageNo == 0 {
					if bdb.PageHeaderSize+int(op.FreeAreaOffset) > len(ovf) {
						return fmt.Errorf("overflow page %d: length %d beyond the page", cur, op.FreeAreaOffset)
					}
					n = int(op.FreeAreaOffset)
				}
				if prefix == nil {
					prefix = bytes.Clone(ovf[bdb.PageHeaderSize : bdb.PageHeaderSize+min(n, 8)])
				}
				total += int64(n)
				valueLen += int64(n)
				if total > c.size {
					return errors.New("values larger than the file: overflow pages are shared")
				}
				cur = op.NextPageNo
			}
			if prefix != nil {
				if err := rpmHeaderFits(prefix, valueLen); err != nil {
					return fmt.Errorf("page %d: %w", pageNum, err)
				}
			}
		}
	}
	return nil
}

// rpmHeaderFits checks that an rpm header of length bytes, which starts with prefix, holds the index entries and
// data it declares. go-rpmdb allocates the index (16 bytes per entry) from the declared count before it compares it
// with anything: a header of 8 bytes declaring 2^31 entries asks for 32 GiB.
func rpmHeaderFits(prefix []byte, length int64) error {
	if len(prefix) < 8 {
		return fmt.Errorf("rpm header of %d bytes", length)
	}
	il, dl := int64(int32(binary.BigEndian.Uint32(prefix))), int64(int32(binary.BigEndian.Uint32(prefix[4:])))
	if il < 1 || dl < 0 || 8+16*il+dl > length {
		return fmt.Errorf("rpm header declares %d index entries and %d data bytes in %d bytes", il, dl, length)
	}
	return nil
}

// sqlite checks the declared sizes of every header in an rpmdb.sqlite, reading only each blob's length and first
// bytes.
func (c *rpmCheck) sqlite(path string) error {
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return nil // go-rpmdb's Open reports it
	}
	defer db.Close()
	rows, err := db.QueryContext(c.ctx, "SELECT length(blob), substr(blob, 1, 8) FROM Packages")
	if err != nil {
		return fmt.Errorf("query packages: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := c.tick(); err != nil {
			return err
		}
		var (
			n      int64
			prefix []byte
		)
		if err := rows.Scan(&n, &prefix); err != nil {
			return nil
		}
		if err := rpmHeaderFits(prefix, n); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read packages: %w", err)
	}
	return nil
}

// ndb mirrors ndb.Open and ndb.(*RpmNDB).Read.
func (c *rpmCheck) ndb(head []byte) error {
	version := binary.LittleEndian.Uint32(head[4:])
	slotPages := binary.LittleEndian.Uint32(head[12:])
	if version != 0 || slotPages == 0 || slotPages > 2048 {
		return fmt.Errorf("ndb version %d with %d slot pages", version, slotPages)
	}
	nslots := int64(slotPages)*ndbSlotsPerPage - 2
	if ndbHeaderSize+nslots*16 > c.size {
		return fmt.Errorf("%d ndb slot pages beyond the end of the file", slotPages)
	}
	slots := make([]byte, nslots*16)
	if err := c.page(slots, ndbHeaderSize); err != nil {
		return err
	}
	var total int64
	hdr := make([]byte, ndbBlobHeaderLen)
	for i := int64(0); i < nslots; i++ {
		if err := c.tick(); err != nil {
			return err
		}
		s := slots[i*16 : i*16+16]
		if binary.LittleEndian.Uint32(s) != ndbSlotMagic {
			// go-rpmdb would print to stdout (which carries our JSON) before reporting it.
			return fmt.Errorf("slot %d: bad magic", i)
		}
		pkgIndex := binary.LittleEndian.Uint32(s[4:])
		if pkgIndex == 0 {
			continue
		}
		off := int64(binary.LittleEndian.Uint32(s[8:])) * ndbBlobHeaderLen
		if err := c.page(hdr, off); err != nil {
			return fmt.Errorf("slot %d: blob header: %w", i, err)
		}
		// go-rpmdb reports a wrong magic or index but carries on reading; refusing here keeps its reader from
		// blocking forever on an error nobody receives.
		if binary.LittleEndian.Uint32(hdr) != ndbBlobMagic || binary.LittleEndian.Uint32(hdr[4:]) != pkgIndex {
			return fmt.Errorf("slot %d: no blob for package %d at offset %d", i, pkgIndex, off)
		}
		n := int64(binary.LittleEndian.Uint32(hdr[12:]))
		if off+ndbBlobHeaderLen+n > c.size {
			return fmt.Errorf("slot %d: blob of %d bytes beyond the end of the file", i, n)
		}
		var head [8]byte
		if n >= 8 {
			if err := c.page(head[:], off+ndbBlobHeaderLen); err != nil {
				return err
			}
		}
		if err := rpmHeaderFits(head[:min(n, 8)], n); err != nil {
			return fmt.Errorf("slot %d: %w", i, err)
		}
		if total += n; total > c.size {
			return errors.New("blobs larger than the file: slots share blobs")
		}
	}
	return nil
}
