package scan

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"

	"github.com/rootscan/rootscan/report"
)

// dotnetMaxDepsSize bounds one .deps.json. A large ASP.NET application's is a few hundred KiB; a self-contained one
// that lists every runtime file reaches 1-2 MiB.
const dotnetMaxDepsSize = 16 << 20

// dotnetMaxNameLen is NuGet's limit on package ids.
const dotnetMaxNameLen = 100

// dotnetAnalyzer lists the NuGet packages of .NET applications from the <app>.deps.json that `dotnet build` and
// `dotnet publish` write next to the application's dll: the host (dotnet/apphost) resolves every assembly it loads
// from that file, so it is the application's real dependency closure, with exact versions.
//
// Reported are the "libraries" of type "package" (NuGet packages) and "runtimepack" (the .NET runtime a
// self-contained application carries, under its NuGet id Microsoft.NETCore.App.Runtime.<rid>, for which .NET
// runtime advisories are published) that the runtime target lists; a library only in another target (a different
// framework or RID) is not loaded. "project" and "reference" libraries are the application's own code.
type dotnetAnalyzer struct {
	maxSize int64
}

// NewDotnet returns the analyzer for .NET applications' .deps.json files (NuGet ecosystem; Package.Name is the
// package id as the file spells it, e.g. "Newtonsoft.Json").
func NewDotnet() Analyzer { return &dotnetAnalyzer{maxSize: dotnetMaxDepsSize} }

func (a *dotnetAnalyzer) Name() string { return "dotnet" }

func (a *dotnetAnalyzer) Version() int { return 1 }

func (a *dotnetAnalyzer) Requires() []string { return nil }

// Paths is empty: applications can be anywhere (/app, /opt/<x>, /usr/share/<x>), Wants decides.
func (a *dotnetAnalyzer) Paths() []string { return nil }

// Wants decides from the name alone: any *.deps.json file.
func (a *dotnetAnalyzer) Wants(name string, d fs.DirEntry) bool {
	return strings.HasSuffix(name, ".deps.json") && (d == nil || d.Type().IsRegular())
}

// AnalyzeFile reads one .deps.json; a damaged one is reported and skipped.
func (a *dotnetAnalyzer) AnalyzeFile(ctx context.Context, fsys FS, name string, out *report.Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	data, err := ReadFile(fsys, name, a.maxSize)
	var pkgs []dotnetPackage
	if err == nil {
		pkgs, err = parseDepsJSON(data)
	}
	if err != nil {
		out.Errors = append(out.Errors, report.FileError{Analyzer: a.Name(), Path: name, Err: err.Error()})
	}
	for _, p := range pkgs {
		out.Packages = append(out.Packages, report.Package{Name: p.Name, Version: p.Version, Ecosystem: report.EcosystemNuGet,
			Locations: []string{name}, FoundBy: a.Name()})
	}
	return nil
}

// Analyze merges what AnalyzeFile found: a package used by several applications becomes one Package.
func (a *dotnetAnalyzer) Analyze(ctx context.Context, fsys FS, out *report.Result) error {
	mergePackages(out, a.Name())
	return nil
}

type dotnetPackage struct {
	Name, Version string
}

// dotnetDeps is the part of the deps.json format (Microsoft.Extensions.DependencyModel) the inventory needs.
type dotnetDeps struct {
	RuntimeTarget struct {
		Name string `json:"name"`
	} `json:"runtimeTarget"`
	Targets   map[string]map[string]json.RawMessage `json:"targets"`
	Libraries map[string]struct {
		Type string `json:"type"`
	} `json:"libraries"`
}

// dotnetVersion matches NuGet versions: 2 to 4 numeric parts, optional SemVer 2.0 pre-release and build metadata.
var dotnetVersion = regexp.MustCompile(`^[0-9]+(?:\.[0-9]+){1,3}(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$`)

// dotnetRuntimePackPrefix starts the library names dotnet gives runtime packs ("runtimepack.<NuGet id>/<version>").
const dotnetRuntimePackPrefix = "runtimepack."

// parseDepsJSON returns the NuGet packages of a deps.json, sorted by name and version. Libraries with an invalid
// name or version are skipped and counted in the returned error, next to the packages that were valid.
func parseDepsJSON(data []byte) ([]dotnetPackage, error) {
	if err := checkJSONValues(data, jsonMaxValuesLarge); err != nil {
		return nil, fmt.Errorf("parse deps.json: %w", err)
	}
	var deps dotnetDeps
	if err := json.Unmarshal(bytes.TrimPrefix(data, utf8BOM), &deps); err != nil {
		return nil, fmt.Errorf("parse deps.json: %w", err)
	}
	if deps.Libraries == nil {
		return nil, fmt.Errorf("deps.json has no \"libraries\"")
	}
	// The runtime target decides what is loaded. A file without one (written by very old SDKs, or hand-made) is
	// read by the host as the single target it has, and then all libraries count.
	var target map[string]json.RawMessage
	if deps.RuntimeTarget.Name != "" {
		t, ok := deps.Targets[deps.RuntimeTarget.Name]
		if !ok {
			return nil, fmt.Errorf("deps.json runtime target %q is not among its targets", deps.RuntimeTarget.Name)
		}
		target = t
	}
	var out []dotnetPackage
	bad, firstBad := 0, ""
	for key, lib := range deps.Libraries {
		if lib.Type != "package" && lib.Type != "runtimepack" {
			continue
		}
		if target != nil {
			if _, ok := target[key]; !ok {
				continue
			}
		}
		name, version, _ := strings.Cut(key, "/")
		if lib.Type == "runtimepack" {
			name = strings.TrimPrefix(name, dotnetRuntimePackPrefix)
		}
		if !validNuGetID(name) || !dotnetVersion.MatchString(version) {
			if bad++; bad == 1 || key < firstBad {
				firstBad = key
			}
			continue
		}
		out = append(out, dotnetPackage{Name: name, Version: version})
	}
	slices.SortFunc(out, func(x, y dotnetPackage) int {
		if c := strings.Compare(x.Name, y.Name); c != 0 {
			return c
		}
		return strings.Compare(x.Version, y.Version)
	})
	if bad > 0 {
		return out, fmt.Errorf("%d deps.json libraries with an invalid name or version skipped, the first %q", bad, firstBad)
	}
	return out, nil
}

// validNuGetID follows NuGet's package id rule: letters, digits, ".", "-" and "_", at most 100 characters.
func validNuGetID(s string) bool {
	if s == "" || len(s) > dotnetMaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '-' && c != '_' {
			return false
		}
	}
	return true
}
