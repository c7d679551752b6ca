package vuln

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	packageurl "github.com/package-url/packageurl-go"
	"github.com/rootscan/rootscan/report"
)

// OpenVEX (https://github.com/openvex/spec) documents say, per vulnerability and product, whether a product is
// affected. rootscan reads them itself rather than through github.com/openvex/go-vex: that module pulls in in-toto,
// attestation and SARIF libraries for signing and conversion, while reading the JSON takes the few types below.
// Both the v0.2.0 shape (vulnerability and products as objects) and the v0.0.1 shape (strings) are accepted.

// VEX statuses that suppress a finding.
const (
	VEXNotAffected = "not_affected"
	VEXFixed       = "fixed"
)

// Bounds on a VEX folder (a ConfigMap is at most 1 MiB; a folder of generated documents can be larger).
const (
	maxVEXFileSize   = 16 << 20
	maxVEXFiles      = 10000
	maxVEXStatements = 1_000_000
)

// VEX is a set of OpenVEX statements, ready to apply to scan results.
type VEX struct {
	statements []vexStatement
}

type vexStatement struct {
	vulns         []string // name and aliases
	products      []vexProduct
	status        string
	justification string
	source        string
	when          time.Time
	order         int
}

type vexProduct struct {
	id            string
	subcomponents []string
}

// openVEX documents, as JSON.
type vexDoc struct {
	ID         string          `json:"@id"`
	Timestamp  string          `json:"timestamp"`
	Statements []vexStatementJ `json:"statements"`
}

type vexStatementJ struct {
	Vulnerability   json.RawMessage   `json:"vulnerability"`
	Products        []json.RawMessage `json:"products"`
	Status          string            `json:"status"`
	Justification   string            `json:"justification"`
	ImpactStatement string            `json:"impact_statement"`
	Timestamp       string            `json:"timestamp"`
}

type vexVulnJ struct {
	ID      string   `json:"@id"`
	Name    string   `json:"name"`
	Aliases []string `json:"aliases"`
}

type vexProductJ struct {
	ID            string `json:"@id"`
	Subcomponents []struct {
		ID string `json:"@id"`
	} `json:"subcomponents"`
}

// LoadVEX reads every *.json OpenVEX document under dir (a folder, or a mounted ConfigMap whose entries are
// symbolic links into a ..data directory, which are followed within dir).
func LoadVEX(dir string) (*VEX, error) {
	v := &VEX{}
	files := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), "..") && p != dir {
				return fs.SkipDir // ConfigMap internals; the top-level links point into them
			}
			return nil
		}
		if !strings.HasSuffix(p, ".json") {
			return nil
		}
		if files++; files > maxVEXFiles {
			return fmt.Errorf("more than %d VEX files", maxVEXFiles)
		}
		data, err := readBounded(p, maxVEXFileSize)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if err := v.add(rel, data); err != nil {
			return fmt.Errorf("VEX %s: %w", p, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load VEX from %s: %w", dir, err)
	}
	return v, nil
}

// readBounded reads a regular file (a link is followed: ConfigMap keys are links) of at most limit bytes.
func readBounded(p string, limit int64) ([]byte, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", p)
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes exceed %d", p, fi.Size(), limit)
	}
	return os.ReadFile(p)
}

// Len is the number of statements loaded.
func (v *VEX) Len() int { return len(v.statements) }

func (v *VEX) add(source string, data []byte) error {
	var doc vexDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("decode OpenVEX: %w", err)
	}
	if len(doc.Statements) == 0 {
		return errors.New("no statements (not an OpenVEX document?)")
	}
	if len(v.statements)+len(doc.Statements) > maxVEXStatements {
		return fmt.Errorf("more than %d VEX statements", maxVEXStatements)
	}
	docTime, _ := time.Parse(time.RFC3339, doc.Timestamp)
	if doc.ID != "" {
		source += " (" + doc.ID + ")"
	}
	for i, sj := range doc.Statements {
		st := vexStatement{status: sj.Status, justification: sj.Justification, source: source, when: docTime, order: len(v.statements)}
		if st.justification == "" {
			st.justification = sj.ImpactStatement
		}
		if t, err := time.Parse(time.RFC3339, sj.Timestamp); err == nil {
			st.when = t
		}
		var name string
		if json.Unmarshal(sj.Vulnerability, &name) == nil {
			st.vulns = []string{name}
		} else {
			var vj vexVulnJ
			if err := json.Unmarshal(sj.Vulnerability, &vj); err != nil {
				return fmt.Errorf("statement %d: vulnerability: %w", i, err)
			}
			st.vulns = slices.DeleteFunc(slices.Concat([]string{vj.Name, vj.ID}, vj.Aliases), func(s string) bool { return s == "" })
		}
		for _, pj := range sj.Products {
			var id string
			if json.Unmarshal(pj, &id) == nil {
				st.products = append(st.products, vexProduct{id: id})
				continue
			}
			var p vexProductJ
			if err := json.Unmarshal(pj, &p); err != nil {
				return fmt.Errorf("statement %d: product: %w", i, err)
			}
			vp := vexProduct{id: p.ID}
			for _, s := range p.Subcomponents {
				vp.subcomponents = append(vp.subcomponents, s.ID)
			}
			st.products = append(st.products, vp)
		}
		if len(st.vulns) == 0 || len(st.products) == 0 || st.status == "" {
			return fmt.Errorf("statement %d: needs a vulnerability, products and a status", i)
		}
		v.statements = append(v.statements, st)
	}
	return nil
}

