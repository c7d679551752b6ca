package scan

import (
	"bufio"
	"bytes"
	"context"
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

const (
	// unownedMaxCandidates bounds the executables remembered during the walk. A full Debian root with desktop
	// packages holds a few thousand; past the bound the rest are not considered and the result says so.
	unownedMaxCandidates = 100_000
	// unownedMaxHashSize is the largest unowned executable hashed; bigger ones are listed without a hash.
	unownedMaxHashSize = 256 << 20
	// unownedMaxHashes bounds how many unowned executables are hashed (each one is read whole).
	unownedMaxHashes = 2_000
	// unownedMaxHashBytes bounds the bytes hashed in one scan, whatever the files' count: at a few hundred MB/s
	// of SHA-256 it keeps one root's hashing to seconds (2,000 files of 256 MiB would be half an hour).
	unownedMaxHashBytes = 512 << 20
	// unownedSparseMin is the size from which a file with less than an eighth of it allocated counts as sparse and
	// is not hashed. Small files may legitimately have no blocks (inline data); a file system's compression
	// (btrfs, zfs) rarely shrinks a program below a third.
	unownedSparseMin = 1 << 20
	// unownedMaxListSize bounds one ownership list (a dpkg .list of the largest Debian packages is a few MiB; apk's
	// installed database of a big Alpine image a few MiB).
	unownedMaxListSize = 64 << 20
	// unownedMaxLine bounds one line of an ownership list (PATH_MAX and then some).
	unownedMaxLine = 16 << 10
	// unownedMaxLinkHops bounds symlink resolution of a listed directory, like the kernel's 40.
	unownedMaxLinkHops = 40
)

// Where the package managers say which files they own.
const (
	apkInstalledDB  = "lib/apk/db/installed"
	unownedAnalyzer = "unowned-files"
)

// unownedSkipExt are data files that are marked executable often enough (Debian ships many 0755 data files) to cost a
// stat each, and are not programs. Scripts (.sh, .py, .pl, ...) are not skipped: a copied-in script is a finding.
var unownedSkipExt = []string{
	".json", ".txt", ".md", ".rst", ".html", ".css", ".xml", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf",
	".service", ".rules", ".desktop", ".gz", ".xz", ".bz2", ".zst", ".zip", ".jar", ".class", ".png", ".jpg", ".gif",
	".svg", ".ico", ".ttf", ".otf", ".woff", ".woff2", ".mo", ".gmo", ".qm", ".h", ".hpp", ".c", ".go", ".java", ".pem",
	".crt", ".a", ".o", ".pyc", ".map",
}

// unownedAnalyzer lists the executables no OS package owns: a copied-in curl, a static binary, a script dropped into
// /usr/local/bin. Go and Rust programs are listed too when no OS package owns them (they are also packages, through
// their build info).
//
// It keeps no index of owned paths. During the shared walk it only remembers candidates (regular files with an x bit,
// from the walk's Lstat; nothing is opened) in Result.Files; Analyze then streams the package managers' file lists
// (dpkg info/*.list, info/*.md5sums and distroless status.d/*.md5sums, apk's F:/R: lines, rpm's file lists) line by
// line and strikes out each candidate they name. Only the survivors are opened: 4 bytes of magic decide ELF or script
// (anything else is a data file with an x bit and is dropped), then a bounded SHA-256.
//
// Lists name files by their package path (/bin/sh); on a merged-/usr root the file lives at usr/bin/sh behind the
// bin -> usr/bin link. A listed path whose base name matches a candidate's has its directory resolved through the
// root's symlinks (confined, cached per directory) before it is compared, so both spellings match.
type unownedFiles struct {
	maxCandidates, maxHashes               int
	maxHashSize, maxHashBytes, maxListSize int64
	rpm                                    *rpmAnalyzer
}

// NewUnownedFiles returns the analyzer that fills Result.Files.
func NewUnownedFiles(opts ...AnalyzerOption) Analyzer {
	return &unownedFiles{
		maxCandidates: unownedMaxCandidates, maxHashes: unownedMaxHashes,
		maxHashSize: unownedMaxHashSize, maxHashBytes: unownedMaxHashBytes, maxListSize: unownedMaxListSize,
		rpm: newRPMAnalyzer(collectOptions(opts)),
	}
}

func (a *unownedFiles) Name() string { return unownedAnalyzer }

func (a *unownedFiles) Version() int { return 1 }

func (a *unownedFiles) Requires() []string { return nil }

// Paths are the ownership lists; a change to them (a package installed in the container) changes what is unowned.
func (a *unownedFiles) Paths() []string {
	return append([]string{dpkgInfoDir + "/*.list", dpkgInfoDir + "/*.md5sums", dpkgStatusDir + "/*.md5sums",
		dpkgDiversionsPath, apkInstalledDB}, a.rpm.Paths()...)
}

// Wants takes regular files with an x bit outside the documentation and data trees goBinSkipDirs names. Without a
// DirEntry (a changed path in an upper dir) any path outside them may be an executable.
func (a *unownedFiles) Wants(name string, d fs.DirEntry) bool {
	for _, dir := range goBinSkipDirs {
		if strings.HasPrefix(name, dir) {
			return false
		}
	}
	if d == nil {
		return true
	}
	if !d.Type().IsRegular() {
		return false
	}
	for _, ext := range unownedSkipExt {
		if strings.HasSuffix(name, ext) {
			return false
		}
	}
	fi, err := d.Info()
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 && fi.Size() > 0
}

// AnalyzeFile remembers one candidate in out.Files, by path only (no I/O); Analyze finishes the survivors.
func (a *unownedFiles) AnalyzeFile(ctx context.Context, fsys FS, name string, out *report.Result) error {
	if len(out.Files) >= a.maxCandidates {
		if len(out.Files) == a.maxCandidates {
			out.Errors = append(out.Errors, report.FileError{Analyzer: a.Name(), Err: fmt.Sprintf("%v: more than %d executables; the rest were not checked for an owner", ErrWalkLimit, a.maxCandidates)})
			out.Files = append(out.Files, report.File{}) // marks the bound as reported; removed by Analyze
		}
		return nil
	}
	out.Files = append(out.Files, report.File{Path: name})
	return nil
}

// Analyze strikes out the candidates the package managers own and describes the rest.
func (a *unownedFiles) Analyze(ctx context.Context, fsys FS, out *report.Result) error {
	cands := slices.DeleteFunc(out.Files, func(f report.File) bool { return f.Path == "" })
	out.Files = nil
	if len(cands) == 0 {
		return nil
	}
	s := newOwnership(fsys, cands)
	s.readDpkg(ctx, a)
	s.readApk(ctx, a)
	s.readRPM(ctx, a)
	out.Errors = append(out.Errors, s.errs...)
	if err := ctx.Err(); err != nil {
		return err
	}
	h := &unownedHasher{a: a, fsys: fsys, bytesLeft: a.maxHashBytes, sums: map[fileID]string{}}
	for i, f := range cands {
		if s.owned[i] {
			continue
		}
		kind, fi, err := probeKind(fsys, f.Path)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				out.Errors = append(out.Errors, report.FileError{Analyzer: a.Name(), Path: f.Path, Err: err.Error()})
			}
			continue
		}
		if kind == "" {
			continue
		}
		f.Kind, f.Size = kind, fi.Size()
		if err := h.hash(ctx, &f, fi, out); err != nil {
			return err
		}
		out.Files = append(out.Files, f)
	}
	slices.SortFunc(out.Files, func(x, y report.File) int { return strings.Compare(x.Path, y.Path) })
	return nil
}

