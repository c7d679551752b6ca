package vuln

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/vuln/version"
)

// query is how one installed package is looked up: the advisory's words, which for OS packages are not the
// inventory's (Debian, Ubuntu and Alpine advisories name the source package and its version).
type query struct {
	base, release, name, version string
}

// queryFor maps an inventory package to its advisory key. ok is false when the package cannot be matched: an OS
// package without a known release (advisories are per release), or a version the toolchain marks as unversioned.
func queryFor(o *report.OS, p report.Package) (q query, ok bool, why string) {
	q = query{base: p.Ecosystem, name: p.Name, version: p.Version}
	if p.Declared() {
		// A lock file's entry with nothing installed: a finding would name code that may not be on disk. Image
		// scanners draw the same line (Trivy reads installed package.json files in images, lock files in repos).
		return q, false, ""
	}
	switch p.Ecosystem {
	case report.EcosystemDebian, report.EcosystemUbuntu, report.EcosystemAlpine:
		if p.Source != "" {
			q.name = p.Source
		}
		if p.SourceVersion != "" {
			q.version = p.SourceVersion
		}
		q.release = osRelease(o, p.Ecosystem)
		if q.release == "" {
			return q, false, "no OS release (VERSION_ID) known: " + p.Ecosystem + " advisories are per release"
		}
	case report.EcosystemMaven:
		// OSV keys Maven advisories by "groupId:artifactId". A jar named by its manifest or file name has no group
		// (see scan.NewJava), and looking its bare name up, or a guessed group, would report another
		// project's advisories or miss its own without saying so.
		if g, a, ok := strings.Cut(p.Name, ":"); !ok || g == "" || a == "" {
			return q, false, "Maven artifacts without a groupId (named from a jar's MANIFEST.MF or file name) " +
				"are not matched against advisories"
		}
	case report.EcosystemGo, report.EcosystemPyPI, report.EcosystemNpm, report.EcosystemCratesIO,
		report.EcosystemRubyGems, report.EcosystemNuGet, report.EcosystemPackagist:
		// Language ecosystems have no release.
	default:
		// RPM distributions ("Red Hat", "AlmaLinux", "Rocky Linux", "SUSE", ...): advisories per major release.
		q.release = osRelease(o, p.Ecosystem)
	}
	if q.version == "" || q.version == "(devel)" {
		return q, false, ""
	}
	if p.Ecosystem == report.EcosystemPackagist {
		// A composer dev branch ("dev-main") has no place in the version order: no range can include it.
		if _, err := version.NormalizeComposer(q.version); errors.Is(err, version.ErrBranch) {
			return q, false, ""
		}
	}
	return q, true, ""
}

// osRelease is the release part of OSV's ecosystem name for the scanned OS: "12" for Debian 12 ("Debian:12"),
// "v3.19" for Alpine 3.19.1 ("Alpine:v3.19"), "22.04" for Ubuntu ("Ubuntu:22.04:LTS"), the major version for RPM
// distributions ("AlmaLinux:9").
func osRelease(o *report.OS, eco string) string {
	if o == nil || o.VersionID == "" {
		return ""
	}
	v := o.VersionID
	switch eco {
	case report.EcosystemUbuntu:
		return v
	case report.EcosystemAlpine:
		parts := strings.SplitN(v, ".", 3)
		if len(parts) < 2 {
			return ""
		}
		return "v" + parts[0] + "." + parts[1]
	}
	major, _, _ := strings.Cut(v, ".")
	return major
}

// releaseMatches says whether an advisory's ecosystem ("Debian:12", "Ubuntu:Pro:22.04:LTS", "Go") covers the
// package's release. Language ecosystems have no release on either side.
func releaseMatches(advEco, release string) bool {
	segs := strings.Split(advEco, ":")[1:]
	if release == "" {
		return len(segs) == 0
	}
	return slices.Contains(segs, release)
}

// Matcher is what a scan needs of a database: DB implements it, and Store (a DB that is swapped on update) too.
type Matcher interface {
	Match(ctx context.Context, res *report.Result) error
}

