package ociimage

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// DebPackage is a Debian package as its control file names it: what the
// scanner's package inventory must report for an image built from it.
type DebPackage struct {
	Name          string
	Version       string
	Architecture  string
	Source        string // the Source field's name, else Name
	SourceVersion string // the version in the Source field, else Version
}

// Packages returns the Debian packages the image was assembled from (nil for
// images not built from .debs), as found in their control files.
func (img *Image) Packages() []DebPackage {
	return append([]DebPackage(nil), img.packages...)
}

// Deb is what an image needs from one .deb.
type Deb struct {
	Package DebPackage
	Control []byte // the control file, verbatim
	MD5sums []byte // the md5sums control member, nil if the package has none
	Files   []File // the data tarball, filtered like distroless does
}

// parseControl reads the fields of one deb822 stanza. Continuation lines are
// joined with newlines; field names keep their case.
func parseControl(b []byte) (map[string]string, error) {
	fields := map[string]string{}
	var last string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if len(fields) > 0 {
				break
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if last == "" {
				return nil, fmt.Errorf("continuation line before any field: %q", line)
			}
			fields[last] += "\n" + line
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("malformed control line %q", line)
		}
		last = name
		fields[name] = strings.TrimSpace(value)
	}
	return fields, sc.Err()
}

// debPackageOf turns control fields into a DebPackage, resolving the Source
// field ("name" or "name (version)") the way dpkg does.
func debPackageOf(fields map[string]string) (DebPackage, error) {
	p := DebPackage{Name: fields["Package"], Version: fields["Version"], Architecture: fields["Architecture"]}
	if p.Name == "" || p.Version == "" {
		return p, errors.New("control file lacks Package or Version")
	}
	p.Source, p.SourceVersion = p.Name, p.Version
	if src := strings.TrimSpace(fields["Source"]); src != "" {
		name, ver, hasVer := strings.Cut(src, " ")
		p.Source = name
		if hasVer {
			p.SourceVersion = strings.Trim(strings.TrimSpace(ver), "()")
		}
	}
	return p, nil
}

// keepDebPath says whether a file of the package pkg goes into the image:
// like distroless, documentation, man and info pages and lintian overrides
// are dropped, but each package's copyright file is kept.
func keepDebPath(pkg, p string) bool {
	for _, dropped := range []string{"usr/share/man", "usr/share/info", "usr/share/lintian"} {
		if p == dropped || strings.HasPrefix(p, dropped+"/") {
			return false
		}
	}
	if rest, ok := strings.CutPrefix(p, "usr/share/doc/"); ok {
		dir, file, nested := strings.Cut(rest, "/")
		return !nested || (dir == pkg && file == "copyright")
	}
	return true
}

