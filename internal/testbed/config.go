package testbed

import (
	"fmt"
	"path/filepath"
	"strings"
)

// layout names every path a testbed containerd uses. All of them sit under one
// directory so that one instance never shares state, sockets or runc state with
// another, nor with a containerd the machine may run (/run/containerd,
// /var/lib/containerd).
type layout struct {
	Dir        string
	Root       string // containerd root: metadata, content, snapshots
	State      string // containerd state: task bundles, rootfs mounts, pod shm
	Socket     string // gRPC socket (containerd API and CRI)
	RuncRoot   string // runc --root, so `runc list` shows only our containers
	ShimSocket string // shim socket dir (2.4 honours it; 1.6, 1.7, 2.2 use /run/containerd/s)
	Opt        string // io.containerd.internal.v1.opt
	CNIBin     string
	CNIConf    string
	CDI        string
	Pods       string // pod log directories, as kubelet's /var/log/pods
	Config     string
	ConfD      string // config imports; empty
	Log        string
}

func newLayout(dir string) layout {
	return layout{
		Dir:        dir,
		Root:       filepath.Join(dir, "root"),
		State:      filepath.Join(dir, "state"),
		Socket:     filepath.Join(dir, "containerd.sock"),
		RuncRoot:   filepath.Join(dir, "runc"),
		ShimSocket: filepath.Join(dir, "s"),
		Opt:        filepath.Join(dir, "opt"),
		CNIBin:     filepath.Join(dir, "cni", "bin"),
		CNIConf:    filepath.Join(dir, "cni", "net.d"),
		CDI:        filepath.Join(dir, "cdi"),
		Pods:       filepath.Join(dir, "pods"),
		Config:     filepath.Join(dir, "config.toml"),
		ConfD:      filepath.Join(dir, "conf.d"),
		Log:        filepath.Join(dir, "containerd.log"),
	}
}

// dirs are the directories Start creates before containerd runs.
func (l layout) dirs() []string {
	return []string{l.Root, l.State, l.RuncRoot, l.ShimSocket, l.Opt, l.CNIBin, l.CNIConf, l.CDI, l.Pods, l.ConfD}
}

// Unix socket paths are limited to 108 bytes (107 plus NUL).
const maxSocketPath = 107

// shimSocketDirMax is containerd 2.x's limit on socket_dir (core/runtime/v2
// maxSocketDirLen on Linux): the shim socket is socket_dir/<64 hex chars>.
const shimSocketDirMax = 42

func (l layout) check() error {
	if n := len(l.Socket + ".ttrpc"); n > maxSocketPath {
		return fmt.Errorf("work dir %s is too long for a unix socket path (%d > %d bytes)", l.Dir, n, maxSocketPath)
	}
	return nil
}

// configParams are the values of a testbed config that are not paths.
type configParams struct {
	SandboxImage string
	RuncBinary   string
}

// disabledPlugins are plugins that would reach outside the work dir or that
// the testbed has no use for. NRI serves a fixed socket (/var/run/nri/nri.sock)
// that a second containerd on the machine would fight over. Unknown names are
// ignored by every containerd version, so 1.6 takes the same list.
var disabledPlugins = []string{
	"io.containerd.nri.v1.nri",
	"io.containerd.tracing.processor.v1.otlp",
	"io.containerd.internal.v1.tracing",
	"io.containerd.snapshotter.v1.btrfs",
	"io.containerd.snapshotter.v1.zfs",
	"io.containerd.snapshotter.v1.aufs",
	"io.containerd.snapshotter.v1.devmapper",
}

// renderConfig returns a containerd config (format version 2, which 1.6 reads
// natively and 1.7/2.x migrate on load). Keys a version does not know are
// ignored by it: socket_dir (2.4), enable_cdi/cdi_spec_dirs (1.7+).
func renderConfig(l layout, p configParams) (string, error) {
	for _, s := range []string{p.SandboxImage, p.RuncBinary, l.Dir} {
		if strings.ContainsAny(s, "\"\\\n\r\t") {
			return "", fmt.Errorf("config value %q has a character the testbed does not quote", s)
		}
	}
	q := func(s string) string { return `"` + s + `"` }
	var disabled []string
	for _, d := range disabledPlugins {
		disabled = append(disabled, q(d))
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# Written by rootscan's internal/testbed; this containerd is private to %s.", l.Dir)
	w("version = 2")
	w("root = %s", q(l.Root))
	w("state = %s", q(l.State))
	w("disabled_plugins = [%s]", strings.Join(disabled, ", "))
	// containerd 2.x's default config names /etc/containerd/conf.d/*.toml as
	// imports. Only the imports of files actually loaded are read, but say
	// explicitly that ours are an empty dir of the instance.
	w("imports = [%s]", q(filepath.Join(l.ConfD, "*.toml")))
	w("")
	w("[grpc]")
	w("  address = %s", q(l.Socket))
	w("")
	w("[ttrpc]")
	w("  address = %s", q(l.Socket+".ttrpc"))
	w("")
	w("[debug]")
	w("  address = \"\"")
	w("  level = \"info\"")
	w("")
	w("[metrics]")
	w("  address = \"\"")
	w("")
	w("[plugins]")
	w("  [plugins.\"io.containerd.internal.v1.opt\"]")
	w("    path = %s", q(l.Opt))
	if len(l.ShimSocket) <= shimSocketDirMax {
		w("  [plugins.\"io.containerd.shim.v1.manager\"]")
		w("    socket_dir = %s", q(l.ShimSocket))
	}
	w("  [plugins.\"io.containerd.grpc.v1.cri\"]")
	w("    sandbox_image = %s", q(p.SandboxImage))
	// The testbed runs as root without CAP_SYS_RESOURCE: pause's default
	// oom_score_adj of -998 would be refused.
	w("    restrict_oom_score_adj = true")
	w("    stream_server_address = \"127.0.0.1\"")
	w("    stream_server_port = \"0\"")
	w("    enable_selinux = false")
	w("    disable_apparmor = true")
	w("    enable_cdi = false")
	w("    cdi_spec_dirs = [%s]", q(l.CDI))
	w("    [plugins.\"io.containerd.grpc.v1.cri\".cni]")
	w("      bin_dir = %s", q(l.CNIBin))
	w("      conf_dir = %s", q(l.CNIConf))
	w("    [plugins.\"io.containerd.grpc.v1.cri\".containerd]")
	w("      snapshotter = \"overlayfs\"")
	w("      default_runtime_name = \"runc\"")
	w("      [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]")
	w("        runtime_type = \"io.containerd.runc.v2\"")
	w("        [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]")
	w("          BinaryName = %s", q(p.RuncBinary))
	w("          Root = %s", q(l.RuncRoot))
	w("          SystemdCgroup = false")
	return b.String(), nil
}
