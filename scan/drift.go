package scan

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
)

// XattrFS is a root that can read a file's extended attributes without opening the file (fsaccess.Root does it
// through an O_PATH descriptor). Drift needs it for overlayfs's opaque directories; on an FS without it opaque
// directories cannot be told apart, and Drift says so once in its errors.
type XattrFS interface {
	Getxattr(name, attr string) ([]byte, error)
}

// The xattrs overlayfs marks an opaque directory with: trusted.* normally, user.* for layers written with the
// userxattr mount option (rootless containerd). The value "y" means the directory hides everything below it in the
// lower layers; "x" (Linux 6.7+) only says that it holds xattr-whiteouts, and is not opaque.
var overlayOpaqueXattrs = []string{"trusted.overlay.opaque", "user.overlay.opaque"}

// overlayMetacopyXattrs mark a metadata-only copy-up (the metacopy=on mount option): the upper file carries the new
// mode or owner but no data, which stays in the lower layer at the same path.
var overlayMetacopyXattrs = []string{"trusted.overlay.metacopy", "user.overlay.metacopy"}

// DefaultDriftMountPoints are the paths where runc and kubelet mount something into every container. When the image
// lacks them, runc creates empty stubs in the container's upper dir to mount onto: an empty file or a directory
// there is the runtime's doing, not the workload's, and is not drift. Writes below them while the container runs go
// to the mounted filesystem, never to the upper dir, so anything else found there is reported as usual.
var DefaultDriftMountPoints = []string{
	"proc", "sys", "dev", "dev/shm", "dev/termination-log",
	"etc/hosts", "etc/hostname", "etc/resolv.conf",
	"run/secrets/kubernetes.io/serviceaccount", "var/run/secrets/kubernetes.io/serviceaccount",
}

// ErrDriftTruncated marks a drift list cut at DriftOptions.MaxResults (or a walk cut by its bounds): the list is what
// was found up to there, and the FileError that carries it says so.
var ErrDriftTruncated = errors.New("drift truncated")

// DriftOptions bound one drift computation; zero fields take the defaults. A container that unpacks a million files
// into its upper dir costs a bounded walk and a bounded list, never an unbounded one.
type DriftOptions struct {
	// MaxEntries bounds the upper-dir entries visited (default 1,000,000).
	MaxEntries int
	// MaxDepth bounds the directory depth walked (default fsaccess.DefaultWalkMaxDepth).
	MaxDepth int
	// MaxResults bounds the entries returned (default 10,000); past it the list is cut and ErrDriftTruncated reported.
	MaxResults int
	// MaxResultBytes bounds the bytes of the paths and hashes returned (default 4 MiB), cut the same way: 10,000
	// entries of 4,000-byte paths would be 40 MB kept in the report.
	MaxResultBytes int
	// MaxHashSize is the largest executable hashed (default 256 MiB); bigger ones are listed without a hash.
	MaxHashSize int64
	// MaxHashes bounds how many executables are hashed (default 1,000).
	MaxHashes int
	// MountPoints are the runtime's mount points (see DefaultDriftMountPoints, the default when nil).
	MountPoints []string
}

func (o DriftOptions) withDefaults() DriftOptions {
	if o.MaxEntries <= 0 {
		o.MaxEntries = 1_000_000
	}
	if o.MaxResults <= 0 {
		o.MaxResults = 10_000
	}
	if o.MaxResultBytes <= 0 {
		o.MaxResultBytes = 4 << 20
	}
	if o.MaxHashSize <= 0 {
		o.MaxHashSize = 256 << 20
	}
	if o.MaxHashes <= 0 {
		o.MaxHashes = 1_000
	}
	if o.MountPoints == nil {
		o.MountPoints = DefaultDriftMountPoints
	}
	return o
}

// driftAnalyzer is the name drift's problems are reported under.
const driftAnalyzer = "drift"

