package inuse

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/rootscan/rootscan/report"
)

// markRoot is a small root: a dpkg package with a library, one without files the kernel could see, a Go program
// (its own package: the modules in it) and an npm package (interpreted, never mapped).
func markRoot() (fstest.MapFS, *report.Result) {
	fsys := fstest.MapFS{
		"var/lib/dpkg/info/libssl3:amd64.list": {Data: []byte("/.\n/usr\n/usr/lib\n/usr/lib/x86_64-linux-gnu/libssl.so.3\n")},
		"var/lib/dpkg/info/zlib1g:amd64.list":  {Data: []byte("/usr/lib/x86_64-linux-gnu/libz.so.1.2.13\n")},
		// Another architecture's copy of the same name owns nothing of the amd64 package.
		"var/lib/dpkg/info/zlib1g:i386.list": {Data: []byte("/usr/lib/i386-linux-gnu/libz.so.1.2.13\n")},
		// A distroless entry whose file name is not the package's.
		"var/lib/dpkg/status.d/crypt.md5sums": {Data: []byte("0123456789abcdef0123456789abcdef  usr/lib/x86_64-linux-gnu/libcrypt.so.1.1.0\n")},
	}
	deb := func(name, arch string) report.Package {
		return report.Package{Name: name, Version: "1", Arch: arch, Ecosystem: report.EcosystemDebian, FoundBy: "dpkg",
			PURL: "pkg:deb/debian/" + name + "@1?arch=" + arch, Locations: []string{"var/lib/dpkg/status"}}
	}
	res := &report.Result{Packages: []report.Package{
		deb("libssl3", "amd64"), deb("zlib1g", "amd64"), deb("zlib1g", "i386"), deb("tzdata", "all"),
		{Name: "libcrypt1", Version: "1", Arch: "amd64", Ecosystem: report.EcosystemDebian, FoundBy: "dpkg", Locations: []string{"var/lib/dpkg/status.d/crypt"}},
		{Name: "golang.org/x/net", Version: "v0.1.0", Ecosystem: report.EcosystemGo, FoundBy: "go-binary", Locations: []string{"app/server", "/app/tool"}},
		{Name: "stdlib", Version: "1.22.0", Ecosystem: report.EcosystemGo, FoundBy: "go-binary", Locations: []string{"app/tool"}},
		{Name: "left-pad", Version: "1.3.0", Ecosystem: report.EcosystemNpm, FoundBy: "npm", Locations: []string{"app/node_modules/left-pad/package.json"}},
	}}
	for _, p := range res.Packages {
		res.Vulnerabilities = append(res.Vulnerabilities, report.Vulnerability{ID: "V-" + p.Name + "-" + p.Arch,
			Package: p.Name, Version: p.Version, Ecosystem: p.Ecosystem, PURL: p.PURL})
	}
	return fsys, res
}

func verdicts(res *report.Result) string {
	var s []string
	for _, v := range res.Vulnerabilities {
		s = append(s, v.ID+"="+string(v.InUse))
	}
	return strings.Join(s, " ")
}

func TestMark(t *testing.T) {
	fsys, res := markRoot()
	x, errs := Build(context.Background(), fsys, res, Options{})
	if len(errs) != 0 {
		t.Fatalf("build: %v", errs)
	}
	for _, c := range []struct {
		used  []string
		known bool
		want  string
	}{
		{nil, false, "V-libssl3-amd64=unknown V-zlib1g-amd64=unknown V-zlib1g-i386=unknown V-tzdata-all=unknown V-libcrypt1-amd64=unknown V-golang.org/x/net-=unknown V-stdlib-=unknown V-left-pad-=unknown"},
		// Runtime data, nothing used: packages with files are not in use; the ones without any indexed file stay unknown.
		{nil, true, "V-libssl3-amd64=false V-zlib1g-amd64=false V-zlib1g-i386=false V-tzdata-all=unknown V-libcrypt1-amd64=false V-golang.org/x/net-=false V-stdlib-=false V-left-pad-=unknown"},
		{[]string{"/usr/lib/x86_64-linux-gnu/libssl.so.3", "/app/server", "/usr/lib/x86_64-linux-gnu/libz.so.1"}, true,
			"V-libssl3-amd64=true V-zlib1g-amd64=false V-zlib1g-i386=false V-tzdata-all=unknown V-libcrypt1-amd64=false V-golang.org/x/net-=true V-stdlib-=false V-left-pad-=unknown"},
		{[]string{"/app/tool", "/usr/lib/i386-linux-gnu/libz.so.1.2.13", "/usr/lib/x86_64-linux-gnu/libcrypt.so.1.1.0", "relative/app/server", "/../app/server/.."}, true,
			"V-libssl3-amd64=false V-zlib1g-amd64=false V-zlib1g-i386=true V-tzdata-all=unknown V-libcrypt1-amd64=true V-golang.org/x/net-=true V-stdlib-=true V-left-pad-=unknown"},
	} {
		Mark(res, x, c.used, c.known)
		if got := verdicts(res); got != c.want {
			t.Errorf("Mark(%q, %v):\n got %s\nwant %s", c.used, c.known, got, c.want)
		}
	}
	// Without an index, runtime data decides nothing.
	Mark(res, nil, []string{"/app/server"}, true)
	if got := verdicts(res); strings.Contains(got, "=true") || strings.Contains(got, "=false") {
		t.Errorf("without an index: %s", got)
	}
}

// The entry bound cuts the index and says so; what was indexed before still answers.
func TestBuildBound(t *testing.T) {
	fsys, res := markRoot()
	x, errs := Build(context.Background(), fsys, res, Options{MaxEntries: 3})
	if x.size() > 3 || len(errs) != 1 || !strings.Contains(errs[0].Err, "more than 3 owned files") {
		t.Fatalf("len %d, errs %v", x.size(), errs)
	}
	if got := pkgNames(x.ownersOf("/app/server")); !slices.Equal(got, []string{"golang.org/x/net"}) {
		t.Errorf("program owners = %v", got)
	}
	// A cut index says true or unknown, never false: the packages may own files it lacks.
	Mark(res, x, []string{"/app/server"}, true)
	if got := verdicts(res); strings.Contains(got, "=false") || !strings.Contains(got, "V-golang.org/x/net-=true") {
		t.Errorf("cut index: %s", got)
	}
}

// Hostile lists (any bytes, any names) never make Build fail or an Owner answer name a package the result lacks.
func FuzzBuild(f *testing.F) {
	f.Add([]byte("/.\n/usr/lib/x86_64-linux-gnu/libssl.so.3\n"), "libssl3:amd64", "/usr/lib/x86_64-linux-gnu/libssl.so.3")
	f.Add([]byte("/../../etc/passwd\n\x00\n//a//b/../c\n"), "x", "/c")
	f.Fuzz(func(t *testing.T, list []byte, name, query string) {
		fsys, res := markRoot()
		fsys[fmt.Sprintf("var/lib/dpkg/info/%s.list", strings.ReplaceAll(name, "/", "_"))] = &fstest.MapFile{Data: list}
		x, _ := Build(context.Background(), fsys, res, Options{MaxEntries: 64})
		if x.size() > 64 {
			t.Fatalf("%d entries past the bound", x.size())
		}
		for _, o := range x.ownersOf(query) {
			found := false
			for _, p := range res.Packages {
				found = found || (p.Name == o.Name && p.Version == o.Version && p.Ecosystem == o.Ecosystem)
			}
			if !found {
				t.Fatalf("owner %+v is no package of the result", o)
			}
		}
		Mark(res, x, []string{query}, true)
	})
}
