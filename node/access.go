package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/fsaccess"
)

// AccessOptions say how to reach a node's containers.
type AccessOptions struct {
	// RuntimeEndpoint is the CRI socket (unix:///path or a path).
	RuntimeEndpoint string
	// ContainerdAddress is containerd's API socket for snapshots and events; "" is the runtime endpoint's socket.
	ContainerdAddress string
	// MountDir is the private directory for the read-only mounts (stale ones are removed at start).
	MountDir string
	// ProcRoot is the host's /proc, for the /proc/<pid>/root fallback; "" disables it.
	ProcRoot string
	Options  fsaccess.Options
	Log      *slog.Logger
}

// Access is what reading a node's containers takes, for the one-shot scan and the daemon alike: the CRI client,
// containerd's snapshots and the mounter, and the ContainerRoots over them. Close releases all of it.
type Access struct {
	Client    *cri.Client
	Snapshots *fsaccess.Snapshots
	Mounter   *fsaccess.Mounter
	Roots     *ContainerRoots
	// Address is containerd's socket path, for its event stream.
	Address string
	log     *slog.Logger
}

// Dial connects to the runtime and containerd and sets up the mount directory. On error nothing stays open.
func Dial(ctx context.Context, o AccessOptions) (_ *Access, retErr error) {
	a := &Access{log: o.Log}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	defer func() {
		if retErr != nil {
			a.Close()
		}
	}()
	var err error
	if a.Client, err = cri.Dial(ctx, o.RuntimeEndpoint); err != nil {
		return nil, err
	}
	a.Address = o.ContainerdAddress
	if a.Address == "" {
		a.Address = strings.TrimPrefix(a.Client.Endpoint(), "unix://")
	}
	if a.Snapshots, err = fsaccess.DialSnapshots(ctx, a.Address); err != nil {
		return nil, err
	}
	if a.Mounter, err = fsaccess.NewMounter(ctx, o.MountDir, a.log); err != nil {
		return nil, err
	}
	a.Roots = &ContainerRoots{Snapshots: a.Snapshots, Mounter: a.Mounter, ProcRoot: o.ProcRoot, Options: o.Options}
	return a, nil
}

// Runtime names the container runtime and its version ("containerd v2.1.4").
func (a *Access) Runtime() string {
	name, ver := a.Client.Runtime()
	return name + " " + ver
}

// Close releases the mounts first, then the connections. A mount that could not be released is logged and returned.
func (a *Access) Close() error {
	var errs []error
	if a.Roots != nil {
		if err := a.Roots.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close upper dirs: %w", err))
		}
	}
	if a.Mounter != nil {
		if err := a.Mounter.Close(); err != nil {
			a.log.Error("release mounts", "dir", a.Mounter.Dir(), "err", err)
			errs = append(errs, fmt.Errorf("release mounts: %w", err))
		}
	}
	if a.Snapshots != nil {
		a.Snapshots.Close()
	}
	if a.Client != nil {
		a.Client.Close()
	}
	return errors.Join(errs...)
}