// Drift compares a container's upper dir (overlayfs's upperdir, mounted on its own) with the image it runs on (the
// lower dirs alone) and lists what the container added, changed and deleted, sorted by path:
//
//   - an entry of the upper dir that the image lacks was added (a new directory and each entry below it);
//   - one the image has was changed (overlayfs copies a file up whole on any write, chmod or chown); a directory the
//     image has is listed only when its mode or owner changed or it is opaque, since overlayfs copies up every parent
//     of a changed file and those copies say nothing;
//   - a whiteout (a character device 0/0, found by Lstat and never opened) means the image's entry was deleted;
//   - an opaque directory (trusted.overlay.opaque=y, through XattrFS) hides the image's whole directory: it is
//     changed, and each entry the image had in it that the upper dir does not is deleted.
//
// Regular files are marked Executable by their x bits or, failing those, by an ELF or "#!" start (at most 4 bytes
// read); added and changed executables get their SHA-256, bounded in size and count. The error is for a drift that
// could not be computed at all (the upper dir unreadable, ctx ended); problems with single entries, and a list cut
// at its bounds (ErrDriftTruncated), are in the returned FileErrors.
func Drift(ctx context.Context, upper, image FS, opts DriftOptions) ([]report.DriftEntry, []report.FileError, error) {
	d := &drift{ctx: ctx, upper: upper, image: image, opts: opts.withDefaults()}
	d.xattrs, _ = upper.(XattrFS)
	if d.xattrs == nil {
		d.fail("", "the upper dir's FS cannot read xattrs: opaque directories are not detected")
	}
	err := fsaccess.WalkFS(ctx, upper, ".", fsaccess.WalkOptions{MaxEntries: d.opts.MaxEntries, MaxDepth: d.opts.MaxDepth}, d.visit)
	if errors.Is(err, errDriftStop) {
		err = nil
	}
	if err != nil {
		return nil, d.errs, fmt.Errorf("drift: %w", err)
	}
	slices.SortFunc(d.out, func(a, b report.DriftEntry) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Change, b.Change)
	})
	return d.out, d.errs, nil
}

// errDriftStop ends the walk once the result is cut; Drift turns it back into a normal return.
var errDriftStop = errors.New("drift stop")

type drift struct {
	ctx           context.Context
	upper, image  FS
	xattrs        XattrFS
	opts          DriftOptions
	hashes        int
	hashBudgetHit bool
	outBytes      int // the bytes of out's strings, for MaxResultBytes
	// addedDir is the last directory found added: entries below it cannot be in the image, so they need no lookup.
	addedDir string
	buf      []byte // hashing buffer, reused
	out      []report.DriftEntry
	errs     []report.FileError
}

func (d *drift) fail(name, msg string) {
	d.errs = append(d.errs, report.FileError{Analyzer: driftAnalyzer, Path: name, Err: msg})
}

// add appends one entry, or cuts the result when it is full.
func (d *drift) add(e report.DriftEntry) error {
	if len(d.out) >= d.opts.MaxResults {
		d.fail("", fmt.Sprintf("%v: more than %d changes; the rest are not listed", ErrDriftTruncated, d.opts.MaxResults))
		return errDriftStop
	}
	n := len(e.Path) + len(e.Change) + len(e.Type) + len(e.SHA256)
	if d.outBytes+n > d.opts.MaxResultBytes {
		d.fail(e.Path, fmt.Sprintf("%v: the changes listed reached %d bytes of paths; this and the rest are not listed", ErrDriftTruncated, d.opts.MaxResultBytes))
		return errDriftStop
	}
	d.outBytes += n
	d.out = append(d.out, e)
	return nil
}

func (d *drift) visit(name string, de fs.DirEntry, err error) error {
	if err != nil {
		var le *fsaccess.WalkLimitError
		switch {
		case errors.As(err, &le) && le.Depth:
			d.fail(name, fmt.Sprintf("%v: deeper than %d directories; not compared", ErrDriftTruncated, le.Limit))
			return fs.SkipDir
		case le != nil:
			d.fail("", fmt.Sprintf("%v: the upper dir has more than %d entries; the rest were not compared", ErrDriftTruncated, le.Limit))
			return errDriftStop
		case name == ".":
			return err
		}
		d.fail(name, err.Error())
		if de != nil && de.IsDir() {
			return fs.SkipDir
		}
		return nil
	}
	if name == "." {
		return nil
	}
	fi, err := de.Info()
	if errors.Is(err, fs.ErrNotExist) {
		return nil // removed since it was listed: the upper dir of a running container moves
	}
	if err != nil {
		d.fail(name, err.Error())
		return nil
	}
	if isWhiteout(fi) {
		return d.deleted(name)
	}
	var img fs.FileInfo
	if d.addedDir == "" || !strings.HasPrefix(name, d.addedDir+"/") {
		d.addedDir = ""
		img, err = d.image.Lstat(name)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			d.fail(name, fmt.Sprintf("look up in image: %v", err))
		}
	}
	inImage := img != nil
	if !inImage && fi.IsDir() && d.addedDir == "" {
		d.addedDir = name
	}
	if !inImage && d.runtimeStub(name, fi) {
		return nil
	}
	e := report.DriftEntry{Path: name, Change: report.DriftAdded, Type: driftType(fi.Mode()), Mode: UnixPerm(fi.Mode())}
	if inImage {
		e.Change = report.DriftChanged
	}
	if fi.IsDir() {
		return d.dir(name, fi, img, e)
	}
	if fi.Mode().IsRegular() {
		e.Size = fi.Size()
		e.Executable = d.executable(name, fi)
		if e.Executable {
			e.SHA256 = d.hash(name, fi)
		}
	}
	return d.add(e)
}

