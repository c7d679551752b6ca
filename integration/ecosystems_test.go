package integration

import (
	"bytes"
	"compress/zlib"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rootscan/rootscan/internal/testbed/sbomtest"
	"github.com/rootscan/rootscan/report"
)

// ecoDebs are real Debian 12 packages: ripgrep (a Rust program, given cargo-auditable data below), ruby-rack (an
// arch-all gem) and ruby-json (a C-extension gem in the arch-specific rubygems-integration dir).
var ecoDebs = []string{"ripgrep", "ruby-rack", "ruby-json"}

// TestMoreLanguageEcosystems builds a root with every ecosystem of the lang analyzers: the unpacked .debs, /usr/bin/rg
// with the ripgrep audit data added by objcopy (and an untouched copy of rg: a Rust program without audit data),
// the .NET, Composer and npm lock fixtures of scan/testdata, and checks the exact package set `rootscan scan --dir`
// reports and that `rootscan sbom --dir` is valid CycloneDX 1.6.
func TestMoreLanguageEcosystems(t *testing.T) {
	objcopy, err := exec.LookPath("objcopy")
	if err != nil {
		langSkip(t, "objcopy (binutils) not found: make deps installs it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root := t.TempDir()
	langUnpackDebs(t, ctx, root, ecoDebs)

	// The Rust program: a copy without audit data, then the audit data added to /usr/bin/rg in place.
	rg := filepath.Join(root, "usr/bin/rg")
	ecoCopy(t, rg, filepath.Join(root, "usr/local/bin/rg-plain"))
	audit, err := os.ReadFile("../scan/testdata/rust/ripgrep-13.0.0.dep-v0.json")
	if err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(audit)
	zw.Close()
	section := filepath.Join(t.TempDir(), "dep-v0")
	if err := os.WriteFile(section, z.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(ctx, objcopy, "--add-section", ".dep-v0="+section, rg, rg+".new").CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v\n%s", err, out)
	}
	if err := os.Rename(rg+".new", rg); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(rg, 0o755); err != nil {
		t.Fatal(err)
	}

	// .NET, Composer and npm lock fixtures.
	ecoCopyTree(t, "../scan/testdata/dotnet/root", root)
	ecoCopyTree(t, "../scan/testdata/composer/root", root)
	ecoCopy(t, "../scan/testdata/npm/locks/yarn-v1.lock", filepath.Join(root, "srv/yarnapp/yarn.lock"))
	ecoCopy(t, "../scan/testdata/npm/locks/pnpm-lock-v9.yaml", filepath.Join(root, "srv/pnpmapp/pnpm-lock.yaml"))
	// An installed app with a lock: the lock adds nothing, debug is counted once with both apps' files.
	ecoCopy(t, "../scan/testdata/npm/locks/yarn-berry.lock", filepath.Join(root, "srv/installed/yarn.lock"))
	if err := os.MkdirAll(filepath.Join(root, "srv/installed/node_modules/debug"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "srv/installed/node_modules/debug/package.json"), []byte(`{"name":"debug","version":"4.3.4"}`), 0o644); err != nil {
		t.Fatal(err)
	}

	want := []string{
		"NuGet Microsoft.NETCore.App.Runtime.linux-x64 8.0.8 opt/worker/Worker.deps.json",
		"NuGet Newtonsoft.Json 13.0.3 app/MyApp.deps.json,opt/worker/Worker.deps.json",
		"NuGet Serilog 3.1.1 app/MyApp.deps.json",
		"NuGet Serilog.Sinks.Console 5.0.1 app/MyApp.deps.json",
		"NuGet System.Text.Json 8.0.4 opt/worker/Worker.deps.json",
		"Packagist acme/internal-tools dev-main var/www/html/vendor/composer/installed.json",
		"Packagist guzzlehttp/guzzle 6.5.5 srv/legacy/vendor/composer/installed.json",
		"Packagist guzzlehttp/psr7 1.9.1 srv/legacy/vendor/composer/installed.json",
		"Packagist monolog/monolog 3.5.0 var/www/html/vendor/composer/installed.json",
		"Packagist phpunit/php-timer 6.0.0 var/www/html/vendor/composer/installed.json",
		"Packagist psr/log 1.1.4 srv/legacy/vendor/composer/installed.json",
		"Packagist psr/log 3.0.0 var/www/html/vendor/composer/installed.json",
		"Packagist symfony/console 6.4.3 var/www/html/vendor/composer/installed.json",
		"Packagist symfony/deprecation-contracts 3.4.0 var/www/html/vendor/composer/installed.json",
		"Packagist symfony/polyfill-intl-idn 1.28.0 srv/legacy/vendor/composer/installed.json",
		"RubyGems json 2.6.3 usr/lib/x86_64-linux-gnu/rubygems-integration/3.1.0/specifications/json-2.6.3.gemspec",
		"RubyGems rack 2.2.22 usr/share/rubygems-integration/all/specifications/rack-2.2.22.gemspec",
		"npm @types/ms 0.7.34 srv/pnpmapp/pnpm-lock.yaml,srv/yarnapp/yarn.lock",
		"npm debug 4.3.4 srv/installed/node_modules/debug/package.json,srv/pnpmapp/pnpm-lock.yaml,srv/yarnapp/yarn.lock",
		"npm lru-cache 6.0.0 srv/yarnapp/yarn.lock",
		"npm ms 2.0.0 srv/pnpmapp/pnpm-lock.yaml,srv/yarnapp/yarn.lock",
		"npm ms 2.1.2 srv/pnpmapp/pnpm-lock.yaml,srv/yarnapp/yarn.lock",
		"npm semver 7.6.0 srv/yarnapp/yarn.lock",
		"npm yallist 4.0.0 srv/yarnapp/yarn.lock",
	}
	// The crates Debian's ripgrep names in X-Cargo-Built-Using, plus ripgrep itself; not the build-only ones.
	for _, c := range []string{
		"aho-corasick 0.7.19", "atty 0.2.14", "base64 0.13.0", "bitflags 1.3.2", "bstr 0.2.17", "bytecount 0.6.3",
		"byteorder 1.4.3", "cfg-if 1.0.0", "clap 2.34.0", "crossbeam-utils 0.8.12", "encoding_rs 0.8.31",
		"encoding_rs_io 0.1.7", "fnv 1.0.7", "globset 0.4.9", "grep 0.2.10", "grep-cli 0.1.6", "grep-matcher 0.1.5",
		"grep-pcre2 0.1.5", "grep-printer 0.1.6", "grep-regex 0.1.10", "grep-searcher 0.1.10", "ignore 0.4.18",
		"itoa 1.0.1", "lazy_static 1.4.0", "libc 0.2.139", "log 0.4.17", "memchr 2.5.0", "memmap2 0.5.7",
		"num_cpus 1.14.0", "once_cell 1.16.0", "pcre2 0.2.3", "pcre2-sys 0.2.5", "regex 1.7.0", "regex-automata 0.1.8",
		"regex-syntax 0.6.27", "ripgrep 13.0.0", "ryu 1.0.2", "same-file 1.0.6", "serde 1.0.147", "serde_json 1.0.87",
		"smawk 0.3.1", "strsim 0.10.0", "termcolor 1.1.2", "textwrap 0.16.0", "thread_local 1.1.4",
		"unicode-linebreak 0.1.4", "unicode-width 0.1.10", "walkdir 2.3.2",
	} {
		want = append(want, "crates.io "+c+" usr/bin/rg")
	}
	slices.Sort(want)

	res := runRootscan(t, 2*time.Minute, "scan", "--dir", root, "-o", "json")
	doc := decode(t, res)
	if len(doc.Reports) != 1 || doc.Reports[0].Result == nil {
		t.Fatalf("reports: %+v\nstderr: %s", doc.Reports, res.stderr)
	}
	result := doc.Reports[0].Result
	var got []report.Package
	for _, p := range result.Packages {
		switch p.Ecosystem {
		case report.EcosystemCratesIO, report.EcosystemRubyGems, report.EcosystemNuGet, report.EcosystemPackagist, report.EcosystemNpm:
			got = append(got, p)
			if p.PURL == "" {
				t.Errorf("no purl: %+v", p)
			}
		}
	}
	if lines := langLines(got); !reflect.DeepEqual(lines, want) {
		t.Errorf("packages:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if len(result.Errors) != 0 {
		t.Errorf("errors: %+v", result.Errors)
	}

	sb := runRootscan(t, 2*time.Minute, "sbom", "--dir", root)
	if sb.code != 0 {
		t.Fatalf("rootscan sbom exit %d: %s", sb.code, sb.stderr)
	}
	if err := sbomtest.ValidateCycloneDX([]byte(sb.stdout)); err != nil {
		t.Errorf("CycloneDX: %v", err)
	}
	for _, purl := range []string{"pkg:cargo/ripgrep@13.0.0", "pkg:gem/rack@2.2.22", "pkg:nuget/Newtonsoft.Json@13.0.3",
		"pkg:composer/monolog/monolog@3.5.0", "pkg:npm/%40types/ms@0.7.34"} {
		if !strings.Contains(sb.stdout, `"`+purl+`"`) {
			t.Errorf("SBOM lacks %s", purl)
		}
	}
}

func ecoCopy(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}

func ecoCopyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		ecoCopy(t, p, filepath.Join(dst, rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
