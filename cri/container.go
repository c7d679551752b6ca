// Package cri asks a node's container runtime, through the Kubernetes CRI v1 API, which containers exist and who they
// belong to. Identity comes from the CRI alone (the labels kubelet sets), so the scanner needs no Kubernetes API
// access and no RBAC.
package cri

import (
	"strings"
	"time"
)

// Labels kubelet puts on every container and sandbox. Reading them from the CRI is how a node agent learns pod
// identity without asking the API server.
const (
	LabelPodName       = "io.kubernetes.pod.name"
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelContainerName = "io.kubernetes.container.name"
)

// State mirrors the CRI container states in words that read well in tables and JSON.
type State string

// The CRI container states.
const (
	StateCreated State = "created"
	StateRunning State = "running"
	StateExited  State = "exited"
	StateUnknown State = "unknown"
)

// Container is one container as the runtime reports it: identity for reports, and the runtime details (snapshotter,
// snapshot key, pid, cgroup) that fsaccess and the eBPF side need to reach its filesystem and its processes.
type Container struct {
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	PodName      string            `json:"podName,omitempty"`
	PodNamespace string            `json:"podNamespace,omitempty"`
	PodUID       string            `json:"podUid,omitempty"`
	PodSandboxID string            `json:"podSandboxId,omitempty"`
	Image        string            `json:"image"`
	ImageRef     string            `json:"imageRef,omitempty"`
	ImageID      string            `json:"imageId,omitempty"`
	State        State             `json:"state"`
	CreatedAt    time.Time         `json:"createdAt"`
	Labels       map[string]string `json:"labels,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`

	// From ContainerStatus(verbose): runtime-specific, empty where the runtime does not say.
	Snapshotter string `json:"snapshotter,omitempty"`
	SnapshotKey string `json:"snapshotKey,omitempty"`
	Pid         int    `json:"pid,omitempty"`
	CgroupsPath string `json:"cgroupsPath,omitempty"`
	RuntimeType string `json:"runtimeType,omitempty"`

	// PodLabels are the pod's own labels (the sandbox's), which label selectors choose pods by.
	PodLabels map[string]string `json:"podLabels,omitempty"`
	// Mounts are the container's volumes as the runtime mounted them (ContainerStatus.mounts).
	Mounts []Mount `json:"mounts,omitempty"`
	// Security is what the container was created with (the CRI config in the verbose status); nil when the runtime
	// does not say.
	Security *SecurityContext `json:"security,omitempty"`

	// StartedAt is when the runtime started the container's task (ContainerStatus; zero until it did); the
	// /proc/<pid>/root fallback checks the pid against it.
	StartedAt time.Time `json:"startedAt,omitzero"`
}

// Mount is one volume of a container: where it appears inside and where it lives on the node.
type Mount struct {
	ContainerPath string `json:"containerPath"`
	HostPath      string `json:"hostPath"`
	ReadOnly      bool   `json:"readOnly"`
}

// SecurityContext is the part of the container's CRI security context and runtime spec compliance controls ask
// about.
type SecurityContext struct {
	RunAsUser        *int64   `json:"runAsUser,omitempty"`
	RunAsGroup       *int64   `json:"runAsGroup,omitempty"`
	Privileged       bool     `json:"privileged"`
	ReadOnlyRootfs   bool     `json:"readOnlyRootfs"`
	NoNewPrivs       bool     `json:"noNewPrivs"`
	CapabilitiesAdd  []string `json:"capabilitiesAdd,omitempty"`
	CapabilitiesDrop []string `json:"capabilitiesDrop,omitempty"`
	// Bounding is the runtime spec's bounding capability set, what the process can ever have.
	Bounding []string `json:"bounding,omitempty"`
}

// Digest is the image's manifest digest when the runtime knows it by digest (ImageRef "repo@sha256:..."), else "".
// Images imported without a registry have no repo digest; callers then ask containerd (fsaccess) for it.
func (c Container) Digest() string {
	if i := strings.LastIndex(c.ImageRef, "@"); i >= 0 {
		return c.ImageRef[i+1:]
	}
	return ""
}

// DisplayName is namespace/pod/container as operators read it, or the bare container name outside Kubernetes.
func (c Container) DisplayName() string {
	if c.PodName == "" {
		return c.Name
	}
	return c.PodNamespace + "/" + c.PodName + "/" + c.Name
}
