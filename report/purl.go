package report

import (
	"regexp"
	"strings"

	"golang.org/x/mod/semver"

	"github.com/package-url/packageurl-go"
)

// rpmEcosystems are the OSV ecosystem names of RPM-based distributions; their packages get pkg:rpm URLs.
var rpmEcosystems = map[string]string{
	EcosystemRedHat: "redhat",
	"AlmaLinux":     "almalinux",
	"Rocky Linux":   "rocky",
	"SUSE":          "suse",
	"openSUSE":      "opensuse",
	"Mageia":        "mageia",
	"openEuler":     "openeuler",
	"Azure Linux":   "azurelinux",
	"Mariner":       "mariner",
	"Amazon Linux":  "amzn",
	"Oracle Linux":  "oracle",
	"Fedora":        "fedora",
	"CentOS":        "centos",
	"Photon OS":     "photon",
	// "RPM" is what the rpm analyzer says for distributions OSV has no ecosystem for; the namespace comes from os.
	"RPM": "",
}

// pep503Sep matches the runs of separators PEP 503 folds into one dash.
var pep503Sep = regexp.MustCompile(`[-_.]+`)

// PURL is the package URL SBOM consumers and vulnerability databases join on, built from the fields analyzers
// fill. os (may be nil) gives OS packages their namespace and distro qualifier. It returns "" for an ecosystem it
// does not know, since a wrong purl mismatches silently while a missing one is visible.
//
// Conventions, following purl-spec's type definitions and what syft and trivy emit so their consumers match ours:
//   - deb (Debian, Ubuntu), apk (Alpine, Wolfi, Chainguard), rpm (the RPM distributions' OSV names and the rpm
//     analyzer's catch-all "RPM"): namespace is the os-release ID ("rhel" becomes "redhat"), qualifiers arch and
//     distro=<id>-<version_id>; upstream=<source> when the source package differs from the binary one, with
//     "@<source version>" when the source version differs too (syft's form). rpm moves an "N:" epoch prefix of the
//     version into the epoch qualifier; deb keeps it in the version, as the spec's examples do.
//   - golang: the module path split at its last slash; "(devel)" versions are dropped.
//   - pypi: the name normalised per PEP 503; npm: "@scope/name" becomes namespace "@scope"; maven: Name is
//     "group:artifact"; composer: Name is "vendor/name".
//   - maven without a group (a jar named by its MANIFEST.MF or file name, Evidence EvidenceJarManifest or
//     EvidenceFileName): no purl. The maven type requires the groupId as namespace, and syft's habit of filling it
//     with a guess (pkg:maven/asm/asm@9.4 for org.ow2.asm:asm) makes consumers join on a coordinate that does not
//     exist or, worse, belongs to another project.
func PURL(p Package, os *OS) string {
	if p.Name == "" {
		return ""
	}
	var (
		typ, ns, name = "", "", p.Name
		version       = p.Version
		quals         packageurl.Qualifiers
	)
	distro := func() {
		if os != nil && os.ID != "" && os.VersionID != "" {
			quals = append(quals, packageurl.Qualifier{Key: "distro", Value: os.ID + "-" + os.VersionID})
		}
	}
	osNamespace := func(fallback string) string {
		if os != nil && os.ID != "" {
			if os.ID == "rhel" {
				return "redhat"
			}
			return strings.ToLower(os.ID)
		}
		return fallback
	}
	arch := func() {
		if p.Arch != "" {
			quals = append(quals, packageurl.Qualifier{Key: "arch", Value: p.Arch})
		}
	}
	upstream := func() {
		srcDiffers := p.Source != "" && p.Source != p.Name
		verDiffers := p.SourceVersion != "" && p.SourceVersion != p.Version
		if !srcDiffers && !verDiffers {
			return
		}
		src := p.Source
		if src == "" {
			src = p.Name
		}
		if verDiffers {
			src += "@" + p.SourceVersion
		}
		quals = append(quals, packageurl.Qualifier{Key: "upstream", Value: src})
	}
	switch p.Ecosystem {
	case EcosystemDebian, EcosystemUbuntu:
		typ, ns = packageurl.TypeDebian, osNamespace(strings.ToLower(p.Ecosystem))
		arch()
		distro()
		upstream()
	case EcosystemAlpine, "Wolfi", "Chainguard":
		typ, ns = packageurl.TypeApk, osNamespace(strings.ToLower(p.Ecosystem))
		arch()
		distro()
		upstream()
	case EcosystemGo:
		typ = packageurl.TypeGolang
		if i := strings.LastIndexByte(name, '/'); i >= 0 {
			ns, name = name[:i], name[i+1:]
		}
		switch {
		case version == "(devel)":
			version = ""
		case name != "stdlib" && semver.IsValid("v"+version):
			// Versions are kept as OSV writes them ("1.6.0"); module purls carry Go's own "v1.6.0", as syft and
			// trivy emit them and as `go list -m` shows them.
			version = "v" + version
		}
	case EcosystemPyPI:
		typ, name = packageurl.TypePyPi, strings.ToLower(pep503Sep.ReplaceAllString(name, "-"))
	case EcosystemNpm:
		typ = packageurl.TypeNPM
		if strings.HasPrefix(name, "@") {
			if i := strings.IndexByte(name, '/'); i > 0 {
				ns, name = name[:i], name[i+1:]
			}
		}
	case EcosystemMaven:
		typ = packageurl.TypeMaven
		g, a, ok := strings.Cut(name, ":")
		if !ok || g == "" {
			return ""
		}
		ns, name = g, a
	case EcosystemCratesIO:
		typ = packageurl.TypeCargo
	case EcosystemRubyGems:
		typ = packageurl.TypeGem
	case EcosystemNuGet:
		typ = packageurl.TypeNuget
	case EcosystemPackagist:
		typ = packageurl.TypeComposer
		if i := strings.LastIndexByte(name, '/'); i >= 0 {
			ns, name = name[:i], name[i+1:]
		}
		ns, name = strings.ToLower(ns), strings.ToLower(name)
	default:
		fallback, ok := rpmEcosystems[p.Ecosystem]
		if !ok {
			return ""
		}
		typ, ns = packageurl.TypeRPM, osNamespace(fallback)
		if e, v, ok := strings.Cut(version, ":"); ok && e != "" && strings.Trim(e, "0123456789") == "" {
			version = v
			quals = append(quals, packageurl.Qualifier{Key: "epoch", Value: e})
		}
		arch()
		distro()
		upstream()
	}
	if name == "" {
		return ""
	}
	// Qualifiers.String sorts by key, so the output is deterministic.
	return packageurl.NewPackageURL(typ, ns, name, version, quals, "").ToString()
}
