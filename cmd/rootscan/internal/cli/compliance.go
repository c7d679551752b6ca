package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rootscan/rootscan/compliance"
	"github.com/rootscan/rootscan/internal/textsafe"
)

// complianceFlags choose the profiles `scan` and `daemon` evaluate and where HDF goes.
type complianceFlags struct {
	profiles   []string
	noBaseline bool
	waivers    string
	scope      string
	hdfDir     string
	hostRoot   string
	inputFiles []string
}

func (c *complianceFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&c.profiles, "profile", nil, "compliance profile: a YAML file, a folder of them, builtin:NAME, or an InSpec profile (a directory with inspec.yml or an inspec archive) (repeatable; "+compliance.Baseline+" is always added unless --no-baseline)")
	fs.BoolVar(&c.noBaseline, "no-baseline", false, "do not evaluate "+compliance.Baseline)
	fs.StringVar(&c.waivers, "waivers", "", "InSpec-style waiver file (control id: justification, expiration_date, run)")
	fs.StringVar(&c.scope, "profile-scope", "", "YAML file choosing profiles per namespace and pod labels")
	fs.StringVar(&c.hdfDir, "hdf-dir", "", "also write one HDF (Heimdall Data Format) JSON file per target into this directory")
	fs.StringArrayVar(&c.inputFiles, "input-file", nil, "YAML file of InSpec profile inputs (name: value), as `inspec exec --input-file` reads it (repeatable)")
	fs.StringVar(&c.hostRoot, "host-root", "", "where the node's filesystem is mounted when rootscan runs in a pod (e.g. /host), for reading container volumes")
}

// sources are the profiles, waivers and scope the flags name, the baseline first unless --no-baseline.
func (c *complianceFlags) sources() compliance.Sources {
	srcs := append([]string{}, c.profiles...)
	if !c.noBaseline {
		srcs = append([]string{compliance.Baseline}, srcs...)
	}
	return compliance.Sources{Profiles: srcs, Waivers: c.waivers, Scope: c.scope}
}

// live loads the chosen profiles; the daemon reloads them on SIGHUP, a scan uses them once. Its engine is nil when
// there are none (--no-baseline and no --profile).
func (c *complianceFlags) live(log *slog.Logger) (*compliance.Live, error) {
	runners, rest, err := inspecRunners(context.Background(), c.profiles, c.inputFiles)
	if err != nil {
		return nil, err
	}
	src := c.sources()
	src.Profiles, src.Runners = rest, runners
	if !c.noBaseline {
		src.Profiles = append([]string{compliance.Baseline}, rest...)
	}
	l, err := compliance.NewLive(src, log)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	return l, nil
}

// reportGate tells stderr why --fail-on-controls closed the gate, naming the first few controls (the full list is
// in the output).
func reportGate(w io.Writer, failing []string) {
	const maxNames = 10
	names := failing
	more := ""
	if len(names) > maxNames {
		names, more = names[:maxNames], fmt.Sprintf(", and %d more", len(failing)-maxNames)
	}
	fmt.Fprintf(w, "rootscan: %d compliance controls failed at --fail-on-controls: %s%s\n", len(failing), textsafe.Escape(strings.Join(names, "; ")), more)
}

func (a *app) profileCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "profile",
		Short: "Work with compliance profiles",
		Args:  cobra.ArbitraryArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			return usageError{"usage: rootscan profile check PATH|builtin:NAME..."}
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check PATH|builtin:NAME...",
		Short: "Validate profiles (YAML/CEL, InSpec) without scanning",
		Long: `Check loads and type-checks compliance profiles without scanning anything, so CI can reject a broken
profile before it reaches a node. For an InSpec profile (a directory with inspec.yml, or an inspec archive
.tar.gz/.tgz/.zip) it lists every control at file:line with whether a scan will run it ("run"), run it only
where a running container's process answers it ("node-only": the daemon and a node scan, not --dir or --oci),
or skip it, and why; skipped controls and files that do not parse are not errors. Exit code 1 when any profile is broken or
cannot be loaded.`,
		Example: `  rootscan profile check ./profiles/
  rootscan profile check builtin:container-baseline ./cis.yaml
  rootscan profile check ./linux-baseline`,
		RunE: func(cmd *cobra.Command, args []string) error {
			code, err := checkProfiles(cmd.Context(), args, a.stdout, a.stderr)
			a.code = code
			return err
		},
	})
	return cmd
}

// checkProfiles is `rootscan profile check PATH...`.
func checkProfiles(ctx context.Context, srcs []string, stdout, stderr io.Writer) (int, error) {
	if len(srcs) == 0 {
		return exitFatal, usageError{"profile check: name at least one profile file, folder or builtin:NAME"}
	}
	l, err := compliance.NewLoader(compliance.Limits{})
	if err != nil {
		return exitFatal, err
	}
	code := exitOK
	for _, src := range srcs {
		if isInSpecProfile(src) {
			code = max(code, checkInSpec(ctx, src, stdout, stderr))
			continue
		}
		ps, err := l.Load(src)
		for _, p := range ps {
			fmt.Fprintf(stdout, "%s: profile %s %s: %d controls OK\n", p.Source, p.Name, p.Version, len(p.Controls))
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			code = exitPartial
		}
	}
	return code, nil
}
