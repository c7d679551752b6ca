// Package cli is the rootscan command line: it parses flags (spf13/cobra and pflag, the convention of kubectl,
// trivy and syft), builds the values the packages take and calls them. Nothing here scans, matches or checks.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Exit codes, as scripts and CI jobs rely on them.
const (
	exitOK      = 0
	exitPartial = 1 // some targets could not be scanned; the others were
	exitFatal   = 2 // nothing could be scanned: bad flags, runtime unreachable, not a CRI
	// exitControls is --fail-on-controls' code when --exit-code is not given: distinct from exitPartial and
	// exitFatal, so a CI gate can tell "the image breaks policy" from "rootscan could not scan".
	exitControls = 3
)

// usageError marks errors caused by how rootscan was called.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// Main runs rootscan with the process's arguments and returns its exit code. version is the link-time version
// (-X main.version), "" to take the module's.
func Main(version string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return Run(ctx, version, os.Args[1:], os.Stdout, os.Stderr)
}

// app is one run of the command line: where it writes and the exit code the command that ran chose.
type app struct {
	version        string
	stdout, stderr io.Writer
	code           int
}

// Run runs rootscan with args and returns its exit code.
func Run(ctx context.Context, version string, args []string, stdout, stderr io.Writer) int {
	a := &app{version: version, stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	if len(args) == 0 {
		root.InitDefaultHelpCmd()
		root.InitDefaultCompletionCmd()
		root.SetOut(stderr)
		root.Help()
		return exitFatal
	}
	root.SetArgs(longFlagsCompat(root, args))
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(stderr, "rootscan: %v\n", err)
		var ue usageError
		if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
			fmt.Fprintln(stderr, "Run 'rootscan help' for usage.")
		}
		return exitFatal
	}
	return a.code
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "rootscan",
		Short: "Scan the containers of a Kubernetes node from outside",
		Long: `rootscan scans the containers of a node from outside: no exec, no pod change, any image.

It lists the containers through the CRI, mounts each one's root filesystem read-only from containerd's
snapshotter and reads it: packages (SBOM), vulnerabilities (offline OSV database), compliance profiles and
drift from the image. ` + "`rootscan scan`" + ` does it once, ` + "`rootscan daemon`" + ` keeps it current.

Common flags can also be set in the environment as ROOTSCAN_<FLAG> (--log-level is ROOTSCAN_LOG_LEVEL);
a flag on the command line wins. Each flag's help names its variable.

Exit codes: 0 all scanned, 1 some targets failed, 2 nothing scanned (bad flags, runtime unreachable),
3 compliance gate (--fail-on-controls), or --exit-code's value when open vulnerabilities remain.`,
		Version:           versionString(a.version),
		SilenceErrors:     true,
		SilenceUsage:      true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return applyEnv(cmd.Flags()) },
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err.Error()} })
	root.AddCommand(a.scanCommand(), a.sbomCommand(), a.daemonCommand(), a.dbCommand(), a.profileCommand(), a.versionCommand())
	return root
}

// longFlagsCompat rewrites Go-flag spellings of long flags (-concurrency, -db=DIR), which rootscan took before it
// used pflag, into --concurrency and --db=DIR, so existing scripts keep working. Shorthands (-o, -f, -q) and
// anything after "--" are left alone.
func longFlagsCompat(root *cobra.Command, args []string) []string {
	cmd, _, err := root.Find(args)
	if err != nil || cmd == nil {
		return args
	}
	out := make([]string, len(args))
	copy(out, args)
	for i, arg := range out {
		if arg == "--" {
			break
		}
		m := singleDashLong.FindStringSubmatch(arg)
		if m == nil {
			continue
		}
		if f := cmd.Flags().Lookup(m[1]); f != nil {
			out[i] = "-" + arg
		}
	}
	return out
}

var singleDashLong = regexp.MustCompile(`^-([a-z][a-z0-9-]+)(=.*)?$`)

// newLogger is the logger every command writes to stderr with, at the --log-level the user chose.
func newLogger(level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Sprintf("--log-level: %v", err)}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// noArgs refuses positional arguments the way rootscan always has.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Sprintf("unexpected arguments: %s", strings.Join(args, " "))}
	}
	return nil
}

// shortAliases lets --o and --f, the Go-flag spellings of -o and -f, keep working.
func shortAliases(fs *pflag.FlagSet) {
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		switch name {
		case "o":
			return "output"
		case "f":
			return "format"
		}
		return pflag.NormalizedName(name)
	})
}
