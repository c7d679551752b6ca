package cli

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/rootscan/rootscan/exporter"
)

// forwardFlags are `scan`'s one-shot SIEM forwarding (exporter.Forward): the scan's findings go to each --sink as events.
type forwardFlags struct {
	sinks    []string
	stateDir string
	timeout  time.Duration
}

func (f *forwardFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.sinks, "sink", nil, "send findings as SIEM events to this sink (repeatable): stdout, file:/path, syslog+udp|tcp|tls://host[:port], http(s)://host/path, with ?format=ecs|ocsf|cef|json and the options in the README")
	fs.StringVar(&f.stateDir, "state-dir", "", "with --sink: keep the last findings and undelivered events here, so the next scan sends only changes (default: a temporary directory, every open finding is sent)")
	fs.DurationVar(&f.timeout, "sink-timeout", 30*time.Second, "with --sink: how long to wait for the sinks to take every event")
}

// check parses every --sink before anything is scanned, so a typo fails at once (exit 2), not after the scan.
func (f *forwardFlags) check() error {
	if err := exporter.CheckSinks(f.sinks); err != nil {
		return usageError{fmt.Sprintf("--sink: %v", err)}
	}
	if f.stateDir != "" && len(f.sinks) == 0 {
		return usageError{"--state-dir needs --sink"}
	}
	return nil
}