// unownedHasher hashes the unowned executables of one scan within its budgets: each inode once (hard links share
// the sum), at most maxHashes files and maxHashBytes bytes in all, none above maxHashSize, and no sparse file (a
// program is never sparse; a file of holes would only cost time to hash zeros). What is not hashed is said in a
// FileError and keeps an empty SHA256.
type unownedHasher struct {
	a         *unownedFiles
	fsys      FS
	hashed    int
	bytesLeft int64
	spent     bool // the count or byte budget ran out (reported once)
	sums      map[fileID]string
	buf       []byte
}

// fileID names an inode; hard links share it.
type fileID struct{ dev, ino uint64 }

func (h *unownedHasher) hash(ctx context.Context, f *report.File, fi fs.FileInfo, out *report.Result) error {
	fail := func(format string, args ...any) {
		out.Errors = append(out.Errors, report.FileError{Analyzer: h.a.Name(), Path: f.Path, Err: fmt.Sprintf(format, args...)})
	}
	id, allocated, known := inodeOf(fi)
	if sum, ok := h.sums[id]; known && ok {
		f.SHA256 = sum
		return nil
	}
	switch {
	case f.Size > h.a.maxHashSize:
		fail("not hashed: %d bytes is above the %d byte limit", f.Size, h.a.maxHashSize)
	case known && f.Size > unownedSparseMin && allocated < f.Size/8:
		fail("not hashed: sparse file of %d bytes with %d allocated", f.Size, allocated)
	case h.hashed >= h.a.maxHashes || f.Size > h.bytesLeft:
		if !h.spent {
			h.spent = true
			msg := fmt.Sprintf("more than %d unowned executables: the rest are listed without a hash", h.a.maxHashes)
			if h.hashed < h.a.maxHashes {
				msg = fmt.Sprintf("hashing budget of %d bytes per scan spent: the rest are listed without a hash", h.a.maxHashBytes)
			}
			out.Errors = append(out.Errors, report.FileError{Analyzer: h.a.Name(), Err: msg})
		}
	default:
		h.hashed++
		h.bytesLeft -= f.Size
		if h.buf == nil {
			h.buf = make([]byte, 64<<10)
		}
		sum, err := sha256File(ctx, h.fsys, f.Path, h.a.maxHashSize, h.buf)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fail("hash: %v", err)
		}
		f.SHA256 = sum
		if known && sum != "" {
			h.sums[id] = sum
		}
	}
	return nil
}

