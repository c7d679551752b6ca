package inspec

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// DepStatus says whether a dependency of inspec.yml could be loaded.
type DepStatus string

// Dependency states: loaded from a vendored copy or a path inside the profile; missing (its vendored copy or
// path is not in the profile, or it does not load); not vendored (a url/git/supermarket/compliance source,
// which rootscan never fetches: `inspec vendor` puts a copy in the profile).
const (
	DepLoaded      DepStatus = "loaded"
	DepMissing     DepStatus = "missing"
	DepNotVendored DepStatus = "not vendored"
)

// maxDepDepth bounds dependency chains (a overlay of b overlay of c ...); InSpec has no limit, real overlays
// go two or three deep.
const maxDepDepth = 8

// Dep is one resolved entry of depends.
type Dep struct {
	Name string
	// Line is the entry's line in inspec.yml (0 when unknown).
	Line   int
	Status DepStatus
	// Reason says why a dependency is not loaded.
	Reason string
	// Profile is the loaded dependency.
	Profile *Profile
}

// lockEntry is a dependency of inspec.lock, as `inspec vendor` writes it: the source it resolved to, whose
// sha256 (archives) or ref (git) names its copy under vendor/.
type lockEntry struct {
	Name           string         `yaml:"name"`
	ResolvedSource map[string]any `yaml:"resolved_source"`
	Dependencies   []lockEntry    `yaml:"dependencies"`
}

type lockFile struct {
	Depends []lockEntry `yaml:"depends"`
}

// vendorKeys maps every locked dependency name, nested ones too, to its cache key.
func vendorKeys(data []byte) map[string]string {
	keys := map[string]string{}
	var lf lockFile
	if len(data) == 0 || yaml.Unmarshal(data, &lf) != nil {
		return keys
	}
	var walk func([]lockEntry, int)
	walk = func(es []lockEntry, depth int) {
		if depth > maxDepDepth {
			return
		}
		for _, e := range es {
			for _, k := range []string{"sha256", "ref"} {
				if s, ok := e.ResolvedSource[k].(string); ok && s != "" && keys[e.Name] == "" {
					keys[e.Name] = s
				}
			}
			walk(e.Dependencies, depth+1)
		}
	}
	walk(lf.Depends, 0)
	return keys
}

// depName is the name include_controls uses for an entry: its name, else the last element of its source.
func depName(d Dependency) string {
	if d.Name != "" {
		return d.Name
	}
	for _, s := range []string{d.Path, d.URL, d.Git, d.Supermarket, d.Compliance} {
		if s != "" {
			s = strings.TrimSuffix(strings.TrimSuffix(strings.TrimRight(s, "/"), ".git"), ".tar.gz")
			return path.Base(s)
		}
	}
	return ""
}

// depLines finds each depends entry's line in inspec.yml, for file:line reports.
func depLines(meta []byte) []int {
	var doc yaml.Node
	if yaml.Unmarshal(meta, &doc) != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "depends" && m.Content[i+1].Kind == yaml.SequenceNode {
			var lines []int
			for _, e := range m.Content[i+1].Content {
				lines = append(lines, e.Line)
			}
			return lines
		}
	}
	return nil
}

// depResolver loads dependencies from the files of the top-level profile only: its vendor/ directory (which
// `inspec vendor` and `inspec archive` fill for the whole tree, nested dependencies included) and paths inside
// it. Nothing outside the profile is read.
type depResolver struct {
	root map[string][]byte
	keys map[string]string
	lim  Limits
	// budget is what vendored archives may still unpack, shared by the whole tree.
	budget int64
}

// loadDeps resolves the top-level profile p's dependencies from its files.
func loadDeps(p *Profile, files map[string][]byte, lim Limits) {
	var used int64
	for _, f := range files {
		used += int64(len(f))
	}
	r := &depResolver{root: files, keys: vendorKeys(files["inspec.lock"]), lim: lim, budget: lim.MaxTotalBytes - used}
	r.resolveDeps(p, "", []string{""})
}

// resolveDeps loads p's dependencies; dir is p's directory inside the top-level profile ("" for the top),
// stack the sources of the profiles above it, for cycles.
func (r *depResolver) resolveDeps(p *Profile, dir string, stack []string) {
	lines := depLines(p.files["inspec.yml"])
	for i, d := range p.Depends {
		dep := &Dep{Name: depName(d)}
		if i < len(lines) {
			dep.Line = lines[i]
		}
		r.resolve(p, d, dep, dir, stack)
		p.Deps = append(p.Deps, dep)
	}
	sums := map[string]string{}
	for _, d := range p.Deps {
		if d.Profile != nil {
			sums[d.Name] = d.Profile.SHA256
		}
	}
	if len(sums) > 0 {
		p.SHA256 = Checksum(p.files, sums)
	}
}

