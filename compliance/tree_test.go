package compliance

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// selfWalker is what fsaccess.WalkFS looks for to walk a root by descriptor.
type selfWalker interface {
	Walk(ctx context.Context, root string, opts fsaccess.WalkOptions, fn fs.WalkDirFunc) error
}

// files() over an fsaccess root (its descriptor walk) and over os.DirFS of the same directory (fsaccess.WalkFS by
// name, the fallback for plain FS values) list the same entries with the same facts, and the baseline gives the same results
// through both; /proc, /sys and /dev are not walked and links are not followed in either.
func TestFilesDescriptorWalkMatchesWalkDir(t *testing.T) {
	files := map[string]string{}
	for k, v := range testFiles {
		files[k] = v
	}
	files["root/.ssh/id_rsa"] = "-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n"
	files["home/app/.docker/config.json"] = "{}"
	files["srv/data/x"] = "x"
	files["srv/up"] = "->../../../.."
	files["srv/slash"] = "->/"
	files["proc/1/status"] = "not walked"
	files["dev/null"] = "not walked"
	f := newFixture(t, files)
	if err := os.Chmod(filepath.Join(f.dir, "srv/data"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(f.dir, "srv/data/x"), fs.ModeSetuid|0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(f.dir, "srv/fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	dirFS, ok := os.DirFS(f.dir).(scan.FS)
	if !ok {
		t.Fatal("os.DirFS is not a scan.FS")
	}
	if _, ok := dirFS.(selfWalker); ok {
		t.Fatal("os.DirFS has a Walk method: the fallback is not tested")
	}
	if _, ok := scan.FS(f.root).(selfWalker); !ok {
		t.Fatal("fsaccess.Root has no Walk method: the descriptor walk is not tested")
	}

	list := `files("/").map(f, f.path + " " + f.type + " " + f.mode_octal + " " + string(f.uid) + ":" + string(f.gid) + " " + (f.type == "file" ? string(f.size) : "-")).join("\n")`
	var out [2]string
	for i, root := range []scan.FS{f.root, dirFS} {
		l, _ := NewLoader(Limits{})
		p, err := l.Parse("t.yaml", []byte(fmt.Sprintf("name: t\ncontrols:\n  - id: c\n    checks:\n      - expr: %q\n", list+` == ""`)))
		if err != nil {
			t.Fatal(err)
		}
		ps, err := l.Load(Baseline)
		if err != nil {
			t.Fatal(err)
		}
		rs := NewEngine(l, append(ps, p)).Evaluate(context.Background(), root, report.Target{Config: &report.ImageConfig{User: "app"}}, nil, &report.Result{})
		for _, r := range rs {
			out[i] += fmt.Sprintf("%s=%s %s\n", r.ID, r.Status, r.Message)
		}
	}
	if out[0] != out[1] {
		t.Errorf("descriptor walk gives\n%s\nfs.WalkDir gives\n%s", out[0], out[1])
	}
	for _, want := range []string{
		"/srv/data directory 0777 0:0 -",
		"/srv/data/x file 4755 0:0 1",
		"/srv/fifo pipe 0600 0:0 -",
		"/srv/slash symlink 0000 0:0 -",
		"/srv/up symlink 0000 0:0 -",
		`container-baseline-04=failed check 1 (no setuid or setgid regular files): observed ["/srv/data/x"]`,
		`container-baseline-09=failed check 1 (no private key files): observed ["/root/.ssh/id_rsa"]`,
		`container-baseline-10=failed check 1 (no credential files): observed ["/home/app/.docker/config.json"]`,
	} {
		if !strings.Contains(out[0], want) {
			t.Errorf("results lack %q:\n%s", want, out[0])
		}
	}
	for _, never := range []string{"/proc/1", "/dev/null", "/srv/slash/", "/srv/up/"} {
		if strings.Contains(out[0], never) {
			t.Errorf("files() reported %s:\n%s", never, out[0])
		}
	}
}

// glob("**") expanded with the descriptor walk (fsaccess roots) and with the walk by name (the same root without
// its Walk method) gives the same matches, links followed where a shell's glob follows them and not by "**", and
// the same depth error.
func TestGlobDescriptorWalkMatchesRecursion(t *testing.T) {
	files := map[string]string{
		"srv/a/b/c.conf":              "c",
		"srv/a/d.conf":                "d",
		"srv/e.conf":                  "e",
		"srv/lnk":                     "->/srv/a/b",
		"srv/la":                      "->a",
		"srv/up":                      "->../..",
		"srv/z/.hidden.conf":          "h",
		"opt/deep/1/2/3/4/5/6/f.conf": "f",
		"etc/x.conf":                  "x",
		"empty":                       "/",
	}
	f := newFixture(t, files)
	byName := struct{ scan.FS }{f.root} // hides Walk
	if _, ok := scan.FS(byName).(selfWalker); ok {
		t.Fatal("the wrapped root still walks itself")
	}
	for _, tc := range []struct {
		pattern string
		depth   int
		want    string
	}{
		{pattern: "/srv/**/*.conf", want: `["/srv/a/b/c.conf", "/srv/a/d.conf", "/srv/e.conf", "/srv/z/.hidden.conf"]`},
		{pattern: "/srv/**", want: `["/srv", "/srv/a", "/srv/a/b", "/srv/z"]`},
		{pattern: "/srv/la/**/*.conf", want: `["/srv/la/b/c.conf", "/srv/la/d.conf"]`},
		{pattern: "/srv/up/srv/**/c.conf", want: `["/srv/up/srv/a/b/c.conf"]`},
		{pattern: "/**/x.conf", want: `["/etc/x.conf"]`},
		{pattern: "/**/**/d.conf", want: `["/srv/a/d.conf"]`},
		{pattern: "/*/**/f.conf", want: `["/opt/deep/1/2/3/4/5/6/f.conf"]`},
		{pattern: "/empty/**", want: `["/empty"]`},
		{pattern: "/none/**", want: `[]`},
		{pattern: "/srv/e.conf/**", want: `[]`},
		{pattern: "/opt/**/f.conf", depth: 6, want: `deeper than 6 directories`},
		{pattern: "/opt/**/f.conf", depth: 7, want: `["/opt/deep/1/2/3/4/5/6/f.conf"]`},
	} {
		var got [2]string
		for i, root := range []scan.FS{f.root, byName} {
			r := evalWith(t, Limits{MaxGlobDepth: tc.depth}, root, report.Target{}, nil, fmt.Sprintf(`glob(%q) == []`, tc.pattern))
			got[i] = r.Message
		}
		if got[0] != got[1] {
			t.Errorf("glob(%q): descriptor walk %s, walk by name %s", tc.pattern, got[0], got[1])
		}
		if passed := got[0] == ""; passed != (tc.want == "[]") || !passed && !strings.Contains(got[0], tc.want) {
			t.Errorf("glob(%q) = %s, want %s", tc.pattern, got[0], tc.want)
		}
	}
}
