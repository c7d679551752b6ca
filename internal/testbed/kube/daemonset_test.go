package kube

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/rootscan/rootscan/internal/testbed/ociimage"
)

// scannerImageName is the name the test-built scanner image is imported
// under; the manifests' image is pointed at it as a user's kustomization
// would with `images:`.
const scannerImageName = "rootscan.test/rootscan:kube-e2e"

// TestKustomizeBaseDaemonSetReady applies the kustomize base, as rendered by
// kustomize, to the cluster with a scanner image built from this tree, and
// waits for the DaemonSet's pod to become Ready (its readiness probe is the
// daemon's /readyz, probed by the kubelet). The manifests are changed only
// where a k3s user changes them, the containerd run and root dirs, and where
// the scanner's own hostPath dirs would otherwise land on the test machine.
func TestKustomizeBaseDaemonSetReady(t *testing.T) {
	Require(t, Options{})
	kustomize := deployTool(t, "ROOTSCAN_KUSTOMIZE")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	img := scannerImage(t, ctx)

	c := StartT(t, Options{})
	if _, err := c.Containerd().Import(ctx, img); err != nil {
		t.Fatal(err)
	}
	// A workload for the scanner to find.
	appRef := importDistroless(t, ctx, c)
	if _, err := c.Kubectl(ctx, "create", "namespace", "rstb-apps"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Kubectl(ctx, "-n", "rstb-apps", "run", "app", "--image="+appRef.Name, "--image-pull-policy=Never"); err != nil {
		t.Fatal(err)
	}

	rendered, err := exec.CommandContext(ctx, kustomize, "build", "../../../deploy/kustomize/base").Output()
	if err != nil {
		t.Fatalf("kustomize build: %v", err)
	}
	manifests := patchForTestbed(t, rendered, nodePaths{runDir: filepath.Dir(c.Containerd().Address()), rootDir: c.Containerd().Root(),
		podsDir: filepath.Join(c.p.kubeletRoot, "pods")}, t.TempDir())
	began := time.Now()
	if out, err := c.KubectlStdin(ctx, strings.NewReader(manifests), "apply", "-f", "-"); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	if _, err := c.Kubectl(ctx, "-n", "rootscan", "rollout", "status", "daemonset/rootscan", "--timeout=240s"); err != nil {
		desc, _ := c.Kubectl(ctx, "-n", "rootscan", "describe", "pods")
		logs, _ := c.Kubectl(ctx, "-n", "rootscan", "logs", "daemonset/rootscan", "--tail=50")
		t.Fatalf("DaemonSet not Ready: %v\n%s\nlogs:\n%s", err, desc, logs)
	}
	t.Logf("DaemonSet Ready %v after apply", time.Since(began).Round(time.Millisecond))

	// The scanner's metrics, through the API server's pod proxy: it found
	// the app pod with its real namespace.
	pod, err := c.Kubectl(ctx, "-n", "rootscan", "get", "pods", "-l", "app.kubernetes.io/name=rootscan", "-o", "jsonpath={.items[0].metadata.name}")
	if err != nil {
		t.Fatal(err)
	}
	var metrics string
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		metrics, err = c.Kubectl(ctx, "get", "--raw", "/api/v1/namespaces/rootscan/pods/"+strings.TrimSpace(pod)+":9090/proxy/metrics")
		if err == nil && strings.Contains(metrics, `namespace="rstb-apps"`) {
			for _, line := range strings.Split(metrics, "\n") {
				if strings.Contains(line, `namespace="rstb-apps"`) {
					t.Logf("scanner reports the app pod: %s", line)
					break
				}
			}
			// The base mounts the kubelet's pods dir: compliance reads the
			// app pod's volumes (its service account token).
			logs, _ := c.Kubectl(ctx, "-n", "rootscan", "logs", strings.TrimSpace(pod))
			if w := volumeWarnings(logs); w != "" {
				t.Errorf("the daemon could not read a pod volume:\n%s", w)
			}
			return
		}
		time.Sleep(2 * time.Second)
	}
	t.Errorf("scanner metrics never named the app pod's namespace (err %v):\n%.3000s", err, metrics)
}

// nodePaths are where this node keeps what a k3s user points the manifests
// at: containerd's socket dir and root dir, and the kubelet's pods dir.
type nodePaths struct{ runDir, rootDir, podsDir string }

// patchForTestbed points the rendered manifests at the test bed: the
// scanner image, never pulled; the containerd socket dir and root dir of
// the test bed's containerd and the kubelet's pods dir (mounted at their node
// paths, as containerd and the CRI return node paths); and the scanner's
// mount and state hostPaths under dir instead of the test machine's /run and
// /var/lib.
func patchForTestbed(t *testing.T, rendered []byte, node nodePaths, dir string) string {
	t.Helper()
	var out []string
	for _, doc := range strings.Split(string(rendered), "\n---\n") {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("parse rendered manifest: %v", err)
		}
		if obj["kind"] == "DaemonSet" {
			patchDaemonSet(t, obj, node, dir)
		}
		b, err := yaml.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return strings.Join(out, "---\n")
}

func patchDaemonSet(t *testing.T, ds map[string]any, node nodePaths, dir string) {
	t.Helper()
	spec := dig(t, ds, "spec", "template", "spec")
	hostPaths := map[string]string{
		"containerd-run":  node.runDir,
		"containerd-root": node.rootDir,
		"kubelet-pods":    node.podsDir,
		"mounts":          filepath.Join(dir, "mounts"),
		"state":           filepath.Join(dir, "state"),
	}
	for _, v := range spec["volumes"].([]any) {
		v := v.(map[string]any)
		if p, ok := hostPaths[v["name"].(string)]; ok {
			v["hostPath"].(map[string]any)["path"] = p
			delete(hostPaths, v["name"].(string))
		}
	}
	if len(hostPaths) > 0 {
		t.Fatalf("DaemonSet lacks the hostPath volumes %v", hostPaths)
	}
	for _, ctr := range spec["containers"].([]any) {
		ctr := ctr.(map[string]any)
		ctr["image"] = scannerImageName
		ctr["imagePullPolicy"] = "Never"
		for _, m := range ctr["volumeMounts"].([]any) {
			switch m := m.(map[string]any); m["name"] {
			case "containerd-root":
				m["mountPath"] = node.rootDir
			case "kubelet-pods":
				m["mountPath"] = node.podsDir
			}
		}
	}
}

func dig(t *testing.T, m map[string]any, keys ...string) map[string]any {
	t.Helper()
	for _, k := range keys {
		next, ok := m[k].(map[string]any)
		if !ok {
			t.Fatalf("manifest has no %s", strings.Join(keys, "."))
		}
		m = next
	}
	return m
}

// scannerImage is a minimal scanner image: the distroless-like test image
// (CA certificates, passwd, no shell) with the static rootscan binary built
// from this tree as its entrypoint.
func scannerImage(t *testing.T, ctx context.Context) *ociimage.Image {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rootscan")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./cmd/rootscan")
	cmd.Dir = "../../.."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build rootscan: %v: %s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	img, err := ociimage.Distroless(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	img.Name = scannerImageName
	img.Layers = append(img.Layers, ociimage.Layer{Files: []ociimage.File{{Path: "rootscan", Mode: 0o755, Data: data}}})
	img.Config.Entrypoint, img.Config.Cmd = []string{"/rootscan"}, nil
	return img
}
