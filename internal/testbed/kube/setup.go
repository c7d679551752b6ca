package kube

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// writePKI issues the cluster's certificates and the service account key,
// and writes the kubeconfigs of the admin, the controller manager, the
// scheduler and the kubelet.
func (c *Cluster) writePKI() error {
	ca, err := newCA()
	if err != nil {
		return err
	}
	dir := filepath.Join(c.root, "pki")
	c.p.caFile = filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(c.p.caFile, ca.certPEM, 0o644); err != nil {
		return fmt.Errorf("write CA: %w", err)
	}
	nodeIP := net.ParseIP(c.p.nodeIP)
	servers := []struct {
		name      string
		spec      certSpec
		cert, key *string
	}{
		{"apiserver", certSpec{cn: "kube-apiserver", ips: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(198, 19, 0, 1)},
			dns: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}},
			&c.p.apiCert, &c.p.apiKey},
		{"apiserver-kubelet-client", certSpec{cn: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}, client: true},
			&c.p.apiKubeletCert, &c.p.apiKubeletKey},
		{"kubelet-serving", certSpec{cn: NodeName, ips: []net.IP{nodeIP}}, &c.p.kubeletCert, &c.p.kubeletKey},
	}
	for _, s := range servers {
		kp, err := ca.issue(s.spec)
		if err != nil {
			return err
		}
		if *s.cert, *s.key, err = kp.write(dir, s.name); err != nil {
			return err
		}
	}
	priv, pub, err := serviceAccountKey()
	if err != nil {
		return err
	}
	c.p.saKey, c.p.saPub = filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if err := os.WriteFile(c.p.saKey, priv, 0o600); err != nil {
		return fmt.Errorf("write service account key: %w", err)
	}
	if err := os.WriteFile(c.p.saPub, pub, 0o644); err != nil {
		return fmt.Errorf("write service account key: %w", err)
	}
	clients := []struct {
		file string
		spec certSpec
		path *string
	}{
		{"admin", certSpec{cn: "rootscan-testbed-admin", orgs: []string{"system:masters"}, client: true}, &c.kubeconfig},
		{"controller-manager", certSpec{cn: "system:kube-controller-manager", client: true}, &c.p.controllerKubeconfig},
		{"scheduler", certSpec{cn: "system:kube-scheduler", client: true}, &c.p.schedulerKubeconfig},
		{"kubelet", certSpec{cn: "system:node:" + NodeName, orgs: []string{"system:nodes"}, client: true}, &c.p.kubeletKubeconfig},
	}
	for _, cl := range clients {
		kp, err := ca.issue(cl.spec)
		if err != nil {
			return err
		}
		if cl.file == "admin" {
			c.admin = kp
		}
		*cl.path = filepath.Join(c.root, cl.file+".kubeconfig")
		if err := os.WriteFile(*cl.path, []byte(kubeconfig(c.p.apiURL(), ca.certPEM, kp, cl.spec.cn)), 0o600); err != nil {
			return fmt.Errorf("write kubeconfig: %w", err)
		}
	}
	c.caPEM = ca.certPEM
	c.http, err = c.adminClient()
	return err
}

// freePorts returns n TCP ports free on host, held open together so that
// they differ. Another process may take one before its component binds it;
// the component then fails to start and says so.
func freePorts(host string, n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("find a free port on %s: %w", host, err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// adminClient is an HTTP client that trusts the cluster's CA and presents
// the admin's client certificate.
func (c *Cluster) adminClient() (*http.Client, error) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.caPEM)
	cert, err := tls.X509KeyPair(c.admin.cert, c.admin.key)
	if err != nil {
		return nil, fmt.Errorf("admin key pair: %w", err)
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
	}}, nil
}

// get fetches url as the admin; ok is false when it did not answer 200.
func (c *Cluster) get(ctx context.Context, url string) (body []byte, ok bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, false
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, false
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return body, err == nil && resp.StatusCode == http.StatusOK
}

// waitHTTP waits until url answers 200.
func (c *Cluster) waitHTTP(ctx context.Context, name, url string, timeout time.Duration) error {
	return c.waitFor(ctx, name, timeout, func(ctx context.Context) (bool, error) {
		_, ok := c.get(ctx, url)
		return ok, nil
	})
}

// nodeReady reports whether the node's Ready condition is True.
func (c *Cluster) nodeReady(ctx context.Context) (bool, error) {
	body, ok := c.get(ctx, c.p.apiURL()+"/api/v1/nodes/"+NodeName)
	if !ok {
		return false, nil
	}
	var node corev1.Node
	if err := json.Unmarshal(body, &node); err != nil {
		return false, fmt.Errorf("decode node: %w", err)
	}
	for _, cond := range node.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue, nil
		}
	}
	return false, nil
}

// waitFor polls ok until it says true, a component exits, or timeout.
func (c *Cluster) waitFor(ctx context.Context, what string, timeout time.Duration, ok func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		done, err := ok(ctx)
		if err != nil {
			return fmt.Errorf("wait for %s: %w", what, err)
		}
		if done {
			return nil
		}
		for _, p := range c.procs {
			if p.hasExited() {
				return fmt.Errorf("wait for %s: %s exited: %v", what, p.name, p.waitErr)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w", what, ctx.Err())
		case <-tick.C:
		}
	}
}
