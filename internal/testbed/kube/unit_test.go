package kube

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestHostStateCleanRemovesOnlyTheClustersFiles(t *testing.T) {
	base := t.TempDir()
	p := hostPaths{containerLogs: filepath.Join(base, "log", "containers"), cniCache: filepath.Join(base, "cni"),
		kubeletDir: filepath.Join(base, "kubelet")}
	// The log dir existed before (someone else's link in it); the CNI cache did not.
	if err := os.MkdirAll(p.containerLogs, 0o755); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(p.containerLogs, "other.log")
	if err := os.Symlink("/elsewhere/0.log", other); err != nil {
		t.Fatal(err)
	}
	s := recordHost(p)
	root := filepath.Join(base, "rskube-1")
	ours := filepath.Join(p.containerLogs, "ours.log")
	if err := os.Symlink(root+"/pod-logs/x/0.log", ours); err != nil {
		t.Fatal(err)
	}
	results := filepath.Join(p.cniCache, "results")
	if err := os.MkdirAll(results, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"rstb-abc-123-eth0", "rstb-abcd-123-eth0"} {
		if err := os.WriteFile(filepath.Join(results, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	if err := os.MkdirAll(p.devicePlugins(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.kubeletSocket(), nil, 0o600); err != nil {
		t.Fatal(err)
	}

	if err := s.clean(root, "rstb-abc"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(ours); !os.IsNotExist(err) {
		t.Errorf("the cluster's log link is still there (%v)", err)
	}
	if _, err := os.Lstat(other); err != nil {
		t.Errorf("another's log link was removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(results, "rstb-abc-123-eth0")); !os.IsNotExist(err) {
		t.Errorf("the cluster's CNI result is still there (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(results, "rstb-abcd-123-eth0")); err != nil {
		t.Errorf("another network's CNI result was removed: %v", err)
	}
	if _, err := os.Stat(p.kubeletDir); !os.IsNotExist(err) {
		t.Errorf("the kubelet dir that did not exist before is still there (%v)", err)
	}
}

func TestCNIConfigKeepsThePluginOffTheHost(t *testing.T) {
	_, subnet, _ := net.ParseCIDR("198.18.7.0/24")
	b, err := cniConfig("rstb-x", "rstbx", subnet, "/tmp/rskube-1/cni-ipam")
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		Name    string `json:"name"`
		Plugins []struct {
			Type      string `json:"type"`
			Bridge    string `json:"bridge"`
			IsGateway bool   `json:"isGateway"`
			IPMasq    bool   `json:"ipMasq"`
			IPAM      struct {
				DataDir string                `json:"dataDir"`
				Ranges  [][]map[string]string `json:"ranges"`
				Routes  []any                 `json:"routes"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(b, &conf); err != nil {
		t.Fatal(err)
	}
	pl := conf.Plugins[0]
	if pl.Type != "bridge" || pl.Bridge != "rstbx" || pl.IsGateway || pl.IPMasq {
		t.Errorf("bridge plugin = %+v, want bridge rstbx without gateway or masquerade", pl)
	}
	if pl.IPAM.DataDir != "/tmp/rskube-1/cni-ipam" || len(pl.IPAM.Routes) != 0 {
		t.Errorf("ipam = %+v, want state under the cluster and no routes", pl.IPAM)
	}
	if r := pl.IPAM.Ranges[0][0]; r["subnet"] != "198.18.7.0/24" || r["rangeStart"] != "198.18.7.2" {
		t.Errorf("range = %v, want 198.18.7.0/24 from .2 (.1 is the bridge's)", r)
	}
}

func TestKubeletConfigParses(t *testing.T) {
	p := params{nodeIP: "198.18.7.1", kubeletPort: 10250, cgroupRoot: "/rskube-1", runtimeSocket: "/tmp/x/c/containerd.sock"}
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(kubeletConfig(p)), &cfg); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"failCgroupV1": false, "cgroupDriver": "cgroupfs", "cgroupRoot": "/rskube-1",
		"containerRuntimeEndpoint": "unix:///tmp/x/c/containerd.sock", "imageGCHighThresholdPercent": float64(100),
		"address": "198.18.7.1", "readOnlyPort": float64(0),
	} {
		if cfg[k] != want {
			t.Errorf("%s = %v, want %v", k, cfg[k], want)
		}
	}
}
