// Package inspec reads InSpec (CINC Auditor) profiles — a directory with inspec.yml, controls/*.rb and
// libraries/*.rb, or the tar.gz/zip that `inspec archive` writes — into a Go model of their controls, and says
// statically which controls rootscan can evaluate from a container's filesystem and which it must report
// skipped, and why. Profiles come from users and the internet: sizes are bounded, archives are read in memory
// (never extracted), and a file that does not parse only costs its own controls.
package inspec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/rootscan/rootscan/compliance/inspec/ruby"
)

// Limits bound what loading one profile may read. Zero fields take the defaults.
type Limits struct {
	// MaxFileBytes bounds one file of the profile (default 4 MiB).
	MaxFileBytes int64
	// MaxTotalBytes bounds the profile's files together, and an archive's uncompressed content (default 64 MiB).
	MaxTotalBytes int64
	// MaxFiles bounds the number of files (default 20,000).
	MaxFiles int
	// Ruby bounds each Ruby file's parse.
	Ruby ruby.Limits
}

func (l Limits) withDefaults() Limits {
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = 4 << 20
	}
	if l.MaxTotalBytes <= 0 {
		l.MaxTotalBytes = 64 << 20
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = 20_000
	}
	if l.Ruby.MaxBytes <= 0 {
		l.Ruby.MaxBytes = int(l.MaxFileBytes)
	}
	return l
}

// Profile is a loaded InSpec profile.
type Profile struct {
	Metadata
	// Source is where the profile was loaded from (a directory or an archive).
	Source string
	// SHA256 is the profile's checksum as InSpec computes it (see Checksum).
	SHA256 string
	// Files are the controls files in name order; Libraries the libraries files.
	Files     []*ControlFile
	Libraries []*Library
	// Controls are all controls of Files, in file then source order.
	Controls []*Control
	// Includes are the include_controls / require_controls of the profile (overlays of dependencies).
	Includes []*Include
	// Deps are the entries of depends, resolved (Load resolves them; FromFiles leaves them empty).
	Deps []*Dep
	// files holds every file of the profile by its path in the profile, for the checksum.
	files map[string][]byte
}

// Metadata is inspec.yml.
type Metadata struct {
	Name           string           `yaml:"name"`
	Title          string           `yaml:"title"`
	Version        string           `yaml:"version"`
	Maintainer     string           `yaml:"maintainer"`
	Copyright      string           `yaml:"copyright"`
	CopyrightEmail string           `yaml:"copyright_email"`
	License        string           `yaml:"license"`
	Summary        string           `yaml:"summary"`
	InspecVersion  string           `yaml:"inspec_version"`
	Supports       []map[string]any `yaml:"supports"`
	Inputs         []Input          `yaml:"inputs"`
	// Attributes is the older name of Inputs; Load folds it into Inputs.
	Attributes []Input      `yaml:"attributes"`
	Depends    []Dependency `yaml:"depends"`
}

// Input is a declared profile input: its default value, type and whether it must be given.
type Input struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Value       any    `yaml:"value"`
	// Default is the pre-InSpec-4 spelling of Value.
	Default   any    `yaml:"default"`
	Type      string `yaml:"type"`
	Required  bool   `yaml:"required"`
	Sensitive bool   `yaml:"sensitive"`
	Profile   string `yaml:"profile"`
}

// Dependency is an entry of depends: another profile this one includes controls from.
type Dependency struct {
	Name        string `yaml:"name"`
	Path        string `yaml:"path"`
	URL         string `yaml:"url"`
	Git         string `yaml:"git"`
	Branch      string `yaml:"branch"`
	Tag         string `yaml:"tag"`
	Commit      string `yaml:"commit"`
	Version     string `yaml:"version"`
	Supermarket string `yaml:"supermarket"`
	Compliance  string `yaml:"compliance"`
}

// ParseMetadata reads inspec.yml.
func ParseMetadata(data []byte) (Metadata, error) {
	var m Metadata
	if err := yaml.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("inspec.yml: %w", err)
	}
	if strings.TrimSpace(m.Name) == "" {
		return m, errors.New("inspec.yml: the profile has no name")
	}
	m.Inputs = append(m.Inputs, m.Attributes...)
	m.Attributes = nil
	for i := range m.Inputs {
		if m.Inputs[i].Value == nil {
			m.Inputs[i].Value = m.Inputs[i].Default
		}
		if m.Inputs[i].Name == "" {
			return m, fmt.Errorf("inspec.yml: input %d has no name", i+1)
		}
	}
	return m, nil
}

