package main

import (
	"log/slog"

	"github.com/rootscan/rootscan/scan"
)

// analyzerOptions are the options every command builds its analyzers with. rpm databases are parsed in a child
// process (the rootscan binary re-run with scan.RPMChildCommand, dispatched in main): go-rpmdb panics and loops in
// goroutines of its own, and a hostile image must not be able to end or wedge a scan or the daemon.
func analyzerOptions(log *slog.Logger) []scan.AnalyzerOption {
	return []scan.AnalyzerOption{scan.WithRPMParser(&scan.RPMSubprocess{Log: log})}
}
