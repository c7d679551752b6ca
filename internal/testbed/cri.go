package testbed

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Labels kubelet puts on every sandbox and container; rootscan takes pod
// identity from them, so the testbed sets them as kubelet does.
const (
	LabelPodName       = "io.kubernetes.pod.name"
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelContainerName = "io.kubernetes.container.name"
)

// PodSpec describes a pod sandbox. Pods use the host network (no CNI is
// configured) and share one PID and IPC namespace per pod, like a default
// Kubernetes pod.
type PodSpec struct {
	Name      string // required
	Namespace string // default "default"
	UID       string // default a random UUID
	// Labels and Annotations are added to kubelet's own labels.
	Labels      map[string]string
	Annotations map[string]string
}

// ContainerSpec describes a container in a pod.
type ContainerSpec struct {
	Name string // required
	// Image is a reference the CRI knows (ImageRef.Name). As kubelet does, the
	// testbed resolves it to the image ID and passes that to CreateContainer,
	// with Image as the user-specified image.
	Image string
	// Command and Args override the image's entrypoint and cmd.
	Command, Args []string
	Env           map[string]string
	WorkingDir    string
	// Labels and Annotations are added to kubelet's own labels.
	Labels      map[string]string
	Annotations map[string]string
	// Mounts are volumes as kubelet passes them (a ConfigMap is a host directory mounted read-only).
	Mounts []*runtimeapi.Mount
	// RunAsUser and ReadonlyRootfs set the container's security context, as a pod spec's would.
	RunAsUser      *int64
	ReadonlyRootfs bool
}

// RunPod creates and starts a host-network pod sandbox and returns its ID.
func (c *Containerd) RunPod(ctx context.Context, p PodSpec) (string, error) {
	if p.Name == "" {
		return "", errors.New("run pod: PodSpec.Name is empty")
	}
	if p.Namespace == "" {
		p.Namespace = "default"
	}
	if p.UID == "" {
		p.UID = newUUID()
	}
	logDir := filepath.Join(c.l.Pods, p.Namespace+"_"+p.Name+"_"+p.UID)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return "", fmt.Errorf("run pod %s/%s: create log dir: %w", p.Namespace, p.Name, err)
	}
	ns := &runtimeapi.NamespaceOption{
		Network: runtimeapi.NamespaceMode_NODE,
		Pid:     runtimeapi.NamespaceMode_POD,
		Ipc:     runtimeapi.NamespaceMode_POD,
	}
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: p.Name, Namespace: p.Namespace, Uid: p.UID},
		// Hostname stays empty: the CRI refuses a hostname for host-network pods.
		LogDirectory: logDir,
		Labels: merge(p.Labels, map[string]string{
			LabelPodName:      p.Name,
			LabelPodNamespace: p.Namespace,
			LabelPodUID:       p.UID,
		}),
		Annotations: maps.Clone(p.Annotations),
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent:    c.cgroupParent + "/pod" + p.UID,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: ns},
		},
	}
	resp, err := c.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return "", fmt.Errorf("run pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	c.mu.Lock()
	c.pods[resp.PodSandboxId] = cfg
	c.mu.Unlock()
	return resp.PodSandboxId, nil
}