func (r *depResolver) resolve(p *Profile, d Dependency, dep *Dep, dir string, stack []string) {
	if len(stack) >= maxDepDepth {
		dep.Status, dep.Reason = DepMissing, fmt.Sprintf("dependency %s is deeper than %d levels", dep.Name, maxDepDepth)
		return
	}
	var files map[string][]byte
	where := ""
	if key := r.keys[dep.Name]; key != "" && cleanKey(key) {
		var err error
		if files, where, err = r.vendored(key); err != nil {
			dep.Status, dep.Reason = DepMissing, fmt.Sprintf("dependency %s: the vendored %s does not load: %v", dep.Name, where, err)
			return
		}
	}
	if files == nil && d.Path != "" {
		sub, ok := cleanName(path.Join(dir, d.Path))
		if path.Clean(path.Join(dir, d.Path)) == "." { // the top-level profile itself: a cycle, found below
			sub, ok = "", true
		}
		if !ok {
			dep.Status = DepNotVendored
			dep.Reason = fmt.Sprintf("dependency %s (path %s) is outside the profile: run inspec vendor", dep.Name, d.Path)
			return
		}
		files, where = r.root, sub
		if sub != "" {
			files = subtree(r.root, sub)
		}
		if files["inspec.yml"] == nil {
			dep.Status, dep.Reason = DepMissing, fmt.Sprintf("dependency %s: no profile at %s", dep.Name, d.Path)
			return
		}
	}
	if files == nil {
		dep.Status = DepNotVendored
		if d.Path != "" {
			dep.Status = DepMissing
		}
		dep.Reason = fmt.Sprintf("dependency %s is not vendored: run inspec vendor", dep.Name)
		return
	}
	for _, s := range stack {
		if s == where {
			chain := append(append([]string(nil), stack...), where)
			for i := range chain {
				if chain[i] == "" {
					chain[i] = "."
				}
			}
			dep.Status, dep.Reason = DepMissing, fmt.Sprintf("dependency %s is a cycle (%s)", dep.Name, strings.Join(chain, " -> "))
			return
		}
	}
	sub, err := FromFiles(p.Source+"/"+where, files, r.lim)
	if err != nil {
		dep.Status, dep.Reason = DepMissing, fmt.Sprintf("dependency %s does not load: %v", dep.Name, err)
		return
	}
	r.resolveDeps(sub, where, append(stack[:len(stack):len(stack)], where))
	dep.Status, dep.Profile = DepLoaded, sub
}

// cleanKey refuses cache keys that are not one path element.
func cleanKey(k string) bool {
	return !strings.ContainsAny(k, "/\\") && k != "." && k != ".."
}

// vendored finds vendor/KEY (a directory, or KEY.tar.gz / KEY.zip unpacked in memory within the budget).
func (r *depResolver) vendored(key string) (map[string][]byte, string, error) {
	dir := "vendor/" + key
	if files := subtree(r.root, dir); files["inspec.yml"] != nil {
		return files, dir, nil
	}
	for _, ext := range []string{".tar.gz", ".zip"} {
		data, ok := r.root[dir+ext]
		if !ok {
			continue
		}
		lim := r.lim
		lim.MaxTotalBytes = r.budget
		files, err := readArchiveBytes(data, lim)
		if err != nil {
			return nil, dir + ext, err
		}
		for _, f := range files {
			r.budget -= int64(len(f))
		}
		return files, dir + ext, nil
	}
	return nil, "", nil
}

// subtree is the files under dir, renamed relative to it.
func subtree(files map[string][]byte, dir string) map[string][]byte {
	out := map[string][]byte{}
	prefix := strings.TrimSuffix(dir, "/") + "/"
	for name, data := range files {
		if rel, ok := strings.CutPrefix(name, prefix); ok {
			out[rel] = data
		}
	}
	return out
}

// readArchiveBytes reads a vendored archive held in memory, as readArchive reads one on disk.
func readArchiveBytes(data []byte, lim Limits) (map[string][]byte, error) {
	if lim.MaxTotalBytes <= 0 {
		return nil, fmt.Errorf("vendored archives are larger than the profile's limit")
	}
	var members map[string][]byte
	var err error
	switch {
	case len(data) > 2 && data[0] == 0x1f && data[1] == 0x8b:
		members, err = readTarGz(bytes.NewReader(data), lim)
	case bytes.HasPrefix(data, []byte("PK\x03\x04")):
		members, err = readZip(bytes.NewReader(data), int64(len(data)), lim)
	default:
		return nil, fmt.Errorf("not a profile archive")
	}
	if err != nil {
		return nil, err
	}
	return stripPrefix(members)
}

// depDirs are the directories of a profile directory that hold its dependencies: vendor/ and the paths of
// depends entries inside the profile.
func depDirs(meta []byte) []string {
	dirs := []string{"vendor/"}
	m, err := ParseMetadata(meta)
	if err != nil {
		return dirs
	}
	for _, d := range m.Depends {
		if d.Path == "" {
			continue
		}
		if c, ok := cleanName(d.Path); ok {
			dirs = append(dirs, c+"/")
		}
	}
	sort.Strings(dirs)
	return dirs
}

// Dep returns the dependency include_controls names: by its depends name, else by its profile's name.
func (p *Profile) Dep(name string) *Dep {
	for _, d := range p.Deps {
		if d.Name == name {
			return d
		}
	}
	for _, d := range p.Deps {
		if d.Profile != nil && d.Profile.Name == name {
			return d
		}
	}
	return nil
}

