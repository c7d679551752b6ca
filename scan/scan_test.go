package scan

import (
	"bytes"
	"errors"
	"io/fs"
	"testing"
	"testing/fstest"
)

// grownFS serves files whose Stat reports fewer bytes than they hold: a file that grew between the fstat and the
// read, as in a live upper dir.
type grownFS struct {
	fstest.MapFS
	statSize int64
}

type grownFile struct {
	fs.File
	size int64
}

type grownInfo struct {
	fs.FileInfo
	size int64
}

func (i grownInfo) Size() int64 { return i.size }

func (f grownFile) Stat() (fs.FileInfo, error) {
	fi, err := f.File.Stat()
	if err != nil {
		return nil, err
	}
	return grownInfo{fi, f.size}, nil
}

func (g grownFS) Open(name string) (fs.File, error) {
	f, err := g.MapFS.Open(name)
	if err != nil {
		return nil, err
	}
	return grownFile{f, g.statSize}, nil
}

func TestReadFile(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 1000) // 10,000 bytes
	fsys := fstest.MapFS{
		"f":     {Data: data},
		"empty": {Data: nil},
		"dir":   {Mode: fs.ModeDir},
	}
	for _, tc := range []struct {
		name    string
		fsys    fs.FS
		file    string
		limit   int64
		want    []byte
		wantErr error
	}{
		{"whole file", fsys, "f", 1 << 20, data, nil},
		{"exactly at the limit", fsys, "f", 10_000, data, nil},
		{"one byte over the limit", fsys, "f", 9_999, nil, ErrTooLarge},
		{"empty", fsys, "empty", 10, []byte{}, nil},
		{"directory", fsys, "dir", 10, nil, ErrNotRegular},
		{"missing", fsys, "nope", 10, nil, fs.ErrNotExist},
		{"grew, still under the limit", grownFS{fsys, 100}, "f", 1 << 20, data, nil},
		{"grew from empty", grownFS{fsys, 0}, "f", 1 << 20, data, nil},
		{"grew past the limit", grownFS{fsys, 100}, "f", 5_000, nil, ErrTooLarge},
		{"grew to one byte past the limit", grownFS{fsys, 100}, "f", 9_999, nil, ErrTooLarge},
		{"grew to exactly the limit", grownFS{fsys, 100}, "f", 10_000, data, nil},
		{"shrank", grownFS{fsys, 20_000}, "f", 1 << 20, data, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadFile(tc.fsys, tc.file, tc.limit)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("got %d bytes, want %d", len(got), len(tc.want))
			}
		})
	}
}

// BenchmarkReadFile reads a 500 KiB file, the size of the debian-apps root's dpkg status: one allocation of the file's
// size (it used to be three times that, from bytes.Buffer's growth).
func BenchmarkReadFile(b *testing.B) {
	fsys := fstest.MapFS{"status": {Data: bytes.Repeat([]byte("Package: x\n"), 500<<10/11)}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadFile(fsys, "status", 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}