// CreateContainer creates a container in a pod made by RunPod and returns its
// ID. Its log goes to <pod log dir>/<name>/0.log, as with kubelet.
func (c *Containerd) CreateContainer(ctx context.Context, sandboxID string, s ContainerSpec) (string, error) {
	if s.Name == "" {
		return "", errors.New("create container: ContainerSpec.Name is empty")
	}
	c.mu.Lock()
	pod := c.pods[sandboxID]
	c.mu.Unlock()
	if pod == nil {
		return "", fmt.Errorf("create container %s: pod %s was not made by this testbed", s.Name, sandboxID)
	}
	st, err := c.is.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: s.Image}})
	if err != nil {
		return "", fmt.Errorf("create container %s: image status %s: %w", s.Name, s.Image, err)
	}
	if st.Image == nil {
		return "", fmt.Errorf("create container %s: image %s is not imported", s.Name, s.Image)
	}
	var env []*runtimeapi.KeyValue
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		v := s.Env[k]
		env = append(env, &runtimeapi.KeyValue{Key: k, Value: []byte(v)})
	}
	cfg := &runtimeapi.ContainerConfig{
		Metadata:   &runtimeapi.ContainerMetadata{Name: s.Name},
		Image:      &runtimeapi.ImageSpec{Image: st.Image.Id, UserSpecifiedImage: s.Image},
		Command:    s.Command,
		Args:       s.Args,
		WorkingDir: s.WorkingDir,
		Envs:       env,
		Labels: merge(s.Labels, map[string]string{
			LabelPodName:       pod.Metadata.Name,
			LabelPodNamespace:  pod.Metadata.Namespace,
			LabelPodUID:        pod.Metadata.Uid,
			LabelContainerName: s.Name,
		}),
		Annotations: maps.Clone(s.Annotations),
		LogPath:     filepath.Join(s.Name, "0.log"),
		Linux: &runtimeapi.LinuxContainerConfig{
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: pod.Linux.SecurityContext.NamespaceOptions,
				ReadonlyRootfs:   s.ReadonlyRootfs,
			},
		},
		Mounts: s.Mounts,
	}
	if s.RunAsUser != nil {
		cfg.Linux.SecurityContext.RunAsUser = &runtimeapi.Int64Value{Value: *s.RunAsUser}
	}
	if err := os.MkdirAll(filepath.Join(pod.LogDirectory, s.Name), 0o755); err != nil {
		return "", fmt.Errorf("create container %s: log dir: %w", s.Name, err)
	}
	resp, err := c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId:  sandboxID,
		Config:        cfg,
		SandboxConfig: pod,
	})
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", s.Name, err)
	}
	return resp.ContainerId, nil
}

// RunContainer is CreateContainer followed by StartContainer.
func (c *Containerd) RunContainer(ctx context.Context, sandboxID string, s ContainerSpec) (string, error) {
	id, err := c.CreateContainer(ctx, sandboxID, s)
	if err != nil {
		return "", err
	}
	return id, c.StartContainer(ctx, id)
}

// StartContainer starts a created container.
func (c *Containerd) StartContainer(ctx context.Context, id string) error {
	if _, err := c.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	return nil
}

// StopContainer stops a container: its stop signal, then SIGKILL after
// timeout (rounded up to whole seconds, as the CRI takes it).
func (c *Containerd) StopContainer(ctx context.Context, id string, timeout time.Duration) error {
	secs := int64((timeout + time.Second - 1) / time.Second)
	if _, err := c.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: secs}); err != nil {
		return fmt.Errorf("stop container %s: %w", id, err)
	}
	return nil
}

// RemoveContainer removes a container, stopping it first if it runs.
func (c *Containerd) RemoveContainer(ctx context.Context, id string) error {
	if _, err := c.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	return nil
}

// RemovePod stops and removes a pod sandbox and all its containers.
func (c *Containerd) RemovePod(ctx context.Context, sandboxID string) error {
	if _, err := c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sandboxID}); err != nil {
		return fmt.Errorf("stop pod %s: %w", sandboxID, err)
	}
	if _, err := c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sandboxID}); err != nil {
		return fmt.Errorf("remove pod %s: %w", sandboxID, err)
	}
	c.mu.Lock()
	delete(c.pods, sandboxID)
	c.mu.Unlock()
	return nil
}

// ExecSync runs cmd in a running container and returns its output and exit
// code. err is set when the command could not be run at all, e.g. because
// the image has no such binary; a command that runs and fails gives a
// non-zero exitCode and a nil err. A deadline on ctx becomes the exec timeout.
func (c *Containerd) ExecSync(ctx context.Context, id string, cmd []string) (stdout, stderr []byte, exitCode int32, err error) {
	req := &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd}
	if d, ok := ctx.Deadline(); ok {
		req.Timeout = max(int64(time.Until(d)/time.Second), 1)
	}
	resp, err := c.rt.ExecSync(ctx, req)
	if err != nil {
		return nil, nil, -1, fmt.Errorf("exec %q in container %s: %w", cmd, id, err)
	}
	return resp.Stdout, resp.Stderr, resp.ExitCode, nil
}

func merge(user, kubelet map[string]string) map[string]string {
	out := maps.Clone(user)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, kubelet)
	return out
}

// newUUID returns a random (version 4) UUID, the form of a pod UID.
func newUUID() string {
	h := []byte(randomHex(16))
	h[12] = '4'
	h[16] = "89ab"[h[16]%4]
	s := string(h)
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}
