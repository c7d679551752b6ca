package testbed

import "path/filepath"

// CNIBinDir and CNIConfDir are the CNI plugin and config dirs this instance's
// CRI reads (CRI watches the config dir), for a caller that gives its pods a
// network, as the kube harness does.
func (c *Containerd) CNIBinDir() string { return c.l.CNIBin }

// CNIConfDir is the CNI config dir this instance's CRI watches.
func (c *Containerd) CNIConfDir() string { return c.l.CNIConf }

// UnmountAll detaches every mount at or below dir, deepest first, repeating
// while unmounting uncovers more, and reports the mounts that stay. Harnesses
// that run a kubelet on a testbed use it for the kubelet's root dir.
func UnmountAll(dir string) error { return unmountAll(filepath.Clean(dir)) }

// MountsUnder lists the mount points at or below dir, deepest first.
func MountsUnder(dir string) ([]string, error) { return mountsUnder(filepath.Clean(dir)) }
