package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/rootscan/rootscan/bpf"
	"github.com/rootscan/rootscan/bpf/cgroupid"
)

// EBPFMode is the daemon's --ebpf setting.
type EBPFMode string

// eBPF modes: auto loads the programs when the node allows and runs without them otherwise; on refuses to start
// without them; off never loads them.
const (
	EBPFAuto EBPFMode = "auto"
	EBPFOn   EBPFMode = "on"
	EBPFOff  EBPFMode = "off"
)

// ParseEBPFMode reads auto, on or off.
func ParseEBPFMode(s string) (EBPFMode, error) {
	switch m := EBPFMode(strings.ToLower(strings.TrimSpace(s))); m {
	case EBPFAuto, EBPFOn, EBPFOff:
		return m, nil
	}
	return "", fmt.Errorf("--ebpf %q: want auto, on or off", s)
}

// EBPF status reasons, the bounded values of the status metric's reason label.
const (
	EBPFReasonLoaded        = "loaded"
	EBPFReasonDisabled      = "disabled"
	EBPFReasonNoBTF         = "no_btf"
	EBPFReasonNoCgroupV2    = "no_cgroup_v2"
	EBPFReasonPermission    = "permission_denied"
	EBPFReasonNotSupported  = "not_supported"
	EBPFReasonLoadFailed    = "load_failed"
	EBPFReasonMappingsNoTFS = "mappings_unavailable"
)

// EBPFReasons lists every reason label value.
var EBPFReasons = []string{EBPFReasonLoaded, EBPFReasonDisabled, EBPFReasonNoBTF, EBPFReasonNoCgroupV2,
	EBPFReasonPermission, EBPFReasonNotSupported, EBPFReasonLoadFailed, EBPFReasonMappingsNoTFS}

// EBPFStatus says whether the runtime signals run, for the daemon's log and metrics.
type EBPFStatus struct {
	Available bool
	// Reason is one of EBPFReasons: loaded, or why not (mappings_unavailable: executions are watched, executable
	// mappings not, so in-use sets are incomplete).
	Reason string
	// Detail is the full explanation, for the log.
	Detail string
}

// OpenEBPF loads the kernel programs as mode says. With auto, a node that cannot run them gives a nil monitor and a
// status saying why; with on, that is an error; with off nothing is tried. cgroupRoot is where the node's cgroup
// hierarchy is mounted here (/sys/fs/cgroup on the node itself); the returned cgroupMount is its cgroup v2 part,
// which the kernel's cgroup ids refer to (a legacy cgroup v1 node has none: there attribution is impossible).
func OpenEBPF(ctx context.Context, mode EBPFMode, cgroupRoot string, opts bpf.Options) (m *bpf.Monitor, cgroupMount string, st EBPFStatus, err error) {
	if mode == EBPFOff {
		return nil, "", EBPFStatus{Reason: EBPFReasonDisabled, Detail: "disabled by --ebpf=off"}, nil
	}
	cgroupMount, err = cgroupid.MountUnder(cgroupRoot)
	if err == nil {
		m, err = bpf.Open(ctx, opts)
	}
	if err != nil {
		st = EBPFStatus{Reason: ebpfReason(err), Detail: unavailableDetail(err)}
		if mode == EBPFOn {
			return nil, "", st, fmt.Errorf("ebpf: unavailable (%s) and --ebpf=on", st.Detail)
		}
		return nil, "", st, nil
	}
	st = EBPFStatus{Available: true, Reason: EBPFReasonLoaded, Detail: "loaded"}
	if merr := m.MapErr(); merr != nil {
		st.Reason, st.Detail = EBPFReasonMappingsNoTFS, "executions watched; executable mappings not: "+unavailableDetail(merr)
	}
	return m, cgroupMount, st, nil
}

func unavailableDetail(err error) string {
	var ue *bpf.UnavailableError
	if errors.As(err, &ue) {
		return ue.Reason
	}
	return err.Error()
}

// ebpfReason maps an Open failure onto the bounded reason label.
func ebpfReason(err error) string {
	var ue *bpf.UnavailableError
	switch {
	case errors.Is(err, cgroupid.ErrNoUnified):
		return EBPFReasonNoCgroupV2
	case errors.Is(err, os.ErrPermission):
		return EBPFReasonPermission
	case errors.Is(err, ebpf.ErrNotSupported):
		return EBPFReasonNotSupported
	case errors.As(err, &ue) && strings.Contains(ue.Reason, "BTF"):
		return EBPFReasonNoBTF
	}
	return EBPFReasonLoadFailed
}
