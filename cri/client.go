package cri

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultEndpoint is containerd's socket, which also serves the CRI.
const DefaultEndpoint = "unix:///run/containerd/containerd.sock"

// maxMsgSize matches kubelet's CRI limit: a node with many containers answers ListContainers with large messages.
const maxMsgSize = 16 << 20

// ErrNotCRI is returned by Dial when something answers on the socket but it does not serve CRI v1.
var ErrNotCRI = errors.New("endpoint does not serve the CRI v1 runtime API")

// ErrNotFound means the runtime does not know the container (it was removed, or the ID is a pod sandbox's).
var ErrNotFound = errors.New("container not found")

// Client is a read-only CRI client: it lists and inspects, and never creates, stops or changes anything.
type Client struct {
	endpoint string
	conn     *grpc.ClientConn
	rt       runtimeapi.RuntimeServiceClient
	runtime  string
	version  string

	mu       sync.Mutex
	statuses map[string]statusEntry // by container ID, see cachedStatus
}

// statusMaxAge is how long a container's verbose status is reused while its listed state stays the same. Nothing a
// scan uses changes while a container keeps its state (snapshot key, pid, mounts, security context, start time), but
// the image name containerd resolves for it can, when a tag moves: it is read again at this age.
const statusMaxAge = 5 * time.Minute

// statusEntry is a container's parsed status, with the state ListContainers gave when it was read.
type statusEntry struct {
	listed State
	at     time.Time
	status containerStatus
}

// SocketPath turns an endpoint as kubelet and crictl spell it ("unix:///run/x.sock") or a plain path into a path.
func SocketPath(endpoint string) (string, error) {
	switch {
	case strings.HasPrefix(endpoint, "unix://"):
		p := strings.TrimPrefix(endpoint, "unix://")
		if p == "" {
			return "", fmt.Errorf("runtime endpoint %q: empty socket path", endpoint)
		}
		return p, nil
	case strings.Contains(endpoint, "://"):
		return "", fmt.Errorf("runtime endpoint %q: only unix sockets are supported", endpoint)
	case endpoint == "":
		return "", errors.New("runtime endpoint is empty")
	default:
		return endpoint, nil
	}
}

// Dial connects to the runtime endpoint and checks, with one Version call, that it really is a CRI v1 runtime, so a
// wrong --runtime-endpoint fails at start with one clear error instead of on every later call.
func Dial(ctx context.Context, endpoint string) (*Client, error) {
	if err := nodeScanSupported(); err != nil {
		return nil, err
	}
	path, err := SocketPath(endpoint)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("runtime endpoint %s: %w", path, err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return nil, fmt.Errorf("runtime endpoint %s: not a unix socket (%s)", path, fi.Mode().Type())
	}
	// Redial pacing: gRPC's default backoff grows to 2 minutes, so after a containerd restart every call would fail
	// Unavailable for up to that long after containerd is back. A local socket is cheap to dial: cap the wait at 2s.
	redial := backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second}
	conn, err := grpc.NewClient("unix://"+path,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsgSize)),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: redial, MinConnectTimeout: 5 * time.Second}),
	)
	if err != nil {
		return nil, fmt.Errorf("runtime endpoint %s: %w", path, err)
	}
	c := &Client{endpoint: path, conn: conn, rt: runtimeapi.NewRuntimeServiceClient(conn)}
	vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := c.rt.Version(vctx, &runtimeapi.VersionRequest{})
	if err != nil {
		conn.Close()
		if s, ok := status.FromError(err); ok && s.Code() == codes.Unimplemented {
			return nil, fmt.Errorf("runtime endpoint %s: %w (%s)", path, ErrNotCRI, s.Message())
		}
		return nil, fmt.Errorf("runtime endpoint %s: %w: %v", path, ErrNotCRI, err)
	}
	c.runtime, c.version = v.GetRuntimeName(), v.GetRuntimeVersion()
	return c, nil
}

// Runtime is the runtime's name and version as it reported them ("containerd", "1.6.20~ds1").
func (c *Client) Runtime() (name, version string) { return c.runtime, c.version }

// Endpoint is the socket path in use.
func (c *Client) Endpoint() string { return c.endpoint }

// Close releases the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Filter narrows List. Empty fields match everything.
type Filter struct {
	// PodNamespace keeps only containers of pods in this Kubernetes namespace.
	PodNamespace string
	// ID keeps only the container with this ID (or, like crictl, this unique ID prefix).
	ID string
}

