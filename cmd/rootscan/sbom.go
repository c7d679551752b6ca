package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/sbom"
)

// SBOM formats as users name them on the command line.
const (
	formatCycloneDX = "cyclonedx"
	formatSPDX      = "spdx"
)

type sbomFlags struct {
	scanFlags
	format string
	out    string
}

func parseSBOMFlags(args []string, stderr io.Writer) (*sbomFlags, error) {
	f := &sbomFlags{}
	fs := flag.NewFlagSet("rootscan sbom", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.format, "f", formatCycloneDX, "document format: cyclonedx (CycloneDX 1.6 JSON) or spdx (SPDX 2.3 JSON)")
	fs.StringVar(&f.out, "o", "", "write the document to this file instead of stdout")
	f.targetFlags(fs)
	f.concurrency = 1
	n, err := parseFlags(fs, args, &f.scanFlags)
	if err != nil {
		return nil, err
	}
	if err := checkSBOMFormat("-f", f.format); err != nil {
		return nil, err
	}
	if n != 1 {
		return nil, usageError{"exactly one of --container, --dir and --oci is needed"}
	}
	return f, nil
}

func checkSBOMFormat(flagName, format string) error {
	if format != formatCycloneDX && format != formatSPDX {
		return usageError{fmt.Sprintf("%s %q: want cyclonedx or spdx", flagName, format)}
	}
	return nil
}

// cmdSBOM scans one target the way `rootscan scan` does and writes its SBOM. A target that cannot be scanned gives
// no document (an empty SBOM would read as "nothing installed") and exit code 1.
func cmdSBOM(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	f, err := parseSBOMFlags(args, stderr)
	if err != nil {
		return exitFatal, err
	}
	log, err := newLogger(f.logLevel, stderr)
	if err != nil {
		return exitFatal, err
	}
	doc, err := scanTargets(ctx, &f.scanFlags, log, io.Discard)
	if err != nil {
		return exitFatal, err
	}
	if len(doc.Reports) != 1 {
		return exitFatal, fmt.Errorf("sbom: %d targets scanned, want exactly one", len(doc.Reports))
	}
	rep := doc.Reports[0]
	if rep.Error != "" {
		fmt.Fprintf(stderr, "rootscan: %s: scan failed: %s\n", rep.Target.Name(), rep.Error)
		return exitPartial, nil
	}
	for _, e := range rep.Result.Errors {
		log.Warn("incomplete scan", "analyzer", e.Analyzer, "path", e.Path, "err", e.Err)
	}
	sopts := sbom.Options{ToolVersion: toolVersion()}
	if f.out == "" {
		if err := writeSBOM(stdout, f.format, rep, sopts); err != nil {
			return exitFatal, err
		}
		return exitOK, nil
	}
	if err := writeSBOMFile(f.out, f.format, rep, sopts); err != nil {
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
func writeSBOMDir(dir, format string, reps []report.Report) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create SBOM dir: %w", err)
	}
	opts := sbom.Options{ToolVersion: toolVersion()}
	used := map[string]int{}
	var files []string
	for _, r := range reps {
		if r.Result == nil {
			continue
		}
		base := sbomFileBase(r.Target)
		used[base]++
		if n := used[base]; n > 1 {
			base = fmt.Sprintf("%s_%d", base, n)
		}
		name := filepath.Join(dir, base+sbomExt(format))
		if err := writeSBOMFile(name, format, r, opts); err != nil {
			return files, err
		}
		files = append(files, name)
	}
	return files, nil
}

func sbomExt(format string) string {
	if format == formatSPDX {
		return ".spdx.json"
	}
	return ".cdx.json"
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
	s := strings.Join(parts, "_")
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	s = strings.TrimLeft(string(b), ".")
	if s == "" {
		s = "target"
	}
	return s
}

// toolVersion is the version recorded in SBOMs as the creating tool: the link-time version, else the module's.
func toolVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}
