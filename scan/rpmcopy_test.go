package scan

import (
	"bytes"
	"database/sql"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"
)

// zeroReader yields n bytes with a non-zero block every stride bytes: a sparse or zero-padded file as read.
type zeroReader struct{ n, off, stride int64 }

func (z *zeroReader) Read(p []byte) (int, error) {
	if z.off >= z.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), z.n-z.off)]
	for i := range p {
		p[i] = 0
		if (z.off+int64(i))%z.stride == 0 {
			p[i] = 0xAB
		}
	}
	z.off += int64(len(p))
	return len(p), nil
}

// TestSparseCopy: a 256 MiB file that is mostly zeros costs the disk only its non-zero blocks, and reads back
// byte for byte; a file with more non-zero bytes than the bound is refused.
func TestSparseCopy(t *testing.T) {
	const size = 256 << 20
	out, err := os.Create(filepath.Join(t.TempDir(), "copy"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	n, err := sparseCopy(out, &zeroReader{n: size, stride: 16 << 20}, 1<<20)
	if err != nil || n != size {
		t.Fatalf("copied %d, %v", n, err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(out.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	t.Logf("size %d, %d KiB on disk", st.Size, st.Blocks*512>>10)
	if st.Size != size || st.Blocks*512 > 1<<20 {
		t.Errorf("size %d, %d bytes on disk", st.Size, st.Blocks*512)
	}
	got, want := make([]byte, 8192), make([]byte, 8192)
	for _, off := range []int64{0, 16 << 20, 100 << 20, size - 8192} {
		out.ReadAt(got, off)
		(&zeroReader{n: size, off: off, stride: 16 << 20}).Read(want)
		if !bytes.Equal(got, want) {
			t.Errorf("content differs at %d", off)
		}
	}

	dense, _ := os.Create(filepath.Join(t.TempDir(), "dense"))
	defer dense.Close()
	if _, err := sparseCopy(dense, &zeroReader{n: 8 << 20, stride: 1000}, 1<<20); !errors.Is(err, ErrTooLarge) {
		t.Errorf("8 MiB of data under a 1 MiB bound: %v", err)
	}
}

// hostileHeader is an rpm header of 8 bytes that declares 2^31-1 index entries (32 GiB for go-rpmdb's index).
var hostileHeader = []byte{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0}

// TestRPMHostileHeaderSizes: a package header that declares more index entries than it holds is refused by the
// preflight, in sqlite and ndb databases, before go-rpmdb allocates what it declares.
func TestRPMHostileHeaderSizes(t *testing.T) {
	dir := t.TempDir()
	db, err := sql.Open("sqlite", filepath.Join(dir, "rpmdb.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)",
		"INSERT INTO Packages (blob) VALUES (x'7fffffff00000000')"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	sqliteDB, err := os.ReadFile(filepath.Join(dir, "rpmdb.sqlite"))
	if err != nil {
		t.Fatal(err)
	}

	// ndb: the first used slot's blob gets the hostile counts.
	ndb := gunzipTestdata(t, "rpm/sle15-bci.Packages.db.gz")
	for i := int64(0); ; i++ {
		s := ndb[ndbHeaderSize+i*16:]
		if binary.LittleEndian.Uint32(s[4:]) == 0 {
			continue
		}
		off := int64(binary.LittleEndian.Uint32(s[8:]))*ndbBlobHeaderLen + ndbBlobHeaderLen
		copy(ndb[off:], hostileHeader)
		break
	}

	for name, c := range map[string]struct {
		path string
		data []byte
	}{
		"sqlite": {"usr/lib/sysimage/rpm/rpmdb.sqlite", sqliteDB},
		"ndb":    {"var/lib/rpm/Packages.db", ndb},
	} {
		t.Run(name, func(t *testing.T) {
			a := &rpmAnalyzer{maxSize: rpmMaxDBSize, timeout: time.Minute, tempDir: t.TempDir()}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			out := analyze(t, a, fstest.MapFS{c.path: file(c.data)})
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("allocated %d MiB: %v", alloc>>20, out.Errors)
			if len(out.Errors) != 1 || !strings.Contains(out.Errors[0].Err, "declares 2147483647 index entries") {
				t.Errorf("errors %v", out.Errors)
			}
			if alloc > 64<<20 {
				t.Errorf("allocated %d MiB", alloc>>20)
			}
		})
	}
}

// TestRPMMissingTempDir: a temp dir that does not exist is an error, not "no database here" (both are ENOENT).
func TestRPMMissingTempDir(t *testing.T) {
	a := &rpmAnalyzer{maxSize: rpmMaxDBSize, timeout: time.Minute, tempDir: filepath.Join(t.TempDir(), "gone")}
	out := analyze(t, a, fstest.MapFS{"var/lib/rpm/Packages": file([]byte("whatever"))})
	if len(out.Errors) != 1 || !strings.Contains(out.Errors[0].Err, "create temp dir") {
		t.Errorf("errors %v", out.Errors)
	}
}
