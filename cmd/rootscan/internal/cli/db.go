package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rootscan/rootscan/vuln"
)

// defaultDBDir is where the daemon and `rootscan scan` look for the vulnerability database (env ROOTSCAN_DB).
const defaultDBDir = "/var/lib/rootscan/db"

func (a *app) dbCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Build, update and inspect the offline vulnerability database",
		Long: `The vulnerability database is built from OSV records (osv.dev's all.zip archives, folders or files) and read
offline by 'scan' and 'daemon'. It lives in --db (default ` + defaultDBDir + `, env ROOTSCAN_DB).`,
		Args: cobra.ArbitraryArgs,
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{"db: want import, update or status"}
			}
			return usageError{fmt.Sprintf("db: unknown subcommand %q (want import, update or status)", args[0])}
		},
	}
	cmd.AddCommand(a.dbImportCommand(), a.dbUpdateCommand(), a.dbStatusCommand())
	return cmd
}

// dbFlag registers --db on a db subcommand.
func dbFlag(fs *pflag.FlagSet, dir *string) {
	fs.StringVar(dir, "db", defaultDBDir, "vulnerability database directory")
	withEnv(fs, nil, "db")
}

func (a *app) dbImportCommand() *cobra.Command {
	var dir string
	var appendDB bool
	cmd := &cobra.Command{
		Use:   "import PATH...",
		Short: "Build the database from OSV JSON files, folders or osv.dev all.zip archives",
		Long: `Import builds the database from local OSV files, folders and all.zip archives, replacing the previous one
(or, with --append, extending it). The database in use is swapped only once the new one is complete.`,
		Example: `  rootscan db import ~/Downloads/Debian-all.zip ~/Downloads/Go-all.zip
  rootscan db import --append ./extra-advisories/`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{"db import: give OSV files, folders or .zip archives"}
			}
			code, err := dbImport(cmd.Context(), dir, appendDB, args, a.stdout, a.stderr)
			a.code = code
			return err
		},
	}
	dbFlag(cmd.Flags(), &dir)
	cmd.Flags().BoolVar(&appendDB, "append", false, "add the records to the existing database instead of replacing it (a record replaces one with its id only when modified later)")
	return cmd
}

func dbImport(ctx context.Context, dir string, appendDB bool, paths []string, stdout, stderr io.Writer) (int, error) {
	start := time.Now()
	b, err := vuln.NewBuilder(dir)
	if err != nil {
		return exitFatal, err
	}
	if appendDB {
		n, err := b.ImportExisting(ctx, dir)
		if err != nil {
			b.Abort()
			return exitFatal, fmt.Errorf("%w (database left unchanged)", err)
		}
		fmt.Fprintf(stdout, "%s: %d advisories kept\n", dir, n)
	}
	for _, p := range paths {
		st, err := b.ImportPath(ctx, p, vuln.Limits{})
		if err != nil {
			b.Abort()
			return exitFatal, fmt.Errorf("%w (database left unchanged)", err)
		}
		fmt.Fprintf(stdout, "%s: %d records, %d stored, %d withdrawn, %d bad\n", p, st.Records, st.Stored, st.Withdrawn, st.BadRecords)
		for _, e := range st.Errors {
			fmt.Fprintf(stderr, "rootscan: skipped %s\n", e)
		}
	}
	info, err := b.Commit()
	if err != nil {
		return exitFatal, err
	}
	fmt.Fprintf(stdout, "database %s: %d advisories for %d packages, built in %s\n", dir, info.Advisories, info.Packages, time.Since(start).Round(time.Millisecond))
	return exitOK, nil
}

func (a *app) dbUpdateCommand() *cobra.Command {
	var dir, logLevel, suffix, caFile string
	var urls, sums []string
	var insecure bool
	cmd := &cobra.Command{
		Use:   "update --url URL...",
		Short: "Fetch OSV archives (ETag/If-Modified-Since) and swap the database in",
		Example: `  rootscan db update --url https://osv-vulnerabilities.storage.googleapis.com/Debian/all.zip \
    --url https://osv-vulnerabilities.storage.googleapis.com/Go/all.zip

  # a mirror that publishes all.zip.sha256 beside each archive
  rootscan db update --url https://mirror.example/osv/Debian/all.zip --checksum-suffix .sha256`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(urls) == 0 {
				return usageError{"db update: --url is required"}
			}
			log, err := newLogger(logLevel, a.stderr)
			if err != nil {
				return err
			}
			pins, err := parseSHA256Pins(sums, urls)
			if err != nil {
				return err
			}
			client, err := vuln.FeedClient(caFile)
			if err != nil {
				return usageError{"--ca-file: " + err.Error()}
			}
			res, err := vuln.Update(cmd.Context(), dir, vuln.UpdateOptions{URLs: urls, Client: client, Log: log, InsecureHTTP: insecure, SHA256: pins, ChecksumSuffix: suffix})
			if err != nil {
				return err
			}
			if !res.Changed {
				fmt.Fprintf(a.stdout, "database %s is up to date (%d advisories)\n", dir, res.Info.Advisories)
				return nil
			}
			fmt.Fprintf(a.stdout, "database %s updated: %d advisories for %d packages\n", dir, res.Info.Advisories, res.Info.Packages)
			return nil
		},
	}
	fs := cmd.Flags()
	dbFlag(fs, &dir)
	fs.StringArrayVar(&urls, "url", nil, "OSV archive to build from, e.g. https://osv-vulnerabilities.storage.googleapis.com/Debian/all.zip (repeatable; all of them every time)")
	fs.BoolVar(&insecure, "insecure-http", false, "allow plain http:// URLs and redirects from https to http (refused by default: anyone on the path could serve an archive that lists nothing)")
	fs.StringArrayVar(&sums, "sha256", nil, "URL=HEX: refuse the archive of --url URL unless its SHA-256 is HEX (repeatable)")
	fs.StringVar(&suffix, "checksum-suffix", "", "fetch URL+suffix for each --url (e.g. .sha256, sha256sum's format) and refuse an archive whose SHA-256 differs")
	fs.StringVar(&caFile, "ca-file", "", "PEM CA bundle trusted for the --url servers instead of the system's (a mirror with a private CA)")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	withEnv(fs, nil, "log-level")
	return cmd
}

