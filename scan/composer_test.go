package scan

import (
	"context"
	"os"
	"reflect"
	"strings"
	"testing"
)

// testdata/composer/root holds a Composer 2 install (var/www/html, with a dev package and a path repository) and a
// Composer 1 install (srv/legacy), in the form and order Composer writes them (4-space JSON, unescaped slashes).
func TestComposerFixtures(t *testing.T) {
	res := Run(context.Background(), gobinOpen(t, "testdata/composer/root"), []Analyzer{NewComposer()})
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
	var got []string
	for _, p := range res.Packages {
		got = append(got, p.Name+" "+p.Version+" "+p.PURL+" "+strings.Join(p.Locations, ","))
	}
	const v2, v1 = "var/www/html/vendor/composer/installed.json", "srv/legacy/vendor/composer/installed.json"
	want := []string{
		"acme/internal-tools dev-main pkg:composer/acme/internal-tools@dev-main " + v2,
		"guzzlehttp/guzzle 6.5.5 pkg:composer/guzzlehttp/guzzle@6.5.5 " + v1,
		"guzzlehttp/psr7 1.9.1 pkg:composer/guzzlehttp/psr7@1.9.1 " + v1,
		"monolog/monolog 3.5.0 pkg:composer/monolog/monolog@3.5.0 " + v2,
		"phpunit/php-timer 6.0.0 pkg:composer/phpunit/php-timer@6.0.0 " + v2,
		"psr/log 1.1.4 pkg:composer/psr/log@1.1.4 " + v1,
		"psr/log 3.0.0 pkg:composer/psr/log@3.0.0 " + v2,
		"symfony/console 6.4.3 pkg:composer/symfony/console@6.4.3 " + v2,
		"symfony/deprecation-contracts 3.4.0 pkg:composer/symfony/deprecation-contracts@3.4.0 " + v2,
		"symfony/polyfill-intl-idn 1.28.0 pkg:composer/symfony/polyfill-intl-idn@1.28.0 " + v1,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("packages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestComposerVersion(t *testing.T) {
	for _, c := range []struct{ v, norm, want string }{
		{"v5.4.21", "5.4.21.0", "5.4.21"},
		{"5.4.21", "5.4.21.0", "5.4.21"},
		{"v1.0.0-RC1", "1.0.0.0-RC1", "1.0.0-RC1"},
		{"dev-main", "dev-main", "dev-main"},
		{"v2.x-dev", "2.9999999.9999999.9999999-dev", "2.x-dev"},
		{"dev-vendor-fix", "dev-vendor-fix", "dev-vendor-fix"},
		{"vfoo", "vfoo", "vfoo"},
		{"v1.2.3", "", "v1.2.3"},
		{"v", "0.0.0.0", "v"},
	} {
		if got := composerVersion(c.v, c.norm); got != c.want {
			t.Errorf("composerVersion(%q, %q) = %q, want %q", c.v, c.norm, got, c.want)
		}
	}
}

func TestParseComposerInstalled(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     []composerPackage
		err      string
	}{
		{"composer 2 empty", `{"packages":[],"dev":false,"dev-package-names":[]}`, nil, ""},
		{"composer 1 empty", `[]`, nil, ""},
		{"no packages key", `{"dev":true}`, nil, `no "packages" list`},
		{"scalar", `"x"`, nil, "neither"},
		{"empty file", ``, nil, "neither"},
		{"broken", `{"packages":[{"name":`, nil, "parse installed.json"},
		{"invalid entries skipped", `[{"name":"a/b","version":"1.0.0"},{"name":"../../etc","version":"1"},{"name":"noslash","version":"1"},{"name":"a/c","version":"1 0"},{"name":"a/./b","version":"1"}]`,
			[]composerPackage{{"a/b", "1.0.0"}}, `4 installed.json entries with an invalid name or version skipped, the first name "../../etc", version "1"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseComposerInstalled([]byte(c.in))
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
			switch {
			case c.err == "" && err != nil:
				t.Errorf("error %v", err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Errorf("error %v, want one containing %q", err, c.err)
			}
		})
	}
}

func FuzzParseComposerInstalled(f *testing.F) {
	for _, p := range []string{"testdata/composer/root/var/www/html/vendor/composer/installed.json", "testdata/composer/root/srv/legacy/vendor/composer/installed.json"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, _ := parseComposerInstalled(data)
		for _, p := range pkgs {
			if !validComposerName(p.Name) || !validComposerVersion(p.Version) || strings.Contains(p.Name, "..") {
				t.Fatalf("accepted %+v", p)
			}
		}
	})
}

// Names as Composer itself allows them: alphanumeric runs joined by single separators ("--" too); nothing that ends
// in a separator, doubles one or spells "..", which could be read as a path step.
func TestValidComposerName(t *testing.T) {
	for name, want := range map[string]bool{
		"monolog/monolog": true, "symfony/polyfill-php80": true, "laminas/laminas-code": true, "a.b_c/d--e": true,
		"0/0..": false, "a/..": false, "a/b.": false, "a./b": false, "a/b..c": false, "a/b-.c": false, "a/b---c": false,
		"a/.b": false, "a": false, "a/b/c": false, "/b": false, "a/": false,
	} {
		if got := validComposerName(name); got != want {
			t.Errorf("validComposerName(%q) = %v, want %v", name, got, want)
		}
	}
}
