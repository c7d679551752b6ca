package node

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/rootscan/rootscan/cri"
)

// userHZ is the unit of /proc/<pid>/stat's start time: USER_HZ, 100 on every Linux architecture the scanner runs on
// (it is ABI, unlike the kernel's HZ).
const userHZ = 100

// startSlack absorbs the rounding between the kernel's clock-tick start time and the runtime's own timestamps.
const startSlack = time.Second

// statStartTicks is field 22 of a /proc/<pid>/stat line: when the process started, in clock ticks after boot. The
// command name (field 2) is in parentheses and may itself hold spaces and parentheses, so fields are counted from
// the last ')'.
func statStartTicks(stat []byte) (uint64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	f := bytes.Fields(stat[i+1:])
	const field = 22 - 3 // fields after the name start at 3 (state)
	if len(f) <= field {
		return 0, fmt.Errorf("stat: %d fields after the command name, want more than %d", len(f), field)
	}
	return strconv.ParseUint(string(f[field]), 10, 64)
}

// checkPidStart refuses a pid that is not the container's init: the runtime spawns the init between creating the
// container and recording it started, so a process that started after the container's start (a reused pid, after
// the init exited) or before its creation is another process, whose root would be read as the container's. boot is
// when the clock the ticks count from began.
func checkPidStart(c cri.Container, boot time.Time, ticks uint64) error {
	if c.StartedAt.IsZero() {
		return errors.New("the runtime does not say when the container started, so the pid cannot be told from a reused one")
	}
	started := boot.Add(time.Duration(ticks) * (time.Second / userHZ))
	if started.After(c.StartedAt.Add(startSlack)) || (!c.CreatedAt.IsZero() && started.Before(c.CreatedAt.Add(-startSlack))) {
		return fmt.Errorf("pid %d started at %s, not while the container started (created %s, started %s): the pid was reused",
			c.Pid, started.UTC().Format(time.RFC3339Nano), c.CreatedAt.UTC().Format(time.RFC3339Nano), c.StartedAt.UTC().Format(time.RFC3339Nano))
	}
	return nil
}
