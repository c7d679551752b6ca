package output

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/rootscan/rootscan/internal/textsafe"
	"github.com/rootscan/rootscan/report"
)

// writeVulnTable lists a target's open findings, most severe first; suppressed ones are only counted. A REACHABLE
// column (true, false, unknown; "-" for findings reachability does not apply to) is shown for targets with a Go
// finding only: reachability is decided for Go programs alone, and a column of dashes on a Debian image would say
// nothing. An IN USE column (true, false, unknown) is shown for targets with runtime data, that is with a finding
// marked true or false: without it every finding would read unknown.
func writeVulnTable(w io.Writer, r report.Report) error {
	var open []report.Vulnerability
	reach, inUse := false, false
	for _, v := range r.Result.Vulnerabilities {
		if v.Suppressed == nil {
			open = append(open, v)
			reach = reach || v.Reachable != ""
			inUse = inUse || v.InUse == report.InUseTrue || v.InUse == report.InUseFalse
		}
	}
	if len(open) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\n%s: %d vulnerabilities (%s)\n", esc(r.Target.Name()), len(open), vulnCounts(r.Result.Vulnerabilities))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	head := []string{"ID", "SEVERITY", "SCORE", "PACKAGE", "VERSION", "FIXED IN"}
	if reach {
		head = append(head, "REACHABLE")
	}
	if inUse {
		head = append(head, "IN USE")
	}
	fmt.Fprintln(tw, "  "+strings.Join(append(head, "ALIASES", "SUMMARY"), "\t"))
	for _, v := range open {
		score := "-"
		if v.Score > 0 {
			score = fmt.Sprintf("%.1f", v.Score)
		}
		cols := []string{esc(v.ID), esc(string(v.Severity)), score, esc(v.Package), esc(v.Version), dash(esc(v.FixedVersion))}
		if reach {
			cols = append(cols, dash(esc(string(v.Reachable))))
		}
		if inUse {
			cols = append(cols, dash(esc(string(v.InUse))))
		}
		cols = append(cols, dash(esc(strings.Join(v.Aliases, ","))), esc(truncate(v.Summary, 80)))
		fmt.Fprintln(tw, "  "+strings.Join(cols, "\t"))
	}
	return tw.Flush()
}

// esc shows a string taken from a target (a path, a package name or version, a pod or image name, a message quoting
// either) on a terminal: control characters, escape sequences and every kind of line break are shown escaped
// (textsafe), so no name can forge a line, colour the output or move the cursor.
func esc(s string) string { return textsafe.Escape(s) }