// depReason says why the controls of include_controls NAME cannot run.
func (p *Profile) depReason(name string) string {
	d := p.Dep(name)
	switch {
	case d == nil:
		return fmt.Sprintf("dependency %s is not declared in inspec.yml depends", name)
	case d.Status != DepLoaded:
		return d.Reason
	}
	return ""
}

// readDepDirs adds to files what a profile directory's dependency directories hold of profiles (their
// metadata, controls, libraries, files and vendored archives), within the profile's limits. Links are not
// followed, as readDir does not follow them.
func readDepDirs(ctx context.Context, fsys fs.FS, files map[string][]byte, lim Limits) error {
	var total int64
	for _, f := range files {
		total += int64(len(f))
	}
	for _, dir := range depDirs(files["inspec.yml"]) {
		root := strings.TrimSuffix(dir, "/")
		if st, err := fs.Stat(fsys, root); err != nil || !st.IsDir() {
			continue
		}
		err := fs.WalkDir(fsys, root, func(name string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if strings.HasPrefix(d.Name(), ".") && name != root {
				if d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if _, seen := files[name]; seen || !d.Type().IsRegular() || !keepMember(name) {
				return nil
			}
			return addFile(fsys, name, files, &total, lim)
		})
		if err != nil {
			return fmt.Errorf("dependency directory %s: %w", root, err)
		}
	}
	return nil
}

// keepMember reports whether an archive member or a dependency directory's file is part of some profile:
// a profile file below any directory, or a vendored archive (vendor/KEY.tar.gz).
func keepMember(name string) bool {
	if profileFile(lastProfilePath(name)) {
		return true
	}
	dir, base := path.Split(name)
	return (dir == "vendor/" || strings.HasSuffix(dir, "/vendor/")) &&
		(strings.HasSuffix(base, ".tar.gz") || strings.HasSuffix(base, ".zip"))
}

// DepLine is one line of a profile check's dependency report.
type DepLine struct {
	// File and Line locate the entry (inspec.yml) or the include_controls.
	File string
	Line int
	Text string
}

// DepReport says how each depends entry and each include_controls / require_controls resolved, nested
// dependencies included (their files named by the dependency's path).
func (p *Profile) DepReport() []DepLine {
	var out []DepLine
	p.depReport("", &out, 0)
	return out
}

func (p *Profile) depReport(prefix string, out *[]DepLine, depth int) {
	if depth > maxDepDepth {
		return
	}
	for _, d := range p.Deps {
		text := fmt.Sprintf("dependency %s  %s: %s", d.Name, d.Status, d.Reason)
		if d.Status == DepLoaded {
			text = fmt.Sprintf("dependency %s  loaded (%s %s, %d controls)", d.Name, d.Profile.Name, d.Profile.Version, len(d.Profile.Controls))
		}
		*out = append(*out, DepLine{File: prefix + "inspec.yml", Line: d.Line, Text: text})
	}
	for _, in := range p.Includes {
		kind := "include_controls"
		if in.Require {
			kind = "require_controls"
		}
		text := fmt.Sprintf("%s '%s'  ", kind, in.Profile)
		if why := p.depReason(in.Profile); why != "" {
			text += why
		} else {
			text += fmt.Sprintf("loaded (%d skip_control, %d require_control)", len(in.Skip), len(in.Required))
		}
		*out = append(*out, DepLine{File: prefix + in.File, Line: in.Line, Text: text})
	}
	for _, d := range p.Deps {
		if d.Profile != nil {
			d.Profile.depReport(prefix+d.Name+":", out, depth+1)
		}
	}
}

// CheckWithDeps is Check of the profile followed by Check of the dependency controls its include_controls and
// require_controls run (as far as it can tell without running: literal skip_control and require_control ids),
// their files named DEP:controls/x.rb.
func (p *Profile) CheckWithDeps(cat *Catalog) []Verdict {
	out := p.Check(cat)
	p.checkIncluded(cat, "", &out, 0)
	return out
}

func (p *Profile) checkIncluded(cat *Catalog, prefix string, out *[]Verdict, depth int) {
	if depth >= maxDepDepth {
		return
	}
	for _, in := range p.Includes {
		d := p.Dep(in.Profile)
		if d == nil || d.Profile == nil {
			continue
		}
		skip, req := map[string]bool{}, map[string]bool{}
		for _, id := range in.Skip {
			skip[id] = true
		}
		for _, id := range in.Required {
			req[id] = true
		}
		for _, c := range p.Controls {
			if c.Overlay && c.Include == in.Profile {
				req[c.ID] = true
			}
		}
		name := prefix + d.Name + ":"
		for _, v := range d.Profile.Check(cat) {
			if skip[v.Control.ID] || in.Require && !req[v.Control.ID] {
				continue
			}
			c := *v.Control
			c.File = name + c.File
			v.Control = &c
			*out = append(*out, v)
		}
		d.Profile.checkIncluded(cat, name, out, depth+1)
	}
}
