package cli

import (
	"os"
	"runtime/debug"
)

// gcPercent is the garbage collector's target (GOGC) for scan, sbom and the daemon. Their live heap is small next to
// what they allocate and drop: the one-shot commands hold 2-3 MiB (the inventory, the walk's current directory)
// while allocating about 45 MB of short-lived names and file infos on the 505-package debian-apps root; the daemon
// holds 10-13 MB at 100 containers (gctrace) while every resync lists the runtime again. Go's default (GOGC=100) lets
// that garbage pile up to twice the live heap; 50 halves the slack. GOGC=25 or 33 saves nothing more. It is a
// complement to cutting the allocations (fsaccess, scan.ReadFile, the unowned-files line filter), not a substitute;
// GOMEMLIMIT, which the chart sets to the pod's limit, is a ceiling and does nothing at rest.
//
// Measured, one-shot (`scan --dir --no-baseline -o json` on debian-apps, 10 interleaved runs, 2 loaded cores): peak
// RSS 33.0 -> 31.1 MiB (median), CPU 0.254 -> 0.283 s (+11%). Daemon (BenchmarkDaemonNode, 100 containers, baseline
// on, two runs each): RSS at rest 66.3-67.0 -> 59.5-60.2 MiB, scan peak 63 -> 53-55 MiB, first-scan CPU 1.37-1.40
// -> 1.29-1.39 s (no cost seen).
const gcPercent = 50

// tuneGC applies gcPercent unless the user set GOGC, which always wins.
func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	debug.SetGCPercent(gcPercent)
}
