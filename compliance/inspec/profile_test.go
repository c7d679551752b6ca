package inspec

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func loadSite(t testing.TB) *Profile {
	t.Helper()
	p, err := Load(context.Background(), "testdata/site-baseline", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLoadProfile reads the test profile: metadata, every control's model, the unparsable file's controls and
// the overlay.
func TestLoadProfile(t *testing.T) {
	p := loadSite(t)
	if p.Name != "site-baseline" || p.Version != "1.2.0" || len(p.Inputs) != 2 || !p.Inputs[1].Sensitive ||
		!reflect.DeepEqual(p.Inputs[0].Value, []any{"root", "app"}) || p.Depends[0].Path != "../base" {
		t.Errorf("metadata %+v", p.Metadata)
	}
	ids := []string{}
	for _, c := range p.Controls {
		ids = append(ids, c.ID)
	}
	if got := strings.Join(ids, " "); got != "site-90 site-91 site-01 site-02 site-user-#{u} site-03 site-04 base-1" {
		t.Errorf("controls %s", got)
	}
	c := p.Controls[2]
	if c.Title != "passwd is owned by root" || *c.Impact != 0.7 || c.Line != 2 || c.File != "controls/files.rb" {
		t.Errorf("site-01 %+v", c)
	}
	wantTags := []Tag{{Key: "severity", Value: "high"}, {Key: "nist", Value: []any{"AC-6"}},
		{Key: "cis", Value: map[string]any{"level": int64(1)}}, {Key: "container"}}
	if !reflect.DeepEqual(c.Tags, wantTags) {
		t.Errorf("tags %#v", c.Tags)
	}
	if len(c.Descriptions) != 2 || c.Descriptions[1] != (Description{"check", "ls -l /etc/passwd"}) || c.Desc == "" {
		t.Errorf("descs %+v", c.Descriptions)
	}
	if !reflect.DeepEqual(c.Refs, []map[string]any{{"ref": "Site policy", "url": "https://example.invalid/policy"}}) {
		t.Errorf("refs %v", c.Refs)
	}
	if !strings.HasPrefix(c.Code, "control 'site-01' do\n") || !strings.HasSuffix(c.Code, "  end\nend\n") {
		t.Errorf("code %q", c.Code)
	}
	if len(c.Describes) != 1 || len(c.Describes[0].Checks) != 2 || c.Describes[0].Checks[1].Line != 12 {
		t.Errorf("describes %+v", c.Describes)
	}
	if g := p.Controls[3].Guards; len(g) != 1 || g[0].Message != "sshd is installed" || *p.Controls[3].Impact != 0.4 {
		t.Errorf("site-02 guards %+v", g)
	}
	if d := p.Controls[6].Describes; len(d) != 2 || !d[1].One || len(d[1].Nested) != 2 {
		t.Errorf("site-04 describes %+v", d)
	}
	if b := p.Controls[0]; b.Err == nil || !strings.Contains(b.Err.Error(), "controls/broken.rb:") || b.Line != 1 || p.Controls[1].Line != 6 {
		t.Errorf("broken file: %+v", b)
	}
	if in := p.Includes; len(in) != 1 || in[0].Profile != "base" || !reflect.DeepEqual(in[0].Skip, []string{"base-9"}) || !p.Controls[7].Overlay {
		t.Errorf("includes %+v", in)
	}
}

// TestCheck is the static classification of the test profile, with the line of each reason.
func TestCheck(t *testing.T) {
	p := loadSite(t)
	got := map[string]string{}
	for _, v := range p.Check(DefaultCatalog()) {
		got[v.Control.ID] = strings.Join(v.Reasons, "; ")
		if v.Run != (len(v.Reasons) == 0) {
			t.Errorf("%s: run %v with reasons %v", v.Control.ID, v.Run, v.Reasons)
		}
	}
	want := map[string]string{
		"site-01":        "",
		"site-02":        "",
		"site-user-#{u}": "",
		"site-03":        `controls/files.rb:33: command("systemctl is-active cron") needs exec in the target`,
		"site-04":        `controls/files.rb:46: ssh_policy (libraries/ssh_policy.rb:1) calls libraries/ssh_policy.rb:5: command("ssh -V") needs exec in the target`,
		"site-90":        "controls/broken.rb:1: the file does not parse: controls/broken.rb:3: expected",
		"site-91":        "controls/broken.rb:6: the file does not parse: controls/broken.rb:3: expected",
		"base-1":         "controls/overlay.rb:3: dependency base (path ../base) is outside the profile: run inspec vendor",
	}
	for id, w := range want {
		if !strings.HasPrefix(got[id], w) || (w == "" && got[id] != "") {
			t.Errorf("%s: %q, want %q", id, got[id], w)
		}
	}
}

// TestAnswerable checks which command lines the static check counts as answered from the filesystem: a pipeline
// of literal words (quotes and escapes removed by the shell parser) starting with a catalog program and going
// through filters, redirections only to /dev/null or between stdout and stderr.
func TestAnswerable(t *testing.T) {
	cl := &classifier{cat: DefaultCatalog()}
	for line, want := range map[string]bool{
		"which sshd": true, "/usr/bin/stat -c %a /etc/shadow": true, "grep -E '^root' /etc/passwd 2>/dev/null": true,
		"ls /etc | wc -l": true, `find / -xdev -type d \( -perm -0002 -a ! -perm -1000 \) -print 2>/dev/null`: true,
		`find /lib /usr/lib ! \-user root \-type f`:                                                      true,
		`find / -maxdepth 3 \( -iname .rhosts -o -iname .netrc \) -print 2>/dev/null | grep -v '^find:'`: true,
		"grep x /etc/passwd >/dev/null 2>&1":                                                             true,
		"cat $(echo x)":                                                                                  false, "X=1 ls": false, "find / -perm -4000 > /tmp/x": false,
		"sshd -T; true": false, "find / -newer /etc/passwd": false, "find lib64 -type f": false,
		"find / -exec ls {} +": false, "ls /etc | xargs ls": false, "cat ~/x": false, `grep "$HOME" /etc/passwd`: false,
		"ls /etc < /etc/passwd": false, "ssh -V 2>&1 | cut -f1": false,
	} {
		if got := cl.answerable(line); got != want {
			t.Errorf("%q: %v, want %v", line, got, want)
		}
	}
}

// TestArchive loads the profile from a tar.gz as `inspec archive` writes it (wrapped in a directory) and gets
// the same controls and checksum as from the directory; a member over the size bound fails the load.
func TestArchive(t *testing.T) {
	dir := p(t)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	filepath.WalkDir("testdata/site-baseline", func(name string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, _ := os.ReadFile(name)
		rel, _ := filepath.Rel("testdata", name)
		tw.WriteHeader(&tar.Header{Name: rel, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write(data)
		return nil
	})
	tw.Close()
	zw.Close()
	arch := filepath.Join(t.TempDir(), "site.tar.gz")
	if err := os.WriteFile(arch, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := Load(context.Background(), arch, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if a.SHA256 != dir.SHA256 || len(a.Controls) != len(dir.Controls) {
		t.Errorf("archive: %s %d controls, directory: %s %d", a.SHA256, len(a.Controls), dir.SHA256, len(dir.Controls))
	}
	if _, err := Load(context.Background(), arch, Limits{MaxFileBytes: 100}); err == nil || !strings.Contains(err.Error(), "larger than 100 bytes") {
		t.Errorf("bounded load: %v", err)
	}
}

func p(t *testing.T) *Profile { return loadSite(t) }

// TestChecksum pins the checksum algorithm on a small profile: entries sorted by name, each name NUL content
// NUL, with inspec.yml and the dependency map's YAML.
func TestChecksum(t *testing.T) {
	files := map[string][]byte{"inspec.yml": []byte("name: x\n"), "controls/a.rb": []byte("control 'a' do\nend\n"), "README.md": []byte("ignored")}
	// printf 'controls/a.rb\0control '"'"'a'"'"' do\nend\n\0inspec.lock.deps\0--- {}\n\0inspec.yml\0name: x\n\0' | sha256sum
	const want = "11c01207dec1a4907a7f8b15a20038ccde70a95d026a909db924fb8c3d82fae1"
	if got := Checksum(files, nil); got != want {
		t.Errorf("checksum %s, want %s", got, want)
	}
	if Checksum(files, map[string]string{"dep": "abc"}) == want {
		t.Error("the checksum does not depend on the dependencies")
	}
}
