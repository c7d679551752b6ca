//go:build !linux

package node

import (
	"errors"

	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/fsaccess"
)

// openProcRoot: /proc/<pid>/root exists only on Linux.
func openProcRoot(string, cri.Container, fsaccess.Options) (Root, error) {
	return nil, errors.New("no /proc/<pid>/root on this system")
}

// checkContainerPid: the start-time check reads Linux's /proc.
func checkContainerPid(string, cri.Container) error {
	return errors.New("no /proc/<pid>/stat on this system")
}
