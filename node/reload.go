package node

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/rootscan/rootscan/compliance"
	"github.com/rootscan/rootscan/vuln"
)

// Reloader keeps a running daemon's findings current when what they are matched and checked against changes: a
// replaced vulnerability database (polled every Poll; `db update` swaps the file) re-publishes every container
// without reading any filesystem, and a hangup (SIGHUP) also re-reads VEX and the compliance profiles, whose change
// re-checks every container's root.
type Reloader struct {
	Daemon   *Daemon
	Vulns    *vuln.Enricher
	Profiles *compliance.Live
	// DBDir is where the database is looked for, named in the log when there is none.
	DBDir string
	// Health, when set, is told when the loaded database was built (it feeds the age alert); exporter.Health.
	Health interface{ SetVulnDB(built time.Time) }
	Poll   time.Duration
	Hangup <-chan os.Signal
	Log    *slog.Logger
}

// Run reloads until ctx ends.
func (r *Reloader) Run(ctx context.Context) {
	tick := time.NewTicker(max(r.Poll, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.Hangup:
			r.reloadAll(ctx)
		case <-tick.C:
			r.ReloadDB(ctx)
		}
	}
}

// ReloadDB picks up a replaced database at once and, when it swapped, re-matches every container from its cached
// inventory: the poll's work, also called by the daemon's own updater right after it swapped one in. Concurrent
// calls are safe; only the one that swaps re-publishes.
func (r *Reloader) ReloadDB(ctx context.Context) {
	swapped, err := r.Vulns.ReloadDB()
	if err != nil {
		r.logger().Warn("reload vulnerability database", "err", err)
	}
	if swapped {
		r.logger().Info("vulnerability database replaced; re-matching every container")
		r.NoteDB()
		r.Daemon.Republish(ctx)
	}
}

func (r *Reloader) reloadAll(ctx context.Context) {
	r.logger().Info("SIGHUP: reloading the vulnerability database, VEX and compliance profiles, re-publishing findings")
	if _, err := r.Vulns.ReloadDB(); err != nil {
		r.logger().Warn("reload vulnerability database", "err", err)
	}
	if err := r.Vulns.ReloadVEX(); err != nil {
		r.logger().Warn("reload VEX", "err", err)
	}
	r.NoteDB()
	r.Daemon.Republish(ctx)
	if changed, _ := r.Profiles.Reload(); changed {
		r.Daemon.Recheck() // profiles need the roots: every container is evaluated again
	}
}

// NoteDB tells the health metrics which database is loaded, and logs once when there is none: a daemon without a
// database still reports everything else.
func (r *Reloader) NoteDB() {
	st := r.Vulns.Status(r.DBDir)
	if r.Health != nil {
		r.Health.SetVulnDB(st.Built)
	}
	if !st.Checked {
		r.logger().Warn("no vulnerability database; vulnerabilities are not checked", "db", r.DBDir)
		return
	}
	r.logger().Info("vulnerability database loaded", "path", st.Path, "built", st.Built, "advisories", st.Advisories)
}

func (r *Reloader) logger() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}
