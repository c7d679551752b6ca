package scan

import (
	"bytes"
	"compress/zlib"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"

	"github.com/rootscan/rootscan/report"
)

const (
	// rustBinaryName is the FoundBy of the crates NewBinary reports.
	rustBinaryName = "rust-binary"
	// rustAuditSection is where cargo-auditable (0.5 and later) puts the zlib-compressed dependency list.
	rustAuditSection = ".dep-v0"
	// rustAuditMaxSection bounds the compressed section. Real audit data is a few KiB (ripgrep's 50 crates compress
	// to about 1 KiB; a large application with 800 crates stays under 30 KiB).
	rustAuditMaxSection = 8 << 20
	// rustAuditMaxJSON bounds the decompressed JSON, the limit cargo-auditable's own reader (auditable-info) uses by
	// default: zlib reaches ratios of 1000:1, so the compressed bound alone would allow 8 GiB.
	rustAuditMaxJSON = 8 << 20
	// rustMaxNameLen bounds crate names; crates.io allows 64 bytes, local crates are not checked by a registry.
	rustMaxNameLen = 128
)

// readRustAudit returns the crates a parsed ELF file's audit data lists, nil when it has none.
//
// NewBinary reads Rust programs built with cargo-auditable, which embeds the resolved dependency tree (crate, version,
// source, kind) as zlib-compressed JSON in the .dep-v0 section. It reports every crate compiled into the program: the root crate (the program itself) and its runtime dependencies, as crates.io
// packages; build-time dependencies (build scripts, proc-macros) are not in the binary and are not reported, as
// syft and osv-scalibr do by default. A Rust program without audit data contributes nothing (a plain Rust binary
// does not say which crates it contains). It shares the open and ELF parse with the Go reader.
//
// github.com/rust-secure-code/go-rustaudit implements the same format, but it parses the ELF file on its own (a
// second parse of every executable), reads the section without a size bound and decompresses without a limit (a
// 1 MiB section can inflate to 1 GiB): rootscan reads the section from its own parse with both bounds instead.
func (a *binaryAnalyzer) readRustAudit(ef *elf.File, name string) ([]report.Package, error) {
	sec := ef.Section(rustAuditSection)
	if sec == nil {
		return nil, nil
	}
	if sec.Type == elf.SHT_NOBITS {
		return nil, fmt.Errorf("%s section has no content", rustAuditSection)
	}
	if sec.Size > uint64(a.rustMaxSection) {
		return nil, fmt.Errorf("%s section: %w: %d > %d bytes", rustAuditSection, ErrTooLarge, sec.Size, a.rustMaxSection)
	}
	data, err := io.ReadAll(io.LimitReader(sec.Open(), a.rustMaxSection+1))
	if err != nil {
		return nil, fmt.Errorf("read %s section: %w", rustAuditSection, err)
	}
	crates, err := parseRustAudit(data, a.rustMaxJSON)
	pkgs := make([]report.Package, 0, len(crates))
	for _, c := range crates {
		pkgs = append(pkgs, report.Package{Name: c.Name, Version: c.Version, Ecosystem: report.EcosystemCratesIO,
			Locations: []string{name}, FoundBy: rustBinaryName})
	}
	return pkgs, err
}

// rustAudit is cargo-auditable's VersionInfo (auditable-serde): packages refer to their dependencies by index.
// "kind" is omitted for runtime dependencies, "root" when false, "dependencies" when empty; "format" (absent or 0,
// 1, 8) says which cargo data it was generated from and changes nothing for reading.
type rustAudit struct {
	Packages []rustAuditPackage `json:"packages"`
	Format   uint32             `json:"format"`
}

type rustAuditPackage struct {
	Name         string `json:"name"`
	Version      string `json:"version"`
	Source       string `json:"source"`
	Kind         string `json:"kind"`
	Dependencies []int  `json:"dependencies"`
	Root         bool   `json:"root"`
}

// rustCrate is one crate compiled into a program.
type rustCrate struct {
	Name, Version string
}

// parseRustAudit decompresses and validates one .dep-v0 section and returns the crates compiled in (root and runtime
// dependencies). A section that is not valid audit data is an error with no crates, as cargo-auditable's own reader
// rejects it (dependency indices out of range, several roots); single entries with an invalid name or version are
// skipped and counted in the error next to the crates that were valid.
func parseRustAudit(compressed []byte, maxJSON int64) ([]rustCrate, error) {
	zr, err := zlib.NewReader(bytes.NewReader(compressed))
	if err != nil {
		return nil, fmt.Errorf("%s section is not zlib data: %w", rustAuditSection, err)
	}
	defer zr.Close()
	data, err := io.ReadAll(io.LimitReader(zr, maxJSON+1))
	if err != nil {
		return nil, fmt.Errorf("decompress %s section: %w", rustAuditSection, err)
	}
	if int64(len(data)) > maxJSON {
		return nil, fmt.Errorf("decompress %s section: %w: more than %d bytes of JSON", rustAuditSection, ErrTooLarge, maxJSON)
	}
	if err := checkJSONValues(data, jsonMaxValuesLarge); err != nil {
		return nil, fmt.Errorf("parse %s audit data: %w", rustAuditSection, err)
	}
	var va rustAudit
	if err := json.Unmarshal(data, &va); err != nil {
		return nil, fmt.Errorf("parse %s audit data: %w", rustAuditSection, err)
	}
	if len(va.Packages) == 0 {
		return nil, fmt.Errorf("%s audit data lists no packages", rustAuditSection)
	}
	roots := 0
	for i, p := range va.Packages {
		for _, d := range p.Dependencies {
			if d < 0 || d >= len(va.Packages) || d == i {
				return nil, fmt.Errorf("%s audit data: package %d depends on package %d of %d", rustAuditSection, i, d, len(va.Packages))
			}
		}
		if p.Root {
			if roots++; roots > 1 {
				return nil, fmt.Errorf("%s audit data has several root packages", rustAuditSection)
			}
		}
		if p.Kind != "" && p.Kind != "runtime" && p.Kind != "build" {
			return nil, fmt.Errorf("%s audit data: package %d has unknown kind %q", rustAuditSection, i, p.Kind)
		}
	}
	var out []rustCrate
	bad, firstBad := 0, ""
	for _, p := range va.Packages {
		if p.Kind == "build" {
			continue
		}
		if !validCrateName(p.Name) || !validCrateVersion(p.Version) {
			if bad++; bad == 1 {
				firstBad = fmt.Sprintf("name %q, version %q", p.Name, p.Version)
			}
			continue
		}
		out = append(out, rustCrate{Name: p.Name, Version: p.Version})
	}
	if bad > 0 {
		return out, fmt.Errorf("%d %s entries with an invalid name or version skipped, the first %s", bad, rustAuditSection, firstBad)
	}
	return out, nil
}

// validCrateName follows cargo's rule for package names: ASCII letters, digits, "-" and "_", not starting with a
// digit or "-".
func validCrateName(s string) bool {
	if s == "" || len(s) > rustMaxNameLen || (s[0] >= '0' && s[0] <= '9') || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// validCrateVersion accepts the SemVer 2.0 versions cargo requires of every package ("1.0.147", "0.1.0-alpha.2"):
// the rule npm applies to published versions too.
func validCrateVersion(v string) bool { return validNpmVersion(v) }