// dir handles a directory of the upper dir: new, replaced (opaque), retyped or with a new mode or owner.
func (d *drift) dir(name string, fi, img fs.FileInfo, e report.DriftEntry) error {
	if img == nil {
		return d.add(e)
	}
	if d.opaque(name) && img.IsDir() {
		if err := d.add(e); err != nil {
			return err
		}
		return d.opaqueDeleted(name)
	}
	if !img.IsDir() || UnixPerm(img.Mode()) != e.Mode || !sameOwner(fi, img) {
		return d.add(e)
	}
	return nil
}

// opaqueDeleted lists, as deleted, what the image had in the opaque directory name that the upper dir does not have
// (an entry the upper dir has again is its own added or changed entry).
func (d *drift) opaqueDeleted(name string) error {
	imgEntries, err := d.image.ReadDir(name)
	if err != nil {
		d.fail(name, fmt.Sprintf("list image directory behind an opaque one: %v", err))
		return nil
	}
	upEntries, err := d.upper.ReadDir(name)
	if err != nil {
		d.fail(name, fmt.Sprintf("list opaque directory: %v", err))
		return nil
	}
	have := make(map[string]bool, len(upEntries))
	for _, u := range upEntries {
		have[u.Name()] = true
	}
	for _, ie := range imgEntries {
		if have[ie.Name()] {
			continue
		}
		if err := d.add(report.DriftEntry{Path: path.Join(name, ie.Name()), Change: report.DriftDeleted, Type: driftType(ie.Type())}); err != nil {
			return err
		}
	}
	return nil
}

// deleted records a whiteout. A whiteout over nothing the image has hides nothing and is not reported.
func (d *drift) deleted(name string) error {
	img, err := d.image.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	e := report.DriftEntry{Path: name, Change: report.DriftDeleted, Type: "other"}
	if err != nil {
		d.fail(name, fmt.Sprintf("look up deleted entry in image: %v", err))
	} else {
		e.Type = driftType(img.Mode())
	}
	return d.add(e)
}

// runtimeStub says whether an entry the image lacks is a mount point runc created (see DefaultDriftMountPoints): an
// empty regular file at one, or a directory at one or above one.
func (d *drift) runtimeStub(name string, fi fs.FileInfo) bool {
	for _, mp := range d.opts.MountPoints {
		switch {
		case name == mp:
			return fi.IsDir() || (fi.Mode().IsRegular() && fi.Size() == 0)
		case fi.IsDir() && strings.HasPrefix(mp, name+"/"):
			return true
		}
	}
	return false
}

func (d *drift) opaque(name string) bool {
	if d.xattrs == nil {
		return false
	}
	for _, attr := range overlayOpaqueXattrs {
		v, err := d.xattrs.Getxattr(name, attr)
		if err == nil && string(v) == "y" {
			return true
		}
	}
	return false
}

// hasXattr says whether name carries any of attrs, whatever the value.
func (d *drift) hasXattr(name string, attrs []string) bool {
	if d.xattrs == nil {
		return false
	}
	for _, attr := range attrs {
		if _, err := d.xattrs.Getxattr(name, attr); err == nil {
			return true
		}
	}
	return false
}

// executable reads at most 4 bytes, and only of a file without x bits: an ELF or a script left unmarked is still
// something to run (sh file, ld.so file).
func (d *drift) executable(name string, fi fs.FileInfo) bool {
	if fi.Mode().Perm()&0o111 != 0 {
		return true
	}
	if fi.Size() < 2 {
		return false
	}
	kind, err := fileKind(d.upper, name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		d.fail(name, fmt.Sprintf("read magic: %v", err))
	}
	return kind != ""
}

