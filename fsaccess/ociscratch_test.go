package fsaccess_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rootscan/rootscan/fsaccess"
)

// sparseTar is a layer with one PAX (GNU 1.0) sparse file whose header declares realsize bytes and which carries
// 512: a few hundred bytes of tar that the applier would write out as realsize bytes.
func sparseTar(realsize int64) []byte {
	block := func(name string, typ byte, size int) []byte {
		b := make([]byte, 512)
		copy(b, name)
		copy(b[100:], "0000644\x00")
		copy(b[108:], "0000000\x00")
		copy(b[116:], "0000000\x00")
		copy(b[124:], fmt.Sprintf("%011o\x00", size))
		copy(b[136:], "00000000000\x00")
		b[156] = typ
		copy(b[257:], "ustar\x0000")
		copy(b[148:], "        ")
		sum := 0
		for _, c := range b {
			sum += int(c)
		}
		copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
		return b
	}
	rec := func(k, v string) string {
		s := " " + k + "=" + v + "\n"
		for n := len(s); ; {
			t := strconv.Itoa(n) + s
			if len(t) == n {
				return t
			}
			n = len(t)
		}
	}
	pad := func(b []byte) []byte { return append(b, make([]byte, (512-len(b)%512)%512)...) }
	recs := rec("GNU.sparse.major", "1") + rec("GNU.sparse.minor", "0") + rec("GNU.sparse.name", "big") +
		rec("GNU.sparse.realsize", strconv.FormatInt(realsize, 10))
	data := append(pad([]byte("1\n0\n512\n")), pad([]byte("\x7fELF"))...)
	out := append(block("PaxHeaders/big", 'x', len(recs)), pad([]byte(recs))...)
	out = append(out, block("GNUSparseFile.0/big", '0', len(data))...)
	out = append(out, data...)
	return append(out, make([]byte, 1024)...)
}

// TestOpenOCISparseDefault: a 10 KB layer whose sparse file declares 3 GiB is refused under the default bound, by
// the size it declares, before anything is written; with a bound above it, a small sparse file is extracted.
func TestOpenOCISparseDefault(t *testing.T) {
	for _, tc := range []struct {
		name     string
		realsize int64
		max      int64
		wantErr  bool
	}{
		{"3GiB-default", 3 << 30, 0, true},
		{"1MiB-default", 1 << 20, 0, false},
		{"1MiB-under-512KiB", 1 << 20, 512 << 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLayout(t)
			layerTar := sparseTar(tc.realsize)
			l.index(l.image("amd64", ocispec.ImageConfig{}, layer{tar: layerTar, mediaType: ocispec.MediaTypeImageLayerGzip, encode: gzipped}))
			scratch := t.TempDir()
			r, _, err := fsaccess.OpenOCI(context.Background(), l.dir, scratch, fsaccess.OCIOptions{MaxExtractBytes: tc.max})
			if tc.wantErr {
				if !errors.Is(err, fsaccess.ErrLimit) || !strings.Contains(err.Error(), "declare") {
					t.Fatalf("err = %v, want ErrLimit for declared bytes", err)
				}
				assertEmpty(t, scratch)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fi, err := r.Stat("big")
			if err != nil || fi.Size() != tc.realsize {
				t.Errorf("big: %v %v", fi, err)
			}
			r.Close()
			assertEmpty(t, scratch)
		})
	}
}

// TestOpenOCIRemovesStaleScratch: the scratch directory of a run killed with SIGKILL is removed by the next
// OpenOCI, as is an hour-old one without a lock file (an earlier rootscan's); one a live process holds, or one just
// being created, is not.
func TestOpenOCIRemovesStaleScratch(t *testing.T) {
	scratch := t.TempDir()
	mk := func(name string) (dir string, hold *exec.Cmd) {
		dir = filepath.Join(scratch, name)
		os.MkdirAll(filepath.Join(dir, "rootfs", "usr"), 0o700)
		os.WriteFile(filepath.Join(dir, "rootfs", "usr", "big"), make([]byte, 4096), 0o600)
		lock := filepath.Join(dir, ".rootscan-lock")
		os.WriteFile(lock, nil, 0o600)
		// A real process holds the lock, as a scan holds its own (flock(1) locks a descriptor the shell then execs
		// sleep with, so the lock lives exactly as long as that one process).
		hold = exec.Command("sh", "-c", `exec 9<>"$0" && flock --exclusive 9 && exec sleep 600`, lock)
		if err := hold.Start(); err != nil {
			t.Skipf("flock(1): %v", err)
		}
		t.Cleanup(func() { hold.Process.Kill(); hold.Wait() })
		return dir, hold
	}
	killed, killedRun := mk("oci-killed")
	live, _ := mk("oci-live")
	creating := filepath.Join(scratch, "oci-creating") // no lock file yet
	os.Mkdir(creating, 0o700)
	old := filepath.Join(scratch, "oci-old") // an earlier rootscan's, without a lock file, two hours old
	os.MkdirAll(filepath.Join(old, "rootfs"), 0o700)
	twoHours := time.Now().Add(-2 * time.Hour)
	os.Chtimes(old, twoHours, twoHours)
	other := filepath.Join(scratch, "not-ours")
	os.Mkdir(other, 0o700)
	time.Sleep(200 * time.Millisecond) // let flock(1) take its locks
	if err := killedRun.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killedRun.Wait()

	l := newLayout(t)
	l.index(l.image("amd64", ocispec.ImageConfig{}, layer{tar: tarball(t, file("etc/hostname", "x")), mediaType: ocispec.MediaTypeImageLayer}))
	r, _, err := fsaccess.OpenOCI(context.Background(), l.dir, scratch, fsaccess.OCIOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for dir, want := range map[string]bool{killed: false, live: true, creating: true, old: false, other: true} {
		if _, err := os.Stat(dir); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(dir), err == nil, want)
		}
	}
}