// inodeOf returns the inode of a file and the bytes it has allocated on disk, when its FileInfo carries a stat
// (files of an os-backed root do; those of an in-memory FS do not, and known is false).
func inodeOf(fi fs.FileInfo) (id fileID, allocated int64, known bool) {
	st, ok := fsaccess.StatOf(fi)
	if !ok {
		return fileID{}, 0, false
	}
	return fileID{dev: st.Dev, ino: st.Ino}, st.Blocks * 512, true
}

// ownership strikes candidates out as the lists are streamed past it.
type ownership struct {
	fsys   FS
	cands  []report.File
	owned  []bool
	left   int
	byBase map[string][]int
	// dirs caches the symlink-resolved form of listed directories ("bin" -> "usr/bin").
	dirs map[string]string
	// diversions maps a diverted path to where dpkg put the file instead (dpkg-divert), so that the package file
	// under its diverted name counts as owned.
	diversions map[string]string
	// divBases are the base names of the diverted paths: a listed path with one of them may be diverted.
	divBases map[string]bool
	errs     []report.FileError
	buf      []byte
	// visit, when set, is called with every listed path instead of striking candidates out (see WalkOwned); cur
	// is the package whose list is being read, and stopped is set once visit asks to stop.
	visit   func(p string) bool
	cur     Owner
	stopped bool
	// dirBytes is what dirs holds (names and the map's overhead), which WalkOwned bounds: every listed directory is
	// resolved there, not only candidates'.
	dirBytes, maxDirBytes int64
}

func newOwnership(fsys FS, cands []report.File) *ownership {
	s := &ownership{fsys: fsys, cands: cands, owned: make([]bool, len(cands)), left: len(cands),
		byBase: make(map[string][]int, len(cands)), dirs: map[string]string{}}
	for i, c := range cands {
		b := path.Base(c.Path)
		s.byBase[b] = append(s.byBase[b], i)
	}
	return s
}

func (s *ownership) done() bool { return s.stopped || (s.visit == nil && s.left == 0) }

func (s *ownership) fail(name string, err error) {
	s.errs = append(s.errs, report.FileError{Analyzer: unownedAnalyzer, Path: name, Err: err.Error()})
}

// own strikes out the candidate at p (root-relative, as a package list spells it), if there is one.
func (s *ownership) own(p string) {
	if s.visit != nil {
		s.visitListed(p)
		return
	}
	if to, ok := s.diversions[p]; ok {
		s.own1(to)
	}
	s.own1(p)
}

func (s *ownership) own1(p string) {
	idxs := s.byBase[path.Base(p)]
	if len(idxs) == 0 {
		return
	}
	dir := path.Dir(p)
	var resolved string
	for _, i := range idxs {
		if s.owned[i] {
			continue
		}
		c := s.cands[i].Path
		if c == p {
			s.strike(i)
			continue
		}
		if resolved == "" {
			resolved = s.resolveDir(dir)
		}
		if path.Dir(c) == resolved {
			s.strike(i)
		}
	}
}

