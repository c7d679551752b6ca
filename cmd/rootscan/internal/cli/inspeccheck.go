package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rootscan/rootscan/compliance/inspec"
	"github.com/rootscan/rootscan/internal/textsafe"
)

// maxSummaryReasons bounds the skip reasons the summary names; the per-control lines have all of them.
const maxSummaryReasons = 5

// isInSpecProfile tells an InSpec profile (a directory holding inspec.yml, or an `inspec archive` file) from
// rootscan's YAML/CEL profiles, which keep their own loader.
func isInSpecProfile(src string) bool {
	lower := strings.ToLower(src)
	for _, ext := range []string{".tar.gz", ".tgz", ".zip"} {
		if strings.HasSuffix(lower, ext) {
			return true
		}
	}
	st, err := os.Stat(filepath.Join(src, "inspec.yml"))
	return err == nil && st.Mode().IsRegular()
}

// checkInSpec loads one InSpec profile and says, per control, whether a scan will evaluate it or report it
// skipped, and why. Skipped controls and files that do not parse are not errors: InSpec users bring profiles
// written for hosts, and the point of the check is to show what of them runs on a filesystem. Only a profile
// that cannot be loaded at all is, with the same exit code as a broken YAML/CEL profile.
func checkInSpec(ctx context.Context, src string, stdout, stderr io.Writer) int {
	p, err := inspec.Load(ctx, src, inspec.Limits{})
	if err != nil {
		fmt.Fprintln(stderr, textsafe.Escape(err.Error()))
		return exitPartial
	}
	esc := textsafe.Escape
	fmt.Fprintf(stdout, "%s: InSpec profile %s %s\n", esc(src), esc(p.Name), esc(p.Version))
	for _, f := range p.Files {
		if f.Err != nil {
			fmt.Fprintln(stderr, esc(f.Err.Error()))
		}
	}
	for _, d := range p.DepReport() {
		fmt.Fprintln(stdout, esc(fmt.Sprintf("%s:%d  %s", d.File, d.Line, d.Text)))
	}
	vs := p.CheckWithDeps(inspec.DefaultCatalog())
	run, node := 0, 0
	for _, v := range vs {
		verdict := "skip"
		switch {
		case v.Run:
			verdict = "run"
			run++
		case v.NodeOnly:
			verdict = "node-only"
			node++
		}
		line := fmt.Sprintf("%s:%d  %s  %s", v.Control.File, v.Control.Line, v.Control.ID, verdict)
		if len(v.Reasons) > 0 {
			line += "  " + strings.Join(v.Reasons, "; ")
		}
		fmt.Fprintln(stdout, esc(line))
	}
	if node == 0 {
		fmt.Fprintf(stdout, "%d controls: %d will run, %d will be skipped\n", len(vs), run, len(vs)-run)
	} else {
		fmt.Fprintf(stdout, "%d controls: %d will run, %d will run in a node scan of a running container and in the daemon "+
			"(skipped for --dir and --oci), %d will be skipped\n", len(vs), run, node, len(vs)-run-node)
	}
	for i, rc := range inspec.SkipReasons(vs) {
		if i == maxSummaryReasons {
			break
		}
		fmt.Fprintf(stdout, "  skipped: %s (%d controls)\n", esc(rc.Reason), rc.Controls)
	}
	return exitOK
}