// ReadDeb extracts the control stanza, md5sums and filtered data files of a
// .deb with dpkg-deb, which copes with every compression a .deb may use.
func ReadDeb(ctx context.Context, debPath string) (*Deb, error) {
	dc := &Deb{}
	err := dpkgDebTar(ctx, debPath, "--ctrl-tarfile", func(h *tar.Header, r io.Reader) error {
		var err error
		switch strings.TrimPrefix(h.Name, "./") {
		case "control":
			dc.Control, err = io.ReadAll(r)
		case "md5sums":
			dc.MD5sums, err = io.ReadAll(r)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if dc.Control == nil {
		return nil, fmt.Errorf("%s: no control file", debPath)
	}
	fields, err := parseControl(dc.Control)
	if err != nil {
		return nil, fmt.Errorf("%s: control: %w", debPath, err)
	}
	if dc.Package, err = debPackageOf(fields); err != nil {
		return nil, fmt.Errorf("%s: %w", debPath, err)
	}
	regular := map[string]File{}
	err = dpkgDebTar(ctx, debPath, "--fsys-tarfile", func(h *tar.Header, r io.Reader) error {
		p := strings.TrimSuffix(strings.TrimPrefix(path.Clean("/"+h.Name), "/"), "/")
		if p == "" || !keepDebPath(dc.Package.Name, p) {
			return nil
		}
		f := File{Path: p, Mode: h.FileInfo().Mode(), Uid: h.Uid, Gid: h.Gid, Linkname: h.Linkname,
			Devmajor: h.Devmajor, Devminor: h.Devminor}
		switch h.Typeflag {
		case tar.TypeReg:
			b, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			f.Data = b
			regular[p] = f
		case tar.TypeLink:
			// Hard links become copies: a layer of File values has no
			// notion of links between entries.
			target := strings.TrimPrefix(path.Clean("/"+h.Linkname), "/")
			t, ok := regular[target]
			if !ok {
				return fmt.Errorf("hard link %s to %s, which is not a file seen before", p, h.Linkname)
			}
			f.Mode, f.Data, f.Linkname = t.Mode, t.Data, ""
		}
		dc.Files = append(dc.Files, f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return dc, nil
}

// dpkgDebTar runs `dpkg-deb MODE debPath` and hands each entry of the tar it
// prints to fn.
func dpkgDebTar(ctx context.Context, debPath, mode string, fn func(*tar.Header, io.Reader) error) error {
	cmd := exec.CommandContext(ctx, "dpkg-deb", mode, debPath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("dpkg-deb %s %s: %w", mode, debPath, err)
	}
	tr := tar.NewReader(out)
	var walkErr error
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			walkErr = err
			break
		}
		if err := fn(h, tr); err != nil {
			walkErr = err
			break
		}
	}
	_, _ = io.Copy(io.Discard, out)
	waitErr := cmd.Wait()
	if walkErr != nil {
		return fmt.Errorf("dpkg-deb %s %s: %w", mode, debPath, walkErr)
	}
	if waitErr != nil {
		return fmt.Errorf("dpkg-deb %s %s: %w: %s", mode, debPath, waitErr, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// fetchDebs returns a .deb for each package name, from debDir when one is
// cached there and otherwise downloaded with `apt-get download` into it. The
// apt lists are refreshed only when a download fails, so a warm cache works
// offline.
func fetchDebs(ctx context.Context, debDir string, names []string) (map[string]string, error) {
	if err := os.MkdirAll(debDir, 0o755); err != nil {
		return nil, fmt.Errorf("create deb cache: %w", err)
	}
	found := map[string]string{}
	lookup := func() ([]string, error) {
		var missing []string
		for _, name := range names {
			if found[name] != "" {
				continue
			}
			p, err := newestDeb(debDir, name)
			if err != nil {
				return nil, err
			}
			if p == "" {
				missing = append(missing, name)
				continue
			}
			found[name] = p
		}
		return missing, nil
	}
	missing, err := lookup()
	if err != nil || len(missing) == 0 {
		return found, err
	}
	if err := aptDownload(ctx, debDir, missing); err != nil {
		// Stale or absent package lists are the usual cause; refresh once.
		if uerr := runQuiet(ctx, "", "apt-get", "update"); uerr != nil {
			return nil, fmt.Errorf("download %v: %w (and apt-get update failed: %v)", missing, err, uerr)
		}
		if err := aptDownload(ctx, debDir, missing); err != nil {
			return nil, fmt.Errorf("download %v after apt-get update: %w", missing, err)
		}
	}
	if missing, err = lookup(); err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("apt-get download left no .deb for %v in %s", missing, debDir)
	}
	return found, nil
}

// newestDeb returns the most recently stored NAME_*.deb in dir, or "".
func newestDeb(dir, name string) (string, error) {
	matches, err := filepath.Glob(filepath.Join(dir, name+"_*.deb"))
	if err != nil {
		return "", err
	}
	var best string
	var bestInfo fs.FileInfo
	for _, m := range matches {
		st, err := os.Stat(m)
		if err != nil {
			return "", err
		}
		if bestInfo == nil || st.ModTime().After(bestInfo.ModTime()) {
			best, bestInfo = m, st
		}
	}
	return best, nil
}

// aptDownload downloads the packages into a private directory and then moves
// them into debDir, so a concurrent reader never sees a partial .deb.
func aptDownload(ctx context.Context, debDir string, names []string) error {
	tmp, err := os.MkdirTemp(debDir, ".download-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// The sandbox user _apt could not write into a root-owned cache dir.
	args := append([]string{"-q", "-o", "APT::Sandbox::User=root", "download"}, names...)
	if err := runQuiet(ctx, tmp, "apt-get", args...); err != nil {
		return err
	}
	debs, err := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if err != nil {
		return err
	}
	for _, d := range debs {
		if err := os.Rename(d, filepath.Join(debDir, filepath.Base(d))); err != nil {
			return err
		}
	}
	return nil
}

// runQuiet runs a command, returning its output in the error if it fails.
func runQuiet(ctx context.Context, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// PinnedDeb names one exact .deb: a build that must give the same bytes every
// time takes its packages by version and checks their hash, instead of taking
// apt's candidate of the day.
type PinnedDeb struct {
	Name    string
	Version string
	SHA256  string // of the .deb file, hex
}

// FetchPinnedDeb returns the path of the pinned .deb in debDir, downloaded
// with `apt-get download NAME=VERSION` when it is not there yet (refreshing
// the apt lists once if that fails), after checking its SHA-256. A mirror that
// no longer offers the version fails the build: the pin has to be moved on.
func FetchPinnedDeb(ctx context.Context, debDir string, pin PinnedDeb) (string, error) {
	if err := os.MkdirAll(debDir, 0o755); err != nil {
		return "", fmt.Errorf("create deb cache: %w", err)
	}
	// apt-get download names files NAME_VERSION_ARCH.deb, the epoch's colon
	// escaped as %3a.
	pattern := filepath.Join(debDir, pin.Name+"_"+strings.ReplaceAll(pin.Version, ":", "%3a")+"_*.deb")
	find := func() (string, error) {
		matches, err := filepath.Glob(pattern)
		if err != nil || len(matches) == 0 {
			return "", err
		}
		return matches[0], nil
	}
	p, err := find()
	if err == nil && p == "" {
		spec := []string{pin.Name + "=" + pin.Version}
		if err = aptDownload(ctx, debDir, spec); err != nil {
			if uerr := runQuiet(ctx, "", "apt-get", "update"); uerr != nil {
				return "", fmt.Errorf("download %s: %w (and apt-get update failed: %v)", spec[0], err, uerr)
			}
			err = aptDownload(ctx, debDir, spec)
		}
		if err != nil {
			return "", fmt.Errorf("download %s (no longer offered? move the pin): %w", spec[0], err)
		}
		p, err = find()
	}
	if err != nil {
		return "", err
	}
	if p == "" {
		return "", fmt.Errorf("apt-get download left no %s in %s", filepath.Base(pattern), debDir)
	}
	if err := checkSHA256(p, pin.SHA256); err != nil {
		return "", fmt.Errorf("%s %s: %w", pin.Name, pin.Version, err)
	}
	return p, nil
}

// checkSHA256 fails unless the file's SHA-256 is want (hex).
func checkSHA256(path, want string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("hash %s: %w", path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%s has SHA-256 %s, the pin says %s", path, got, want)
	}
	return nil
}