func (s *ownership) strike(i int) {
	s.owned[i] = true
	s.left--
}

// resolveDir follows the symlinks of a directory path inside the root (absolute targets mean the root's), as the
// kernel would with RESOLVE_IN_ROOT, and returns the real path: "bin" on a merged-/usr root is "usr/bin". Results
// are cached; a loop or too many hops leaves the path as it is.
func (s *ownership) resolveDir(dir string) string {
	if r, ok := s.dirs[dir]; ok {
		return r
	}
	r := dir
	if dir != "." {
		parent := s.resolveDir(path.Dir(dir))
		r = s.follow(path.Join(parent, path.Base(dir)), 0)
	}
	s.dirs[dir] = r
	s.dirBytes += int64(len(dir) + len(r) + dirEntryOverhead)
	return r
}

// follow resolves p whose parent is already real.
func (s *ownership) follow(p string, hops int) string {
	fi, err := s.fsys.Lstat(p)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 || hops >= unownedMaxLinkHops {
		return p
	}
	target, err := s.fsys.ReadLink(p)
	if err != nil {
		return p
	}
	var next string
	if strings.HasPrefix(target, "/") {
		next = path.Clean(strings.TrimLeft(target, "/"))
	} else {
		next = path.Join(path.Dir(p), target)
	}
	// ".." above the root stays at the root, as RESOLVE_IN_ROOT does.
	for strings.HasPrefix(next, "../") {
		next = next[3:]
	}
	if next == ".." || next == "" {
		next = "."
	}
	if next == "." {
		return "."
	}
	// The target's own parents may be links too.
	parent := path.Dir(next)
	if parent != "." {
		parent = s.resolveDir(parent)
	}
	return s.follow(path.Join(parent, path.Base(next)), hops+1)
}

// mayOwn tells, from one list line's bytes and without allocating, whether the line can strike out a candidate: its
// base name must be a candidate's or a diverted path's. Most lines of a Debian root's lists (documentation, libraries,
// directories: about 95% on the debian-apps root) cannot, and are dropped before a string is made of them. The base
// is what follows the last '/', as path.Base of the path the slow path (debRelPath, parseMD5sums) extracts. md5sums
// lines whose path has no '/' or is escaped take the slow path (true), as does an empty base.
func (s *ownership) mayOwn(line []byte, md5sums bool) bool {
	if s.visit != nil {
		return true
	}
	i := bytes.LastIndexByte(line, '/')
	if md5sums && (i < 0 || line[0] == '\\') {
		return len(line) > 0
	}
	base := line[i+1:]
	if len(base) == 0 {
		return true
	}
	_, cand := s.byBase[string(base)]
	return cand || s.divBases[string(base)]
}

// stream reads one list file line by line (bounded size and line length), handing each line to fn. The line is only
// valid during the call.
func (s *ownership) stream(ctx context.Context, name string, limit int64, fn func(line []byte)) {
	f, _, err := OpenRegular(s.fsys, name, limit)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.fail(name, err)
		}
		return
	}
	defer f.Close()
	if s.buf == nil {
		s.buf = make([]byte, 64<<10)
	}
	sc := bufio.NewScanner(io.LimitReader(ctxReader{ctx, f}, limit+1))
	sc.Buffer(s.buf, unownedMaxLine)
	for sc.Scan() {
		fn(sc.Bytes())
		if s.done() {
			return
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		s.fail(name, fmt.Errorf("read: %w", err))
	}
}

// listLine strikes out the path one dpkg .list line names.
func (s *ownership) listLine(line []byte) {
	if !s.mayOwn(line, false) {
		return
	}
	if p, ok := debRelPath(string(line)); ok {
		s.own(p)
	}
}

// sumLine strikes out the path one md5sums line names.
func (s *ownership) sumLine(line []byte) {
	if !s.mayOwn(line, true) {
		return
	}
	if e := parseMD5sums(line); len(e.Entries) == 1 {
		s.own(e.Entries[0].Path)
	}
}

