package cli

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/internal/textsafe"
	"github.com/rootscan/rootscan/node"
	"github.com/rootscan/rootscan/output"
	"github.com/rootscan/rootscan/sbom"
)

type sbomFlags struct {
	targetFlags
	format string
	out    string
}

func (a *app) sbomCommand() *cobra.Command {
	f := &sbomFlags{}
	cmd := &cobra.Command{
		Use:   "sbom (--dir PATH | --oci PATH | --container ID)",
		Short: "Write a CycloneDX 1.6 or SPDX 2.3 JSON SBOM of one target",
		Long: `Sbom scans one target the way 'rootscan scan' does and writes its SBOM. A target that cannot be scanned
gives no document (an empty SBOM would read as "nothing installed") and exit code 1.`,
		Example: `  rootscan sbom --dir ./rootfs > rootfs.cdx.json
  rootscan sbom --oci ./image-layout -f spdx -o image.spdx.json
  rootscan sbom --container 3f2a -o app.cdx.json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkSBOMFormat("-f", f.format); err != nil {
				return err
			}
			if f.count() != 1 {
				return usageError{"exactly one of --container, --dir and --oci is needed"}
			}
			tuneGC()
			code, err := a.runSBOM(cmd.Context(), f)
			a.code = code
			return err
		},
	}
	fs := cmd.Flags()
	shortAliases(fs)
	fs.StringVarP(&f.format, "format", "f", output.SBOMCycloneDX, "document format: cyclonedx (CycloneDX 1.6 JSON) or spdx (SPDX 2.3 JSON)")
	fs.StringVarP(&f.out, "output", "o", "", "write the document to this file instead of stdout")
	f.targetFlags.register(fs)
	return cmd
}

func checkSBOMFormat(flagName, format string) error {
	if format != output.SBOMCycloneDX && format != output.SBOMSPDX {
		return usageError{fmt.Sprintf("%s %q: want cyclonedx or spdx", flagName, format)}
	}
	return nil
}

func (a *app) runSBOM(ctx context.Context, f *sbomFlags) (int, error) {
	log, err := newLogger(f.logLevel, a.stderr)
	if err != nil {
		return exitFatal, err
	}
	s := &node.Scanner{
		Analyzers:       analyzers(log, false),
		Options:         fsaccess.Options{MaxFileSize: f.maxFileSize},
		ScratchDir:      f.scratchDir,
		MaxExtractBytes: int64(f.maxUnpacked),
		Node:            f.nodeName,
		Log:             log,
		Concurrency:     1,
	}
	s.CheckBudget = f.checkBudget()
	var doc output.Document
	if err := scanTargets(ctx, &f.targetFlags, "", false, s, &doc, log); err != nil {
		return exitFatal, err
	}
	if len(doc.Reports) != 1 {
		return exitFatal, fmt.Errorf("sbom: %d targets scanned, want exactly one", len(doc.Reports))
	}
	rep := doc.Reports[0]
	if rep.Error != "" {
		fmt.Fprintf(a.stderr, "rootscan: %s: scan failed: %s\n", textsafe.Escape(rep.Target.Name()), textsafe.Escape(rep.Error))
		return exitPartial, nil
	}
	for _, e := range rep.Result.Errors {
		log.Warn("incomplete scan", "analyzer", e.Analyzer, "path", e.Path, "err", e.Err)
	}
	sopts := sbom.Options{ToolVersion: toolVersion(a.version)}
	if f.out == "" {
		err = output.WriteSBOM(a.stdout, f.format, rep, sopts)
	} else {
		err = output.WriteSBOMFile(f.out, f.format, rep, sopts)
	}
	if err != nil {
		return exitFatal, err
	}
	return exitOK, nil
}

// toolVersion is the version recorded in SBOMs as the creating tool: the link-time version, else the module's.
func toolVersion(version string) string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}