// Match adds to res.Vulnerabilities every advisory affecting one of res.Packages, one finding per advisory and
// package, most severe first. Packages that cannot be matched are noted in res.Errors (analyzer "vuln"), once per
// reason.
func (db *DB) Match(ctx context.Context, res *report.Result) error {
	cache := map[string]*advisory{}
	noted := map[string]bool{}
	type fkey struct{ id, name, version, eco, purl string }
	seen := map[fkey]bool{}
	var found []report.Vulnerability
	bins := newGoBins(res)
	for _, p := range res.Packages {
		if err := ctx.Err(); err != nil {
			return err
		}
		q, ok, why := queryFor(res.OS, p)
		if !ok {
			if why != "" && !noted[why] {
				noted[why] = true
				res.Errors = append(res.Errors, report.FileError{Analyzer: "vuln", Err: why})
			}
			continue
		}
		entries, err := db.lookup(q.base, q.name, cache)
		if err != nil {
			return fmt.Errorf("look up %s/%s: %w", q.base, q.name, err)
		}
		var pbins []*report.GoBinary
		if p.Ecosystem == report.EcosystemGo {
			pbins = bins.of(p)
		}
		for _, e := range entries {
			if !releaseMatches(e[0], q.release) {
				continue
			}
			a := cache[e[1]]
			for i := range a.Affected {
				af := &a.Affected[i]
				if af.Ecosystem != e[0] || indexName(q.base, af.Name) != indexName(q.base, q.name) {
					continue
				}
				hit, fixed, err := affects(af, q.version)
				if err != nil {
					msg := fmt.Sprintf("%s %s: %v", a.ID, af.Ecosystem, err)
					if !noted[msg] && len(noted) < 100 {
						noted[msg] = true
						res.Errors = append(res.Errors, report.FileError{Analyzer: "vuln", Err: msg})
					}
				}
				if !hit || (p.Ecosystem == report.EcosystemGo && !goApplies(af, pbins)) {
					continue
				}
				k := fkey{a.ID, p.Name, p.Version, p.Ecosystem, p.PURL}
				if seen[k] {
					continue
				}
				seen[k] = true
				v := report.Vulnerability{
					ID: a.ID, Aliases: a.Aliases, Summary: a.Summary,
					Severity: af.Rating.Severity, Score: af.Rating.Score, Vector: af.Rating.Vector,
					Package: p.Name, Version: p.Version, Ecosystem: p.Ecosystem, PURL: p.PURL, FixedVersion: fixed,
				}
				if p.Ecosystem == report.EcosystemGo {
					v.Reachable = goReachability(a, q.name, q.version, pbins)
				}
				found = append(found, v)
				break
			}
		}
	}
	SortFindings(found)
	res.Vulnerabilities = append(res.Vulnerabilities, found...)
	return nil
}

// SortFindings orders findings most severe first, then by package and advisory id, so outputs are stable.
func SortFindings(vs []report.Vulnerability) {
	slices.SortStableFunc(vs, func(a, b report.Vulnerability) int {
		if c := cmp.Compare(b.Severity.Rank(), a.Severity.Rank()); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Or(strings.Compare(a.Package, b.Package), strings.Compare(a.Version, b.Version), strings.Compare(a.ID, b.ID))
	})
}

// affects evaluates one affected entry for an installed version, following the OSV schema's evaluation: an exact
// listing in "versions", or a range whose events (sorted by version, "introduced: 0" first) leave the version
// inside an introduced..fixed / introduced..last_affected interval. fixed is the first fixing version above the
// installed one in the range that matched, empty when none exists. A version or event the ecosystem cannot parse
// is an error; the entry then counts as affected only through an exact "versions" listing.
func affects(af *advAffected, v string) (hit bool, fixed string, err error) {
	listed := slices.Contains(af.Versions, v)
	for _, rg := range af.Ranges {
		var c version.Comparator
		if rg.Type == "SEMVER" {
			c = version.SemVer.Comparator()
		} else if c, err = version.For(af.Ecosystem); err != nil {
			return listed, "", err
		}
		h, f, rerr := inRange(c, rg.Events, v, af.Sorted)
		if h {
			return true, f, nil
		}
		if rerr != nil {
			err = rerr
			continue
		}
		if listed && fixed == "" {
			fixed = f
		}
	}
	return listed, fixed, err
}

// sortEvents orders a range's events by version, "introduced: 0" first, as the OSV evaluation requires. Import
// sorts every range once (advAffected.Sorted), so matching does not. An event the comparator cannot parse keeps its
// place and is reported.
func sortEvents(c version.Comparator, evs []Event) error {
	point := func(e Event) string { return cmp.Or(e.Introduced, e.Fixed, e.LastAffected, e.Limit) }
	var badEvent error
	slices.SortStableFunc(evs, func(x, y Event) int {
		px, py := point(x), point(y)
		if px == py {
			return 0
		}
		if x.Introduced == "0" {
			return -1
		}
		if y.Introduced == "0" {
			return 1
		}
		n, err := c(px, py)
		if err != nil {
			badEvent = err
			return 0
		}
		return n
	})
	return badEvent
}

// inRange evaluates one range. fixed is the lowest fixed event above v (reported as the fix when v is affected).
func inRange(c version.Comparator, events []Event, v string, sorted bool) (hit bool, fixed string, err error) {
	if _, err := c(v, v); err != nil {
		return false, "", err
	}
	evs := events
	var badEvent error
	if !sorted {
		evs = slices.Clone(events)
		badEvent = sortEvents(c, evs)
	}
	for _, e := range evs {
		switch {
		case e.Introduced != "":
			if e.Introduced == "0" {
				hit = true
				continue
			}
			if n, err := c(v, e.Introduced); err != nil {
				badEvent = err
			} else if n >= 0 {
				hit, fixed = true, ""
			}
		case e.Fixed != "":
			n, err := c(v, e.Fixed)
			switch {
			case err != nil:
				badEvent = err
			case n >= 0:
				hit = false
			case hit && fixed == "":
				fixed = e.Fixed
			}
		case e.LastAffected != "":
			if n, err := c(v, e.LastAffected); err != nil {
				badEvent = err
			} else if n > 0 {
				hit = false
			}
		}
	}
	if !hit {
		fixed = ""
	}
	return hit, fixed, badEvent
}
