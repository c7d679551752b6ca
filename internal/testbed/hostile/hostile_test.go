package hostile

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// The corpus stays cheap to write: the sparse cases hold gigabytes of declared size in a few KiB on disk, and the
// hostile names and modes are what the cases promise (os.Chmod takes os.ModeSetuid, not 0o4000: an easy bit to lose).
func TestCasesSparseAndPlanted(t *testing.T) {
	for _, c := range Cases() {
		if c.Name == "hugejar" || c.Name == "longpaths" {
			continue // real bytes and many inodes by design; the integration test writes them
		}
		t.Run(c.Name, func(t *testing.T) {
			root := t.TempDir()
			if err := c.Write(root); err != nil {
				t.Fatal(err)
			}
			var declared, allocated int64
			filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err != nil || !d.Type().IsRegular() {
					return err
				}
				fi, err := d.Info()
				if err != nil {
					return err
				}
				declared += fi.Size()
				allocated += fi.Sys().(*syscall.Stat_t).Blocks * 512
				return nil
			})
			if allocated > 64<<20 {
				t.Errorf("%d MiB on disk for %d MiB declared", allocated>>20, declared>>20)
			}
			t.Logf("%s: %d MiB declared, %d KiB on disk", c.Name, declared>>20, allocated>>10)
		})
	}
	root := t.TempDir()
	if err := writeDeepTree(root); err != nil {
		t.Fatal(err)
	}
	if err := writeEvilName(root); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{DeepSetuid, "usr/local/bin/" + EvilName} {
		fi, err := os.Lstat(filepath.Join(root, p))
		if err != nil || fi.Mode()&os.ModeSetuid == 0 {
			t.Errorf("%q: %v, %v: want a setuid file", p, fi.Mode(), err)
		}
	}
}
