package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rootscan/rootscan/vuln"
)

// defaultDBDir is where the daemon and `rootscan scan` look for the vulnerability database (env ROOTSCAN_DB).
const defaultDBDir = "/var/lib/rootscan/db"

func dbDirDefault() string { return envOr("ROOTSCAN_DB", defaultDBDir) }

// stringList is a repeatable flag (--url A --url B).
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// cmdDB runs `rootscan db import|update|status`.
func cmdDB(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	if len(args) == 0 {
		return exitFatal, usageError{"db: want import, update or status"}
	}
	switch args[0] {
	case "import":
		return cmdDBImport(ctx, args[1:], stdout, stderr)
	case "update":
		return cmdDBUpdate(ctx, args[1:], stdout, stderr)
	case "status":
		return cmdDBStatus(args[1:], stdout, stderr)
	}
	return exitFatal, usageError{fmt.Sprintf("db: unknown subcommand %q (want import, update or status)", args[0])}
}

func parseDBFlags(name string, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (*flag.FlagSet, string, error) {
	fs := flag.NewFlagSet("rootscan db "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("db", dbDirDefault(), "vulnerability database directory (env ROOTSCAN_DB)")
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, "", errHelp
		}
		return nil, "", usageError{err.Error()}
	}
	return fs, *dir, nil
}

// cmdDBImport builds the database from local OSV files, folders and all.zip archives, replacing the previous one
// (or, with --append, extending it).
func cmdDBImport(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	var appendDB bool
	fs, dir, err := parseDBFlags("import", args, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&appendDB, "append", false, "add the records to the existing database instead of replacing it (a record replaces one with its id only when modified later)")
	})
	if err != nil {
		return exitFatal, err
	}
	if fs.NArg() == 0 {
		return exitFatal, usageError{"db import: give OSV files, folders or .zip archives"}
	}
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
	for _, p := range fs.Args() {
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

// cmdDBUpdate fetches OSV archives and swaps in a new database when one changed.
func cmdDBUpdate(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	var urls stringList
	var logLevel string
	fs, dir, err := parseDBFlags("update", args, stderr, func(fs *flag.FlagSet) {
		fs.Var(&urls, "url", "OSV archive to build from, e.g. https://osv-vulnerabilities.storage.googleapis.com/Debian/all.zip (repeatable; all of them every time)")
		fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	})
	if err != nil {
		return exitFatal, err
	}
	if fs.NArg() > 0 {
		return exitFatal, usageError{"db update: unexpected arguments: " + strings.Join(fs.Args(), " ")}
	}
	if len(urls) == 0 {
		return exitFatal, usageError{"db update: --url is required"}
	}
	log, err := newLogger(logLevel, stderr)
	if err != nil {
		return exitFatal, err
	}
	res, err := vuln.Update(ctx, dir, vuln.UpdateOptions{URLs: urls, Log: log})
	if err != nil {
		return exitFatal, err
	}
	if !res.Changed {
		fmt.Fprintf(stdout, "database %s is up to date (%d advisories)\n", dir, res.Info.Advisories)
		return exitOK, nil
	}
	fmt.Fprintf(stdout, "database %s updated: %d advisories for %d packages\n", dir, res.Info.Advisories, res.Info.Packages)
	return exitOK, nil
}

// cmdDBStatus says what database is loaded and how old it is. A database older than --max-age gives exit code 1,
// so cron jobs and readiness checks notice a feed that stopped updating.
func cmdDBStatus(args []string, stdout, stderr io.Writer) (int, error) {
	var maxAge time.Duration
	var out string
	fs, dir, err := parseDBFlags("status", args, stderr, func(fs *flag.FlagSet) {
		fs.DurationVar(&maxAge, "max-age", 7*24*time.Hour, "warn (exit code 1) when the database was built longer ago than this")
		fs.StringVar(&out, "o", "text", "output: text or json")
	})
	if err != nil {
		return exitFatal, err
	}
	if fs.NArg() > 0 {
		return exitFatal, usageError{"db status: unexpected arguments: " + strings.Join(fs.Args(), " ")}
	}
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
		fmt.Fprintf(stdout, "database:   %s\n", db.Path())
		fmt.Fprintf(stdout, "built:      %s (%s ago)\n", info.Built.Format(time.RFC3339), age.Round(time.Second))
		if !info.Newest.IsZero() {
			fmt.Fprintf(stdout, "newest:     %s (latest advisory change)\n", info.Newest.Format(time.RFC3339))
		}
		fmt.Fprintf(stdout, "advisories: %d (%d withdrawn skipped), %d packages\n", info.Advisories, info.Withdrawn, info.Packages)
		for _, e := range info.Ecosystems {
			fmt.Fprintf(stdout, "  %-12s %d\n", e.Ecosystem, e.Advisories)
		}
		for _, s := range info.Sources {
			fmt.Fprintf(stdout, "source:     %s (%d records", s.Location, s.Records)
			if s.ETag != "" {
				fmt.Fprintf(stdout, ", etag %s", s.ETag)
			}
			fmt.Fprintln(stdout, ")")
		}
	}
	if stale {
		fmt.Fprintf(stderr, "rootscan: warning: vulnerability database is %s old (more than --max-age %s)\n", age.Round(time.Minute), maxAge)
		return exitPartial, nil
	}
	return exitOK, nil
}

// openVulnDB opens the database for a scan. With none (or a broken one) the scan still runs: it says so once on
// stderr and reports targets without vulnerability findings.
func openVulnDB(dir string, stderr io.Writer) *vuln.DB {
	db, err := vuln.Open(dir)
	if err != nil {
		if errors.Is(err, vuln.ErrNoDatabase) {
			fmt.Fprintf(stderr, "rootscan: vulnerabilities not checked: no database in %s (run 'rootscan db import' or 'rootscan db update', or set --db / ROOTSCAN_DB)\n", dir)
		} else {
			fmt.Fprintf(stderr, "rootscan: vulnerabilities not checked: %v\n", err)
		}
		return nil
	}
	return db
}