// Load reads a profile from a directory or an `inspec archive` file (.tar.gz, .tgz or .zip).
func Load(ctx context.Context, src string, lim Limits) (*Profile, error) {
	lim = lim.withDefaults()
	st, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("inspec profile: %w", err)
	}
	var files map[string][]byte
	if st.IsDir() {
		files, err = readDir(ctx, os.DirFS(src), lim)
		if err == nil {
			err = readDepDirs(ctx, os.DirFS(src), files, lim)
		}
	} else {
		files, err = readArchive(src, lim)
	}
	if err != nil {
		return nil, fmt.Errorf("inspec profile %s: %w", src, err)
	}
	p, err := FromFiles(src, files, lim)
	if err != nil {
		return nil, fmt.Errorf("inspec profile %s: %w", src, err)
	}
	loadDeps(p, files, lim)
	return p, nil
}

// FromFiles builds a profile from its files, keyed by their path in the profile (inspec.yml, controls/x.rb).
// Ruby files that do not parse do not fail the profile: their controls are found by their control lines and
// carry the parse error.
func FromFiles(source string, files map[string][]byte, lim Limits) (*Profile, error) {
	lim = lim.withDefaults()
	meta, ok := files["inspec.yml"]
	if !ok {
		return nil, errors.New("no inspec.yml (only profiles with inspec.yml are supported)")
	}
	m, err := ParseMetadata(meta)
	if err != nil {
		return nil, err
	}
	p := &Profile{Metadata: m, Source: source, files: files}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		switch {
		case isRuby(name, "controls/"):
			cf := parseControlFile(name, files[name], lim.Ruby)
			p.Files = append(p.Files, cf)
			p.Controls = append(p.Controls, cf.Controls...)
			p.Includes = append(p.Includes, cf.Includes...)
		case isRuby(name, "libraries/"):
			p.Libraries = append(p.Libraries, parseLibrary(name, files[name], lim.Ruby))
		}
	}
	p.SHA256 = Checksum(files, nil)
	return p, nil
}

func isRuby(name, dir string) bool {
	return strings.HasPrefix(name, dir) && strings.HasSuffix(name, ".rb")
}

// profileFile reports whether a path belongs to what InSpec reads of a profile: metadata, controls,
// libraries and files/ (README and the rest are ignored, so they cost nothing).
func profileFile(name string) bool {
	return name == "inspec.yml" || name == "inspec.lock" || isRuby(name, "controls/") || isRuby(name, "libraries/") ||
		strings.HasPrefix(name, "files/")
}

// readDir reads a profile directory's files. Links are not followed (a profile is data, not a view of the
// host), hidden files are left out as InSpec's directory listing leaves them out.
func readDir(ctx context.Context, fsys fs.FS, lim Limits) (map[string][]byte, error) {
	files := map[string][]byte{}
	var total int64
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if name != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() || !profileFile(name) {
			if d.IsDir() && name != "." && !strings.HasPrefix(name+"/", "controls/") && !strings.HasPrefix(name+"/", "libraries/") && !strings.HasPrefix(name+"/", "files/") {
				return fs.SkipDir
			}
			return nil
		}
		return addFile(fsys, name, files, &total, lim)
	})
	return files, err
}

// addFile reads one profile file into files, within the limits on their number and total size.
func addFile(fsys fs.FS, name string, files map[string][]byte, total *int64, lim Limits) error {
	if len(files) >= lim.MaxFiles {
		return fmt.Errorf("more than %d files", lim.MaxFiles)
	}
	data, err := readBounded(fsys, name, lim.MaxFileBytes)
	if err != nil {
		return err
	}
	if *total += int64(len(data)); *total > lim.MaxTotalBytes {
		return fmt.Errorf("files larger than %d bytes together", lim.MaxTotalBytes)
	}
	files[name] = data
	return nil
}

func readBounded(fsys fs.FS, name string, maxBytes int64) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAllBounded(f, name, maxBytes)
}

// readAllBounded reads r to its end, failing (without holding more than maxBytes+1) when it is larger.
func readAllBounded(r io.Reader, name string, maxBytes int64) ([]byte, error) {
	var b bytes.Buffer
	n, err := io.Copy(&b, io.LimitReader(r, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if n > maxBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, maxBytes)
	}
	return b.Bytes(), nil
}

// cleanName turns an archive member or directory path into a profile path, refusing absolute and escaping ones.
func cleanName(name string) (string, bool) {
	name = filepath.ToSlash(name)
	if strings.HasPrefix(name, "/") {
		return "", false
	}
	c := path.Clean(name)
	if c == "." || c == ".." || strings.HasPrefix(c, "../") {
		return "", false
	}
	return c, true
}
