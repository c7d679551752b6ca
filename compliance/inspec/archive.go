package inspec

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// readArchive reads the profile files of an `inspec archive` output in memory: a gzip'd tar or a zip, told apart
// by their magic bytes. Members are bounded one by one and together, so a compression bomb stops at the limit.
func readArchive(name string, lim Limits) (map[string][]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil {
		return nil, fmt.Errorf("not a profile archive: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	var members map[string][]byte
	switch {
	case magic[0] == 0x1f && magic[1] == 0x8b:
		members, err = readTarGz(f, lim)
	case bytes.Equal(magic[:], []byte("PK\x03\x04")):
		st, serr := f.Stat()
		if serr != nil {
			return nil, serr
		}
		members, err = readZip(f, st.Size(), lim)
	default:
		return nil, errors.New("not a profile archive (want a directory, .tar.gz or .zip)")
	}
	if err != nil {
		return nil, err
	}
	return stripPrefix(members)
}

func readTarGz(r io.Reader, lim Limits) (map[string][]byte, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	defer zr.Close()
	tr := tar.NewReader(io.LimitReader(zr, lim.MaxTotalBytes+1<<20))
	members := map[string][]byte{}
	var total int64
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return members, nil
		}
		if err != nil {
			return nil, fmt.Errorf("tar: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name, ok := cleanName(h.Name)
		if !ok || !keepMember(name) {
			continue
		}
		if len(members) >= lim.MaxFiles {
			return nil, fmt.Errorf("more than %d files", lim.MaxFiles)
		}
		data, err := readAllBounded(tr, name, lim.MaxFileBytes)
		if err != nil {
			return nil, err
		}
		if total += int64(len(data)); total > lim.MaxTotalBytes {
			return nil, fmt.Errorf("files larger than %d bytes together", lim.MaxTotalBytes)
		}
		members[name] = data
	}
}

func readZip(r io.ReaderAt, size int64, lim Limits) (map[string][]byte, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("zip: %w", err)
	}
	members := map[string][]byte{}
	var total int64
	for _, zf := range zr.File {
		name, ok := cleanName(zf.Name)
		if !ok || !zf.Mode().IsRegular() || !keepMember(name) {
			continue
		}
		if len(members) >= lim.MaxFiles {
			return nil, fmt.Errorf("more than %d files", lim.MaxFiles)
		}
		rc, err := zf.Open()
		if err != nil {
			return nil, fmt.Errorf("zip %s: %w", name, err)
		}
		data, err := readAllBounded(rc, name, lim.MaxFileBytes)
		rc.Close()
		if err != nil {
			return nil, err
		}
		if total += int64(len(data)); total > lim.MaxTotalBytes {
			return nil, fmt.Errorf("files larger than %d bytes together", lim.MaxTotalBytes)
		}
		members[name] = data
	}
	return members, nil
}

// lastProfilePath is a member's path relative to the profile directory it may be nested in (a-1.0/controls/x.rb
// is controls/x.rb), for deciding whether to read it.
func lastProfilePath(name string) string {
	for _, dir := range []string{"controls/", "libraries/", "files/"} {
		if i := strings.Index(name, dir); i == 0 || i > 0 && name[i-1] == '/' {
			return name[i:]
		}
	}
	for _, meta := range []string{"inspec.yml", "inspec.lock"} {
		if name == meta || strings.HasSuffix(name, "/"+meta) {
			return meta
		}
	}
	return name
}

// stripPrefix removes the directory an archive may wrap its profile in: the directory of its shallowest
// inspec.yml, as InSpec's relative file provider finds the profile root.
func stripPrefix(members map[string][]byte) (map[string][]byte, error) {
	prefix, found := "", false
	for name := range members {
		if name != "inspec.yml" && !strings.HasSuffix(name, "/inspec.yml") {
			continue
		}
		p := strings.TrimSuffix(name, "inspec.yml")
		if !found || len(p) < len(prefix) {
			prefix, found = p, true
		}
	}
	if !found {
		return nil, errors.New("the archive has no inspec.yml")
	}
	out := make(map[string][]byte, len(members))
	for name, data := range members {
		if rel, ok := strings.CutPrefix(name, prefix); ok {
			out[rel] = data
		}
	}
	return out, nil
}
