package node

import (
	"testing"

	"github.com/rootscan/rootscan/cri"
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
