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
