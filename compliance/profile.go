// Package compliance evaluates InSpec-like profiles on a container's root filesystem from outside: controls with
// impact, tags and checks written in CEL (the expression language Kubernetes uses) over resources such as file(),
// parse_config(), users() and image_config(). Nothing runs inside the container, so distroless images, where every
// InSpec resource fails for want of a shell, are checked like any other. Results go into report.Result.Compliance
// and, in full, into Heimdall Data Format (HDF) documents.
package compliance

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	yaml "go.yaml.in/yaml/v3"
)

//go:embed builtin/*.yaml
var builtinFS embed.FS

// BuiltinPrefix names the profiles shipped inside rootscan ("builtin:container-baseline").
const BuiltinPrefix = "builtin:"

// Baseline is the built-in profile on by default.
const Baseline = BuiltinPrefix + "container-baseline"

// Bounds on profiles: they come from users, but a profile folder can hold anything.
const (
	MaxProfileBytes = 4 << 20
	MaxControls     = 10_000
	MaxChecks       = 100
	maxProfileFiles = 1_000
)

// Profile is a loaded, compiled profile: every expression passed the CEL type checker.
type Profile struct {
	Name       string
	Title      string
	Version    string
	Maintainer string
	Summary    string
	License    string
	Copyright  string
	// Source is the file the profile came from, or "builtin:<name>".
	Source string
	// SHA256 is the digest of the profile file, as HDF records it.
	SHA256   string
	Controls []*Control
}

// Control is one requirement: it passes when every check is true.
type Control struct {
	ID           string
	Title        string
	Desc         string
	Descriptions []Description
	Impact       float64
	Tags         map[string][]string
	Refs         []map[string]string
	OnlyIf       *Expr
	SkipMessage  string
	Checks       []*Check
	// Line is where the control starts in Source; Code is its YAML source, both for HDF.
	Line int
	Code string
}

// Description is a labelled text of a control (rationale, check, fix), HDF's descriptions[].
type Description struct {
	Label string `json:"label"`
	Data  string `json:"data"`
}

// Check is one CEL expression of a control that must be true.
type Check struct {
	Desc string
	Expr
	// Observed, when set, is evaluated on failure to report what the target had (for a comparison, its left side
	// unless the profile says otherwise).
	Observed *Expr
}

// Expr is a compiled CEL expression with where it came from.
type Expr struct {
	Src  string
	Line int
	prog cel.Program
}

type rawProfile struct {
	Name       string       `yaml:"name"`
	Title      string       `yaml:"title"`
	Version    string       `yaml:"version"`
	Maintainer string       `yaml:"maintainer"`
	Summary    string       `yaml:"summary"`
	License    string       `yaml:"license"`
	Copyright  string       `yaml:"copyright"`
	Controls   []rawControl `yaml:"controls"`
}

type rawControl struct {
	ID           yaml.Node           `yaml:"id"`
	Title        string              `yaml:"title"`
	Desc         string              `yaml:"desc"`
	Descriptions map[string]string   `yaml:"descriptions,omitempty"`
	Impact       *float64            `yaml:"impact"`
	Tags         map[string]any      `yaml:"tags,omitempty"`
	Refs         []map[string]string `yaml:"refs,omitempty"`
	OnlyIf       yaml.Node           `yaml:"only_if,omitempty"`
	SkipMessage  string              `yaml:"skip_message,omitempty"`
	Checks       []rawCheck          `yaml:"checks"`
}

type rawCheck struct {
	Desc     string    `yaml:"desc,omitempty"`
	Expr     yaml.Node `yaml:"expr"`
	Observed yaml.Node `yaml:"observed,omitempty"`
}

// Loader reads and compiles profiles. It is safe for concurrent use once made.
type Loader struct {
	env   *cel.Env
	types *celTypes
	lim   Limits
}

// NewLoader makes the CEL environment profiles compile in.
func NewLoader(lim Limits) (*Loader, error) {
	env, ct, err := newEnv()
	if err != nil {
		return nil, err
	}
	return &Loader{env: env, types: ct, lim: lim.withDefaults()}, nil
}

// Load reads "builtin:<name>", a profile file, or every *.yaml / *.yml file of a folder (recursively, in name
// order; a mounted ConfigMap's "..<time>" data dir is skipped, its files are read through their links). All problems of all files are reported together, each as "file:line: what".
func (l *Loader) Load(src string) ([]*Profile, error) {
	if name, ok := strings.CutPrefix(src, BuiltinPrefix); ok {
		b, err := builtinFS.ReadFile("builtin/" + name + ".yaml")
		if err != nil {
			return nil, fmt.Errorf("no built-in profile %q (have: %s)", name, strings.Join(BuiltinNames(), ", "))
		}
		p, err := l.Parse(src, b)
		if err != nil {
			return nil, err
		}
		return []*Profile{p}, nil
	}
	fi, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("load profile: %w", err)
	}
	files := []string{src}
	if fi.IsDir() {
		files = nil
		err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			// A ConfigMap volume keeps its files in a timestamped "..<time>" dir and links each from the top
			// level: read only the links, or every profile would load twice.
			if d.IsDir() && p != src && strings.HasPrefix(d.Name(), "..") {
				return fs.SkipDir
			}
			if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
				files = append(files, p)
				if len(files) > maxProfileFiles {
					return fmt.Errorf("more than %d profile files", maxProfileFiles)
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("load profiles from %s: %w", src, err)
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("load profiles from %s: no .yaml or .yml files", src)
		}
		sort.Strings(files)
	}
	var out []*Profile
	var errs []error
	for _, f := range files {
		b, err := readBounded(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p, err := l.Parse(f, b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p)
	}
	return out, errors.Join(errs...)
}