func truncate(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// writeTable writes the human-readable table: one line per target, then per target its packages, open
// vulnerabilities, failed controls, integrity problems, drift and warnings.
func writeTable(w io.Writer, doc Document, showPackages bool) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tSTATE\tIMAGE\tDIGEST\tOS\tDISTROLESS\tPACKAGES\tVULNERABILITIES\tCOMPLIANCE\tFILE ERRORS\tSTATUS")
	failed := 0
	for _, r := range doc.Reports {
		t := r.Target
		osName, dl, pkgs, vulns, ferrs, status := "-", "-", "-", "-", "-", "ok"
		if r.Result != nil {
			if r.Result.OS != nil {
				osName = osLabel(r.Result.OS)
			}
			pkgs = ecosystemCounts(r.Result.Packages)
			if doc.VulnDB != nil && doc.VulnDB.Checked {
				vulns = vulnCounts(r.Result.Vulnerabilities)
			}
			ferrs = fmt.Sprint(len(r.Result.Errors))
		}
		if r.Error != "" {
			status = "FAILED"
			failed++
		} else if r.Incomplete != nil {
			status = "INCOMPLETE"
		}
		if r.Result != nil && r.Result.Distroless != nil {
			dl = distrolessLabel(r.Result.Distroless)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", esc(t.Name()), dash(esc(t.State)), dash(esc(t.Image)), esc(shortDigest(t.ImageDigest)), esc(osName), esc(dl), esc(pkgs), vulns, complianceSummary(r.Result), ferrs, status)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range doc.Reports {
		if r.Error != "" {
			fmt.Fprintf(w, "\n%s: scan failed: %s\n", esc(r.Target.Name()), esc(r.Error))
			continue
		}
		if r.Incomplete != nil {
			fmt.Fprintf(w, "\n%s: %s\n", esc(r.Target.Name()), esc(r.Incomplete.String()))
		}
		if r.Result == nil {
			continue
		}
		if showPackages && len(r.Result.Packages) > 0 {
			fmt.Fprintf(w, "\n%s (%s, %s)\n", esc(r.Target.Name()), dash(esc(r.Target.ImageDigest)), esc(r.Target.Access))
			tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  PACKAGE\tVERSION\tARCH\tSOURCE\tECOSYSTEM")
			for _, p := range r.Result.Packages {
				src := p.Source
				if p.SourceVersion != "" && p.SourceVersion != p.Version {
					src += " (" + p.SourceVersion + ")"
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", esc(p.Name), esc(p.Version), dash(esc(p.Arch)), dash(esc(src)), esc(p.Ecosystem))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		if err := writeVulnTable(w, r); err != nil {
			return err
		}
		for _, c := range r.Result.Compliance {
			if c.Status == report.ControlFailed || c.Status == report.ControlError {
				fmt.Fprintf(w, "  compliance: %s %s/%s (%s) %s: %s\n", esc(c.Status), esc(c.Profile), esc(c.ID), esc(string(c.Severity)), esc(c.Title), esc(c.Message))
			}
		}
		for _, in := range r.Result.Integrity {
			state := "modified"
			if in.Found == "" {
				state = "missing"
			}
			fmt.Fprintf(w, "  integrity: %s %s (package %s, %s expected %s, found %s)\n", state, esc(in.Path), esc(in.Package), esc(in.Algorithm), esc(in.Expected), dash(esc(in.Found)))
		}
		writeDrift(w, r.Result.Drift)
		for _, e := range r.Result.Errors {
			where := e.Analyzer
			if e.Path != "" {
				where += " " + e.Path
			}
			fmt.Fprintf(w, "  warning: %s: %s\n", esc(where), esc(e.Err))
		}
	}
	fmt.Fprintf(w, "\n%d target(s) scanned on node %s, %d failed\n", len(doc.Reports), dash(esc(doc.Node)), failed)
	if doc.VulnDB != nil && !doc.VulnDB.Checked {
		fmt.Fprintf(w, "vulnerabilities not checked: %s\n", esc(doc.VulnDB.Reason))
	}
	return nil
}

func osLabel(o *report.OS) string {
	s := o.ID
	if o.VersionID != "" {
		s += " " + o.VersionID
	}
	if o.VersionCodename != "" {
		s += " (" + o.VersionCodename + ")"
	}
	return s
}

func shortDigest(d string) string {
	if d == "" {
		return "-"
	}
	if i := strings.IndexByte(d, ':'); i >= 0 && len(d) > i+13 {
		return d[:i+13]
	}
	return d
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ecosystemCounts summarises a target's packages per ecosystem, largest first ("12 Go, 3 npm (2 declared)"); "0"
// when none. Declared packages (lock-file entries with nothing installed) are counted apart because they are not
// matched against advisories.
func ecosystemCounts(pkgs []report.Package) string {
	if len(pkgs) == 0 {
		return "0"
	}
	counts, declared := map[string]int{}, map[string]int{}
	for _, p := range pkgs {
		counts[p.Ecosystem]++
		if p.Declared() {
			declared[p.Ecosystem]++
		}
	}
	ecos := make([]string, 0, len(counts))
	for e := range counts {
		ecos = append(ecos, e)
	}
	sort.Slice(ecos, func(i, j int) bool {
		if counts[ecos[i]] != counts[ecos[j]] {
			return counts[ecos[i]] > counts[ecos[j]]
		}
		return ecos[i] < ecos[j]
	})
	parts := make([]string, len(ecos))
	for i, e := range ecos {
		parts[i] = fmt.Sprintf("%d %s", counts[e], e)
		if d := declared[e]; d > 0 {
			parts[i] += fmt.Sprintf(" (%d declared)", d)
		}
	}
	return strings.Join(parts, ", ")
}

// distrolessLabel reads "yes (base)", "yes" or "no (shell)" / "no (package manager)": whether exec-based tools can
// work in the container at all.
func distrolessLabel(d *report.Distroless) string {
	switch {
	case d.Distroless && d.Flavour != "":
		return "yes (" + d.Flavour + ")"
	case d.Distroless:
		return "yes"
	case len(d.Shells) > 0:
		return "no (shell)"
	default:
		return "no (package manager)"
	}
}

// writeDrift prints a count per change and one line per executable added or changed: the ones an operator must look
// at. The full list is in the JSON output.
func writeDrift(w io.Writer, drift []report.DriftEntry) {
	if len(drift) == 0 {
		return
	}
	counts := map[string]int{}
	for _, e := range drift {
		counts[e.Change]++
	}
	fmt.Fprintf(w, "  drift: %d added, %d changed, %d deleted\n", counts[report.DriftAdded], counts[report.DriftChanged], counts[report.DriftDeleted])
	for _, e := range drift {
		if e.Executable && e.Change != report.DriftDeleted {
			fmt.Fprintf(w, "  drift: %s executable %s (sha256 %s)\n", esc(e.Change), esc(e.Path), dash(esc(e.SHA256)))
		}
	}
}

// vulnCounts reads "1 HIGH, 2 LOW" (open findings by severity, most severe first), "0" when none, plus the
// VEX-suppressed count.
func vulnCounts(vs []report.Vulnerability) string {
	counts := map[report.Severity]int{}
	suppressed := 0
	for _, v := range vs {
		if v.Suppressed != nil {
			suppressed++
			continue
		}
		counts[v.Severity]++
	}
	var parts []string
	for _, s := range report.Severities {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	out := strings.Join(parts, ", ")
	if out == "" {
		out = "0"
	}
	if suppressed > 0 {
		out += fmt.Sprintf(" (+%d suppressed)", suppressed)
	}
	return out
}

// complianceSummary counts a target's control results by status for the table ("9 passed, 2 failed").
func complianceSummary(res *report.Result) string {
	if res == nil || len(res.Compliance) == 0 {
		return "-"
	}
	counts := map[string]int{}
	for _, c := range res.Compliance {
		counts[c.Status]++
	}
	var parts []string
	for _, s := range []string{report.ControlPassed, report.ControlFailed, report.ControlError, report.ControlSkipped} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	return strings.Join(parts, ", ")
}
