package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/node"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/sbom"
)

// SBOM formats as users name them on the command line.
const (
	formatCycloneDX = "cyclonedx"
	formatSPDX      = "spdx"
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
			tuneOneShotGC()
			code, err := a.runSBOM(cmd.Context(), f)
			a.code = code
			return err
		},
	}
	fs := cmd.Flags()
	shortAliases(fs)
	fs.StringVarP(&f.format, "format", "f", formatCycloneDX, "document format: cyclonedx (CycloneDX 1.6 JSON) or spdx (SPDX 2.3 JSON)")
	fs.StringVarP(&f.out, "output", "o", "", "write the document to this file instead of stdout")
	f.targetFlags.register(fs)
	return cmd
}

func checkSBOMFormat(flagName, format string) error {
	if format != formatCycloneDX && format != formatSPDX {
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
		Analyzers:   analyzers(log, false),
		Options:     fsaccess.Options{MaxFileSize: f.maxFileSize},
		ScratchDir:  f.scratchDir,
		Node:        f.nodeName,
		Log:         log,
		Concurrency: 1,
	}
	var doc output
	if err := scanTargets(ctx, &f.targetFlags, "", false, s, &doc, log); err != nil {
		return exitFatal, err
	}
	if len(doc.Reports) != 1 {
		return exitFatal, fmt.Errorf("sbom: %d targets scanned, want exactly one", len(doc.Reports))
	}
	rep := doc.Reports[0]
	if rep.Error != "" {
		fmt.Fprintf(a.stderr, "rootscan: %s: scan failed: %s\n", rep.Target.Name(), rep.Error)
		return exitPartial, nil
	}
	for _, e := range rep.Result.Errors {
		log.Warn("incomplete scan", "analyzer", e.Analyzer, "path", e.Path, "err", e.Err)
	}
	sopts := sbom.Options{ToolVersion: toolVersion(a.version)}
	if f.out == "" {
		err = writeSBOM(a.stdout, f.format, rep, sopts)
	} else {
		err = writeSBOMFile(f.out, f.format, rep, sopts)
	}
	if err != nil {
		return exitFatal, err
	}
	return exitOK, nil
}

func writeSBOM(w io.Writer, format string, rep report.Report, opts sbom.Options) error {
	if format == formatSPDX {
		return sbom.SPDX(w, rep, opts)
	}
	return sbom.CycloneDX(w, rep, opts)
}

// writeSBOMFile writes through a temporary file and a rename, so a reader never sees half a document and a failed
// write leaves no file behind.
func writeSBOMFile(name, format string, rep report.Report, opts sbom.Options) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return fmt.Errorf("write SBOM %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	if err := writeSBOM(tmp, format, rep, opts); err != nil {
		tmp.Close()
		return fmt.Errorf("write SBOM %s: %w", name, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write SBOM %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write SBOM %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("write SBOM %s: %w", name, err)
	}
	return nil
}

// writeSBOMDir writes one SBOM per successfully scanned report into dir, named after the target so a folder of them
// reads like the node's inventory; it returns the files written.
func writeSBOMDir(dir, format string, reps []report.Report, version string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create SBOM dir: %w", err)
	}
	opts := sbom.Options{ToolVersion: toolVersion(version)}
	ext := ".cdx.json"
	if format == formatSPDX {
		ext = ".spdx.json"
	}
	names := fileNames{}
	var files []string
	for _, r := range reps {
		if r.Result == nil {
			continue
		}
		name := filepath.Join(dir, names.next(r.Target)+ext)
		if err := writeSBOMFile(name, format, r, opts); err != nil {
			return files, err
		}
		files = append(files, name)
	}
	return files, nil
}

// fileNames hands out one file base name per target of a --sbom-dir or --hdf-dir, "_2", "_3"... for repeats.
type fileNames map[string]int

func (n fileNames) next(t report.Target) string {
	base := sbomFileBase(t)
	n[base]++
	if c := n[base]; c > 1 {
		base = fmt.Sprintf("%s_%d", base, c)
	}
	return base
}

// sbomFileBase names a target's SBOM file: namespace_pod_container_<id12> for containers, the path's last element
// (or the image name) for dir and oci targets; every byte outside [A-Za-z0-9._-] becomes '-'.
func sbomFileBase(t report.Target) string {
	var parts []string
	switch {
	case t.ContainerID != "":
		for _, p := range []string{t.Namespace, t.Pod, t.Container} {
			if p != "" {
				parts = append(parts, p)
			}
		}
		id := t.ContainerID
		if len(id) > 12 {
			id = id[:12]
		}
		parts = append(parts, id)
	case t.Path != "":
		parts = append(parts, t.Kind, filepath.Base(t.Path))
	default:
		parts = append(parts, t.Kind)
	}
	b := []byte(strings.Join(parts, "_"))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	s := strings.TrimLeft(string(b), ".")
	if s == "" {
		s = "target"
	}
	return s
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