// List returns every container the runtime knows, in all states (created, running, exited), sorted by display name,
// each completed with its verbose status. A container that vanishes between the list and its status is left out;
// any other status error fails the list, because a silently shortened inventory is worse than a visible error.
func (c *Client) List(ctx context.Context, f Filter) ([]Container, error) {
	req := &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{}}
	if f.PodNamespace != "" {
		req.Filter.LabelSelector = map[string]string{LabelPodNamespace: f.PodNamespace}
	}
	resp, err := c.rt.ListContainers(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	pods, err := c.sandboxes(ctx)
	if err != nil {
		return nil, err
	}
	var out []Container
	seen := make(map[string]bool, len(resp.GetContainers()))
	for _, rc := range resp.GetContainers() {
		if f.ID != "" && !strings.HasPrefix(rc.GetId(), f.ID) {
			continue
		}
		ct := fromCRI(rc, pods[rc.GetPodSandboxId()])
		if f.PodNamespace != "" && ct.PodNamespace != f.PodNamespace {
			continue
		}
		seen[ct.ID] = true
		st, ok := c.cachedStatus(ct.ID, ct.State)
		if !ok {
			var err error
			if st, err = c.fetchStatus(ctx, ct.ID); err != nil {
				if status.Code(err) == codes.NotFound {
					continue
				}
				return nil, err
			}
			c.keepStatus(ct.ID, ct.State, st)
		}
		st.apply(&ct)
		out = append(out, ct)
	}
	if f == (Filter{}) {
		c.pruneStatuses(seen)
	}
	if f.ID != "" && len(out) > 1 {
		return nil, fmt.Errorf("container ID prefix %q is ambiguous: %d containers match", f.ID, len(out))
	}
	sort.Slice(out, func(i, j int) bool {
		if a, b := out[i].DisplayName(), out[j].DisplayName(); a != b {
			return a < b
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Container returns one container by ID or unique ID prefix.
func (c *Client) Container(ctx context.Context, id string) (Container, error) {
	cs, err := c.List(ctx, Filter{ID: id})
	if err != nil {
		return Container{}, err
	}
	if len(cs) == 0 {
		return Container{}, fmt.Errorf("container %s: %w", id, ErrNotFound)
	}
	return cs[0], nil
}

type podMeta struct {
	name, namespace, uid string
	labels               map[string]string
}

func (c *Client) sandboxes(ctx context.Context) (map[string]podMeta, error) {
	resp, err := c.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return nil, fmt.Errorf("list pod sandboxes: %w", err)
	}
	m := make(map[string]podMeta, len(resp.GetItems()))
	for _, s := range resp.GetItems() {
		md := s.GetMetadata()
		m[s.GetId()] = podMeta{name: md.GetName(), namespace: md.GetNamespace(), uid: md.GetUid(), labels: s.GetLabels()}
	}
	return m, nil
}

func fromCRI(rc *runtimeapi.Container, pod podMeta) Container {
	l := rc.GetLabels()
	ct := Container{
		ID:           rc.GetId(),
		Name:         firstNonEmpty(l[LabelContainerName], rc.GetMetadata().GetName()),
		PodName:      firstNonEmpty(l[LabelPodName], pod.name),
		PodNamespace: firstNonEmpty(l[LabelPodNamespace], pod.namespace),
		PodUID:       firstNonEmpty(l[LabelPodUID], pod.uid),
		PodSandboxID: rc.GetPodSandboxId(),
		Image:        rc.GetImage().GetImage(),
		ImageRef:     rc.GetImageRef(),
		ImageID:      rc.GetImageId(),
		State:        stateOf(rc.GetState()),
		CreatedAt:    time.Unix(0, rc.GetCreatedAt()).UTC(),
		Labels:       l,
		Annotations:  rc.GetAnnotations(),
		PodLabels:    pod.labels,
	}
	return ct
}

// cachedStatus is the container's status from an earlier List when the runtime still lists it in the same known
// state and the status is younger than statusMaxAge. A verbose status (the runtime spec as JSON) per container was
// most of an unchanged node's re-check, and of the daemon's CPU at rest.
func (c *Client) cachedStatus(id string, listed State) (containerStatus, bool) {
	c.mu.Lock()
	e, ok := c.statuses[id]
	c.mu.Unlock()
	if !ok || e.listed != listed || listed == StateUnknown || time.Since(e.at) > statusMaxAge {
		return containerStatus{}, false
	}
	return e.status, true
}

func (c *Client) keepStatus(id string, listed State, st containerStatus) {
	if listed == StateUnknown {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.statuses == nil {
		c.statuses = map[string]statusEntry{}
	}
	c.statuses[id] = statusEntry{listed: listed, at: time.Now(), status: st}
}

// pruneStatuses forgets the containers a whole-runtime list no longer has, so the cache is bounded by the node.
func (c *Client) pruneStatuses(seen map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.statuses {
		if !seen[id] {
			delete(c.statuses, id)
		}
	}
}

// containerStatus is what only ContainerStatus knows of a container, parsed once: the image tag and repo digest as
// the runtime resolved them, and from the verbose info the snapshotter, snapshot key, pid and cgroup path.
type containerStatus struct {
	st *runtimeapi.ContainerStatus
	vi *verboseInfo // nil when the runtime gave no verbose info
}

func (c *Client) fetchStatus(ctx context.Context, id string) (containerStatus, error) {
	resp, err := c.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		return containerStatus{}, fmt.Errorf("container status %s: %w", id, err)
	}
	s := containerStatus{st: resp.GetStatus()}
	if raw, ok := resp.GetInfo()["info"]; ok {
		vi, err := parseVerboseInfo([]byte(raw))
		if err != nil {
			return containerStatus{}, fmt.Errorf("container status %s: %w", id, err)
		}
		s.vi = &vi
	}
	return s, nil
}

// apply completes ct with the status; each call builds its own slices, so containers never share them.
func (s containerStatus) apply(ct *Container) {
	st := s.st
	if img := st.GetImage().GetImage(); img != "" {
		ct.Image = img
	}
	if st.GetImageRef() != "" {
		ct.ImageRef = st.GetImageRef()
	}
	if st.GetImageId() != "" {
		ct.ImageID = st.GetImageId()
	}
	ct.State = stateOf(st.GetState())
	if ns := st.GetStartedAt(); ns > 0 {
		ct.StartedAt = time.Unix(0, ns).UTC()
	}
	for _, m := range st.GetMounts() {
		ct.Mounts = append(ct.Mounts, Mount{ContainerPath: m.GetContainerPath(), HostPath: m.GetHostPath(), ReadOnly: m.GetReadonly()})
	}
	if vi := s.vi; vi != nil {
		ct.Snapshotter, ct.SnapshotKey, ct.Pid = vi.Snapshotter, vi.SnapshotKey, vi.Pid
		ct.RuntimeType = vi.RuntimeType
		if vi.RuntimeSpec.Linux != nil {
			ct.CgroupsPath = vi.RuntimeSpec.Linux.CgroupsPath
		}
		if ct.PodSandboxID == "" {
			ct.PodSandboxID = vi.SandboxID
		}
		ct.Security = vi.security()
	}
}

// verboseInfo is the part of containerd's ContainerStatus verbose "info" JSON we use; the same shape from 1.6 to 2.x.
type verboseInfo struct {
	SandboxID   string `json:"sandboxID"`
	Pid         int    `json:"pid"`
	SnapshotKey string `json:"snapshotKey"`
	Snapshotter string `json:"snapshotter"`
	RuntimeType string `json:"runtimeType"`
	RuntimeSpec struct {
		Linux *struct {
			CgroupsPath string `json:"cgroupsPath"`
		} `json:"linux"`
		Process *struct {
			Capabilities *struct {
				Bounding []string `json:"bounding"`
			} `json:"capabilities"`
		} `json:"process"`
	} `json:"runtimeSpec"`
	// Config is the CRI ContainerConfig the container was created with; containerd marshals it with the CRI
	// types' own JSON tags.
	Config *runtimeapi.ContainerConfig `json:"config"`
}

// security reads the security context from the CRI config and the bounding set from the runtime spec.
func (vi verboseInfo) security() *SecurityContext {
	sc := vi.Config.GetLinux().GetSecurityContext()
	if sc == nil {
		return nil
	}
	out := &SecurityContext{
		Privileged:       sc.GetPrivileged(),
		ReadOnlyRootfs:   sc.GetReadonlyRootfs(),
		NoNewPrivs:       sc.GetNoNewPrivs(),
		CapabilitiesAdd:  sc.GetCapabilities().GetAddCapabilities(),
		CapabilitiesDrop: sc.GetCapabilities().GetDropCapabilities(),
	}
	if v := sc.GetRunAsUser(); v != nil {
		u := v.GetValue()
		out.RunAsUser = &u
	}
	if v := sc.GetRunAsGroup(); v != nil {
		g := v.GetValue()
		out.RunAsGroup = &g
	}
	if p := vi.RuntimeSpec.Process; p != nil && p.Capabilities != nil {
		out.Bounding = p.Capabilities.Bounding
	}
	return out
}

func parseVerboseInfo(b []byte) (verboseInfo, error) {
	var vi verboseInfo
	if err := json.Unmarshal(b, &vi); err != nil {
		return vi, fmt.Errorf("parse verbose info: %w", err)
	}
	return vi, nil
}

func stateOf(s runtimeapi.ContainerState) State {
	switch s {
	case runtimeapi.ContainerState_CONTAINER_CREATED:
		return StateCreated
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		return StateRunning
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		return StateExited
	default:
		return StateUnknown
	}
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
