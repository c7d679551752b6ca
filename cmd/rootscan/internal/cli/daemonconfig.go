package cli

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/rootscan/rootscan/bpf"
	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/node"
)

// daemonConfig is the daemon's configuration file; every field has a flag of the same meaning, and a flag given on
// the command line wins over the file.
type daemonConfig struct {
	RuntimeEndpoint   string `yaml:"runtimeEndpoint"`
	ContainerdAddress string `yaml:"containerdAddress"`
	Listen            string `yaml:"listen"`
	StateDir          string `yaml:"stateDir"`
	MountDir          string `yaml:"mountDir"`
	Namespace         string `yaml:"namespace"`
	NodeName          string `yaml:"nodeName"`
	// PodNamespace and PodName are the daemon's own pod (the downward API sets them), left out unless ScanSelf.
	PodNamespace     string        `yaml:"podNamespace"`
	PodName          string        `yaml:"podName"`
	ScanSelf         bool          `yaml:"scanSelf"`
	Workers          int           `yaml:"workers"`
	Resync           time.Duration `yaml:"resync"`
	Sinks            []string      `yaml:"sinks"`
	LogLevel         string        `yaml:"logLevel"`
	ProcRoot         string        `yaml:"procRoot"`
	ProcRootFallback bool          `yaml:"procRootFallback"`
	MaxFileSize      int64         `yaml:"maxFileSize"`
	DB               string        `yaml:"db"`
	VEX              string        `yaml:"vex"`
	// DBReload is how often the database file is checked for replacement (db update swaps it atomically).
	DBReload time.Duration `yaml:"dbReload"`
	// DBFeed makes the daemon fetch and refresh the database itself (--db-url and friends).
	DBFeed dbFeedConfig `yaml:",inline"`
	// Budget limits the daemon's own CPU, memory and IO through a child cgroup (outside Kubernetes only).
	CPUMax    float64 `yaml:"cpuMax"`
	IOWeight  uint    `yaml:"ioWeight"`
	MemoryMax int64   `yaml:"memoryMax"`
	// Metrics is how /metrics is served (TLS, client certificates, a plain health port).
	Metrics metricsConfig `yaml:",inline"`
	// EBPF is auto, on or off: the kernel's runtime signals (exec drift, files in use).
	EBPF string `yaml:"ebpf"`
	// EBPFRingBuffer is the size of the kernel's event ring buffer (bpf.Options.RingBufferBytes).
	EBPFRingBuffer budgetSize `yaml:"ebpfRingBuffer"`
	// CgroupRoot is where the node's cgroup hierarchy is mounted (eBPF attributes processes by cgroup id).
	CgroupRoot string `yaml:"cgroupRoot"`
	// CheckTimeout and CheckMemory bound each container's check (node.CheckBudget); 0 turns a bound off.
	CheckTimeout time.Duration `yaml:"checkTimeout"`
	CheckMemory  budgetSize    `yaml:"checkMemory"`
	// compliance flags are command-line only for now (profiles are files; the config file names them with flags).
	compliance complianceFlags
	configFile string
}