func readBounded(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("load profile: %w", err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(&limitedReader{r: f, n: MaxProfileBytes + 1}); err != nil {
		return nil, fmt.Errorf("load profile %s: %w", name, err)
	}
	if buf.Len() > MaxProfileBytes {
		return nil, fmt.Errorf("load profile %s: larger than %d bytes", name, MaxProfileBytes)
	}
	return buf.Bytes(), nil
}

type limitedReader struct {
	r interface{ Read([]byte) (int, error) }
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// BuiltinNames lists the built-in profiles as "builtin:<name>".
func BuiltinNames() []string {
	ents, _ := builtinFS.ReadDir("builtin")
	var out []string
	for _, e := range ents {
		out = append(out, BuiltinPrefix+strings.TrimSuffix(e.Name(), ".yaml"))
	}
	return out
}

// Parse reads one profile document. source names it in errors and in HDF.
func (l *Loader) Parse(source string, data []byte) (*Profile, error) {
	if len(data) > MaxProfileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", source, MaxProfileBytes)
	}
	var raw rawProfile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		return nil, yamlError(source, err)
	}
	sum := sha256.Sum256(data)
	p := &Profile{
		Name: raw.Name, Title: raw.Title, Version: raw.Version, Maintainer: raw.Maintainer, Summary: raw.Summary,
		License: raw.License, Copyright: raw.Copyright, Source: source, SHA256: hex.EncodeToString(sum[:]),
	}
	var errs []error
	errf := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s", source, line, fmt.Sprintf(format, args...)))
	}
	if p.Name == "" {
		errf(1, "profile has no name")
	}
	if len(raw.Controls) == 0 {
		errf(1, "profile %q has no controls", p.Name)
	}
	if len(raw.Controls) > MaxControls {
		return nil, fmt.Errorf("%s: %d controls, more than %d", source, len(raw.Controls), MaxControls)
	}
	seen := map[string]int{}
	for i := range raw.Controls {
		rc := &raw.Controls[i]
		c, cerrs := l.control(source, rc)
		if c != nil {
			if prev, dup := seen[c.ID]; dup {
				errf(c.Line, "control id %q already used at line %d", c.ID, prev)
			}
			seen[c.ID] = c.Line
			p.Controls = append(p.Controls, c)
		}
		errs = append(errs, cerrs...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

func (l *Loader) control(source string, rc *rawControl) (*Control, []error) {
	var errs []error
	line := rc.ID.Line
	errf := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s", source, line, fmt.Sprintf(format, args...)))
	}
	if rc.ID.Kind != yaml.ScalarNode || strings.TrimSpace(rc.ID.Value) == "" {
		errf(max(line, 1), "control without an id")
		return nil, errs
	}
	c := &Control{
		ID: rc.ID.Value, Title: rc.Title, Desc: rc.Desc, Impact: 0.5, Refs: rc.Refs,
		SkipMessage: rc.SkipMessage, Line: line, Tags: map[string][]string{},
	}
	if rc.Impact != nil {
		c.Impact = *rc.Impact
		if c.Impact < 0 || c.Impact > 1 || c.Impact != c.Impact {
			errf(line, "control %s: impact %v is outside 0.0-1.0", c.ID, c.Impact)
		}
	}
	labels := make([]string, 0, len(rc.Descriptions))
	for k := range rc.Descriptions {
		labels = append(labels, k)
	}
	sort.Strings(labels)
	for _, k := range labels {
		c.Descriptions = append(c.Descriptions, Description{Label: k, Data: rc.Descriptions[k]})
	}
	for k, v := range rc.Tags {
		switch t := v.(type) {
		case string:
			c.Tags[k] = []string{t}
		case []any:
			for _, e := range t {
				c.Tags[k] = append(c.Tags[k], fmt.Sprint(e))
			}
		case nil:
			c.Tags[k] = nil
		default:
			c.Tags[k] = []string{fmt.Sprint(t)}
		}
	}
	if rc.OnlyIf.Kind != 0 {
		e, err := l.compile(source, c.ID, "only_if", &rc.OnlyIf, true)
		if err != nil {
			errs = append(errs, err)
		}
		c.OnlyIf = e
	}
	if len(rc.Checks) == 0 {
		errf(line, "control %s has no checks", c.ID)
	}
	if len(rc.Checks) > MaxChecks {
		errf(line, "control %s has %d checks, more than %d", c.ID, len(rc.Checks), MaxChecks)
		return c, errs
	}
	for i := range rc.Checks {
		rk := &rc.Checks[i]
		what := fmt.Sprintf("check %d", i+1)
		if rk.Expr.Kind == 0 {
			errf(line, "control %s %s has no expr", c.ID, what)
			continue
		}
		e, err := l.compile(source, c.ID, what, &rk.Expr, true)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ck := &Check{Desc: rk.Desc, Expr: *e}
		if ck.Desc == "" {
			ck.Desc = e.Src
		}
		if rk.Observed.Kind != 0 {
			o, err := l.compile(source, c.ID, what+" observed", &rk.Observed, false)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			ck.Observed = o
		} else {
			ck.Observed = l.observedOf(e)
		}
		c.Checks = append(c.Checks, ck)
	}
	if out, err := yaml.Marshal(rc); err == nil {
		c.Code = string(out)
	}
	return c, errs
}

// compile type-checks one expression; errors carry the file and the line in it (the expression's own line
// offset added to the YAML scalar's).
func (l *Loader) compile(source, control, what string, n *yaml.Node, wantBool bool) (*Expr, error) {
	if n.Kind != yaml.ScalarNode {
		return nil, fmt.Errorf("%s:%d: control %s %s: want a CEL expression string", source, n.Line, control, what)
	}
	first := n.Line
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		first++ // a block scalar's text starts on the line after its indicator
	}
	a, iss := l.env.Compile(n.Value)
	if iss.Err() != nil {
		var msgs []string
		line := first
		for i, e := range iss.Errors() {
			if i == 0 {
				line = first + max(e.Location.Line(), 1) - 1
			}
			msgs = append(msgs, e.Message)
		}
		return nil, fmt.Errorf("%s:%d: control %s %s: %s", source, line, control, what, strings.Join(msgs, "; "))
	}
	if wantBool && a.OutputType() != cel.BoolType && a.OutputType() != cel.DynType {
		return nil, fmt.Errorf("%s:%d: control %s %s: expression is %s, want bool", source, first, control, what, a.OutputType())
	}
	prog, err := l.program(a)
	if err != nil {
		return nil, fmt.Errorf("%s:%d: control %s %s: %v", source, first, control, what, err)
	}
	return &Expr{Src: n.Value, Line: first, prog: prog}, nil
}

