package report

import (
	"strings"
	"testing"

	"github.com/package-url/packageurl-go"
)

// Expected strings come from purl-spec's test suite and type examples where one fits, else from what syft emits for
// the same package (the distro qualifier, upstream).
func TestPURL(t *testing.T) {
	deb12 := &OS{ID: "debian", VersionID: "12"}
	tests := []struct {
		name string
		p    Package
		os   *OS
		want string
	}{
		{"deb same source", Package{Name: "base-files", Version: "12.4+deb12u11", Ecosystem: EcosystemDebian, Arch: "amd64", Source: "base-files", SourceVersion: "12.4+deb12u11"}, deb12,
			"pkg:deb/debian/base-files@12.4%2Bdeb12u11?arch=amd64&distro=debian-12"},
		{"deb source differs", Package{Name: "libc6", Version: "2.36-9+deb12u14", Ecosystem: EcosystemDebian, Arch: "amd64", Source: "glibc", SourceVersion: "2.36-9+deb12u14"}, deb12,
			"pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64&distro=debian-12&upstream=glibc"},
		{"deb binNMU", Package{Name: "libssl3", Version: "3.0.17-1~deb12u2+b1", Ecosystem: EcosystemDebian, Arch: "arm64", Source: "openssl", SourceVersion: "3.0.17-1~deb12u2"}, deb12,
			"pkg:deb/debian/libssl3@3.0.17-1~deb12u2%2Bb1?arch=arm64&distro=debian-12&upstream=openssl%403.0.17-1~deb12u2"},
		// purl-spec test suite: "pkg:deb/debian/attr@1:2.4.47-2%2Bb1?arch=amd64" (epoch stays in the version).
		{"deb epoch, no os", Package{Name: "attr", Version: "1:2.4.47-2+b1", Ecosystem: EcosystemDebian, Arch: "amd64"}, nil,
			"pkg:deb/debian/attr@1:2.4.47-2%2Bb1?arch=amd64"},
		{"ubuntu", Package{Name: "dpkg", Version: "1.19.0.4", Ecosystem: EcosystemUbuntu, Arch: "amd64"}, &OS{ID: "ubuntu", VersionID: "22.04"},
			"pkg:deb/ubuntu/dpkg@1.19.0.4?arch=amd64&distro=ubuntu-22.04"},
		// purl-spec: "pkg:apk/alpine/curl@7.83.0-r0?arch=x86".
		{"apk", Package{Name: "curl", Version: "7.83.0-r0", Ecosystem: EcosystemAlpine, Arch: "x86"}, nil,
			"pkg:apk/alpine/curl@7.83.0-r0?arch=x86"},
		{"apk origin", Package{Name: "libcrypto3", Version: "3.3.2-r0", Ecosystem: EcosystemAlpine, Arch: "x86_64", Source: "openssl"}, &OS{ID: "alpine", VersionID: "3.20.3"},
			"pkg:apk/alpine/libcrypto3@3.3.2-r0?arch=x86_64&distro=alpine-3.20.3&upstream=openssl"},
		// purl-spec: "pkg:rpm/fedora/curl@7.50.3-1.fc25?arch=i386&distro=fedora-25".
		{"rpm", Package{Name: "curl", Version: "7.50.3-1.fc25", Ecosystem: "Fedora", Arch: "i386"}, &OS{ID: "fedora", VersionID: "25"},
			"pkg:rpm/fedora/curl@7.50.3-1.fc25?arch=i386&distro=fedora-25"},
		{"rpm rhel epoch", Package{Name: "openssl-libs", Version: "1:3.0.7-27.el9", Ecosystem: EcosystemRedHat, Arch: "x86_64"}, &OS{ID: "rhel", VersionID: "9.4"},
			"pkg:rpm/redhat/openssl-libs@3.0.7-27.el9?arch=x86_64&distro=rhel-9.4&epoch=1"},
		{"rpm without OSV ecosystem", Package{Name: "bash", Version: "5.2.26-3.amzn2023.0.2", Ecosystem: "RPM", Arch: "aarch64"}, &OS{ID: "amzn", VersionID: "2023"},
			"pkg:rpm/amzn/bash@5.2.26-3.amzn2023.0.2?arch=aarch64&distro=amzn-2023"},
		{"rpm source", Package{Name: "openssl-libs", Version: "3.0.7-27.el9", Ecosystem: "Rocky Linux", Arch: "x86_64", Source: "openssl", SourceVersion: "3.0.7-27.el9"}, &OS{ID: "rocky", VersionID: "9.4"},
			"pkg:rpm/rocky/openssl-libs@3.0.7-27.el9?arch=x86_64&distro=rocky-9.4&upstream=openssl"},
		{"wolfi apk", Package{Name: "glibc", Version: "2.40-r3", Ecosystem: "Wolfi", Arch: "x86_64"}, &OS{ID: "wolfi", VersionID: "20230201"},
			"pkg:apk/wolfi/glibc@2.40-r3?arch=x86_64&distro=wolfi-20230201"},
		// purl-spec: "pkg:golang/github.com/gorilla/context@234fd47e07d1004f0aed9c".
		{"golang", Package{Name: "github.com/gorilla/context", Version: "234fd47e07d1004f0aed9c", Ecosystem: EcosystemGo}, deb12,
			"pkg:golang/github.com/gorilla/context@234fd47e07d1004f0aed9c"},
		{"golang case kept", Package{Name: "github.com/Azure/go-ansiterm", Version: "v0.0.0-20230124172434-306776ec8161", Ecosystem: EcosystemGo}, nil,
			"pkg:golang/github.com/Azure/go-ansiterm@v0.0.0-20230124172434-306776ec8161"},
		{"golang OSV-style version gets its v back", Package{Name: "github.com/google/uuid", Version: "1.6.0", Ecosystem: EcosystemGo}, nil,
			"pkg:golang/github.com/google/uuid@v1.6.0"},
		{"golang devel", Package{Name: "example.com/app", Version: "(devel)", Ecosystem: EcosystemGo}, nil, "pkg:golang/example.com/app"},
		{"golang stdlib", Package{Name: "stdlib", Version: "go1.22.5", Ecosystem: EcosystemGo}, nil, "pkg:golang/stdlib@go1.22.5"},
		// purl-spec: "pkg:PYPI/Django_package@1.11.1.dev1" canonicalises to "pkg:pypi/django-package@1.11.1.dev1".
		{"pypi", Package{Name: "Django_package", Version: "1.11.1.dev1", Ecosystem: EcosystemPyPI}, nil, "pkg:pypi/django-package@1.11.1.dev1"},
		{"pypi runs", Package{Name: "zope.interface__x", Version: "6.0", Ecosystem: EcosystemPyPI}, nil, "pkg:pypi/zope-interface-x@6.0"},
		// purl-spec: "pkg:npm/%40angular/animation@12.3.1", "pkg:npm/foobar@12.3.1".
		{"npm scoped", Package{Name: "@angular/animation", Version: "12.3.1", Ecosystem: EcosystemNpm}, nil, "pkg:npm/%40angular/animation@12.3.1"},
		{"npm", Package{Name: "foobar", Version: "12.3.1", Ecosystem: EcosystemNpm}, nil, "pkg:npm/foobar@12.3.1"},
		// purl-spec: "pkg:maven/org.apache.commons/io@1.3.4".
		{"maven", Package{Name: "org.apache.commons:io", Version: "1.3.4", Ecosystem: EcosystemMaven}, nil, "pkg:maven/org.apache.commons/io@1.3.4"},
		{"maven without group", Package{Name: "io", Version: "1.3.4", Ecosystem: EcosystemMaven}, nil, ""},
		// A jar named by its manifest or file name: no guessed namespace (syft would say pkg:maven/asm/asm@9.4).
		{"maven from a manifest", Package{Name: "org.objectweb.asm", Version: "9.4.0.SNAPSHOT", Ecosystem: EcosystemMaven, Evidence: EvidenceJarManifest}, nil, ""},
		{"maven empty group", Package{Name: ":asm", Version: "9.4", Ecosystem: EcosystemMaven}, nil, ""},
		// purl-spec examples for cargo, gem, nuget, composer.
		{"cargo", Package{Name: "rand", Version: "0.7.2", Ecosystem: EcosystemCratesIO}, nil, "pkg:cargo/rand@0.7.2"},
		{"gem", Package{Name: "ruby-advisory-db-check", Version: "0.12.4", Ecosystem: EcosystemRubyGems}, nil, "pkg:gem/ruby-advisory-db-check@0.12.4"},
		{"nuget", Package{Name: "EnterpriseLibrary.Common", Version: "6.0.1304", Ecosystem: EcosystemNuGet}, nil, "pkg:nuget/EnterpriseLibrary.Common@6.0.1304"},
		{"composer", Package{Name: "laravel/laravel", Version: "5.5.0", Ecosystem: EcosystemPackagist}, nil, "pkg:composer/laravel/laravel@5.5.0"},
		{"unknown ecosystem", Package{Name: "x", Version: "1", Ecosystem: "Hackage"}, nil, ""},
		{"no name", Package{Version: "1", Ecosystem: EcosystemNpm}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PURL(tt.p, tt.os)
			if got != tt.want {
				t.Fatalf("PURL = %q, want %q", got, tt.want)
			}
			if got == "" {
				return
			}
			// Every purl we emit parses back to the same string. packageurl-go lowercases golang paths when parsing;
			// we keep the module path's case as syft and trivy do (Go module paths are case-sensitive).
			parsed, err := packageurl.FromString(got)
			if err != nil {
				t.Fatalf("parse %q: %v", got, err)
			}
			if s := parsed.ToString(); s != got && !(tt.p.Ecosystem == EcosystemGo && strings.EqualFold(s, got)) {
				t.Errorf("round trip %q -> %q", got, s)
			}
		})
	}
}

func FuzzPURL(f *testing.F) {
	f.Add("libc6", "2.36-9+deb12u14", EcosystemDebian, "amd64", "glibc", "2.36-9")
	f.Add("@scope/x", "1.0.0", EcosystemNpm, "", "", "")
	f.Add("g:a", "1", EcosystemMaven, "", "", "")
	f.Fuzz(func(t *testing.T, name, version, eco, arch, src, srcVer string) {
		got := PURL(Package{Name: name, Version: version, Ecosystem: eco, Arch: arch, Source: src, SourceVersion: srcVer}, &OS{ID: "debian", VersionID: "12"})
		if got == "" {
			return
		}
		if _, err := packageurl.FromString(got); err != nil {
			t.Fatalf("PURL(%q) = %q does not parse: %v", name, got, err)
		}
	})
}