func (c *daemonConfig) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.configFile, "config", "", "YAML configuration file (flags given on the command line override it)")
	fs.StringVar(&c.RuntimeEndpoint, "runtime-endpoint", cri.DefaultEndpoint, "CRI runtime endpoint")
	fs.StringVar(&c.ContainerdAddress, "containerd-address", "", "containerd API socket for snapshots and events (default: the runtime endpoint's socket)")
	fs.StringVar(&c.Listen, "listen", ":9090", "address of the /metrics, /healthz and /readyz HTTP server (the only listener)")
	fs.StringVar(&c.StateDir, "state-dir", "/var/lib/rootscan", "image analysis cache, finding state and SIEM spools")
	fs.StringVar(&c.MountDir, "mount-dir", "/run/rootscan/mounts", "private directory for the read-only mounts (stale ones are removed at start)")
	fs.StringVar(&c.Namespace, "namespace", "", "only watch containers of pods in this Kubernetes namespace")
	fs.StringVar(&c.NodeName, "node-name", hostname(), "node name in metrics and events")
	fs.StringVar(&c.PodNamespace, "pod-namespace", "", "namespace of the daemon's own pod, whose containers are not scanned (set by the downward API)")
	fs.StringVar(&c.PodName, "pod-name", "", "name of the daemon's own pod, whose containers are not scanned (set by the downward API)")
	fs.BoolVar(&c.ScanSelf, "scan-self", false, "scan the daemon's own pod too (--pod-namespace/--pod-name)")
	fs.IntVar(&c.Workers, "workers", min(2, runtime.NumCPU()), "containers checked at once")
	fs.DurationVar(&c.Resync, "resync", 5*time.Minute, "full reconcile period, the safety net for missed events")
	fs.StringArrayVar(&c.Sinks, "sink", nil, "SIEM sink URL, repeatable: stdout, file:/path, syslog+udp|tcp|tls://host:port, http(s)://... (see docs)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.ProcRoot, "proc-root", "/proc", "host /proc: eBPF reads the processes it reports there (a pod without hostPID mounts the node's /proc, e.g. at /host/proc); the /proc/<pid>/root scan fallback reads it only with --proc-root-fallback")
	fs.BoolVar(&c.ProcRootFallback, "proc-root-fallback", false, "for snapshotters whose mounts cannot be re-mounted, read a running container through /proc/<pid>/root under --proc-root (off by default: a reused pid, or an init that chroots into a clean directory, would show another filesystem than the container's)")
	fs.Int64Var(&c.MaxFileSize, "max-file-size", 64<<20, "largest file read, in bytes")
	fs.StringVar(&c.DB, "db", defaultDBDir, "vulnerability database directory; replaced databases are picked up without restart")
	fs.StringVar(&c.VEX, "vex", "", "folder of OpenVEX documents (or a mounted ConfigMap), re-read on SIGHUP")
	fs.DurationVar(&c.DBReload, "db-reload", 30*time.Second, "how often to look for a replaced vulnerability database")
	const budgetNote = "; for a daemon run by systemd or by hand (it moves itself into a child cgroup, removed on exit); " +
		"in a Kubernetes pod leave it unset and use the container's resources.limits instead"
	fs.Float64Var(&c.CPUMax, "cpu-max", 0, "CPU the daemon may use, in cores (0.5 = half a core; 0 = unlimited)"+budgetNote)
	fs.Int64Var(&c.MemoryMax, "memory-max", 0, "memory limit in bytes (0 = unlimited)"+budgetNote)
	fs.UintVar(&c.IOWeight, "io-weight", 0, "relative block IO weight 1..1000 (0 = unchanged)"+budgetNote)
	c.DBFeed.register(fs)
	fs.StringVar(&c.EBPF, "ebpf", "auto", "runtime signals from eBPF (exec drift, files in use): auto (when the node allows), on (refuse to start without), off")
	c.EBPFRingBuffer = bpf.DefaultRingBufferBytes
	fs.Var(&c.EBPFRingBuffer, "ebpf-ring-buffer", "kernel ring buffer for eBPF events, a power of two of at least 4KiB; raise it if rootscan_ebpf_events_lost_total grows")
	fs.StringVar(&c.CgroupRoot, "cgroup-root", "/sys/fs/cgroup", "the node's cgroup hierarchy, for eBPF's container attribution (a pod mounts the node's /sys/fs/cgroup, e.g. at /host/sys/fs/cgroup)")
	c.compliance.register(fs)
	c.Metrics.register(fs)
	c.CheckTimeout, c.CheckMemory = node.DefaultCheckBudget.Timeout, budgetSize(node.DefaultCheckBudget.Memory)
	fs.DurationVar(&c.CheckTimeout, "check-timeout", c.CheckTimeout, "deadline of one container's check; a check past it stops and is reported scan.incomplete (0 = none)")
	fs.Var(&c.CheckMemory, "check-memory", "how far the live heap may grow during one container's check (64MiB, 0 = no bound); a check past it stops and is reported scan.incomplete")
	withEnv(fs, legacyEnv, "ebpf", "cgroup-root", "config", "runtime-endpoint", "containerd-address", "listen", "state-dir", "mount-dir", "namespace",
		"node-name", "pod-namespace", "pod-name", "log-level", "proc-root", "max-file-size", "db", "vex", "host-root")
}

// self is the daemon's own pod to leave out: none with --scan-self, or when the pod is not known.
func (c *daemonConfig) self() node.PodRef {
	if c.ScanSelf || c.PodName == "" || c.PodNamespace == "" {
		return node.PodRef{}
	}
	return node.PodRef{Namespace: c.PodNamespace, Name: c.PodName}
}

// mergeFile fills what the command line did not set from the --config file, if one was given.
func (c *daemonConfig) mergeFile(fs *pflag.FlagSet) error {
	if c.configFile == "" {
		return nil
	}
	f, err := readDaemonConfig(c.configFile)
	if err != nil {
		return err
	}
	fields := map[string]func(){
		"runtime-endpoint":   func() { c.RuntimeEndpoint = cmp.Or(f.RuntimeEndpoint, c.RuntimeEndpoint) },
		"containerd-address": func() { c.ContainerdAddress = cmp.Or(f.ContainerdAddress, c.ContainerdAddress) },
		"listen":             func() { c.Listen = cmp.Or(f.Listen, c.Listen) },
		"state-dir":          func() { c.StateDir = cmp.Or(f.StateDir, c.StateDir) },
		"mount-dir":          func() { c.MountDir = cmp.Or(f.MountDir, c.MountDir) },
		"namespace":          func() { c.Namespace = cmp.Or(f.Namespace, c.Namespace) },
		"node-name":          func() { c.NodeName = cmp.Or(f.NodeName, c.NodeName) },
		"pod-namespace":      func() { c.PodNamespace = cmp.Or(f.PodNamespace, c.PodNamespace) },
		"pod-name":           func() { c.PodName = cmp.Or(f.PodName, c.PodName) },
		"scan-self":          func() { c.ScanSelf = f.ScanSelf },
		"log-level":          func() { c.LogLevel = cmp.Or(f.LogLevel, c.LogLevel) },
		"proc-root":          func() { c.ProcRoot = cmp.Or(f.ProcRoot, c.ProcRoot) },
		"proc-root-fallback": func() { c.ProcRootFallback = f.ProcRootFallback },
		"workers":            func() { c.Workers = cmp.Or(max(f.Workers, 0), c.Workers) },
		"resync":             func() { c.Resync = cmp.Or(max(f.Resync, 0), c.Resync) },
		"max-file-size":      func() { c.MaxFileSize = cmp.Or(max(f.MaxFileSize, 0), c.MaxFileSize) },
		"sink":               func() { c.Sinks = f.Sinks },
		"db":                 func() { c.DB = cmp.Or(f.DB, c.DB) },
		"vex":                func() { c.VEX = cmp.Or(f.VEX, c.VEX) },
		"cpu-max":            func() { c.CPUMax = cmp.Or(f.CPUMax, c.CPUMax) },
		"memory-max":         func() { c.MemoryMax = cmp.Or(f.MemoryMax, c.MemoryMax) },
		"io-weight":          func() { c.IOWeight = cmp.Or(f.IOWeight, c.IOWeight) },
		"db-reload":          func() { c.DBReload = cmp.Or(max(f.DBReload, 0), c.DBReload) },
		"ebpf":               func() { c.EBPF = cmp.Or(f.EBPF, c.EBPF) },
		"cgroup-root":        func() { c.CgroupRoot = cmp.Or(f.CgroupRoot, c.CgroupRoot) },
		"ebpf-ring-buffer":   func() { c.EBPFRingBuffer = cmp.Or(max(f.EBPFRingBuffer, 0), c.EBPFRingBuffer) },
		"check-timeout":      func() { c.CheckTimeout = cmp.Or(max(f.CheckTimeout, 0), c.CheckTimeout) },
		"check-memory":       func() { c.CheckMemory = cmp.Or(max(f.CheckMemory, 0), c.CheckMemory) },
	}
	for name, apply := range fields {
		if !fs.Changed(name) {
			apply()
		}
	}
	c.DBFeed.merge(fs, &f.DBFeed)
	c.Metrics.merge(&f.Metrics, fs)
	return nil
}

func readDaemonConfig(name string) (*daemonConfig, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var c daemonConfig
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	return &c, nil
}