// readDpkg streams info/*.list (dpkg's record of every path a package installed), info/*.md5sums of packages whose
// .list is missing, and distroless's status.d/*.md5sums.
func (s *ownership) readDpkg(ctx context.Context, a *unownedFiles) {
	s.readDiversions()
	listLine, sumLine := s.listLine, s.sumLine
	if ents, err := s.fsys.ReadDir(dpkgInfoDir); err == nil {
		lists := map[string]bool{}
		for _, e := range ents {
			if n, ok := strings.CutSuffix(e.Name(), ".list"); ok {
				lists[n] = true
			}
		}
		for _, e := range ents {
			if s.done() || ctx.Err() != nil {
				return
			}
			n := e.Name()
			switch {
			case strings.HasSuffix(n, ".list"):
				s.cur = dpkgInfoOwner(n, ".list")
				s.stream(ctx, dpkgInfoDir+"/"+n, a.maxListSize, listLine)
			case strings.HasSuffix(n, ".md5sums") && !lists[strings.TrimSuffix(n, ".md5sums")]:
				s.cur = dpkgInfoOwner(n, ".md5sums")
				s.stream(ctx, dpkgInfoDir+"/"+n, a.maxListSize, sumLine)
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		s.fail(dpkgInfoDir, err)
	}
	if ents, err := s.fsys.ReadDir(dpkgStatusDir); err == nil {
		for _, e := range ents {
			if s.done() || ctx.Err() != nil {
				return
			}
			if entry, ok := strings.CutSuffix(e.Name(), ".md5sums"); ok {
				s.cur = Owner{Manager: dpkgName, Name: entry, List: dpkgStatusDir + "/" + e.Name(), Entry: dpkgStatusDir + "/" + entry}
				s.stream(ctx, dpkgStatusDir+"/"+e.Name(), a.maxListSize, sumLine)
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		s.fail(dpkgStatusDir, err)
	}
}

// readDiversions loads var/lib/dpkg/diversions (from, to, package: three lines each). Only the from -> to mapping
// matters here: whoever lists from owns the file now at to.
func (s *ownership) readDiversions() {
	data, err := ReadFile(s.fsys, dpkgDiversionsPath, 16<<20)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.fail(dpkgDiversionsPath, err)
		}
		return
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	for i := 0; i+2 < len(lines); i += 3 {
		from, okF := debRelPath(lines[i])
		to, okT := debRelPath(lines[i+1])
		if okF && okT {
			if s.diversions == nil {
				s.diversions, s.divBases = map[string]string{}, map[string]bool{}
			}
			s.diversions[from] = to
			s.divBases[path.Base(from)] = true
		}
	}
}

// readApk streams apk's installed database: "F:<dir>" starts a directory, each following "R:<file>" is a file in it.
func (s *ownership) readApk(ctx context.Context, a *unownedFiles) {
	if s.done() {
		return
	}
	dir := ""
	s.stream(ctx, apkInstalledDB, a.maxListSize, func(b []byte) {
		line := string(b)
		switch {
		case strings.HasPrefix(line, "P:"):
			dir = ""
			s.cur = Owner{Manager: apkName, Name: line[2:], List: apkInstalledDB}
		case strings.HasPrefix(line, "F:"):
			dir = line[2:]
		case strings.HasPrefix(line, "R:") && dir != "":
			if p, ok := debRelPath(dir + "/" + line[2:]); ok {
				s.own(p)
			}
		case strings.HasPrefix(line, "R:"):
			if p, ok := debRelPath(line[2:]); ok {
				s.own(p)
			}
		}
	})
}

// readRPM asks go-rpmdb for every package's file list, through the rpm analyzer's bounded, confined copy of the
// database (the database is parsed a second time: go-rpmdb's package list is not kept between analyzers).
func (s *ownership) readRPM(ctx context.Context, a *unownedFiles) {
	for _, dir := range rpmDirs {
		for _, f := range rpmDBFiles {
			if s.done() || ctx.Err() != nil {
				return
			}
			p := dir + "/" + f
			infos, err := a.rpm.readDB(ctx, s.fsys, p)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				s.fail(p, err)
				break
			}
			for _, info := range infos {
				s.cur = Owner{Manager: rpmName, Name: info.Name, Arch: info.Arch, List: p}
				names, err := info.InstalledFileNames()
				if err != nil {
					s.fail(p, fmt.Errorf("file list of %s: %w", info.Name, err))
					continue
				}
				for _, n := range names {
					if s.stopped {
						return
					}
					if rel, ok := debRelPath(n); ok {
						s.own(rel)
					}
				}
			}
			break
		}
	}
}
