package vuln

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/rootscan/rootscan/report"
)

// Status tells JSON consumers whether vulnerabilities were checked, and against what: an empty vulnerability list
// means "none known" only when Checked is true.
type Status struct {
	Checked    bool      `json:"checked"`
	Path       string    `json:"path,omitempty"`
	Built      time.Time `json:"built,omitzero"`
	Advisories int       `json:"advisories,omitempty"`
	Reason     string    `json:"reason,omitempty"`
}

// Enricher adds a report's vulnerabilities from the inventory alone: it matches against the Store's current
// database, applies the VEX documents and keeps the findings the severity filter passes. Nothing of the scanned
// filesystem is read, so the daemon runs it again on every report when the database or VEX changes, and the one-shot
// scan runs the same code once per target.
type Enricher struct {
	store  *Store
	filter report.SeverityFilter
	vexDir string
	vex    atomic.Pointer[VEX]
}

// NewEnricher matches against store (nil: no database, the reports stay as they are) and loads the VEX documents of
// vexDir ("" for none). filter's zero value keeps every finding. The enricher owns the store from here on.
func NewEnricher(store *Store, vexDir string, filter report.SeverityFilter) (*Enricher, error) {
	e := &Enricher{store: store, filter: filter, vexDir: vexDir}
	if err := e.ReloadVEX(); err != nil {
		return nil, err
	}
	return e, nil
}

// ReloadVEX reads the VEX documents again (the daemon's SIGHUP); on error the previous ones stay in use.
func (e *Enricher) ReloadVEX() error {
	if e.vexDir == "" {
		return nil
	}
	x, err := LoadVEX(e.vexDir)
	if err != nil {
		return fmt.Errorf("load VEX %s: %w", e.vexDir, err)
	}
	e.vex.Store(x)
	return nil
}

// ReloadDB picks up a replaced database file (see Store.Reload) and reports whether it swapped. A database that is
// (still) missing is no error.
func (e *Enricher) ReloadDB() (bool, error) {
	if e.store == nil {
		return false, nil
	}
	swapped, err := e.store.Reload()
	if errors.Is(err, ErrNoDatabase) {
		return false, nil
	}
	return swapped, err
}

// Current is the database in use, nil when there is none.
func (e *Enricher) Current() *DB {
	if e.store == nil {
		return nil
	}
	return e.store.Current()
}

// Status describes the database in use; dir is where it was looked for, named when there is none.
func (e *Enricher) Status(dir string) Status {
	db := e.Current()
	if db == nil {
		return Status{Reason: "no usable vulnerability database in " + dir}
	}
	info := db.Info()
	return Status{Checked: true, Path: db.Path(), Built: info.Built, Advisories: info.Advisories}
}

// Enrich replaces rep's vulnerabilities with the current database's matches. Without a database it leaves the report
// as it is. A failed match is one error of the result, like an analyzer's, never the loss of the report.
func (e *Enricher) Enrich(ctx context.Context, rep *report.Report) error {
	res := rep.Result
	if res == nil || e.Current() == nil {
		return nil
	}
	res.Vulnerabilities = nil
	if err := e.store.Match(ctx, res); err != nil {
		res.Errors = append(res.Errors, report.FileError{Analyzer: "vuln", Err: err.Error()})
		return nil
	}
	e.vex.Load().Apply(rep.Target, res.Vulnerabilities)
	res.Vulnerabilities = slices.DeleteFunc(res.Vulnerabilities, func(v report.Vulnerability) bool { return !e.filter.Keep(v.Severity) })
	return nil
}

// Close closes the database.
func (e *Enricher) Close() error {
	if e.store == nil {
		return nil
	}
	return e.store.Close()
}

// OpenFindings counts the vulnerabilities of reports that no VEX statement suppressed: what --exit-code gates on.
func OpenFindings(reports []report.Report) int {
	open := 0
	for _, r := range reports {
		if r.Result == nil {
			continue
		}
		for _, v := range r.Result.Vulnerabilities {
			if v.Suppressed == nil {
				open++
			}
		}
	}
	return open
}
