package output

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rootscan/rootscan/compliance"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/sbom"
)

// SBOM formats as users name them on the command line.
const (
	SBOMCycloneDX = "cyclonedx"
	SBOMSPDX      = "spdx"
)

// WriteSBOM writes rep's SBOM in format (SBOMCycloneDX or SBOMSPDX).
func WriteSBOM(w io.Writer, format string, rep report.Report, opts sbom.Options) error {
	if format == SBOMSPDX {
		return sbom.SPDX(w, rep, opts)
	}
	return sbom.CycloneDX(w, rep, opts)
}

// WriteSBOMFile writes through a temporary file and a rename, so a reader never sees half a document and a failed
// write leaves no file behind.
func WriteSBOMFile(name, format string, rep report.Report, opts sbom.Options) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return fmt.Errorf("write SBOM %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	if err := WriteSBOM(tmp, format, rep, opts); err != nil {
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

// WriteSBOMDir writes one SBOM per successfully scanned report into dir, named after the target so a folder of them
// reads like the node's inventory; it returns the files written.
func WriteSBOMDir(dir, format string, reps []report.Report, opts sbom.Options) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create SBOM dir: %w", err)
	}
	ext := ".cdx.json"
	if format == SBOMSPDX {
		ext = ".spdx.json"
	}
	names := fileNames{}
	var files []string
	for _, r := range reps {
		if r.Result == nil {
			continue
		}
		name := filepath.Join(dir, names.next(r.Target)+ext)
		if err := WriteSBOMFile(name, format, r, opts); err != nil {
			return files, err
		}
		files = append(files, name)
	}
	return files, nil
}

// WriteHDFDir writes one HDF file per scanned target, named like the SBOMs of WriteSBOMDir.
func WriteHDFDir(dir string, e *compliance.Engine, reports []report.Report) ([]string, error) {
	if e == nil {
		return nil, fmt.Errorf("--hdf-dir %w", ErrNoProfiles)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create HDF dir: %w", err)
	}
	var files []string
	names := fileNames{}
	for _, r := range reports {
		if r.Result == nil {
			continue
		}
		b, err := json.MarshalIndent(e.HDF(r), "", "  ")
		if err != nil {
			return files, fmt.Errorf("encode HDF of %s: %w", r.Target.Name(), err)
		}
		name := filepath.Join(dir, names.next(r.Target)+".hdf.json")
		if err := os.WriteFile(name, append(b, '\n'), 0o644); err != nil {
			return files, fmt.Errorf("write HDF: %w", err)
		}
		files = append(files, name)
	}
	return files, nil
}

// fileNames hands out one file base name per target of a directory of SBOMs or HDF files, "_2", "_3"... for repeats.
type fileNames map[string]int

func (n fileNames) next(t report.Target) string {
	base := fileBase(t)
	n[base]++
	if c := n[base]; c > 1 {
		base = fmt.Sprintf("%s_%d", base, c)
	}
	return base
}

// fileBase names a target's file: namespace_pod_container_<id12> for containers, the path's last element (or the
// image name) for dir and oci targets; every byte outside [A-Za-z0-9._-] becomes '-'.
func fileBase(t report.Target) string {
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
