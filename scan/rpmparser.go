package scan

import (
	"context"
	"time"

	rpmdb "github.com/knqyf263/go-rpmdb/pkg"
)

// RPMParser parses one rpm database file into go-rpmdb's records. It is an interface because where go-rpmdb runs is
// the caller's choice: in process (InProcessRPM) is cheap and fine for a one-off library call or a test, while a
// scanner that must outlive hostile images runs it in a child process (RPMSubprocess). path is always a private
// copy made by the analyzer (see rpmAnalyzer.readDB), never a path inside a scanned root.
type RPMParser interface {
	ParseRPMDB(ctx context.Context, path string) ([]*rpmdb.PackageInfo, error)
}

// InProcessRPM runs go-rpmdb in this process, behind rpmPreflight, a recover and a deadline. It cannot stop a
// panic in go-rpmdb's own goroutines (the process dies) nor a loop the preflight misses (the goroutine is abandoned
// and keeps spinning): that is what RPMSubprocess is for.
type InProcessRPM struct {
	// Timeout bounds one parse; 0 means 2 minutes.
	Timeout time.Duration
}

// ParseRPMDB implements RPMParser.
func (p InProcessRPM) ParseRPMDB(ctx context.Context, path string) ([]*rpmdb.PackageInfo, error) {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = rpmParseTimeout
	}
	return parseRPMDB(ctx, path, timeout, true)
}
