package kube

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// kubeletConfig renders the kubelet's KubeletConfiguration. Everything the
// kubelet would otherwise take from the host's defaults is pinned: cgroupfs
// (the testbed's containerd has SystemdCgroup=false) under the testbed's
// cgroup parent, which the testbed removes on stop; cgroup v1 accepted
// (kubelet 1.35 refuses it by default); no image GC or disk-pressure eviction
// (a test bed must not delete the images a test imported, nor a full /tmp
// taint the node); FlexVolume plugins looked for under the cluster's dir,
// not /usr/libexec/kubernetes; no read-only or healthz port; client certificates of the
// cluster's CA only, and every authenticated client allowed (the API server
// is the only one, on an address the test made).
func kubeletConfig(p params) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %s
port: %d
readOnlyPort: 0
healthzPort: 0
tlsCertFile: %s
tlsPrivateKeyFile: %s
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: false
  x509:
    clientCAFile: %s
authorization:
  mode: AlwaysAllow
cgroupDriver: cgroupfs
cgroupRoot: %s
cgroupsPerQOS: true
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://%s
imageServiceEndpoint: unix://%s
podLogsDir: %s
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "0%%"
  nodefs.inodesFree: "0%%"
  imagefs.available: "0%%"
makeIPTablesUtilChains: false
serializeImagePulls: false
nodeStatusUpdateFrequency: 4s
resolvConf: /etc/resolv.conf
volumePluginDir: %s
`, p.nodeIP, p.kubeletPort, p.kubeletCert, p.kubeletKey, p.caFile, p.cgroupRoot,
		p.runtimeSocket, p.runtimeSocket, p.podLogsDir, p.volumePluginDir)
}

// cniConfig renders the pods' network: a bridge the harness made beforehand
// (so isGateway=false: the plugin neither assigns the gateway address nor
// turns on forwarding), host-local addresses from the subnet with its state
// under the cluster's root, and no routes but the subnet's own: pods reach
// the host and each other, nothing else.
func cniConfig(netName, bridge string, subnet *net.IPNet, ipamDir string) ([]byte, error) {
	base := subnet.IP.To4()
	first := net.IPv4(base[0], base[1], base[2], 2).String()
	gw := net.IPv4(base[0], base[1], base[2], 1).String()
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       netName,
		"plugins": []any{map[string]any{
			"type":        "bridge",
			"bridge":      bridge,
			"isGateway":   false,
			"ipMasq":      false,
			"hairpinMode": false,
			"ipam": map[string]any{
				"type":    "host-local",
				"dataDir": ipamDir,
				"ranges": [][]map[string]string{{{
					"subnet": subnet.String(), "rangeStart": first, "gateway": gw,
				}}},
			},
		}},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("render CNI config: %w", err)
	}
	return b, nil
}

// etcdArgs: a single member on loopback, no fsync (the data lives as long as
// one test).
func etcdArgs(p params) []string {
	client := "http://127.0.0.1:" + strconv.Itoa(p.etcdPort)
	peer := "http://127.0.0.1:" + strconv.Itoa(p.etcdPeerPort)
	return []string{
		"--name=rstb", "--data-dir=" + p.etcdDir,
		"--listen-client-urls=" + client, "--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=rstb=" + peer, "--initial-cluster-state=new",
		"--unsafe-no-fsync", "--log-level=warn",
	}
}

func apiserverArgs(p params) []string {
	return []string{
		"--etcd-servers=http://127.0.0.1:" + strconv.Itoa(p.etcdPort),
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(p.apiPort),
		"--tls-cert-file=" + p.apiCert, "--tls-private-key-file=" + p.apiKey,
		"--client-ca-file=" + p.caFile,
		"--kubelet-client-certificate=" + p.apiKubeletCert, "--kubelet-client-key=" + p.apiKubeletKey,
		"--kubelet-preferred-address-types=InternalIP",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + p.saPub, "--service-account-signing-key-file=" + p.saKey,
		"--service-cluster-ip-range=" + p.serviceCIDR,
		"--authorization-mode=Node,RBAC",
		// The scanner's DaemonSet is privileged, as node agents are.
		"--allow-privileged=true",
		// A loopback address cannot be the kubernetes Service's endpoint.
		"--endpoint-reconciler-type=none",
		"--cert-dir=" + p.apiCertDir,
	}
}

func controllerManagerArgs(p params) []string {
	return []string{
		"--kubeconfig=" + p.controllerKubeconfig,
		"--bind-address=127.0.0.1", "--secure-port=0",
		"--leader-elect=false",
		// Without it the controllers run with the manager's own identity,
		// which RBAC gives no rights to act: no controller acts.
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + p.saKey,
		"--root-ca-file=" + p.caFile,
		"--controllers=*",
		// Not /usr/libexec/kubernetes, which it would create.
		"--flex-volume-plugin-dir=" + p.volumePluginDir,
	}
}

func schedulerArgs(p params) []string {
	return []string{
		"--kubeconfig=" + p.schedulerKubeconfig,
		"--bind-address=127.0.0.1", "--secure-port=0",
		"--leader-elect=false",
	}
}

func kubeletArgs(p params) []string {
	return []string{
		"--config=" + p.kubeletConfigFile,
		"--kubeconfig=" + p.kubeletKubeconfig,
		"--root-dir=" + p.kubeletRoot,
		"--hostname-override=" + p.nodeName,
		"--node-ip=" + p.nodeIP,
	}
}

// params are the paths, ports and names the components are started with.
type params struct {
	nodeName, nodeIP, serviceCIDR                    string
	etcdPort, etcdPeerPort, apiPort, kubeletPort     int
	etcdDir, kubeletRoot, podLogsDir, apiCertDir     string
	volumePluginDir                                  string
	caFile, apiCert, apiKey, apiKubeletCert          string
	apiKubeletKey, kubeletCert, kubeletKey           string
	saKey, saPub                                     string
	controllerKubeconfig, schedulerKubeconfig        string
	kubeletKubeconfig, kubeletConfigFile, cgroupRoot string
	runtimeSocket                                    string
}

func (p params) apiURL() string { return "https://127.0.0.1:" + strconv.Itoa(p.apiPort) }

// nameOK reports whether s can go into the YAML and flag values unquoted.
func nameOK(s string) bool { return !strings.ContainsAny(s, " \t\n\"'\\:#") }