func (l *Loader) program(a *cel.Ast) (cel.Program, error) {
	return l.env.Program(a,
		cel.CostLimit(l.lim.CostLimit),
		cel.CostTracking(costEstimator{}),
		cel.InterruptCheckFrequency(64),
		cel.EvalOptions(cel.OptOptimize),
		cel.OptimizeRegex(matchesOptimizations()...),
	)
}

// comparisons are the operators whose left side is worth reporting when a check fails.
var comparisons = map[string]bool{
	operators.Equals: true, operators.NotEquals: true, operators.Less: true, operators.LessEquals: true,
	operators.Greater: true, operators.GreaterEquals: true, operators.In: true,
}

// observedOf compiles the left side of a top-level comparison ("users().filter(...).map(u, u.name) == []"), so a
// failure says what the target had, not just "false".
func (l *Loader) observedOf(e *Expr) *Expr {
	a, iss := l.env.Compile(e.Src)
	if iss.Err() != nil {
		return nil
	}
	root := a.NativeRep().Expr()
	if root.Kind() != ast.CallKind || !comparisons[root.AsCall().FunctionName()] || len(root.AsCall().Args()) != 2 {
		return nil
	}
	left := root.AsCall().Args()[0]
	if left.Kind() == ast.LiteralKind {
		return nil
	}
	src, err := cel.ExprToString(left, a.NativeRep().SourceInfo())
	if err != nil {
		return nil
	}
	la, iss := l.env.Compile(src)
	if iss.Err() != nil || la.OutputType() == types.ErrorType {
		return nil
	}
	prog, err := l.program(la)
	if err != nil {
		return nil
	}
	return &Expr{Src: src, Line: e.Line, prog: prog}
}

// yamlLine matches the "line N: " yaml.v3 puts in its messages.
var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)

// yamlError rewrites yaml.v3's "yaml: line 4: msg" errors as "source:4: msg", one line per problem, the form
// editors and CI annotate.
func yamlError(source string, err error) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var errs []error
	for _, m := range msgs {
		if sm := yamlLine.FindStringSubmatch(m); sm != nil {
			errs = append(errs, fmt.Errorf("%s:%s: %s", source, sm[1], m[len(sm[0]):]))
			continue
		}
		errs = append(errs, fmt.Errorf("%s: %s", source, strings.TrimPrefix(m, "yaml: ")))
	}
	return errors.Join(errs...)
}