// hash returns the SHA-256 of an executable within the size and count bounds, "" (and a FileError) past them.
func (d *drift) hash(name string, fi fs.FileInfo) string {
	if fi.Size() > d.opts.MaxHashSize {
		d.fail(name, fmt.Sprintf("not hashed: %d bytes is above the %d byte limit", fi.Size(), d.opts.MaxHashSize))
		return ""
	}
	if d.hashes >= d.opts.MaxHashes {
		if !d.hashBudgetHit {
			d.hashBudgetHit = true
			d.fail("", fmt.Sprintf("more than %d executables changed: the rest are listed without a hash", d.opts.MaxHashes))
		}
		return ""
	}
	src := d.upper
	if d.hasXattr(name, overlayMetacopyXattrs) {
		src = d.image // the content is the image's; the upper file is a sparse shell
	} else if _, allocated, known := inodeOf(fi); known && fi.Size() > unownedSparseMin && allocated < fi.Size()/8 {
		// As for unowned executables: a program is never sparse, and hashing holes only costs time (16 sparse
		// 256 MiB files written into an upper dir were 20 s of SHA-256 per check).
		d.fail(name, fmt.Sprintf("not hashed: sparse file of %d bytes with %d allocated", fi.Size(), allocated))
		return ""
	}
	d.hashes++
	if d.buf == nil {
		d.buf = make([]byte, 64<<10)
	}
	sum, err := sha256File(d.ctx, src, name, d.opts.MaxHashSize, d.buf)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			d.fail(name, fmt.Sprintf("hash: %v", err))
		}
		return ""
	}
	return sum
}

// isWhiteout says whether fi is overlayfs's whiteout: a character device with device number 0/0. Its Sys must be a
// stat (fsaccess.StatOf; fsaccess.Root and os give one); without it no device is taken for a whiteout.
func isWhiteout(fi fs.FileInfo) bool {
	if fi.Mode()&fs.ModeCharDevice == 0 {
		return false
	}
	st, ok := fsaccess.StatOf(fi)
	return ok && st.Rdev == 0
}

func sameOwner(a, b fs.FileInfo) bool {
	sa, okA := fsaccess.StatOf(a)
	sb, okB := fsaccess.StatOf(b)
	if !okA || !okB {
		return true
	}
	return sa.Uid == sb.Uid && sa.Gid == sb.Gid
}

// driftType names a file type the way DriftEntry.Type does.
func driftType(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "file"
	case m.IsDir():
		return "dir"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	}
	return "other"
}

// UnixPerm is the mode as chmod and ls write it: permissions plus setuid, setgid and sticky (04755 for a setuid
// binary), the part of a mode drift is about.
func UnixPerm(m fs.FileMode) uint32 {
	p := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		p |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		p |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		p |= 0o1000
	}
	return p
}

// Kinds of executable content, as File.Kind names them.
const (
	KindELF    = "elf"
	KindScript = "script"
)

// fileKind reads the first 4 bytes of a regular file: KindELF, KindScript or "" for anything else.
func fileKind(fsys FS, name string) (string, error) {
	kind, _, err := probeKind(fsys, name)
	return kind, err
}

// probeKind is fileKind with the open file's stat; a file that is no longer regular is of no kind (and fi is nil).
func probeKind(fsys FS, name string) (kind string, fi fs.FileInfo, err error) {
	f, fi, err := OpenRegular(fsys, name, 1<<62)
	if err != nil {
		if errors.Is(err, ErrNotRegular) {
			return "", nil, nil
		}
		return "", nil, err
	}
	defer f.Close()
	var magic [4]byte
	n, err := io.ReadFull(f, magic[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", nil, err
	}
	return magicKind(magic[:n]), fi, nil
}

func magicKind(b []byte) string {
	switch {
	case len(b) >= 4 && string(b[:4]) == "\x7fELF":
		return KindELF
	case len(b) >= 2 && string(b[:2]) == "#!":
		return KindScript
	}
	return ""
}

// sha256File hashes a regular file of at most limit bytes, checking ctx between blocks; a file that grows past limit
// while it is read (a live upper dir) is refused.
func sha256File(ctx context.Context, fsys FS, name string, limit int64, buf []byte) (string, error) {
	f, _, err := OpenRegular(fsys, name, limit)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, io.LimitReader(ctxReader{ctx, f}, limit+1), buf)
	if err != nil {
		return "", err
	}
	if n > limit {
		return "", fmt.Errorf("%w: grew past %d bytes while read", ErrTooLarge, limit)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
