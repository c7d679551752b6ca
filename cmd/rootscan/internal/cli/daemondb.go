package cli

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/rootscan/rootscan/exporter"
	"github.com/rootscan/rootscan/vuln"
)

// dbFeedConfig is how the daemon keeps its vulnerability database current itself (`db update` on a schedule):
// flags, and the same keys in the --config file.
type dbFeedConfig struct {
	URLs    []string      `yaml:"dbURLs"`
	Refresh time.Duration `yaml:"-"`
	// FileRefresh is dbRefresh in the file: a pointer, so "dbRefresh: 0s" (never) differs from leaving it out.
	FileRefresh    *time.Duration `yaml:"dbRefresh"`
	CAFile         string         `yaml:"dbCAFile"`
	InsecureHTTP   bool           `yaml:"dbInsecureHTTP"`
	ChecksumSuffix string         `yaml:"dbChecksumSuffix"`

	client *http.Client // set by check
}

func (c *dbFeedConfig) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&c.URLs, "db-url", nil, "OSV archive the daemon builds --db from and keeps current itself, e.g. https://osv-vulnerabilities.storage.googleapis.com/Debian/all.zip or an in-cluster mirror (repeatable; all of them every time, as db update --url)")
	fs.DurationVar(&c.Refresh, "db-refresh", 6*time.Hour, "how often the daemon updates the database from --db-url (±10% jitter; conditional requests, the old database kept on failure); 0 = only when there is none")
	fs.StringVar(&c.CAFile, "db-ca-file", "", "PEM CA bundle trusted for --db-url instead of the system's (a mirror with a private CA)")
	fs.BoolVar(&c.InsecureHTTP, "db-insecure-http", false, "allow plain http:// --db-url values and redirects to http (refused by default: anyone on the path could serve an archive that lists nothing)")
	fs.StringVar(&c.ChecksumSuffix, "db-checksum-suffix", "", "fetch URL+suffix for each --db-url (e.g. .sha256, sha256sum's format) and refuse an archive whose SHA-256 differs")
}

// merge fills what the command line did not set from the file's values.
func (c *dbFeedConfig) merge(fs *pflag.FlagSet, f *dbFeedConfig) {
	if !fs.Changed("db-url") && len(f.URLs) > 0 {
		c.URLs = f.URLs
	}
	if !fs.Changed("db-refresh") && f.FileRefresh != nil {
		c.Refresh = max(*f.FileRefresh, 0)
	}
	if !fs.Changed("db-ca-file") && f.CAFile != "" {
		c.CAFile = f.CAFile
	}
	if !fs.Changed("db-insecure-http") && f.InsecureHTTP {
		c.InsecureHTTP = true
	}
	if !fs.Changed("db-checksum-suffix") && f.ChecksumSuffix != "" {
		c.ChecksumSuffix = f.ChecksumSuffix
	}
}

// check refuses what no update could fix (a plain http URL without --db-insecure-http, a CA file without a
// certificate) before the daemon starts anything, and builds the feeds' HTTP client.
func (c *dbFeedConfig) check() error {
	if len(c.URLs) == 0 {
		return nil
	}
	if c.Refresh < 0 {
		return usageError{"--db-refresh: want a duration >= 0"}
	}
	if err := vuln.CheckFeedURLs(c.URLs, c.InsecureHTTP); err != nil {
		return usageError{"--db-url: " + err.Error()}
	}
	var err error
	if c.client, err = vuln.FeedClient(c.CAFile); err != nil {
		return usageError{"--db-ca-file: " + err.Error()}
	}
	return nil
}

// newRefresher builds the daemon's database updater, nil without --db-url. Its metrics go to reg; a database it
// swaps in is reloaded at once and every container re-matched from its cached inventory.
func (r *daemonRun) newRefresher(c *daemonConfig, reg prometheus.Registerer, log *slog.Logger) (*vuln.Refresher, error) {
	feed := c.DBFeed
	if len(feed.URLs) == 0 {
		return nil, nil
	}
	metrics := exporter.NewVulnDBMetrics(c.NodeName, func() (int, bool) {
		if db := r.vulns.Current(); db != nil {
			return db.Info().Advisories, true
		}
		return 0, false
	})
	if err := metrics.Register(reg); err != nil {
		return nil, err
	}
	return &vuln.Refresher{
		Dir:    c.DB,
		Update: vuln.UpdateOptions{URLs: feed.URLs, Client: feed.client, InsecureHTTP: feed.InsecureHTTP, ChecksumSuffix: feed.ChecksumSuffix, Log: log},
		Every:  feed.Refresh,
		Log:    log,
		OnResult: func(ctx context.Context, res vuln.UpdateResult, err error) {
			metrics.ObserveUpdate(err == nil, time.Now())
			if err == nil && res.Changed {
				r.reloader.ReloadDB(ctx)
			}
		},
	}, nil
}
