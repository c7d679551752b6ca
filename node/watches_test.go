package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/report"
)

// The daemon leaves out its own pod, and only it: a pod of the same name in another namespace, or another pod in
// its namespace, is reported; with no identity (outside Kubernetes, or --scan-self) nothing is left out.
func TestDaemonWatchesLeavesOutItsOwnPod(t *testing.T) {
	self := PodRef{Namespace: "rootscan", Name: "rootscan-x7k2p"}
	for _, tc := range []struct {
		name      string
		self      PodRef
		namespace string
		c         cri.Container
		want      bool
	}{
		{"own pod", self, "", cri.Container{PodNamespace: "rootscan", PodName: "rootscan-x7k2p"}, false},
		{"same name elsewhere", self, "", cri.Container{PodNamespace: "default", PodName: "rootscan-x7k2p"}, true},
		{"neighbour", self, "", cri.Container{PodNamespace: "rootscan", PodName: "rootscan-abcde"}, true},
		{"no identity", PodRef{}, "", cri.Container{PodNamespace: "rootscan", PodName: "rootscan-x7k2p"}, true},
		{"no identity, bare container", PodRef{}, "", cri.Container{}, true},
		{"namespace only, self unknown", PodRef{Namespace: "rootscan"}, "", cri.Container{PodNamespace: "rootscan"}, true},
		{"other namespace watched", self, "apps", cri.Container{PodNamespace: "rootscan", PodName: "rootscan-abcde"}, false},
		{"watched namespace", self, "apps", cri.Container{PodNamespace: "apps", PodName: "web"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &Daemon{Self: tc.self, Namespace: tc.namespace}
			if got := d.watches(tc.c); got != tc.want {
				t.Errorf("watches(%s/%s) = %v, want %v", tc.c.PodNamespace, tc.c.PodName, got, tc.want)
			}
		})
	}
}

// Other pods of the daemon's DaemonSet (an older revision terminating in a rolling update) carry its pod labels but
// for the per-revision ones and the kubelet's io.kubernetes.*: they are left out once the own pod's labels are known;
// a pod in the same namespace with other labels, or with none, is a neighbour and is reported.
func TestDaemonWatchesLeavesOutItsSiblings(t *testing.T) {
	self := PodRef{Namespace: "rootscan", Name: "rootscan-x7k2p"}
	own := map[string]string{"app.kubernetes.io/name": "rootscan", "app.kubernetes.io/instance": "rootscan",
		"controller-revision-hash": "6d4f8", "pod-template-generation": "2", "io.kubernetes.pod.name": "rootscan-x7k2p"}
	old := map[string]string{"app.kubernetes.io/name": "rootscan", "app.kubernetes.io/instance": "rootscan",
		"controller-revision-hash": "59c7b", "pod-template-generation": "1", "io.kubernetes.pod.name": "rootscan-abcde"}
	other := map[string]string{"app.kubernetes.io/name": "rootscan", "app.kubernetes.io/instance": "staging"}
	for _, tc := range []struct {
		name   string
		labels map[string]string // the own pod's, nil when not yet listed
		c      cri.Container
		want   bool
	}{
		{"older revision", own, cri.Container{PodNamespace: "rootscan", PodName: "rootscan-abcde", PodLabels: old}, false},
		{"own labels unknown yet", nil, cri.Container{PodNamespace: "rootscan", PodName: "rootscan-abcde", PodLabels: old}, true},
		{"other release", own, cri.Container{PodNamespace: "rootscan", PodName: "staging-abcde", PodLabels: other}, true},
		{"unlabelled neighbour", own, cri.Container{PodNamespace: "rootscan", PodName: "debug"}, true},
		{"same labels elsewhere", own, cri.Container{PodNamespace: "apps", PodName: "rootscan-abcde", PodLabels: old}, true},
		{"own pod has only per-revision labels", map[string]string{"controller-revision-hash": "6d4f8"},
			cri.Container{PodNamespace: "rootscan", PodName: "debug"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &Daemon{Self: self}
			if tc.labels != nil {
				d.selfLabels.Store(&tc.labels)
			}
			if got := d.watches(tc.c); got != tc.want {
				t.Errorf("watches(%s/%s) = %v, want %v", tc.c.PodNamespace, tc.c.PodName, got, tc.want)
			}
		})
	}
}

// An event can name a container before the daemon has listed its own pod: in a rolling update the new scanner
// starts while the old revision's pod is still exiting, and that pod's events come first. The daemon must not
// check it as a neighbour (a scan.failed about a scanner pod) just because its own labels were not known yet.
func TestDaemonLeavesOutSiblingsNamedBeforeTheFirstList(t *testing.T) {
	labels := func(rev string) map[string]string {
		return map[string]string{"app.kubernetes.io/name": "rootscan", "controller-revision-hash": rev}
	}
	self := cri.Container{ID: "self", PodNamespace: "rootscan", PodName: "rootscan-new", PodLabels: labels("2"), State: cri.StateRunning}
	old := cri.Container{ID: "old", PodNamespace: "rootscan", PodName: "rootscan-old", PodLabels: labels("1"), State: cri.StateExited}
	cs := &siblingRuntime{byID: map[string]cri.Container{"self": self, "old": old}, listed: []cri.Container{self}}
	d := &Daemon{Containers: cs, Events: cs, Roots: cs, Publisher: cs, Self: PodRef{Namespace: "rootscan", Name: "rootscan-new"}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !d.Ready() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	// The event's check may still be queued behind the list's: give it the settle delay's second look too.
	time.Sleep(settleDelay + 200*time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !d.Ready() {
		t.Fatal("the daemon never became ready")
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if len(cs.opened) > 0 || len(cs.published) > 0 {
		t.Errorf("the daemon read %v and published %v: scanner pods must be left out", cs.opened, cs.published)
	}
}

// siblingRuntime is a CRI whose first event names an older scanner pod before the list that shows the daemon's
// own pod.
type siblingRuntime struct {
	byID   map[string]cri.Container
	listed []cri.Container

	mu        sync.Mutex
	opened    []string
	published []string
}

func (r *siblingRuntime) List(context.Context, cri.Filter) ([]cri.Container, error) {
	return r.listed, nil
}

func (r *siblingRuntime) Container(_ context.Context, id string) (cri.Container, error) {
	if c, ok := r.byID[id]; ok {
		return c, nil
	}
	return cri.Container{}, fmt.Errorf("container %s: %w", id, cri.ErrNotFound)
}

func (r *siblingRuntime) Watch(ctx context.Context, changed func(string), resync func()) error {
	changed("old")
	time.Sleep(100 * time.Millisecond) // the list comes after the event, as a watch subscribes before it lists
	resync()
	<-ctx.Done()
	return nil
}

func (r *siblingRuntime) OpenContainer(_ context.Context, c cri.Container) (Root, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.opened = append(r.opened, c.PodName)
	return nil, "", errors.New("not readable")
}

func (r *siblingRuntime) Publish(_ context.Context, rep report.Report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.published = append(r.published, rep.Target.Pod)
}

func (r *siblingRuntime) Remove(context.Context, report.Target) {}