// Apply marks the findings of one target that a VEX statement declares not_affected or fixed: Suppressed is set
// (status, justification, the document), the finding stays in the list so it is counted as suppressed. When
// several statements apply, the latest (by statement or document timestamp, then document order) wins, so an
// "affected" statement issued after a "not_affected" one un-suppresses. It returns the number suppressed.
//
// A statement applies when it names the finding's id or one of its aliases, and one of its products is the target
// image (its manifest digest "sha256:...", a pkg:oci purl with that digest as version, or the image reference) with
// the finding's package among the product's subcomponents (or no subcomponents: the whole image), or is the
// finding's package itself (by purl; qualifiers of the statement must match, its version too when it has one).
func (v *VEX) Apply(t report.Target, vulns []report.Vulnerability) int {
	if v == nil {
		return 0
	}
	n := 0
	for i := range vulns {
		f := &vulns[i]
		var best *vexStatement
		for j := range v.statements {
			st := &v.statements[j]
			if !st.names(f) || !st.covers(t, f) {
				continue
			}
			if best == nil || st.when.After(best.when) || (st.when.Equal(best.when) && st.order > best.order) {
				best = st
			}
		}
		if best != nil && (best.status == VEXNotAffected || best.status == VEXFixed) {
			f.Suppressed = &report.Suppression{Status: best.status, Justification: best.justification, Source: best.source}
			n++
		}
	}
	return n
}

func (st *vexStatement) names(f *report.Vulnerability) bool {
	for _, n := range st.vulns {
		if strings.EqualFold(n, f.ID) || slices.ContainsFunc(f.Aliases, func(a string) bool { return strings.EqualFold(a, n) }) {
			return true
		}
	}
	return false
}

func (st *vexStatement) covers(t report.Target, f *report.Vulnerability) bool {
	for _, p := range st.products {
		if isImage(p.id, t) {
			if len(p.subcomponents) == 0 || slices.ContainsFunc(p.subcomponents, func(s string) bool { return purlMatches(s, f.PURL) }) {
				return true
			}
			continue
		}
		if purlMatches(p.id, f.PURL) {
			return true
		}
	}
	return false
}

// isImage says whether a VEX product id names the target's image.
func isImage(id string, t report.Target) bool {
	if id == "" {
		return false
	}
	if t.ImageDigest != "" && (id == t.ImageDigest || strings.HasSuffix(id, "@"+t.ImageDigest)) {
		return true
	}
	if t.Image != "" && id == t.Image {
		return true
	}
	if strings.HasPrefix(id, "pkg:oci/") {
		if u, err := packageurl.FromString(id); err == nil && u.Version != "" && u.Version == t.ImageDigest {
			return true
		}
	}
	return false
}

// purlMatches says whether a statement's purl names a finding's package: same type, namespace and name; the
// statement's version and qualifiers, where it has them, must be the package's.
func purlMatches(stmt, pkg string) bool {
	if stmt == "" || pkg == "" || !strings.HasPrefix(stmt, "pkg:") {
		return false
	}
	s, err := packageurl.FromString(stmt)
	if err != nil {
		return false
	}
	p, err := packageurl.FromString(pkg)
	if err != nil {
		return false
	}
	if s.Type != p.Type || !strings.EqualFold(s.Namespace, p.Namespace) || s.Name != p.Name {
		return false
	}
	if s.Version != "" && s.Version != p.Version {
		return false
	}
	pq := p.Qualifiers.Map()
	for k, val := range s.Qualifiers.Map() {
		if pq[k] != val {
			return false
		}
	}
	return true
}