// parseSHA256Pins reads --sha256 URL=HEX values; the last '=' splits them, as a URL may hold one and a digest cannot.
// A pin for a URL that is not fetched is refused: it would be a typo that leaves the archive unchecked.
func parseSHA256Pins(vals, urls []string) (map[string]string, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	pins := make(map[string]string, len(vals))
	for _, v := range vals {
		i := strings.LastIndexByte(v, '=')
		if i <= 0 {
			return nil, usageError{fmt.Sprintf("--sha256 %q: want URL=HEX", v)}
		}
		url, sum := v[:i], strings.ToLower(v[i+1:])
		if b, err := hex.DecodeString(sum); err != nil || len(b) != sha256.Size {
			return nil, usageError{fmt.Sprintf("--sha256 %q: %q is not a SHA-256 in hex (64 digits)", v, sum)}
		}
		if !slices.Contains(urls, url) {
			return nil, usageError{fmt.Sprintf("--sha256 %q: %s is not one of the --url values", v, url)}
		}
		pins[url] = sum
	}
	return pins, nil
}

func (a *app) dbStatusCommand() *cobra.Command {
	var dir, out string
	var maxAge time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "What the database holds and how old it is (exit 1 when older than --max-age)",
		Long: `Status says what database is loaded and how old it is. A database older than --max-age gives exit code 1,
so cron jobs and readiness checks notice a feed that stopped updating.`,
		Example: `  rootscan db status
  rootscan db status --max-age 24h -o json`,
		Args: noArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			code, err := dbStatus(dir, out, maxAge, a.stdout, a.stderr)
			a.code = code
			return err
		},
	}
	fs := cmd.Flags()
	shortAliases(fs)
	dbFlag(fs, &dir)
	fs.DurationVar(&maxAge, "max-age", 7*24*time.Hour, "warn (exit code 1) when the database was built longer ago than this")
	fs.StringVarP(&out, "output", "o", "text", "output: text or json")
	return cmd
}

func dbStatus(dir, out string, maxAge time.Duration, stdout, stderr io.Writer) (int, error) {
	db, err := vuln.Open(dir)
	if err != nil {
		return exitFatal, err
	}
	defer db.Close()
	info := db.Info()
	age := info.Age(time.Now())
	stale := maxAge > 0 && age > maxAge
	if out == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		doc := struct {
			Path       string  `json:"path"`
			AgeSeconds float64 `json:"ageSeconds"`
			Stale      bool    `json:"stale"`
			vuln.Info
		}{db.Path(), age.Seconds(), stale, info}
		if err := enc.Encode(doc); err != nil {
			return exitFatal, err
		}
	} else {
		writeDBStatus(stdout, db.Path(), info, age)
	}
	if stale {
		fmt.Fprintf(stderr, "rootscan: warning: vulnerability database is %s old (more than --max-age %s)\n", age.Round(time.Minute), maxAge)
		return exitPartial, nil
	}
	return exitOK, nil
}

func writeDBStatus(w io.Writer, path string, info vuln.Info, age time.Duration) {
	fmt.Fprintf(w, "database:   %s\n", path)
	fmt.Fprintf(w, "built:      %s (%s ago)\n", info.Built.Format(time.RFC3339), age.Round(time.Second))
	if !info.Newest.IsZero() {
		fmt.Fprintf(w, "newest:     %s (latest advisory change)\n", info.Newest.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "advisories: %d (%d withdrawn skipped), %d packages\n", info.Advisories, info.Withdrawn, info.Packages)
	for _, e := range info.Ecosystems {
		fmt.Fprintf(w, "  %-12s %d\n", e.Ecosystem, e.Advisories)
	}
	for _, s := range info.Sources {
		fmt.Fprintf(w, "source:     %s (%d records", s.Location, s.Records)
		if s.ETag != "" {
			fmt.Fprintf(w, ", etag %s", s.ETag)
		}
		fmt.Fprintln(w, ")")
	}
}
