package cri

import "testing"

func TestSocketPath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{"unix:///run/containerd/containerd.sock", "/run/containerd/containerd.sock", false},
		{"/run/k3s/containerd/containerd.sock", "/run/k3s/containerd/containerd.sock", false},
		{"unix://", "", true},
		{"tcp://10.0.0.1:1234", "", true},
		{"npipe:////./pipe/containerd", "", true},
		{"", "", true},
	} {
		got, err := SocketPath(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("SocketPath(%q) = %q, %v; want %q, err=%v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// The shape containerd (1.6 to 2.x) returns in ContainerStatus(verbose).Info["info"], trimmed.
const verboseSample = `{"sandboxID":"5f0c","pid":4242,"removing":false,"snapshotKey":"9a1b","snapshotter":"overlayfs",
"runtimeType":"io.containerd.runc.v2","runtimeOptions":{"binary_name":"/usr/sbin/runc"},
"config":{"metadata":{"name":"app"},"image":{"image":"sha256:abc"}},
"runtimeSpec":{"ociVersion":"1.0.2","linux":{"cgroupsPath":"/kubepods/besteffort/pod1234/9a1b","namespaces":[]}}}`

func TestParseVerboseInfo(t *testing.T) {
	vi, err := parseVerboseInfo([]byte(verboseSample))
	if err != nil {
		t.Fatal(err)
	}
	if vi.SandboxID != "5f0c" || vi.Pid != 4242 || vi.SnapshotKey != "9a1b" || vi.Snapshotter != "overlayfs" ||
		vi.RuntimeType != "io.containerd.runc.v2" || vi.RuntimeSpec.Linux == nil || vi.RuntimeSpec.Linux.CgroupsPath != "/kubepods/besteffort/pod1234/9a1b" {
		t.Fatalf("parsed %+v", vi)
	}
	if _, err := parseVerboseInfo([]byte(`{"pid":"not a number"}`)); err == nil {
		t.Fatal("a malformed verbose info must be an error, not zero values")
	}
}

func TestDigestAndDisplayName(t *testing.T) {
	c := Container{Name: "app", PodName: "web", PodNamespace: "shop", ImageRef: "registry.local/app@sha256:0123"}
	if c.Digest() != "sha256:0123" || c.DisplayName() != "shop/web/app" {
		t.Fatalf("Digest %q DisplayName %q", c.Digest(), c.DisplayName())
	}
	if (Container{ImageRef: "sha256:0123", Name: "x"}).Digest() != "" {
		t.Fatal("an image ID is not a repo digest")
	}
}
