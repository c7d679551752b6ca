package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// The daemon's database feed settings come from flags or the --config file; "dbRefresh: 0s" in the file turns the
// schedule off rather than falling back to the default.
func TestDaemonDBFeedConfig(t *testing.T) {
	parse := func(file string, args ...string) *daemonConfig {
		t.Helper()
		c := &daemonConfig{}
		fs := pflag.NewFlagSet("daemon", pflag.ContinueOnError)
		c.register(fs)
		if file != "" {
			p := filepath.Join(t.TempDir(), "daemon.yaml")
			if err := os.WriteFile(p, []byte(file), 0o644); err != nil {
				t.Fatal(err)
			}
			args = append(args, "--config", p)
		}
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if err := c.mergeFile(fs); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := parse(""); len(c.DBFeed.URLs) != 0 || c.DBFeed.Refresh != 6*time.Hour || c.DBFeed.InsecureHTTP {
		t.Errorf("defaults: %+v", c.DBFeed)
	}
	file := "dbURLs: [https://mirror/Debian/all.zip, https://mirror/Go/all.zip]\ndbRefresh: 0s\ndbCAFile: /etc/ca.pem\ndbInsecureHTTP: true\ndbChecksumSuffix: .sha256\n"
	c := parse(file)
	f := c.DBFeed
	if !slices.Equal(f.URLs, []string{"https://mirror/Debian/all.zip", "https://mirror/Go/all.zip"}) || f.Refresh != 0 ||
		f.CAFile != "/etc/ca.pem" || !f.InsecureHTTP || f.ChecksumSuffix != ".sha256" {
		t.Errorf("from the file: %+v", f)
	}
	if c := parse("dbURLs: [https://mirror/Go/all.zip]\n"); c.DBFeed.Refresh != 6*time.Hour {
		t.Errorf("file without dbRefresh: %v, want the default", c.DBFeed.Refresh)
	}
	c = parse(file, "--db-url", "https://other/all.zip", "--db-refresh", "1h")
	if !slices.Equal(c.DBFeed.URLs, []string{"https://other/all.zip"}) || c.DBFeed.Refresh != time.Hour {
		t.Errorf("flags over the file: %+v", c.DBFeed)
	}
}

// A plain http --db-url, or a CA file without a certificate, stops the daemon at start with what is wrong, before
// it dials the runtime.
func TestDaemonDBFeedRefused(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(bad, []byte("nothing\n"), 0o600)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--db-url", "http://mirror/all.zip"}, "plain http refused"},
		{[]string{"--db-url", "ftp://mirror/all.zip", "--db-insecure-http"}, "unsupported URL scheme"},
		{[]string{"--db-url", "https://mirror/all.zip", "--db-ca-file", bad}, "no PEM certificate"},
		{[]string{"--db-url", "https://mirror/all.zip", "--db-refresh", "-1h"}, "--db-refresh"},
	} {
		_, stderr, code := run(t, append([]string{"daemon", "--runtime-endpoint", "unix:///nonexistent/cri.sock",
			"--state-dir", t.TempDir(), "--db", t.TempDir()}, c.args...)...)
		if code != exitFatal || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want a usage error saying %q", c.args, code, stderr, c.want)
		}
	}
}

// The daemon flags of deploy/kustomize/vulndb-mirror (which the Helm chart renders the same, deploy/ tests) are
// flags the daemon has, with the meaning the example's comments give them.
func TestDeployVulnDBExampleParses(t *testing.T) {
	b, err := os.ReadFile("../../../../deploy/kustomize/vulndb-mirror/vulndb.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ops []struct {
		Path  string `yaml:"path"`
		Value any    `yaml:"value"`
	}
	if err := yaml.Unmarshal(b, &ops); err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, op := range ops {
		if s, ok := op.Value.(string); ok && strings.HasSuffix(op.Path, "/args/-") {
			args = append(args, s)
		}
	}
	c := &daemonConfig{}
	fs := pflag.NewFlagSet("daemon", pflag.ContinueOnError)
	c.register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	f := c.DBFeed
	if len(f.URLs) != 2 || f.Refresh != 6*time.Hour || f.CAFile != "/etc/rootscan-db-ca/ca.crt" || c.DB != "/var/lib/rootscan/db" {
		t.Errorf("example's flags read as %+v (db %s)", f, c.DB)
	}
	if err := (&dbFeedConfig{URLs: f.URLs}).check(); err != nil {
		t.Errorf("example's URLs refused: %v", err)
	}
}
