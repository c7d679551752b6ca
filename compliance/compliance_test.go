package compliance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// fixture is a small root on disk: real files, modes, owners and links, opened through fsaccess like a container.
type fixture struct {
	dir  string
	root *fsaccess.Root
}

func newFixture(t testing.TB, files map[string]string) *fixture {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasPrefix(content, "->"):
			if err := os.Symlink(strings.TrimPrefix(content, "->"), p); err != nil {
				t.Fatal(err)
			}
		case content == "/":
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	root, err := fsaccess.OpenDir(dir, fsaccess.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return &fixture{dir: dir, root: root}
}

func (f *fixture) chmod(t testing.TB, name string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(filepath.Join(f.dir, name), mode); err != nil {
		t.Fatal(err)
	}
}

var testFiles = map[string]string{
	"etc/passwd":             "root:x:0:0:root:/root:/bin/bash\napp:x:1000:1000::/home/app:/sbin/nologin\ntoor:x:0:0::/:/bin/sh\n",
	"etc/shadow":             "root:!:19000::::::\napp:$6$salt$hash:19000::::::\n",
	"etc/group":              "root:x:0:\napp:x:1000:app,other\n",
	"etc/os-release":         "ID=debian\nVERSION_ID=\"12\"\n# comment\nNAME='Debian GNU/Linux'\n",
	"etc/app.ini":            "top=1\n[server]\nport = 8080\nhost: example\n; comment\n[db]\nname=\"x\"\n",
	"etc/app.yaml":           "server:\n  port: 8080\n  tls: true\nusers: [a, b]\n",
	"etc/app.json":           `{"port": 8080, "ratio": 0.5, "tags": ["x"]}`,
	"etc/app.toml":           "title = \"t\"\n[server]\nport = 8080\n",
	"etc/ssh/sshd_config":    "# comment\nPermitRootLogin no\nPasswordAuthentication yes\npermitrootlogin yes\nMatch User x\n  PasswordAuthentication no\n",
	"etc/login.defs":         "PASS_MAX_DAYS\t90\nUMASK 022\n",
	"etc/localtime":          "->/usr/share/zoneinfo/UTC",
	"usr/share/zoneinfo/UTC": "TZif",
	"etc/loop1":              "->loop2",
	"etc/loop2":              "->loop1",
	"etc/escape":             "->../../../../../etc/passwd",
	"bin":                    "->usr/bin",
	"usr/bin/sh":             "#!",
	"usr/bin/tool":           "x",
	"srv/a/b/c.conf":         "c",
	"srv/a/d.conf":           "d",
	"srv/e.txt":              "e",
	"tmp":                    "/",
}

// evalExpr compiles one boolean-or-any expression as a check and returns the control's result.
func evalExpr(t testing.TB, root scan.FS, target report.Target, vols []Volume, expr string) report.ControlResult {
	t.Helper()
	return evalWith(t, Limits{}, root, target, vols, expr)
}

func evalWith(t testing.TB, lim Limits, root scan.FS, target report.Target, vols []Volume, expr string) report.ControlResult {
	t.Helper()
	l, err := NewLoader(lim)
	if err != nil {
		t.Fatal(err)
	}
	doc := fmt.Sprintf("name: t\ncontrols:\n  - id: c\n    impact: 0.5\n    checks:\n      - expr: %q\n", expr)
	p, err := l.Parse("t.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	res := &report.Result{Packages: []report.Package{{Name: "gcc-12", Version: "12.2", Ecosystem: report.EcosystemDebian}}}
	rs := NewEngine(l, []*Profile{p}).Evaluate(context.Background(), root, target, vols, res)
	if len(rs) != 1 {
		t.Fatalf("%d results", len(rs))
	}
	return rs[0]
}

func TestResources(t *testing.T) {
	f := newFixture(t, testFiles)
	f.chmod(t, "usr/bin/tool", os.ModeSetuid|0o755)
	f.chmod(t, "usr/bin/sh", 0o755)
	f.chmod(t, "tmp", os.ModeSticky|0o777)
	f.chmod(t, "srv/e.txt", 0o666)
	if err := os.Chown(filepath.Join(f.dir, "srv/e.txt"), 1000, 1000); err != nil {
		t.Fatal(err)
	}
	uid := int64(1000)
	target := report.Target{
		Config:   &report.ImageConfig{User: "app", Env: []string{"PATH=/opt/bin:/usr/bin", "A=b"}, ExposedPorts: []string{"8080/tcp"}, Labels: map[string]string{"k": "v"}},
		Security: &report.SecurityContext{RunAsUser: &uid, ReadOnlyRootFilesystem: true, CapabilitiesDrop: []string{"ALL"}},
		Mounts:   []report.Mount{{ContainerPath: "/etc/nginx", HostPath: "/var/lib/kubelet/x", ReadOnly: true}},
	}
	// Every expression must be true; each names the behaviour it pins down.
	passing := []string{
		// file(): stat data, content, hash, links resolved inside the root
		`file("/etc/passwd").exists && file("/etc/passwd").is_file && file("/etc/passwd").type == "file"`,
		`file("/etc/passwd").mode == octal("0644") && file("/etc/passwd").mode_octal == "0644"`,
		`file("/etc/passwd").uid == 0 && file("/etc/passwd").owner == "root" && file("/etc/passwd").group == "root"`,
		`file("/srv/e.txt").owner == "app" && file("/srv/e.txt").group == "app" && file("/srv/e.txt").world_writable`,
		`file("/usr/bin/tool").setuid && !file("/usr/bin/tool").setgid && file("/usr/bin/tool").mode_octal == "4755"`,
		`mode_exceeds(file("/usr/bin/tool").mode, "0755") && !mode_exceeds(file("/etc/passwd").mode, "0644")`,
		`file("/tmp").sticky && file("/tmp").is_directory`,
		`file("/etc/os-release").content.contains("VERSION_ID") && file("/etc/os-release").size == 60`,
		`file("/srv/e.txt").sha256 == "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea"`,
		`!file("/nope").exists && file("/nope").type == "" && !file("/nope").is_file`,
		`file("/etc/localtime").is_symlink && file("/etc/localtime").type == "symlink" && file("/etc/localtime").link_target == "/usr/share/zoneinfo/UTC"`,
		`file("/etc/localtime").resolved_path == "/usr/share/zoneinfo/UTC" && file("/etc/localtime").content == "TZif" && file("/etc/localtime").is_file`,
		// "..": a link climbing out of the root stays inside it (chroot semantics)
		`file("/etc/escape").resolved_path == "/etc/passwd" && file("/etc/escape").content.startsWith("root:x:0:0")`,
		`file("../../etc/passwd").path == "/etc/passwd"`,
		// a link in the directories: /bin -> usr/bin
		`file("/bin/sh").exists && file("/bin/sh").resolved_path == "/usr/bin/sh"`,
		// directory()
		`directory("/srv").entries == ["a", "e.txt"] && directory("/srv").is_directory`,
		// glob()
		`glob("/srv/*/*.conf") == ["/srv/a/d.conf"]`,
		`glob("/srv/**/*.conf") == ["/srv/a/b/c.conf", "/srv/a/d.conf"]`,
		`glob("/etc/app.*") == ["/etc/app.ini", "/etc/app.json", "/etc/app.toml", "/etc/app.yaml"]`,
		`glob("/bin/s?") == ["/bin/sh"]`,
		`glob("/none/*") == []`,
		// files()
		`files("/srv").map(f, f.path) == ["/srv", "/srv/a", "/srv/a/b", "/srv/a/b/c.conf", "/srv/a/d.conf", "/srv/e.txt"]`,
		`files("/").filter(f, f.setuid).map(f, f.path) == ["/usr/bin/tool"]`,
		`files("/").filter(f, f.path == "/bin")[0].type == "symlink" && !files("/").filter(f, f.path == "/bin")[0].world_writable`,
		`files("/srv").filter(f, f.path == "/srv/a/d.conf")[0].content == "d"`,
		// which(): the image's PATH first, then the defaults, links followed
		`which("sh") == ["/usr/bin/sh", "/bin/sh"] && which("tool") == ["/usr/bin/tool", "/bin/tool"] && which("nope") == []`,
		// parse_config()
		`parse_config("/etc/os-release", "keyvalue") == {"ID": "debian", "VERSION_ID": "12", "NAME": "Debian GNU/Linux"}`,
		`parse_config("/etc/app.ini", "ini")["server"]["port"] == "8080" && parse_config("/etc/app.ini", "ini")["server"]["host"] == "example" && parse_config("/etc/app.ini", "ini")[""]["top"] == "1"`,
		`parse_config("/etc/app.yaml", "yaml").server.port == 8080 && parse_config("/etc/app.yaml", "yaml").server.tls && parse_config("/etc/app.yaml", "yaml").users == ["a", "b"]`,
		`parse_config("/etc/app.json", "json").port == 8080 && parse_config("/etc/app.json", "json").ratio == 0.5`,
		`parse_config("/etc/app.toml", "toml").server.port == 8080 && parse_config("/etc/app.toml", "toml").title == "t"`,
		`parse_config("/etc/ssh/sshd_config", "sshd") == {"permitrootlogin": "no", "passwordauthentication": "yes", "match": [{"criteria": "User x", "conditions": {"user": "x"}, "settings": {"passwordauthentication": "no"}}]}`,
		`parse_config("/etc/login.defs", "login.defs").PASS_MAX_DAYS == "90"`,
		// users(), groups(), shadow
		`users().map(u, u.name) == ["root", "app", "toor"] && users().filter(u, u.uid == 0).size() == 2`,
		`users().filter(u, u.name == "app")[0].has_password && !users().filter(u, u.name == "root")[0].has_password`,
		`users()[0].shell == "/bin/bash" && users()[1].home == "/home/app"`,
		`groups().filter(g, g.name == "app")[0].members == ["app", "other"] && groups()[0].gid == 0`,
		// packages() from the inventory
		`packages().map(p, p.name) == ["gcc-12"] && packages()[0].ecosystem == "Debian"`,
		// image config, security context, mounts
		`image_config().known && image_config().user == "app" && image_config().uid == 1000 && image_config().env["A"] == "b"`,
		`image_config().exposed_ports == ["8080/tcp"] && image_config().labels == {"k": "v"} && image_config().entrypoint == []`,
		`security_context().known && security_context().run_as_user == 1000 && security_context().read_only_root_filesystem`,
		`security_context().capabilities_drop == ["ALL"] && security_context().allow_privilege_escalation && !security_context().privileged`,
		`effective_uid() == 1000`,
		`mounts()[0].container_path == "/etc/nginx" && mounts()[0].read_only`,
	}
	for _, expr := range passing {
		r := evalExpr(t, f.root, target, nil, expr)
		if r.Status != report.ControlPassed {
			t.Errorf("%s\n  got %s: %s", expr, r.Status, r.Message)
		}
	}

	// Errors are results with a reason, never a crash; each message names the cause.
	errs := map[string]string{
		`file("/nope").mode == 0`:                      "does not exist",
		`file("/etc/loop1").exists`:                    "too many levels of symbolic links",
		`file("/srv").content == ""`:                   "not a regular file",
		`directory("/etc/passwd").entries == []`:       "not a directory",
		`parse_config("/etc/app.json", "yaml2") == {}`: "unknown config format",
		`parse_config("/etc/missing", "json") == {}`:   "does not exist",
		`parse_config("/etc/app.ini", "json") == {}`:   "json:",
		`glob("/srv/[") == []`:                         "syntax error in pattern",
		`octal("9") == 0`:                              "not an octal number",
	}
	for expr, want := range errs {
		r := evalExpr(t, f.root, target, nil, expr)
		if r.Status != report.ControlError || !strings.Contains(r.Message, want) {
			t.Errorf("%s\n  got %s: %s\n  want error containing %q", expr, r.Status, r.Message, want)
		}
	}
}

// No expression runs unbounded: CEL's cost limit (charged for resource results too) and the check timeout stop it.
func TestCostAndTimeBounds(t *testing.T) {
	f := newFixture(t, testFiles)
	r := evalWith(t, Limits{CostLimit: 500}, f.root, report.Target{}, nil, `files("/").map(a, files("/").map(b, a.path + b.path)).size() > 0`)
	if r.Status != report.ControlError || !strings.Contains(r.Message, "cost limit exceeded") {
		t.Fatalf("got %s: %s", r.Status, r.Message)
	}
	r = evalWith(t, Limits{CheckTimeout: 50 * time.Millisecond, CostLimit: 1 << 62}, f.root, report.Target{}, nil,
		`[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, [1,2,3,4,5,6,7,8,9,10].all(e, [1,2,3,4,5,6,7,8,9,10].all(g, [1,2,3,4,5,6,7,8,9,10].all(h, a+b+c+d+e+g+h > 0)))))))`)
	if r.Status != report.ControlError || !strings.Contains(r.Message, "deadline exceeded") {
		t.Fatalf("got %s: %s", r.Status, r.Message)
	}
}

func TestContentBound(t *testing.T) {
	f := newFixture(t, map[string]string{"big": strings.Repeat("x", 5<<20)})
	r := evalExpr(t, f.root, report.Target{}, nil, `file("/big").content != ""`)
	if r.Status != report.ControlError || !strings.Contains(r.Message, "exceeds size limit") {
		t.Fatalf("got %s: %s", r.Status, r.Message)
	}
	// The hash streams, so it has its own, larger bound.
	r = evalExpr(t, f.root, report.Target{}, nil, `file("/big").sha256.size() == 64`)
	if r.Status != report.ControlPassed {
		t.Fatalf("got %s: %s", r.Status, r.Message)
	}
}

// A ConfigMap-like volume over /etc/nginx: controls see its files, through its own ..data link, confined to it.
func TestVolumes(t *testing.T) {
	img := newFixture(t, map[string]string{"etc/nginx/nginx.conf": "image version\n", "etc/hosts": "h"})
	cm := newFixture(t, map[string]string{
		"..2024_01_01/nginx.conf": "server_tokens off;\n",
		"..data":                  "->..2024_01_01",
		"nginx.conf":              "->..data/nginx.conf",
		"escape":                  "->/../../etc/hosts",
	})
	single := newFixture(t, map[string]string{"token": "s3cr3t"})
	vols := []Volume{{ContainerPath: "/etc/nginx", FS: cm.root}, {ContainerPath: "/run/secrets/token", FS: single.root, Sub: "token"}}
	for _, expr := range []string{
		`file("/etc/nginx/nginx.conf").content == "server_tokens off;\n"`,
		`file("/etc/nginx/nginx.conf").is_symlink && file("/etc/nginx/nginx.conf").resolved_path == "/etc/nginx/..2024_01_01/nginx.conf"`,
		`directory("/etc/nginx").entries == ["..2024_01_01", "..data", "escape", "nginx.conf"]`,
		`file("/run/secrets/token").content == "s3cr3t"`,
		`file("/etc/hosts").content == "h"`,
		// A link inside the volume to an absolute path means the container's path, as the kernel would resolve it.
		`file("/etc/nginx/escape").resolved_path == "/etc/hosts" && file("/etc/nginx/escape").content == "h"`,
		// files() walks the image only: volumes are not the image.
		`files("/etc/nginx").map(f, f.path) == ["/etc/nginx", "/etc/nginx/nginx.conf"]`,
	} {
		r := evalExpr(t, img.root, report.Target{}, vols, expr)
		if r.Status != report.ControlPassed {
			t.Errorf("%s\n  got %s: %s", expr, r.Status, r.Message)
		}
	}
}

func TestFailureMessages(t *testing.T) {
	f := newFixture(t, testFiles)
	cases := map[string]string{
		`users().filter(u, u.uid == 0 && u.name != "root").map(u, u.name) == []`: `observed ["toor"]`,
		`file("/etc/passwd").size < 10`:                                          "observed 95",
		`file("/etc/passwd").is_directory`:                                       `expected true: file("/etc/passwd").is_directory`,
	}
	for expr, want := range cases {
		r := evalExpr(t, f.root, report.Target{}, nil, expr)
		if r.Status != report.ControlFailed || !strings.Contains(r.Message, want) || len(r.Checks) != 1 || r.Checks[0].Message == "" {
			t.Errorf("%s\n  got %s: %s\n  want failure with %q", expr, r.Status, r.Message, want)
		}
	}
}

func TestProfileErrors(t *testing.T) {
	l, err := NewLoader(Limits{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ doc, want string }{
		{"name: p\ncontrols:\n  - id: a\n    checks:\n      - expr: file(\"/x\").contnet == \"\"\n", `p.yaml:5: control a check 1: undefined field 'contnet'`},
		{"name: p\ncontrols:\n  - id: a\n    checks:\n      - expr: |\n          true &&\n          file(1).exists\n", `p.yaml:7: control a check 1: found no matching overload for 'file' applied to '(int)'`},
		{"name: p\ncontrols:\n  - id: a\n    checks:\n      - expr: 'file(\"/x\").size'\n", `p.yaml:5: control a check 1: expression is int, want bool`},
		{"name: p\ncontrols:\n  - id: a\n    checks:\n      - expr: 'true &&'\n", `p.yaml:5: control a check 1: Syntax error`},
		{"name: p\ncontrols:\n  - id: a\n    impact: 2\n    checks:\n      - expr: 'true'\n", `p.yaml:3: control a: impact 2 is outside 0.0-1.0`},
		{"name: p\ncontrols:\n  - id: a\n    checks: []\n", `p.yaml:3: control a has no checks`},
		{"name: p\ncontrols:\n  - id: a\n    checks:\n      - expr: 'true'\n  - id: a\n    checks:\n      - expr: 'true'\n", `p.yaml:6: control id "a" already used at line 3`},
		{"name: p\ncontrols:\n  - id: a\n    onlyif: 'true'\n    checks:\n      - expr: 'true'\n", `p.yaml:4: field onlyif not found in type compliance.rawControl`},
		{"name: p\ncontrols:\n  - id: a\n    only_if: 'users()'\n    checks:\n      - expr: 'true'\n", `p.yaml:4: control a only_if: expression is list(rootscan.User), want bool`},
		{"controls: [", `p.yaml:1: did not find expected node content`},
	}
	for _, c := range cases {
		_, err := l.Parse("p.yaml", []byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q\n  got %v\n  want %q", c.doc, err, c.want)
		}
	}
	names := BuiltinNames()
	if len(names) != 1 || names[0] != Baseline {
		t.Fatalf("builtins %v", names)
	}
	ps, err := l.Load(Baseline)
	if err != nil || len(ps[0].Controls) != 12 {
		t.Fatalf("baseline: %v", err)
	}
	for _, c := range ps[0].Controls {
		if len(c.Tags["nist"]) == 0 || c.Descriptions[0].Label != "check" || c.Line == 0 || !strings.Contains(c.Code, c.ID) {
			t.Errorf("control %s lacks NIST tags, descriptions, line or code", c.ID)
		}
	}
}

func TestWaivers(t *testing.T) {
	f := newFixture(t, testFiles)
	l, _ := NewLoader(Limits{})
	p, err := l.Parse("p.yaml", []byte("name: p\ncontrols:\n"+
		"  - {id: a, impact: 0.7, checks: [{expr: 'false'}]}\n"+
		"  - {id: b, impact: 0.7, checks: [{expr: 'false'}]}\n"+
		"  - {id: c, impact: 0.7, checks: [{expr: 'false'}]}\n"+
		"  - {id: d, impact: 0.1, checks: [{expr: 'true'}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := ParseWaivers("w.yaml", []byte("a:\n  justification: accepted risk\n  expiration_date: 2026-03-01\n  run: false\n"+
		"b:\n  justification: old\n  expiration_date: 2026-02-28\n"+
		"c:\n  justification: forever\n"))
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(l, []*Profile{p})
	e.Waivers = w
	e.Now = func() time.Time { return time.Date(2026, 3, 1, 23, 0, 0, 0, time.UTC) }
	var got []string
	for _, r := range e.Evaluate(context.Background(), f.root, report.Target{}, nil, nil) {
		got = append(got, fmt.Sprintf("%s %s %s %s checks=%d waived=%v", r.ID, r.Status, r.Severity, r.Message, len(r.Checks), r.Waiver != nil))
	}
	want := []string{
		"a skipped HIGH waived: accepted risk (until 2026-03-01) checks=0 waived=true",
		"b failed HIGH waiver expired on 2026-02-28; check 1 (false): expected true: false checks=1 waived=false",
		"c skipped HIGH waived: forever; control failed: check 1 (false): expected true: false checks=1 waived=true",
		"d passed LOW  checks=1 waived=false",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, bad := range []string{"a: {expiration_date: 2026-01-01}\n", "a: {justification: x, expiration_date: soon}\n", "a: {justification: x, run: maybe}\n"} {
		if _, err := ParseWaivers("w.yaml", []byte(bad)); err == nil {
			t.Errorf("waiver %q accepted", bad)
		}
	}
}

func TestScope(t *testing.T) {
	s, err := ParseScope("s.yaml", []byte("scopes:\n  - profiles: [web]\n    namespaces: [prod]\n    labels: {app: nginx}\n  - profiles: [web]\n    namespaces: [staging]\n"))
	if err != nil {
		t.Fatal(err)
	}
	ps := []*Profile{{Name: "base"}, {Name: "web"}}
	cases := []struct {
		t    report.Target
		want string
	}{
		{report.Target{Namespace: "prod", PodLabels: map[string]string{"app": "nginx", "x": "y"}}, "base web"},
		{report.Target{Namespace: "prod", PodLabels: map[string]string{"app": "redis"}}, "base"},
		{report.Target{Namespace: "staging"}, "base web"},
		{report.Target{Kind: "dir"}, "base"},
	}
	for _, c := range cases {
		var names []string
		for _, p := range s.Select(ps, c.t) {
			names = append(names, p.Name)
		}
		if strings.Join(names, " ") != c.want {
			t.Errorf("%+v: got %v, want %s", c.t, names, c.want)
		}
	}
	if _, err := ParseScope("s.yaml", []byte("scopes:\n  - namespaces: [a]\n")); err == nil {
		t.Error("scope without profiles accepted")
	}
}

func TestImpactSeverity(t *testing.T) {
	for impact, want := range map[float64]report.Severity{1: "CRITICAL", 0.9: "CRITICAL", 0.7: "HIGH", 0.5: "MEDIUM", 0.4: "MEDIUM", 0.1: "LOW", 0: "NONE"} {
		if got := ImpactSeverity(impact); got != want {
			t.Errorf("%v: got %s want %s", impact, got, want)
		}
	}
}
