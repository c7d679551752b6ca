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
